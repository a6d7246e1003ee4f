"""Synthetic but realistic load: registrations spread over offenders, and a
mix of custody events of which about one in five concerns a registered offender."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from savin.schemas.events import EVENT_TYPES

__all__ = ["Population", "EVENT_MIX", "event_line", "registration_line"]

#: Relative frequency of each event type in a day of a state's feed.
EVENT_MIX: dict[str, int] = {
    "TRANSFERRED": 22, "RESTITUTION_PAYMENT": 18, "HEARING_SCHEDULED": 9, "RELEASE_SCHEDULED": 8,
    "RELEASED": 8, "HEARING_DECISION": 6, "SUPERVISION_STARTED": 6, "HEARING_RESCHEDULED": 4,
    "SUPERVISION_DISCHARGED": 4, "RESTITUTION_ORDERED": 3, "SUPERVISION_REVOKED": 3, "HEARING_CANCELLED": 2,
    "ABSCONDED": 2, "RECAPTURED": 1, "DECEASED": 1, "ESCAPED": 1, "COMMUTATION": 1, "PARDON": 1,
}
HEARINGS = ("HEARING_SCHEDULED", "HEARING_RESCHEDULED", "HEARING_CANCELLED", "HEARING_DECISION")
BASE_TIME = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-6)))

_PAYLOADS = {
    "RELEASED": {"release_type": "parole", "facility": "Jefferson City Correctional Center"},
    "RELEASE_SCHEDULED": {"projected_release_date": "2027-01-15", "facility": "Algoa Correctional Center"},
    "ESCAPED": {"facility": "Fulton Reception and Diagnostic Center"},
    "RECAPTURED": {"facility": "Fulton Reception and Diagnostic Center"},
    "TRANSFERRED": {"from_facility": "Eastern Reception Center", "to_facility": "Boonville Correctional Center"},
    "DECEASED": {},
    "COMMUTATION": {},
    "PARDON": {},
    "HEARING_SCHEDULED": {"hearing_id": "H-1", "starts_at": "2027-02-10T09:30:00-06:00",
                          "location": "Parole Board, 3400 Knipp Dr, Jefferson City",
                          "how_to_attend": "Call the Office of Victim Services to attend."},
    "HEARING_CANCELLED": {"hearing_id": "H-1", "reason": "Board schedule change"},
    "HEARING_DECISION": {"hearing_id": "H-1", "decision": "denied"},
    "RESTITUTION_ORDERED": {"case_number": "22SL-CR01234", "amount": "2500.00", "currency": "USD",
                            "balance": "2500.00"},
    "RESTITUTION_PAYMENT": {"case_number": "22SL-CR01234", "amount": "125.00", "currency": "USD",
                            "balance": "1875.00"},
}
for _t in ("SUPERVISION_STARTED", "ABSCONDED", "SUPERVISION_REVOKED", "SUPERVISION_DISCHARGED"):
    _PAYLOADS[_t] = {"district_office": "District 7, Kansas City"}
_PAYLOADS["HEARING_RESCHEDULED"] = _PAYLOADS["HEARING_SCHEDULED"]
assert set(_PAYLOADS) >= set(EVENT_MIX) and set(EVENT_MIX) <= set(EVENT_TYPES)


def offender_id(n: int) -> str:
    return f"MO-{n:08d}"


def phone(n: int) -> str:
    return f"+1573{n:07d}"


def event_line(event_type: str, offender: str, n: int, occurred_at: dt.datetime | None = None) -> bytes:
    """One custody event; it occurred ``n`` seconds after :data:`BASE_TIME`, or at ``occurred_at``
    (a fresh event, whose notice's statutory deadline is still ahead and watched)."""
    return json.dumps({
        "event_id": str(uuid.UUID(int=random.getrandbits(128), version=4)),
        "event_type": event_type,
        "offender_id": offender,
        "offender_name": f"Offender {n} Example",
        "occurred_at": (occurred_at or BASE_TIME + dt.timedelta(seconds=n)).isoformat(),
        "source": "bench",
        "schema_version": 1,
        "payload": _PAYLOADS[event_type],
    }).encode()


def registration_line(n: int, offender: str, *, email: bool, hearings_only: bool, language: str) -> bytes:
    contacts = [{"channel": "sms", "address": phone(n), "verified": True}]
    if email:
        contacts.append({"channel": "email", "address": f"victim{n}@example.org", "verified": True})
    reg = {
        "registration_id": f"R-{n:08d}",
        "offender_id": offender,
        "name": f"Victim {n}",
        "contacts": contacts,
        "language": language,
    }
    if hearings_only:
        reg["event_types"] = list(HEARINGS)
    return json.dumps(reg).encode()


@dataclass
class Population:
    """``registrations`` registrations over ``offenders`` registered offenders."""

    registrations: int
    offenders: int
    seed: int = 7
    #: per registered offender: Counter of (wants-all, wants-hearings) contact counts
    _contacts: dict[str, Counter] = field(default_factory=dict, repr=False)

    def registration_lines(self) -> Iterator[bytes]:
        rng = random.Random(self.seed)
        for n in range(self.registrations):
            offender = offender_id(n % self.offenders)
            email = rng.random() < 0.5
            hearings_only = rng.random() < 0.2
            c = self._contacts.setdefault(offender, Counter())
            c["hearings" if hearings_only else "all"] += 2 if email else 1
            yield registration_line(n, offender, email=email, hearings_only=hearings_only,
                                    language="es" if rng.random() < 0.25 else "en")

    def notified_offender(self) -> str:
        """A registered offender with at least one registration that wants every event type."""
        return next(o for o, c in self._contacts.items() if c["all"])

    def events(self, count: int, hit_ratio: float = 0.2, seed: int = 11) -> Iterator[tuple[bytes, int]]:
        """(event line, notices it should produce); call after :meth:`registration_lines`."""
        rng = random.Random(seed)
        random.seed(seed)
        types = list(EVENT_MIX)
        weights = list(EVENT_MIX.values())
        for n in range(count):
            event_type = rng.choices(types, weights)[0]
            if rng.random() < hit_ratio:
                offender = offender_id(rng.randrange(self.offenders))
            else:
                offender = offender_id(self.offenders + rng.randrange(10 * self.offenders + 1))
            c = self._contacts.get(offender)
            notices = 0
            if c:
                notices = c["all"] + (c["hearings"] if event_type in HEARINGS else 0)
            yield event_line(event_type, offender, n), notices
