"""The strict, frozen base model, the wire types every published model shares,
and error descriptions that never echo input.

The wire types (:data:`Timestamp`, :data:`Day`, :data:`Uuid`, :data:`Amount`,
:data:`SchemaVersion`) check the text a producer sent against the same regular
expression the exported JSON Schema carries as its ``pattern``, so a document
either passes both or fails both. pydantic alone would also take epoch seconds
as a timestamp, a UUID without hyphens and an amount written ``1e3``, none of
which the schema allows.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = ["Strict", "describe_errors", "Timestamp", "Day", "Uuid", "Amount", "SchemaVersion",
           "RFC3339_DATE_TIME", "RFC3339_DATE", "UUID_PATTERN", "AMOUNT_PATTERN", "AMOUNT_MAX"]


class Strict(BaseModel):
    """Base for every published model: strict types, immutable, no unknown fields."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


# ---- the patterns (ECMA-262 and Python alike: only [0-9], never \d, which in
# Python also matches other scripts' digits) ------------------------------------------

_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001-9999
_MONTH_DAY = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
              "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
#: A calendar date that exists (29 February only in leap years).
_DATE = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
_OFFSET = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"

#: RFC 3339 ``date-time``: seconds required, an offset required, at most nanoseconds.
RFC3339_DATE_TIME = f"^{_DATE}[Tt]{_TIME}{_OFFSET}$"
#: RFC 3339 ``full-date``: YYYY-MM-DD.
RFC3339_DATE = f"^{_DATE}$"
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
#: A decimal string, no sign, no exponent, no leading zeros, at most two decimals, at most 12 integer digits.
AMOUNT_PATTERN = "^(?:0|[1-9][0-9]{0,11})(?:\\.[0-9]{1,2})?$"
AMOUNT_MAX = Decimal("999999999999.99")

_NAIVE_DATE_TIME = re.compile(f"{_DATE}[Tt]{_TIME}")


def _gate(pattern: str, instance: type, error: str, message: str, hint=None):
    """A before-validator that lets through a value of ``instance`` (built in
    Python) or a string matching the anchored ``pattern`` (from JSON); pydantic
    then converts it."""
    compiled = re.compile(pattern[1:-1])

    def check(value: Any) -> Any:
        if isinstance(value, instance):
            return value
        if isinstance(value, str) and compiled.fullmatch(value):
            return value
        raise PydanticCustomError(error, (hint(value) if hint else None) or message)

    return check


def _timestamp_hint(value: Any) -> str | None:
    if isinstance(value, str) and _NAIVE_DATE_TIME.fullmatch(value):
        return "Input should have timezone info: end it with Z or an offset such as -06:00"
    return None


#: An instant: RFC 3339 with an offset, e.g. ``2026-11-20T14:05:00-06:00``.
Timestamp = Annotated[
    AwareDatetime,
    Field(strict=False),  # the gate has checked the text; pydantic only converts it
    BeforeValidator(_gate(RFC3339_DATE_TIME, dt.datetime, "rfc3339_date_time",
                          "Input should be an RFC 3339 date-time with an offset, e.g. 2026-11-20T14:05:00-06:00",
                          _timestamp_hint)),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_DATE_TIME,
                    "description": "RFC 3339 date-time with an offset, e.g. 2026-11-20T14:05:00-06:00"}),
]


_DAY_MESSAGE = "Input should be a date in the form YYYY-MM-DD, e.g. 2027-03-15"
_day_text = _gate(RFC3339_DATE, dt.date, "rfc3339_date", _DAY_MESSAGE)


def _day_gate(value: Any) -> Any:
    # A datetime is a date to Python, but not a day on the wire.
    if isinstance(value, dt.datetime):
        raise PydanticCustomError("rfc3339_date", _DAY_MESSAGE)
    return _day_text(value)

#: A calendar day: ``YYYY-MM-DD``.
Day = Annotated[
    dt.date,
    Field(strict=False),
    BeforeValidator(_day_gate),
    WithJsonSchema({"type": "string", "format": "date", "pattern": RFC3339_DATE,
                    "description": "A calendar date, YYYY-MM-DD"}),
]

#: A UUID in its 8-4-4-4-12 hexadecimal form.
Uuid = Annotated[
    uuid.UUID,
    Field(strict=False),
    BeforeValidator(_gate(UUID_PATTERN, uuid.UUID, "uuid_form",
                          "Input should be a UUID in the 8-4-4-4-12 hexadecimal form")),
    WithJsonSchema({"type": "string", "format": "uuid", "pattern": UUID_PATTERN}),
]

#: Money as a decimal string (a JSON number could not carry cents exactly).
Amount = Annotated[
    Decimal,
    Field(strict=False, ge=0, le=AMOUNT_MAX, decimal_places=2),
    BeforeValidator(_gate(AMOUNT_PATTERN, Decimal, "amount_form",
                          "Input should be an amount as a string with at most two decimals, "
                          "from 0 to 999999999999.99, e.g. \"250.00\"")),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN,
                    "description": "An amount as a decimal string: at most two decimals, "
                                   "from 0 to 999999999999.99, e.g. \"250.00\""}),
]


def _schema_version(value: Any) -> int:
    # JSON has one number type: 1 and 1.0 are the same value to a JSON Schema
    # validator, so both are version 1 here too; true is not a number.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != 1:
        raise PydanticCustomError("schema_version", "Input should be 1")
    return 1


SchemaVersion = Annotated[int, BeforeValidator(_schema_version), WithJsonSchema({"type": "integer", "const": 1})]


def describe_errors(exc: ValidationError, limit: int = 5) -> str:
    """One line naming each bad field, e.g. ``payload.facility: Field required``.

    Input values are left out on purpose: they may hold personal data.
    """
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        if not loc and err["type"].startswith("union_tag"):
            loc = str(err.get("ctx", {}).get("discriminator", "")).strip("'")
        loc = loc or "(document)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)
