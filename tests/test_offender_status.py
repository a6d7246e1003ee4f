"""Each offender's status as the custody events tell it: the rule as a plain
function, and the status stage keeping it on the offender-status topic (real
broker, the worker as its own process)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from support import EVENTS, event, eventually, records

from savin.domain.status import status_after
from savin.schemas import parse_event
from savin.schemas.status import CustodyStatus as S
from savin.schemas.status import OffenderStatus

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)


def ev(event_type: str, minutes: int = 0, **payload):
    doc = json.loads((EVENTS / f"{event_type}.json").read_text())
    doc["occurred_at"] = (T0 + dt.timedelta(minutes=minutes)).isoformat()
    doc["payload"].update(payload)
    return parse_event(json.dumps(doc))


def run(*events) -> OffenderStatus:
    status = None
    for e in events:
        status = status_after(status, e, NOW)
    return status


@pytest.mark.parametrize("events, status, location", [
    (["RELEASED"], S.RELEASED, None),
    (["ESCAPED"], S.ESCAPED, "Farmington Correctional Center"),
    (["ESCAPED", "RECAPTURED"], S.IN_CUSTODY, "Farmington Correctional Center"),
    (["TRANSFERRED"], S.IN_CUSTODY, "Potosi Correctional Center"),
    (["SUPERVISION_STARTED"], S.ON_SUPERVISION, "Probation and Parole District 8, Springfield"),
    (["SUPERVISION_STARTED", "ABSCONDED"], S.ABSCONDED, None),
    (["SUPERVISION_STARTED", "SUPERVISION_REVOKED"], S.IN_CUSTODY, None),
    (["SUPERVISION_STARTED", "SUPERVISION_DISCHARGED"], S.DISCHARGED, None),
    (["DECEASED"], S.DECEASED, None),
    (["RELEASE_SCHEDULED"], S.IN_CUSTODY, "Jefferson City Correctional Center"),
    (["RELEASED", "PARDON", "RESTITUTION_PAYMENT", "COMMUTATION"], S.RELEASED, None),
    (["COMMUTATION"], S.UNKNOWN, None),
])
def test_each_event_type_moves_the_status(events, status, location):
    result = run(*(ev(t, i) for i, t in enumerate(events)))
    assert (result.status, result.location) == (status, location)
    assert result.last_event_type == events[-1]


def test_a_release_date_is_kept_until_the_release():
    scheduled = run(ev("RELEASE_SCHEDULED", 0))
    assert scheduled.release_date == dt.date(2027, 3, 15)
    assert run(ev("RELEASE_SCHEDULED", 0), ev("RELEASED", 1)).release_date is None


def test_the_next_hearing_is_set_moved_and_cleared_by_its_own_id():
    scheduled = run(ev("HEARING_SCHEDULED", 0))
    assert scheduled.next_hearing.hearing_id == "H-2027-0142"
    other = run(ev("HEARING_SCHEDULED", 0), ev("HEARING_CANCELLED", 1, hearing_id="H-OTHER"))
    assert other.next_hearing is not None, "cancelling another hearing keeps this one"
    assert run(ev("HEARING_SCHEDULED", 0), ev("HEARING_CANCELLED", 1)).next_hearing is None
    assert run(ev("HEARING_SCHEDULED", 0), ev("HEARING_DECISION", 1)).next_hearing is None


def test_an_older_event_never_moves_the_status_back():
    latest = run(ev("ESCAPED", 10), ev("RELEASED", 5))
    assert latest.status is S.ESCAPED and latest.last_event_at == T0 + dt.timedelta(minutes=10)


def test_the_status_holds_only_public_record_facts():
    assert set(OffenderStatus.model_fields) == {
        "offender_id", "offender_name", "status", "location", "release_date", "next_hearing",
        "last_event_type", "last_event_at", "updated_at", "source"}


@pytest.mark.e2e
async def test_the_status_stage_keeps_each_offenders_status_on_its_topic(stack):
    stack.start_worker(SAVIN_STAGES="match,status")
    later = (dt.datetime.now(dt.timezone.utc)).isoformat()
    await stack.publish_events([json.dumps(event("RELEASE_SCHEDULED", "O-1")),
                                json.dumps(event("SUPERVISION_STARTED", "O-2")),
                                json.dumps(event("ESCAPED", "O-1", occurred_at=later))])
    # Without the offender_id key: the match stage forwards it to the offender's partition.
    await stack.publish_raw(json.dumps(event("DECEASED", "O-3")).encode(), key=b"not-the-offender-id")

    def latest():
        found = {}
        for r in records(stack.bootstrap, stack.topics.offender_status):
            found[r.key.decode()] = OffenderStatus.model_validate_json(r.value)
        return found if {"O-1", "O-2", "O-3"} <= set(found) and found["O-1"].status is S.ESCAPED else None

    statuses = await eventually(latest, 60, "both offenders' statuses")
    assert statuses["O-1"].release_date == dt.date(2027, 3, 15)
    assert statuses["O-2"].status is S.ON_SUPERVISION
    assert statuses["O-2"].location == "Probation and Parole District 8, Springfield"
    assert statuses["O-3"].status is S.DECEASED
    keys = [r.key for r in await asyncio.to_thread(records, stack.bootstrap, stack.topics.offender_status)]
    assert keys.count(b"O-3") == 1, "the misrouted event counted once, on its offender's partition"
