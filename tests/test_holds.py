"""The hold on mass changes, end to end: Oregon's day replayed (8,000 RELEASED events from one
source within a minute) with a worker process, the fake Twilio and ``savin holds`` as an
operator runs it. Nothing goes out before an operator decides; approval sends every held notice
once, urgent first; rejection sends none and records each held notice as rejected.
"""

from __future__ import annotations

import json

import pytest
from support import event, eventually, phone, registration, savin

from savin.domain.holds import DEFAULT_HOLD_RULES
from savin.ops.reading import read_topic
from savin.schemas import DeliveryStatus
from savin.schemas.safety import HeldNotice, Hold

pytestmark = pytest.mark.e2e

SOURCE = "or-doc-oms"
EVENTS = 8000
OFFENDERS = 1891  # Oregon's false notices covered 1,891 people
REGISTERED = 150  # offenders with a registrant (each with one verified phone)


async def topic_values(stack, topic: str) -> list[bytes]:
    return [r.value async for r in read_topic(stack.bootstrap, topic) if r.value is not None]


async def holds(stack) -> list[Hold]:
    latest = {}
    for v in await topic_values(stack, stack.topics.holds):
        h = Hold.model_validate_json(v)
        latest[h.hold_id] = h
    return list(latest.values())


async def held(stack) -> list[HeldNotice]:
    return [HeldNotice.model_validate_json(v) for v in await topic_values(stack, stack.topics.held_notices)]


async def oregon(stack) -> tuple[Hold, int]:
    """A worker, registrants for some of the offenders, and the burst; returns the hold opened
    and the number of notices it keeps back once the worker has read every event."""
    stack.start_worker(SAVIN_HOLD_RULES=DEFAULT_HOLD_RULES)
    report = await stack.import_registrations(
        [registration(f"R-{i}", f"OFF-{i}", sms=phone(i)) for i in range(REGISTERED)])
    assert report.errors == []
    await stack.wait_caught_up(stack.topics.registrations)
    burst = [json.dumps(event("RELEASED", f"OFF-{n % OFFENDERS}", source=SOURCE)) for n in range(EVENTS)]
    report = await stack.publish_events(burst)
    assert report.errors == [] and report.published == EVENTS
    await stack.wait_caught_up(stack.topics.custody_events, timeout=180)
    # Each registered offender had EVENTS / OFFENDERS events or one more; one notice each.
    expected = sum(1 for n in range(EVENTS) if n % OFFENDERS < REGISTERED)
    await eventually(_count(stack, expected), 60, f"{expected} held notices")
    (hold,) = await holds(stack)
    return hold, expected


def _count(stack, expected: int):
    async def n():
        return len(await held(stack)) >= expected

    return n


async def test_oregon_burst_is_held_until_approved_then_every_notice_goes_out_once(stack):
    hold, expected = await oregon(stack)
    assert (hold.kind.value, hold.state.value, hold.source, hold.event_type) == ("mass", "open", SOURCE, "RELEASED")
    assert "RELEASED from or-doc-oms in 10 minutes (limit 50)" in hold.reason
    await stack.wait_caught_up(stack.topics.notices_urgent)
    assert stack.twilio.messages == [], "no notice may leave before an operator decides"
    assert {h.hold_id for h in await held(stack)} == {hold.hold_id}

    listed = savin(["holds", "list", "--json"], env=stack.env())
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["hold_id"] for line in listed.stdout.splitlines()] == [str(hold.hold_id)]

    # An event arriving while the hold is open joins it.
    late = event("RELEASED", "OFF-0", source=SOURCE)
    await stack.publish_events([json.dumps(late)])
    await eventually(_count(stack, expected + 1), 60, "the late event's notice held")
    assert stack.twilio.messages == []

    done = savin(["holds", "approve", str(hold.hold_id), "--why", "Checked with OMS: the releases are real",
                  "--by", "ops.alice"], env=stack.env())
    assert done.returncode == 0, done.stderr
    assert f"{expected + 1} notices released" in done.stdout

    assert stack.twilio.wait_for(expected + 1, timeout=120)
    await stack.wait_caught_up(stack.topics.notices_urgent)
    sent = stack.twilio.messages
    assert len(sent) == expected + 1 and len({(m.to, m.body) for m in sent}) == expected + 1
    assert {m.to for m in sent} == {phone(i) for i in range(REGISTERED)}

    (decided,) = await holds(stack)
    assert (decided.state.value, decided.decided_by, decided.notices) == ("approved", "ops.alice", expected + 1)
    assert decided.why == "Checked with OMS: the releases are real"
    audit = [json.loads(v) for v in await topic_values(stack, stack.topics.operator_audit)]
    assert [(a["action"], a["ids"]["hold"]) for a in audit] == [("hold.approve", [str(hold.hold_id)])]

    # Approving again sends nothing twice.
    again = savin(["holds", "approve", str(hold.hold_id), "--why", "again"], env=stack.env())
    assert again.returncode == 1 and "already approved by ops.alice" in again.stderr


