"""The voice channel: what a call says, part by part, and in which voice.

A voice template extends ``base.voice.j2``, which holds the parts every call
shares (``intro``, ``pin_prompt``, ``wrong_pin``, ``confirm_prompt``,
``thanks``, ``machine_message``, ``goodbye``, and the ``<Say>`` ``language``
and ``voice``); the event type's
template fills ``notice`` and may change ``help``, the words before the
Office of Victim Services' number, which together make the ``message``. As in
email, the base renders the one part named by the ``part`` variable.

Only ``message`` is rendered with the event. The other parts are said before
the PIN is entered or left on an answering machine, so they are rendered
without ``event``, ``p`` or ``offender``: a template that names the offender
in one of them fails (``StrictUndefined``) rather than leaking the notice.

Text is written for a listener. Templates also see:

``spell(value)``
    An identifier character by character: ``MO-1048576`` as ``M O 1 0 4 8 5 7 6``.
``phone(value)``
    A phone number digit by digit, a pause between its groups:
    ``1-800-555-0199`` as ``1, 8 0 0, 5 5 5, 0 1 9 9``.
``spoken_money(amount, currency)``
    ``4500.00`` as ``4500 dollars`` (``dólares``), cents as words after it;
    a ``$`` would be read as pesos by a Mexican Spanish voice.
``aloud(text)``
    A producer's free text made safe to read: web addresses become "the
    website", phone numbers are spoken as ``phone`` does, and the street and
    month abbreviations a voice misreads ("Knipp Dr,", "Feb 3") are written out.

Dates and times come from the ``datetime`` and ``date`` filters in their
``"long"`` style, which spells the weekday and month.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Callable, ClassVar

import jinja2

from savin.rendering.channel import ChannelTemplate, Environments

__all__ = ["RenderedVoice", "VoiceTemplate", "spell", "phone", "spoken_money", "aloud"]


@dataclass(frozen=True)
class RenderedVoice:
    """What one call says, each part on one line, in the order a call uses them."""

    #: Names the service; said first, before any PIN or content.
    intro: str
    #: Asks for the registrant's PIN and the pound key.
    pin_prompt: str
    #: Said when a PIN is wrong, before it is asked for again.
    wrong_pin: str
    #: The notice itself; said only after the PIN, never to an answering machine.
    message: str
    #: Press 1 to confirm, press 2 to hear the message again.
    confirm_prompt: str
    #: Said when 1 confirmed the message: it is recorded.
    thanks: str
    #: All an answering machine hears: the service, the portal and the office's number.
    machine_message: str
    goodbye: str
    #: The ``language`` and ``voice`` attributes of ``<Say>``.
    language: str
    voice: str
    #: The event the call is about (an id, for the call's record; never said).
    event_id: str = ""

    def spoken(self) -> dict[str, str]:
        """What the call says, part by part (everything but the event id)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "event_id"}


class VoiceTemplate(ChannelTemplate):
    """An event type's call in one language."""

    channel = "voice"

    #: The parts rendered without the event, in :class:`RenderedVoice` order.
    neutral_parts: ClassVar[tuple[str, ...]] = (
        "intro", "pin_prompt", "wrong_pin", "confirm_prompt", "thanks", "machine_message", "goodbye",
        "language", "voice",
    )

    def __init__(self, name: str, language: str, template: jinja2.Template):
        super().__init__(name, language)
        self.template = template

    @classmethod
    def load(cls, envs: Environments, name: str, language: str, event_type: str) -> VoiceTemplate:
        return cls(name, language, envs.text.get_template(name))

    def render(self, event: dict[str, Any], timezone: str) -> RenderedVoice:
        helpers = _speech_helpers(self.language)
        neutral = {"lang": self.language, "tz": timezone, **helpers}
        parts = {part: self._part(part, neutral) for part in self.neutral_parts}
        message = self._part("message", {**self.context(event, timezone), **helpers})
        return RenderedVoice(message=message, event_id=str(event.get("event_id", "")), **parts)

    def _part(self, part: str, context: dict[str, Any]) -> str:
        return _one_line(self.call(self.template, {**context, "part": part}))


