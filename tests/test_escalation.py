"""Urgent notices followed up until someone acknowledges them, and routine
notices held through quiet hours: the deliver stage's ladders and timers, end
to end. Real broker, the worker (and ``savin web``) as their own processes, the
fake Twilio and the SMTP server; short ladder settings."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from support import event, eventually, phone, registration

from savin.ops.reading import read_topic
from savin.schemas import DeliveryResult, DeliveryStatus
from savin.schemas.escalation import (
    Acknowledgement,
    AckChannel,
    Escalation,
    EscalationState,
    FlagKind,
    RegistrationFlag,
)
from savin.topics import partition_for, producer

pytestmark = pytest.mark.e2e

#: A ladder short enough for a test: first call after 6 s, repeats every 4 s (6 s when
#: answered), no call after 20 s.
SHORT_LADDER = {
    "SAVIN_ESCALATION_FIRST_CALL": "6",
    "SAVIN_ESCALATION_UNANSWERED_EVERY": "4",
    "SAVIN_ESCALATION_ANSWERED_EVERY": "6",
    "SAVIN_ESCALATION_GIVE_UP": "20",
}


async def escalations(stack) -> dict[tuple[str, str], Escalation]:
    """The latest escalation record of each (registration, event)."""
    latest = {}
    async for r in read_topic(stack.bootstrap, stack.topics.escalations):
        e = Escalation.model_validate_json(r.value)
        latest[(e.registration_id, str(e.event_id))] = e
    return latest


async def flags(stack) -> list[RegistrationFlag]:
    return [RegistrationFlag.model_validate_json(r.value)
            async for r in read_topic(stack.bootstrap, stack.topics.registration_flags)]


async def acknowledge(stack, registration_id: str, event_id: str, channel: AckChannel = AckChannel.PORTAL) -> None:
    ack = Acknowledgement(registration_id=registration_id, event_id=uuid.UUID(event_id), channel=channel,
                          at=dt.datetime.now(dt.timezone.utc))
    prod = producer(stack.bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(stack.topics.acknowledgements, ack.model_dump_json().encode(),
                                 key=registration_id.encode(),
                                 partition=partition_for(registration_id.encode(), stack.partitions))
    finally:
        await prod.stop()


def sms_to(stack, number: str) -> list[str]:
    return [m.body for m in stack.twilio.messages if m.to == number]


async def test_a_routine_notice_in_quiet_hours_waits_for_their_end_while_an_urgent_one_goes_at_once(stack):
    now = dt.datetime.now(dt.timezone.utc)
    # Quiet hours (in the registration's zone, UTC here) that began a minute ago and end at
    # the next whole minute at least 20 s away.
    end = (now + dt.timedelta(seconds=80)).replace(second=0, microsecond=0)
    start = now - dt.timedelta(minutes=1)
    quiet = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    stack.start_worker()
    number = phone(301)
    await stack.import_registrations([
        registration("R-QUIET", "O-QUIET", sms=number, email="quiet@example.org", timezone="UTC",
                     quiet_hours=quiet),
    ])
    hearing = event("HEARING_SCHEDULED", "O-QUIET")
    escape = event("ESCAPED", "O-QUIET")
    await stack.publish_events([json.dumps(hearing), json.dumps(escape)])

    # The urgent notice goes at once, by text and email.
    await eventually(lambda: len(sms_to(stack, number)) >= 1 and len(stack.smtp.messages) >= 1, 30,
                     "the escape notice")
    assert all("escaped" in body.lower() for body in sms_to(stack, number))

    async def held():
        return [r for r in await stack.results() if r.status is DeliveryStatus.HELD]

    results = await eventually(held, 30, "the hearing notice held")
    assert {r.event_id for r in results} == {uuid.UUID(hearing["event_id"])}
    assert {r.channel.value for r in results} == {"sms", "email"}
    assert all(r.not_before == end for r in results), (results[0].not_before, end)
    assert len(sms_to(stack, number)) == 1 and len(stack.smtp.messages) == 1  # nothing of the hearing yet

    # At the end of quiet hours it goes, by both channels, not before.
    wait = (end - dt.datetime.now(dt.timezone.utc)).total_seconds()
    await eventually(lambda: len(sms_to(stack, number)) == 2 and len(stack.smtp.messages) == 2, wait + 30,
                     "the hearing notice after quiet hours")
    hearing_sms = [m for m in stack.twilio.messages if m.to == number][1]
    assert hearing_sms.at >= end.timestamp(), "sent before quiet hours ended"
    assert "hearing" in hearing_sms.body.lower()


async def test_an_acknowledgement_ends_the_ladder_and_without_one_it_ends_unacknowledged(stack):
    # Email-only registrants: nobody to call, so the ladder waits for an acknowledgement until it ends.
    stack.start_worker(**SHORT_LADDER)
    await stack.import_registrations([
        registration("R-ACK", "O-LADDER", email="ack@example.org"),
        registration("R-SILENT", "O-LADDER", email="silent@example.org"),
    ])
    escape = event("ESCAPED", "O-LADDER")
    await stack.publish_events([json.dumps(escape)])
    eid = escape["event_id"]

    async def both_open():
        found = await escalations(stack)
        return found if {("R-ACK", eid), ("R-SILENT", eid)} <= set(found) else None

    opened = await eventually(both_open, 30, "both ladders open")
    assert opened[("R-ACK", eid)].state is EscalationState.OPEN
    assert len(opened[("R-ACK", eid)].code) == 4

    await acknowledge(stack, "R-ACK", eid)

    async def settled():
        found = await escalations(stack)
        return found if found[("R-SILENT", eid)].state is EscalationState.UNACKNOWLEDGED else None

    found = await eventually(settled, 60, "the silent registrant's ladder to end")
    acked = found[("R-ACK", eid)]
    assert acked.state is EscalationState.ACKNOWLEDGED and acked.acknowledged_by is AckChannel.PORTAL
    assert (found[("R-SILENT", eid)].updated_at - found[("R-SILENT", eid)].started_at).total_seconds() >= 20
    unacknowledged = [f for f in await flags(stack) if f.flag is FlagKind.UNACKNOWLEDGED]
    assert [f.registration_id for f in unacknowledged] == ["R-SILENT"]
