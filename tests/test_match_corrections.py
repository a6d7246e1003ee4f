"""Precise corrections end to end (a worker process, the real broker, the fake Twilio and the SMTP
server): a retraction corrects exactly the registrations and channels its event's notices went to;
a retraction that arrives before its event stops it."""

from __future__ import annotations

import json

import pytest
from support import event, phone, registration

from savin.schemas import DeliveryStatus

pytestmark = pytest.mark.e2e

OFFENDER = "MO-RETRACT-1"


def retraction(of: dict) -> dict:
    return event("EVENT_RETRACTED", of["offender_id"], payload={
        "retracted_event_id": of["event_id"], "retracted_event_type": of["event_type"],
        "retracted_occurred_at": of["occurred_at"], "reason": "Record entered in error by the facility"})


async def test_a_retraction_corrects_exactly_the_notices_that_went_out(stack):
    stack.start_worker()
    regs = [registration(f"R-{i}", OFFENDER, sms=phone(i), email=f"reg{i}@example.org" if i == 0 else None)
            for i in range(3)]
    # Two registrants did not ask to hear of releases.
    regs += [registration(f"R-{i}", OFFENDER, sms=phone(i), event_types=["ESCAPED"]) for i in (3, 4)]
    assert (await stack.import_registrations(regs)).errors == []
    await stack.wait_caught_up(stack.topics.registrations)

    released = event("RELEASED", OFFENDER)
    await stack.publish_events([json.dumps(released)])
    assert stack.twilio.wait_for(3, timeout=60)
    assert sorted(m.to for m in stack.twilio.messages) == [phone(0), phone(1), phone(2)]
    assert stack.smtp.wait_for(1, timeout=60)

    await stack.publish_events([json.dumps(retraction(released))])
    assert stack.twilio.wait_for(6, timeout=60)
    assert stack.smtp.wait_for(2, timeout=60)
    await stack.wait_caught_up(stack.topics.notices_urgent)
    corrections = stack.twilio.messages[3:]
    assert sorted(m.to for m in corrections) == [phone(0), phone(1), phone(2)]
    assert all("sent in error" in m.body for m in corrections)
    assert len(stack.smtp.messages) == 2  # the email correction too, to the one registrant with an email

    results = await stack.results()
    cancelled = [r for r in results if r.status is DeliveryStatus.CANCELLED]
    # Registrations 3 and 4 were never sent the release: they get no correction.
    assert {r.registration_id for r in cancelled} == {"R-3", "R-4"}


async def test_a_retraction_that_arrives_first_stops_its_event(stack):
    stack.start_worker()
    await stack.import_registrations([registration("R-1", OFFENDER, sms=phone(1))])
    await stack.wait_caught_up(stack.topics.registrations)
    released = event("RELEASED", OFFENDER)
    await stack.publish_events([json.dumps(retraction(released))])
    await stack.wait_caught_up(stack.topics.custody_events)
    await stack.publish_events([json.dumps(released)])
    await stack.wait_caught_up(stack.topics.custody_events)
    await stack.wait_caught_up(stack.topics.notices_urgent)
    assert stack.twilio.messages == [], "neither the release nor a correction of it is sent"
    assert "retracted event dropped event=" + released["event_id"] in stack.workers[0].tail(100_000)
