"""Turn a validated event into the SMS or email a registrant receives.

Templates live in ``savin/templates/{language}/``: ``{EVENT_TYPE}.sms.j2`` and
``{EVENT_TYPE}.email.j2`` for each event type. SMS templates extend
``base.sms.j2`` (sender tag, opt-out line) and fill a ``body`` block. Email
templates extend ``base.email.j2`` and fill ``subject`` and ``body``; the base
lays out three parts, and the renderer asks for one at a time through the
``part`` variable: ``subject`` and ``text`` come from an environment without
autoescaping, ``html`` from one with autoescaping, so a name such as
``<script>`` is escaped in the HTML part and left as written in the others.
A template name without a folder (``"base.email.j2"``) resolves next to the
template that names it.

Templates see ``event`` (the JSON-mode event), ``p`` (its payload),
``offender`` (the offender's name), ``office_phone`` (the Office of Victim
Services line), ``compact`` (SMS only: true once the full wording has proved
too long) and these filters:

``datetime`` / ``date``
    An ISO datetime shown in the registrant's timezone, or an ISO date, in the
    language's style; ``"long"`` adds the weekday and full month name.
``money(currency)``
    An amount such as ``"1250.00"`` as ``$1,250.00``.
``label(kind)``
    A human label for an enum value: ``release_type`` or ``decision``.
``sentence``
    A phrase ending in punctuation, adding a full stop when it has none.
``paragraphs``
    Text whose paragraphs are separated by blank lines, as HTML ``<p>`` elements.

An SMS is put on one line and, when that makes all of it GSM-7, passed
through :func:`savin.rendering.gsm.downgrade`; a text that is UCS-2 anyway (say, for a
name spelled with ``Ł``) keeps its accents. Every SMS fits a segment budget:
2 for urgent events, 4 for hearings (whose ``how_to_attend`` may be long),
3 otherwise. When the rendered text is longer, the offender's name and the
free-text payload fields are cut short with ``...`` and the template
re-rendered, first in full wording and then in ``compact`` wording; if
nothing fits, the text itself is cut, keeping the opt-out line.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from savin.domain.vocabulary import kind_of
from savin.rendering import gsm
from savin.rendering.gsm import Segments

__all__ = [
    "RenderedSMS", "RenderedEmail", "TemplateError", "Renderer", "TEMPLATE_DIR",
    "format_datetime", "format_date", "format_money", "label",
]

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

#: A placeholder line for the Office of Victim Services; set the real one per deployment.
OFFICE_PHONE = "1-800-555-0199"

CHANNELS: tuple[str, ...] = ("sms", "email")


@dataclass(frozen=True)
class RenderedSMS:
    text: str
    segments: Segments


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class TemplateError(Exception):
    """No template for an event, or a template failed; the message names which."""


# ---- the renderer ---------------------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    """The templates for one (event type, channel, requested language)."""

    name: str
    language: str
    text: jinja2.Template
    html: jinja2.Template | None
    max_segments: int


class _Environment(jinja2.Environment):
    """Resolves a bare template name next to the template that names it."""

    def join_path(self, template: str, parent: str) -> str:
        if "/" in template or "/" not in parent:
            return template
        return parent.rsplit("/", 1)[0] + "/" + template


_LANGUAGE = re.compile(r"^[a-z]{2,3}$")

#: Payload fields that may be cut short to fit an SMS, and how much room each
#: gets relative to the others.
_SHORTENABLE: dict[str, int] = {
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

#: (compact wording, longest field) tried in turn until an SMS fits.
_SHORTENING_STEPS: tuple[tuple[bool, int], ...] = (
    (False, 100), (False, 70), (False, 50), (False, 35), (False, 25),
    (True, 50), (True, 35), (True, 25), (True, 18), (True, 12), (True, 8),
)


class Renderer:
    """Renders events into :class:`RenderedSMS` and :class:`RenderedEmail`.

    Compiled templates are kept per (event type, channel, language), so a
    render is a dictionary lookup and a template call.
    """

    def __init__(
        self,
        default_language: str = "en",
        template_dir: Path | None = None,
        *,
        office_phone: str = OFFICE_PHONE,
    ):
        self.default_language = default_language
        loader = jinja2.FileSystemLoader(Path(template_dir) if template_dir is not None else TEMPLATE_DIR)
        self._text_env = _environment(loader, autoescape=False, office_phone=office_phone)
        self._html_env = _environment(loader, autoescape=True, office_phone=office_phone)
        self._resolved: dict[tuple[str, str, str], _Resolved] = {}
        self._stop_lines: dict[str, str] = {}

    def render(self, event: dict[str, Any], channel: str, language: str, timezone: str) -> RenderedSMS | RenderedEmail:
        """Render ``event`` (a JSON-mode event dict) for ``channel`` ("sms" or
        "email"), a language (the default language when it has no template)
        and an IANA timezone.

        Raises :class:`TemplateError` when there is no template or a template fails.
        """
        key = (str(event.get("event_type")), channel, language)
        resolved = self._resolved.get(key)
        if resolved is None:
            resolved = self._resolved[key] = self._resolve(*key)
        if resolved.html is None:
            return self._render_sms(resolved, event, timezone)
        return self._render_email(resolved, event, timezone)

    # -- lookup --

    def _resolve(self, event_type: str, channel: str, language: str) -> _Resolved:
        if channel not in CHANNELS:
            raise TemplateError(f"no templates for channel {channel!r} (event_type={event_type}, language={language})")
        candidates = [language] if _LANGUAGE.match(language) else []
        if self.default_language not in candidates:
            candidates.append(self.default_language)
        for lang in candidates:
            name = f"{lang}/{event_type}.{channel}.j2"
            try:
                text = self._text_env.get_template(name)
                html = self._html_env.get_template(name) if channel == "email" else None
            except jinja2.TemplateNotFound:
                continue
            except jinja2.TemplateError as e:
                raise TemplateError(f"template {name} is broken: {e}") from e
            return _Resolved(name, lang, text, html, _max_segments(event_type))
        raise TemplateError(
            f"no template for event_type={event_type} channel={channel} language={language}"
            f" (default language {self.default_language})"
        )

    # -- SMS --

    def _render_sms(self, r: _Resolved, event: dict[str, Any], timezone: str) -> RenderedSMS:
        text = self._sms_text(r, event, timezone, compact=False)
        segments = gsm.count(text)
        if segments.segments <= r.max_segments:
            return RenderedSMS(text, segments)
        for compact, longest in _SHORTENING_STEPS:
            text = self._sms_text(r, _shorten(event, longest), timezone, compact=compact)
            segments = gsm.count(text)
            if segments.segments <= r.max_segments:
                return RenderedSMS(text, segments)
        stop = self._stop_line(r.language)
        endings = (" " + _sms_form(stop), " " + " ".join(stop.split())) if stop else ()
        keep_end = next((e for e in endings if text.endswith(e)), "")
        text = gsm.fit(text, r.max_segments, keep_end=keep_end)
        return RenderedSMS(text, gsm.count(text))

    def _sms_text(self, r: _Resolved, event: dict[str, Any], timezone: str, *, compact: bool) -> str:
        context = _context(event, r.language, timezone)
        context["compact"] = compact
        return _sms_form(_call(r, r.text, context))

    def _stop_line(self, language: str) -> str:
        """The opt-out line ``base.sms.j2`` exports as ``stop`` ("" if there is none)."""
        line = self._stop_lines.get(language)
        if line is None:
            try:
                line = str(self._text_env.get_template(f"{language}/base.sms.j2").module.stop)  # type: ignore[attr-defined]
            except (jinja2.TemplateError, AttributeError):
                line = ""
            self._stop_lines[language] = line
        return line

    # -- email --

    def _render_email(self, r: _Resolved, event: dict[str, Any], timezone: str) -> RenderedEmail:
        context = _context(event, r.language, timezone)
        subject = _call(r, r.text, {**context, "part": "subject"})
        text = _call(r, r.text, {**context, "part": "text"})
        html = _call(r, r.html, {**context, "part": "html"})  # type: ignore[arg-type]
        return RenderedEmail(" ".join(subject.split()), _tidy_paragraphs(text), html.strip() + "\n")


def _environment(loader: jinja2.BaseLoader, *, autoescape: bool, office_phone: str) -> jinja2.Environment:
    env = _Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        datetime=_datetime_filter,
        date=_date_filter,
        money=_money_filter,
        label=_label_filter,
        sentence=_sentence,
        paragraphs=_paragraphs_html,
    )
    env.globals["office_phone"] = office_phone
    return env


def _context(event: dict[str, Any], language: str, timezone: str) -> dict[str, Any]:
    try:
        payload, offender = event["payload"], event["offender_name"]
    except KeyError as e:
        raise TemplateError(f"event has no {e.args[0]!r}") from None
    return {"event": event, "p": payload, "offender": offender, "lang": language, "tz": timezone}


def _call(r: _Resolved, template: jinja2.Template, context: dict[str, Any]) -> str:
    try:
        return template.render(context)
    except jinja2.TemplateError as e:
        raise TemplateError(f"template {r.name} failed: {type(e).__name__}: {e}") from e
    except (ValueError, TypeError, LookupError, ArithmeticError) as e:
        raise TemplateError(f"template {r.name} failed on a value: {type(e).__name__}: {e}") from e


def _sms_form(text: str) -> str:
    """``text`` on one line, downgraded to GSM-7 when that makes all of it GSM-7.

    A text that stays UCS-2 anyway keeps its accents and typography.
    """
    text = " ".join(text.split())
    downgraded = gsm.downgrade(text)
    return downgraded if gsm.is_gsm(downgraded) else text


def _max_segments(event_type: str) -> int:
    kind = kind_of(event_type)
    return kind.sms_segments if kind is not None else 3


def _cut(value: str, longest: int) -> str:
    if len(value) <= longest:
        return value
    return value[: max(longest - 3, 1)].rstrip() + "..."


def _shorten(event: dict[str, Any], longest: int) -> dict[str, Any]:
    """``event`` with its offender name and descriptive payload fields cut to ``longest``."""
    payload = {
        k: _cut(v, longest * _SHORTENABLE[k]) if k in _SHORTENABLE and isinstance(v, str) else v
        for k, v in event["payload"].items()
    }
    return {**event, "offender_name": _cut(event["offender_name"], longest), "payload": payload}


_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def _tidy_paragraphs(text: str) -> str:
    """Paragraphs separated by one blank line, each on one line."""
    paragraphs = (" ".join(p.split()) for p in _BLANK_LINES.split(text))
    return "\n\n".join(p for p in paragraphs if p) + "\n"


# ---- filters --------------------------------------------------------------


@jinja2.pass_context
def _datetime_filter(context: jinja2.runtime.Context, value: str | dt.datetime, style: str = "short") -> str:
    return format_datetime(value, context["tz"], context["lang"], style)


@jinja2.pass_context
def _date_filter(context: jinja2.runtime.Context, value: str | dt.date, style: str = "short") -> str:
    return format_date(value, context["lang"], style)


@jinja2.pass_context
def _money_filter(context: jinja2.runtime.Context, value: str | Decimal, currency: str) -> str:
    return format_money(value, currency, context["lang"])


@jinja2.pass_context
def _label_filter(context: jinja2.runtime.Context, value: str, kind: str) -> str:
    return label(kind, value, context["lang"])


def _sentence(value: str) -> str:
    value = value.strip()
    return value if value.endswith((".", "!", "?", "…")) else value + "."


def _paragraphs_html(value: str) -> Markup:
    if not isinstance(value, Markup):
        value = escape(value)
    paragraphs = (" ".join(p.split()) for p in _BLANK_LINES.split(str(value)))
    return Markup("\n".join(f"<p>{p}</p>" for p in paragraphs if p))


# ---- language styles ------------------------------------------------------

_MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"),
}
_MONTHS_SHORT = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"),
}
_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}

_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "release_type": {
            "parole": "parole",
            "conditional_release": "conditional release",
            "sentence_completed": "sentence completed",
            "court_order": "court order",
            "other": "other",
        },
        "decision": {
            "granted": "parole granted",
            "denied": "parole denied",
            "continued": "hearing continued to a later date",
            "deferred": "decision deferred",
        },
    },
    "es": {
        "release_type": {
            "parole": "libertad condicional",
            "conditional_release": "liberación condicional obligatoria",
            "sentence_completed": "cumplimiento de la condena",
            "court_order": "orden judicial",
            "other": "otro motivo",
        },
        "decision": {
            "granted": "libertad condicional concedida",
            "denied": "libertad condicional denegada",
            "continued": "audiencia aplazada a una fecha posterior",
            "deferred": "decisión pospuesta",
        },
    },
}


def _style(language: str) -> str:
    return language if language in _MONTHS else "en"


@lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=4096)
def format_datetime(value: str | dt.datetime, timezone: str, language: str, style: str = "short") -> str:
    """An ISO datetime in ``timezone``, e.g. ``Feb 10, 2027 9:30 AM CST`` or
    ``10 feb 2027, 9:30 CST``. An unknown timezone keeps the value's own offset."""
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    zone = _zone(timezone)
    if zone is not None:
        when = when.astimezone(zone)
    lang = _style(language)
    zone_name = when.strftime("%Z")
    if lang == "es":
        clock = f"{when.hour}:{when.minute:02d} {zone_name}"
        if style == "long":
            return f"{_WEEKDAYS[lang][when.weekday()]} {when.day} de {_MONTHS[lang][when.month - 1]} de {when.year}, {clock}"
        return f"{when.day} {_MONTHS_SHORT[lang][when.month - 1]} {when.year}, {clock}"
    clock = f"{(when.hour - 1) % 12 + 1}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'} {zone_name}"
    if style == "long":
        return f"{_WEEKDAYS[lang][when.weekday()]}, {_MONTHS[lang][when.month - 1]} {when.day}, {when.year}, at {clock}"
    return f"{_MONTHS_SHORT[lang][when.month - 1]} {when.day}, {when.year} {clock}"


