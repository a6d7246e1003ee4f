"""Statutory deadlines: by when a registrant must have been told of an event,
and whether each notice made it.

Why: Missouri law gives victims the right to be told of releases, escapes and
hearings, and asks for a final disposition within five days (RSMo 595.209.1(3)).
"We sent it" is not evidence; "delivered 12 minutes after the escape, within
the hour the policy allows, under this rule from this source" is.

The policy file (``savin/policy/deadlines.toml``, read with tomllib) gives each
event type one rule of two kinds:

* ``after_event``: within ``within`` of the event's ``occurred_at`` (an escape
  within an hour);
* ``before``: at least ``at_least`` before a time in the payload (a hearing
  30 days before its ``starts_at``). A payload date without a time begins at
  midnight in the policy's ``timezone``.

Every rule names its ``source`` and its ``basis``: ``statute`` when the figure
is in the law, ``savin`` when it is savin's default (the file says which).

A notice is judged (:func:`judge`) on the earlier of its delivery and its
acknowledgement (an acknowledgement proves receipt even when no delivery
receipt came): **met** by the deadline, **missed** after it or when the
deadline passed with neither, otherwise **pending**, or **due_soon** when less
than the rule's warning margin remains. A deadline that passed before its event
even occurred is :attr:`Deadline.unmeetable`: still missed, but upstream's
lateness, which the report should show apart from savin's.

Times are timezone-aware datetimes; the only I/O is :func:`load_policy`.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from savin.domain.vocabulary import EVENT_TYPES
from savin.schemas import Channel, DeliveryStatus, payloads

__all__ = ["Kind", "Basis", "Rule", "Policy", "Deadline", "Verdict", "parse_policy", "load_policy",
           "deadline_for", "judge", "parse_duration", "NOT_OWED", "reached"]

#: A notice in one of these is no longer owed to its registrant (suppressed, cancelled by a
#: correction, rejected with a hold): its deadline can be neither met nor missed.
NOT_OWED = frozenset({DeliveryStatus.SUPPRESSED, DeliveryStatus.CANCELLED, DeliveryStatus.REJECTED})


def reached(status: DeliveryStatus, channel: str) -> bool:
    """Whether a send in this status reached its registrant, for the deadline: a delivery
    receipt, or for an email the mail server taking it (no later receipt comes for email).
    The deliver stage's deadline watch and ``savin deadlines report`` both judge by this."""
    return status is DeliveryStatus.DELIVERED or (
        channel == Channel.EMAIL.value and status in (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT))


class Kind(str, enum.Enum):
    AFTER_EVENT = "after_event"
    BEFORE = "before"


class Basis(str, enum.Enum):
    STATUTE = "statute"  # the figure is in the law cited
    SAVIN = "savin"  # the law gives the right; the figure is savin's default


@dataclass(frozen=True)
class Rule:
    event_type: str
    kind: Kind
    #: ``within`` for after_event, ``at_least`` for before.
    period: dt.timedelta
    basis: Basis
    source: str
    warn: dt.timedelta
    #: The payload's time, for ``before``.
    field: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Policy:
    rules: Mapping[str, Rule]
    timezone: zoneinfo.ZoneInfo
    #: Where it was read from, for messages.
    name: str


@dataclass(frozen=True)
class Deadline:
    event_type: str
    occurred_at: dt.datetime
    due: dt.datetime
    rule: Rule

    @property
    def warn_from(self) -> dt.datetime:
        return self.due - self.rule.warn

    @property
    def unmeetable(self) -> bool:
        """The deadline had passed when the event occurred (a hearing scheduled too close)."""
        return self.occurred_at >= self.due


class Verdict(str, enum.Enum):
    MET = "met"
    MISSED = "missed"
    PENDING = "pending"
    DUE_SOON = "due_soon"


_DURATION = re.compile(r"^\s*([0-9]+)\s*(minute|hour|day)s?\s*$")
_UNITS = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}


def parse_duration(text: str) -> dt.timedelta:
    """``"1 hour"``, ``"30 minutes"``, ``"5 days"``: a whole number of minutes, hours or days."""
    m = _DURATION.match(text) if isinstance(text, str) else None
    if not m or int(m[1]) == 0:
        raise ValueError(f"{text!r} is not a duration such as '1 hour' or '5 days'")
    return int(m[1]) * _UNITS[m[2]]


_KEYS = {Kind.AFTER_EVENT: {"kind", "within", "basis", "source", "warn", "note"},
         Kind.BEFORE: {"kind", "field", "at_least", "basis", "source", "warn", "note"}}


