"""The SMS channel: one line, within the event type's segment budget.

An SMS template extends ``base.sms.j2`` (sender tag, the acknowledgement
line exported as ``ack`` with ``{code}`` for the code, opt-out line exported
as ``stop``) and fills a ``body`` block. The acknowledgement line is there
only for a notice that waits for one (the template sees its ``ack_code``). Its text is put on one line in Unicode
NFC form. Typographic characters (curly quotes, dashes) become their GSM-7
equivalents when that makes the whole text GSM-7; letters are never changed,
so a text with a letter outside GSM-7 (Spanish á, í, ó, ú; a name with Ł) is
sent, and counted, as UCS-2.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, ClassVar

import jinja2

from savin.rendering import gsm
from savin.rendering.channel import ChannelTemplate, Environments
from savin.rendering.gsm import Segments
from savin.schemas import EVENT_TYPES

__all__ = ["RenderedSMS", "SMSTemplate"]


@dataclass(frozen=True)
class RenderedSMS:
    text: str
    segments: Segments


class SMSTemplate(ChannelTemplate):
    """An event type's SMS in one language, and how it is made to fit.

    The budget is the event type's ``sms_segments`` in the vocabulary. When
    the text is longer, the offender's name and the free-text payload fields
    are cut short with ``...``, as little as lets the text fit: first in full
    wording (down to :attr:`full_floor` characters), then in ``compact``
    wording (the template's ``compact`` variable). If nothing fits, the text
    itself is cut, keeping the acknowledgement and opt-out lines.
    """

    channel = "sms"
    uses = ("ack_code",)

    #: The budget of an event type the vocabulary does not know.
    default_segments = 4

    #: Payload fields that may be cut short, and how much room each gets
    #: relative to the others.
    shortenable: ClassVar[dict[str, int]] = {
        "facility": 1,
        "from_facility": 1,
        "to_facility": 1,
        "district_office": 1,
        "location": 1,
        "how_to_attend": 2,
        "reason": 1,
        "hearing_id": 1,
        "case_number": 1,
    }

    #: The shortest the name and the fields are cut to in full wording before
    #: the compact wording is tried, and the longest and shortest in compact wording.
    full_floor = 25
    compact_longest, compact_floor = 50, 8

    def __init__(self, name: str, language: str, template: jinja2.Template, *, max_segments: int, stop: str,
                 ack: str = ""):
        super().__init__(name, language)
        self.template = template
        self.max_segments = max_segments
        #: The opt-out line, kept when the text itself must be cut ("" if there is none).
        self.stop = stop
        #: The acknowledgement line with ``{code}`` for the code, kept like the opt-out line.
        self.ack = ack

    @classmethod
    def load(cls, envs: Environments, name: str, language: str, event_type: str) -> SMSTemplate:
        template = envs.text.get_template(name)
        kind = EVENT_TYPES.get(event_type)
        stop, ack = _base_lines(envs.text, language)
        return cls(
            name, language, template,
            max_segments=kind.sms_segments if kind is not None else cls.default_segments,
            stop=stop, ack=ack,
        )

    def render(self, event: dict[str, Any], timezone: str, ack_code: str | None = None) -> RenderedSMS:
        """The SMS, within budget; with ``ack_code`` it asks for a reply with that code."""
        text = self.text(event, timezone, compact=False, ack_code=ack_code)
        segments = gsm.count(text)
        if segments.segments <= self.max_segments:
            return RenderedSMS(text, segments)
        uncut = max(len(event["offender_name"]), *(
            -(-len(v) // self.shortenable[k]) for k, v in event["payload"].items()
            if k in self.shortenable and isinstance(v, str)
        ), 0)
        for compact, longest, floor in (
            (False, uncut - 1, self.full_floor),
            (True, min(uncut, self.compact_longest), self.compact_floor),
        ):
            found = self._longest_cut_that_fits(event, timezone, compact, longest, floor, ack_code)
            if found is not None:
                return found
        text = self.text(self.shorten(event, self.compact_floor), timezone, compact=True, ack_code=ack_code)
        tail = self.tail(ack_code)
        endings = (" " + sms_form(tail), " " + _one_line(tail)) if tail else ()
        keep_end = next((e for e in endings if text.endswith(e)), "")
        text = gsm.fit(text, self.max_segments, keep_end=keep_end)
        return RenderedSMS(text, gsm.count(text))

    def tail(self, ack_code: str | None) -> str:
        """What ends every text: the acknowledgement line (with ``ack_code``) and the opt-out line."""
        ack = self.ack.replace("{code}", ack_code) if ack_code and self.ack else ""
        return " ".join(line for line in (ack, self.stop) if line)

    def _longest_cut_that_fits(
        self, event: dict[str, Any], timezone: str, compact: bool, longest: int, floor: int, ack_code: str | None
    ) -> RenderedSMS | None:
        """The text with the name and fields cut to the most characters, from
        ``floor`` to ``longest``, that fits; None when even ``floor`` is too long."""

        def attempt(n: int) -> RenderedSMS | None:
            text = self.text(self.shorten(event, n), timezone, compact=compact, ack_code=ack_code)
            segments = gsm.count(text)
            return RenderedSMS(text, segments) if segments.segments <= self.max_segments else None

        if longest < floor or (best := attempt(floor)) is None:
            return None
        lo, hi = floor, longest + 1  # a cut to lo fits; hi is past what is tried
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (found := attempt(mid)) is not None:
                lo, best = mid, found
            else:
                hi = mid
        return best

    def text(self, event: dict[str, Any], timezone: str, *, compact: bool, ack_code: str | None = None) -> str:
        """The SMS for ``event`` as the template words it, whatever its length."""
        context = self.context(event, timezone)
        context["compact"] = compact
        context["ack_code"] = ack_code
        return sms_form(self.call(self.template, context))

    def shorten(self, event: dict[str, Any], longest: int) -> dict[str, Any]:
        """``event`` with its offender name and free-text payload fields cut to ``longest``."""
        payload = {
            k: _cut(v, longest * self.shortenable[k]) if k in self.shortenable and isinstance(v, str) else v
            for k, v in event["payload"].items()
        }
        return {**event, "offender_name": _cut(event["offender_name"], longest), "payload": payload}


def sms_form(text: str) -> str:
    """``text`` on one line in NFC form, its typography downgraded when that
    makes all of it GSM-7."""
    text = _FOUR_DOTS.sub("...", _one_line(text))
    downgraded = gsm.downgrade(text)
    return downgraded if gsm.is_gsm(downgraded) else text


#: A value cut with "..." and then a template's full stop.
_FOUR_DOTS = re.compile(r"(?<!\.)\.{4}(?!\.)")


def _one_line(text: str) -> str:
    # NFC: "A" followed by a combining accent becomes "Á", one letter and one UTF-16 unit.
    return " ".join(unicodedata.normalize("NFC", text).split())


def _cut(value: str, longest: int) -> str:
    """``value`` in at most ``longest`` characters, ending in ``...`` when cut:
    after a whole word when that loses no more than a short word's letters
    (a word's first letters may read as another word)."""
    if len(value) <= longest:
        return value
    head = gsm.cut(value, max(longest - 3, 1))
    if not value[len(head)].isspace():
        space = head.rfind(" ")
        if space > 0 and len(head) - space <= _WORD:
            head = head[:space]
    return head.rstrip(" ,;:-") + "..."


#: The most letters a cut gives up to end after a whole word.
_WORD = 12


def _base_lines(env: jinja2.Environment, language: str) -> tuple[str, str]:
    """The opt-out and acknowledgement lines ``base.sms.j2`` exports as ``stop`` and
    ``ack`` ("" for one it does not have)."""
    try:
        module = env.get_template(f"{language}/base.sms.j2").make_module({"ack_code": None})
    except jinja2.TemplateError:
        return "", ""
    return str(getattr(module, "stop", "")), str(getattr(module, "ack", ""))