@lru_cache(maxsize=1024)
def format_date(value: str | dt.date, language: str, style: str = "short") -> str:
    """An ISO date, e.g. ``Mar 15, 2027`` or ``15 mar 2027``."""
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    lang = _style(language)
    if lang == "es":
        if style == "long":
            return f"{_WEEKDAYS[lang][day.weekday()]} {day.day} de {_MONTHS[lang][day.month - 1]} de {day.year}"
        return f"{day.day} {_MONTHS_SHORT[lang][day.month - 1]} {day.year}"
    if style == "long":
        return f"{_WEEKDAYS[lang][day.weekday()]}, {_MONTHS[lang][day.month - 1]} {day.day}, {day.year}"
    return f"{_MONTHS_SHORT[lang][day.month - 1]} {day.day}, {day.year}"


def format_money(value: str | Decimal, currency: str, language: str) -> str:
    """``$1,250.00`` in English; ``$1,250.00 USD`` in Spanish, the style of US
    and Mexican Spanish; other currencies as ``1,250.00 EUR``."""
    amount = f"{Decimal(value):,.2f}"
    if currency != "USD":
        return f"{amount} {currency}"
    return f"${amount}" if _style(language) == "en" else f"${amount} USD"


def label(kind: str, value: str, language: str) -> str:
    """The human label of an enum value, e.g. ``conditional_release``."""
    for lang in (language, "en"):
        found = _LABELS.get(lang, {}).get(kind, {}).get(value)
        if found is not None:
            return found
    return value.replace("_", " ")
