"""A record's payload made fit for an operator to read: personal data out.

A dead letter keeps the bytes savin could not handle, and those bytes may hold
a victim's name, number or address (a registration) or an offender's name (a
custody event). :func:`redact_payload` shows the shape of the record and the
ids that explain the failure, never the personal values: JSON is
pretty-printed with every value under a personal key replaced, and any string
that looks like an email address or a phone number masked wherever it is;
anything else is shown as text with the same masking. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["REDACTED", "redact_payload", "redact_value", "mask_text", "is_personal_key"]

REDACTED = "[redacted]"
EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"

#: Keys whose values are personal whatever they hold.
PERSONAL_KEYS = frozenset({
    "name", "first_name", "last_name", "middle_name", "full_name", "given_name", "family_name", "alias", "aliases",
    "phone", "phone_number", "mobile", "telephone", "sms", "voice", "email", "email_address", "address",
    "street", "city", "postcode", "postal_code", "zip", "zip_code",
    "pin", "password", "secret", "dob", "date_of_birth", "birth_date", "birthdate", "ssn",
    "body", "text", "message", "content", "notes", "note", "comment", "comments", "description",
    "to", "from", "recipient", "sender", "firstname", "lastname", "fullname", "username",
})
#: Words of a key that make it personal (``offender_name``, ``contact_phone``, ``address_sealed``).
_PERSONAL_WORDS = frozenset({"name", "phone", "email", "address", "sealed", "birth", "password", "pin"})

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# E.164 (+ and 8 to 15 digits, spaces or dashes between groups) or a North American
# number (555 123 4567, (555) 123-4567); not a run of digits inside a longer id, a
# uuid or a date (the look-behind refuses a word character, dash or dot before it).
_PHONE = re.compile(
    r"(?<![\w.+-])(?:\+\d(?:[\s-]?\d){7,14}|(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4})(?![\w-])"
)


def is_personal_key(key: str) -> bool:
    k = re.sub(r"([a-z])([A-Z])", r"\1_\2", key.strip()).casefold().replace("-", "_")
    return k in PERSONAL_KEYS or not _PERSONAL_WORDS.isdisjoint(k.split("_"))


def mask_text(text: str) -> str:
    """``text`` with email addresses and phone numbers masked."""
    return _PHONE.sub(PHONE_MASK, _EMAIL.sub(EMAIL_MASK, text))


def redact_value(value: Any) -> Any:
    """A JSON value with personal keys' values replaced and strings masked (None stays None)."""
    if isinstance(value, dict):
        return {k: (REDACTED if v is not None and is_personal_key(str(k)) else redact_value(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def redact_payload(raw: bytes, limit: int = 20_000) -> str:
    """``raw`` (a dead letter's payload) for a person to read, at most ``limit`` characters
    and a note saying how much was left out."""
    text = raw.decode("utf-8", errors="backslashreplace")
    try:
        shown = json.dumps(redact_value(json.loads(text)), indent=2, ensure_ascii=False)
    except ValueError:
        shown = mask_text(text)
    if len(shown) > limit:
        shown = f"{shown[:limit]}\n… [truncated: {limit:,} of {len(shown):,} characters shown]"
    return shown