def _speech_helpers(language: str) -> dict[str, Callable[..., str]]:
    """The functions voice templates call, bound to ``language``."""
    return {
        "spell": spell,
        "phone": phone,
        "spoken_money": partial(spoken_money, language=language),
        "aloud": partial(aloud, language=language),
    }


def spell(value: str) -> str:
    """Each letter and digit of ``value`` on its own, upper case; punctuation is left out."""
    return " ".join(c.upper() for c in str(value) if c.isalnum())


def phone(value: str) -> str:
    """The digits of a phone number one by one, its groups apart."""
    return ", ".join(" ".join(group) for group in re.findall(r"\d+", str(value)))


_CURRENCY = {
    "en": ("dollars", "dollar", "and", "cents", "cent"),
    "es": ("dólares", "dólar", "con", "centavos", "centavo"),
}


def spoken_money(amount: str | Decimal, currency: str, *, language: str) -> str:
    """An amount in words a voice reads as written: ``250 dollars and 50 cents``.
    A currency other than US dollars keeps its code, spelled."""
    whole, cents = divmod(Decimal(amount).quantize(Decimal("0.01")) * 100, 100)
    whole, cents = int(whole), int(cents)
    if currency != "USD":
        return f"{whole}.{cents:02d} {spell(currency)}" if cents else f"{whole} {spell(currency)}"
    many, one, joiner, many_cents, one_cent = _CURRENCY.get(language, _CURRENCY["en"])
    text = f"{whole} {one if whole == 1 else many}"
    if cents:
        text += f" {joiner} {cents} {one_cent if cents == 1 else many_cents}"
    return text


_URL = re.compile(r"\b(?:https?://|www\.)\S*[^\s.,;:!?)]", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\w-])(?:\+?1[-. ])?\(?\d{3}\)?[-. ]\d{3}[-.]\d{4}(?![\w-])")
_WEBSITE = {"en": "the website", "es": "el sitio web"}

#: Abbreviations at the end of an address part ("3400 Knipp Dr, Jefferson City");
#: "St. Louis" and "Dr. Smith" are followed by a name and are left alone.
_STREET = {
    "Ave": "Avenue", "Blvd": "Boulevard", "Ct": "Court", "Dr": "Drive", "Hwy": "Highway",
    "Ln": "Lane", "Pkwy": "Parkway", "Rd": "Road", "St": "Street",
}
_STREET_END = re.compile(r"(?<=[A-Za-z0-9] )(" + "|".join(_STREET) + r")(\.?)(?=([,;]|\s*$))")

#: Months cut short before a day ("by Feb 3"): written out, as a voice may read "Mar" or "Jun" as words.
_MONTHS = {
    "Jan": "January", "Feb": "February", "Mar": "March", "Apr": "April", "Jun": "June", "Jul": "July",
    "Aug": "August", "Sep": "September", "Sept": "September", "Oct": "October", "Nov": "November",
    "Dec": "December",
}
_MONTH_DAY = re.compile(r"\b(" + "|".join(_MONTHS) + r")\.? (?=\d{1,2}\b)")


def aloud(text: str, *, language: str) -> str:
    """A producer's free text with what a voice would read badly written for the ear."""
    text = _URL.sub(_WEBSITE.get(language, _WEBSITE["en"]), str(text))
    text = _PHONE.sub(lambda m: phone(m.group()), text)
    # The full stop stays when it ends the text, and goes before a comma.
    text = _STREET_END.sub(lambda m: _STREET[m[1]] + (m[2] if not m[3] else ""), text)
    return _MONTH_DAY.sub(lambda m: _MONTHS[m.group(1)] + " ", text)


def _one_line(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())
