"""What templates can call: dates, times, money and labels in each language's
style, and the phrase tables behind ``label``.

``datetime`` / ``date``
    An ISO datetime shown in the registrant's timezone, or an ISO date, in the
    language's style; ``"long"`` adds the weekday and full month name. ``date``
    of a datetime is the day it fell on in the registrant's timezone.
``money(currency)``
    An amount such as ``"1250.00"`` as ``$1,250.00``.
``label(kind)``
    A human phrase for a value: ``release_type``, ``decision`` or
    ``event_kind`` (an event type, as the retraction names the notice it
    withdraws).
``sentence``
    A phrase ending in punctuation, adding a full stop when it has none.
``paragraphs``
    Text whose paragraphs are separated by blank lines, as HTML ``<p>`` elements.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

__all__ = ["FILTERS", "format_datetime", "format_date", "format_money", "label", "BLANK_LINES"]

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

#: Per language, per kind, the phrase for each value. ``event_kind`` is the
#: withdrawn notice as its language's retraction template names it: in
#: English what the offender did ("that John Q. Doe was released"), in
#: Spanish what the notice was about ("sobre la salida en libertad de ...").
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
        "event_kind": {
            "RELEASED": "was released",
            "RELEASE_SCHEDULED": "was scheduled for release",
            "ESCAPED": "had escaped",
            "RECAPTURED": "was back in custody",
            "TRANSFERRED": "was moved to another facility",
            "DECEASED": "had died",
            "SUPERVISION_STARTED": "began probation or parole supervision",
            "ABSCONDED": "was missing from supervision",
            "SUPERVISION_REVOKED": "had their probation or parole revoked",
            "SUPERVISION_DISCHARGED": "was discharged from supervision",
            "HEARING_SCHEDULED": "had a parole hearing scheduled",
            "HEARING_RESCHEDULED": "had a parole hearing moved to a new date",
            "HEARING_CANCELLED": "had a parole hearing cancelled",
            "HEARING_DECISION": "had a parole hearing decision",
            "COMMUTATION": "had their sentence commuted",
            "PARDON": "was granted a pardon",
            "RESTITUTION_ORDERED": "was ordered to pay restitution",
            "RESTITUTION_PAYMENT": "made a restitution payment",
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
        "event_kind": {
            "RELEASED": "la salida en libertad",
            "RELEASE_SCHEDULED": "la salida en libertad prevista",
            "ESCAPED": "la fuga",
            "RECAPTURED": "el regreso a la custodia",
            "TRANSFERRED": "el traslado de centro",
            "DECEASED": "el fallecimiento",
            "SUPERVISION_STARTED": "el inicio de la libertad condicional o probatoria",
            "ABSCONDED": "el paradero desconocido",
            "SUPERVISION_REVOKED": "la revocación de la libertad condicional o probatoria",
            "SUPERVISION_DISCHARGED": "el fin de la libertad condicional o probatoria",
            "HEARING_SCHEDULED": "la audiencia de libertad condicional programada",
            "HEARING_RESCHEDULED": "la nueva fecha de la audiencia de libertad condicional",
            "HEARING_CANCELLED": "la cancelación de la audiencia de libertad condicional",
            "HEARING_DECISION": "la decisión de la audiencia de libertad condicional",
            "COMMUTATION": "la conmutación de la condena",
            "PARDON": "el indulto",
            "RESTITUTION_ORDERED": "la orden de pago de restitución",
            "RESTITUTION_PAYMENT": "el pago de restitución",
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


def _local(value: str | dt.datetime, timezone: str | None) -> dt.datetime:
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    zone = _zone(timezone) if timezone else None
    return when.astimezone(zone) if zone is not None else when


@lru_cache(maxsize=4096)
def format_datetime(value: str | dt.datetime, timezone: str, language: str, style: str = "short") -> str:
    """An ISO datetime in ``timezone``, e.g. ``Feb 10, 2027 9:30 AM CST`` or
    ``10 feb 2027, 9:30 CST``. An unknown timezone keeps the value's own offset."""
    when = _local(value, timezone)
    lang = _style(language)
    zone_name = when.strftime("%Z")
    if lang == "es":
        clock = f"{when.hour}:{when.minute:02d} {zone_name}"
        if style == "long":
            day = f"{_WEEKDAYS[lang][when.weekday()]} {when.day} de {_MONTHS[lang][when.month - 1]} de {when.year}"
            return f"{day}, {'a la' if when.hour == 1 else 'a las'} {clock}"
        return f"{when.day} {_MONTHS_SHORT[lang][when.month - 1]} {when.year}, {clock}"
    clock = f"{(when.hour - 1) % 12 + 1}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'} {zone_name}"
    if style == "long":
        return f"{_WEEKDAYS[lang][when.weekday()]}, {_MONTHS[lang][when.month - 1]} {when.day}, {when.year}, at {clock}"
    return f"{_MONTHS_SHORT[lang][when.month - 1]} {when.day}, {when.year} {clock}"


@lru_cache(maxsize=1024)
def format_date(value: str | dt.date, language: str, style: str = "short", *, timezone: str | None = None) -> str:
    """An ISO date, e.g. ``Mar 15, 2027`` or ``15 mar 2027``; an ISO datetime
    gives the day it fell on in ``timezone`` (or at its own offset)."""
    if isinstance(value, dt.datetime) or (isinstance(value, str) and len(value) > 10):
        day = _local(value, timezone).date()
    else:
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
    """The phrase for ``value`` of ``kind`` in ``language`` (English when it has none)."""
    for lang in (language, "en"):
        found = _LABELS.get(lang, {}).get(kind, {}).get(value)
        if found is not None:
            return found
    return value.replace("_", " ").lower()


BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


@jinja2.pass_context
def _datetime_filter(context: jinja2.runtime.Context, value: str | dt.datetime, style: str = "short") -> str:
    return format_datetime(value, context["tz"], context["lang"], style)


@jinja2.pass_context
def _date_filter(context: jinja2.runtime.Context, value: str | dt.date, style: str = "short") -> str:
    return format_date(value, context["lang"], style, timezone=context["tz"])


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
    paragraphs = (" ".join(p.split()) for p in BLANK_LINES.split(str(value)))
    return Markup("\n".join(f"<p>{p}</p>" for p in paragraphs if p))


FILTERS: dict[str, Any] = {
    "datetime": _datetime_filter,
    "date": _date_filter,
    "money": _money_filter,
    "label": _label_filter,
    "sentence": _sentence,
    "paragraphs": _paragraphs_html,
}