def _rule(event_type: str, spec: Any) -> Rule:
    """One rule; a ValueError names the field."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"not an event type (one of {', '.join(EVENT_TYPES)})")
    if not isinstance(spec, dict):
        raise ValueError("must be a table of kind, basis, source and its period")

    def text(key: str, required: bool = True) -> str:
        value = spec.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key}: {'missing' if value is None else 'must be text'}")
        return value.strip()

    def choice(key: str, enum_: type[enum.Enum]) -> Any:
        value = text(key)
        try:
            return enum_(value)
        except ValueError:
            raise ValueError(f"{key}: {value!r} is not one of {', '.join(e.value for e in enum_)}") from None

    def duration(key: str) -> dt.timedelta:
        try:
            return parse_duration(text(key))
        except ValueError as e:
            raise ValueError(str(e) if str(e).startswith(key) else f"{key}: {e}") from None

    kind = choice("kind", Kind)
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise ValueError(f"{unknown[0]}: not a field of a {kind.value} rule (fields: {', '.join(sorted(_KEYS[kind]))})")
    field = None
    if kind is Kind.BEFORE:
        field = text("field")
        model = getattr(payloads, EVENT_TYPES[event_type].payload)
        if field not in model.model_fields:
            raise ValueError(f"field: {event_type}'s payload has no {field!r}")
    period = duration("within" if kind is Kind.AFTER_EVENT else "at_least")
    warn = duration("warn") if "warn" in spec else period / 4
    return Rule(event_type, kind, period, choice("basis", Basis), text("source"), warn, field, text("note", False))


def parse_policy(text: str, name: str = "<policy>") -> Policy:
    """A policy from TOML text; a ValueError names ``name``, the event type and the field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{name}: not valid TOML: {e}") from None
    unknown = sorted(set(doc) - {"timezone", "rules"})
    if unknown:
        raise ValueError(f"{name}: {unknown[0]}: not a setting of the policy (timezone, rules)")
    try:
        tz = zoneinfo.ZoneInfo(doc.get("timezone", "UTC"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"{name}: timezone: {doc.get('timezone')!r} is not a time zone such as "
                         "'America/Chicago'") from None
    rules: dict[str, Rule] = {}
    for event_type, spec in doc.get("rules", {}).items():
        try:
            rules[event_type] = _rule(event_type, spec)
        except ValueError as e:
            raise ValueError(f"{name}: {event_type}: {e}") from None
    return Policy(rules, tz, name)


def load_policy(path: str | Path | None = None) -> Policy:
    """Read a policy file; without a path, the one savin ships (``savin/policy/deadlines.toml``)."""
    if path is None:
        source = resources.files("savin").joinpath("policy/deadlines.toml")
        return parse_policy(source.read_text(encoding="utf-8"), "savin/policy/deadlines.toml")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"{path}: cannot be read: {e.strerror}") from None
    return parse_policy(text, str(path))


def _aware(value: dt.datetime, what: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value


def _payload_time(policy: Policy, rule: Rule, payload: Any) -> dt.datetime:
    field = rule.field or ""
    value = payload.get(field) if isinstance(payload, Mapping) else getattr(payload, field, None)
    if isinstance(value, str):
        value = dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return _aware(value, f"{rule.event_type} payload {field}")
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), policy.timezone)
    raise ValueError(f"{rule.event_type}: the payload has no time {field!r} for its deadline")


def deadline_for(policy: Policy, event_type: str, occurred_at: dt.datetime, payload: Any = None) -> Deadline | None:
    """The deadline of a notice of this event, or None when the policy sets none. ``payload``:
    the event's payload, as a model or as a mapping of its JSON."""
    rule = policy.rules.get(event_type)
    if rule is None:
        return None
    occurred_at = _aware(occurred_at, "occurred_at")
    if rule.kind is Kind.AFTER_EVENT:
        due = occurred_at + rule.period
    else:
        due = _payload_time(policy, rule, payload) - rule.period
    return Deadline(event_type, occurred_at, due.astimezone(dt.timezone.utc), rule)


def judge(deadline: Deadline, delivered_at: dt.datetime | None, acknowledged_at: dt.datetime | None,
          now: dt.datetime) -> Verdict:
    """Met or missed once delivered or acknowledged (the earlier counts), or once the deadline
    passed without either; until then pending, or due_soon within the warning margin."""
    reached = min((t for t in (delivered_at, acknowledged_at) if t is not None), default=None)
    if reached is not None:
        return Verdict.MET if reached <= deadline.due else Verdict.MISSED
    if now > deadline.due:
        return Verdict.MISSED
    return Verdict.DUE_SOON if now >= deadline.warn_from else Verdict.PENDING