async def test_a_rejected_hold_sends_nothing_and_records_each_held_notice_as_rejected(stack):
    hold, expected = await oregon(stack)
    done = savin(["holds", "reject", str(hold.hold_id), "--why", "Bulk reload after maintenance",
                  "--by", "ops.bob"], env=stack.env())
    assert done.returncode == 0, done.stderr
    assert f"{expected} notices recorded as rejected" in done.stdout

    results = await stack.results()
    rejected = [r for r in results if r.status is DeliveryStatus.REJECTED]
    assert len(rejected) == expected == len({r.notice_id for r in rejected})
    assert {(r.hold_id, r.decided_by) for r in rejected} == {(hold.hold_id, "ops.bob")}
    assert {r.notice_id for r in rejected} == {h.job.notice_id for h in await held(stack)}
    await stack.wait_caught_up(stack.topics.notices_urgent)
    assert stack.twilio.messages == []
    (decided,) = await holds(stack)
    assert (decided.state.value, decided.decided_by, decided.notices) == ("rejected", "ops.bob", expected)


async def test_an_offenders_block_holds_every_notice_about_them_and_releases_urgent_first(stack):
    stack.start_worker()
    await stack.import_registrations([registration("R-1", "OFF-1", sms=phone(1)),
                                      registration("R-2", "OFF-2", sms=phone(2))])
    await stack.wait_caught_up(stack.topics.registrations)
    blocked = savin(["holds", "block", "OFF-1", "--why", "Record under correction", "--by", "ops.alice"],
                    env=stack.env())
    assert blocked.returncode == 0, blocked.stderr
    (hold,) = await holds(stack)
    assert (hold.kind.value, hold.offender_id, hold.opened_by) == ("offender", "OFF-1", "ops.alice")

    transfer = event("TRANSFERRED", "OFF-1")
    escape = event("ESCAPED", "OFF-1")
    other = event("ESCAPED", "OFF-2")
    await stack.publish_events([json.dumps(transfer), json.dumps(escape), json.dumps(other)])
    assert stack.twilio.wait_for(1, timeout=60)
    await stack.wait_caught_up(stack.topics.custody_events)
    await eventually(_count(stack, 2), 30, "both notices about OFF-1 held")
    assert [m.to for m in stack.twilio.messages] == [phone(2)], "only the unblocked offender's notice went out"

    approved = savin(["holds", "approve", str(hold.hold_id), "--why", "Record fixed"], env=stack.env())
    assert approved.returncode == 0, approved.stderr
    assert stack.twilio.wait_for(3, timeout=60)
    released = [r for r in await stack.results() if str(r.event_id) in (transfer["event_id"], escape["event_id"])
                and r.status is DeliveryStatus.ACCEPTED]
    assert len(released) == 2
    first = min(released, key=lambda r: r.at)
    assert str(first.event_id) == escape["event_id"], "the urgent notice is released first"


def test_hold_commands_name_what_is_wrong(stack):
    env = stack.env()
    bad = savin(["holds", "approve", "not-a-uuid", "--why", "x"], env=env)
    assert bad.returncode == 2 and "HOLD_ID" in bad.stderr and "not a hold id" in bad.stderr
    missing = savin(["holds", "reject", "0b5e1f4a-0000-4000-8000-000000000000", "--why", "x"], env=env)
    assert missing.returncode == 1 and "no hold 0b5e1f4a-0000-4000-8000-000000000000" in missing.stderr
    blank = savin(["holds", "block", "OFF-1", "--why", " "], env=env)
    assert blank.returncode == 2 and "--why" in blank.stderr
    empty = savin(["holds", "list"], env=env)
    assert empty.returncode == 0 and "No holds open." in empty.stdout
