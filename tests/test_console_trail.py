"""The console's index of the audit trail on the real broker: a worker runs a
LocalStack and the test writes Twilio's status callbacks as the web's webhook
does; views over its topics with a memory store index what they did. Search by each kind of id, the
timelines of a delivered SMS notice and of a failed one (with the acknowledgement
and the escalation), notices by status, open flags and their clearing, a restart
that resumes without counting twice, and nothing sealed or personal stored."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import uuid
from collections import Counter

import pytest
from support import event, eventually, phone, registration

from savin.ops.audit import notice_histories
from savin.ops.reading import read_topic
from savin.schemas import DeliveryResult, DeliveryStatus, NoticeJob
from savin.schemas.escalation import AckChannel, Acknowledgement, EscalationState, FlagKind
from savin.streams.store import open_store
from savin.topics import partition_for, producer
from savin.web.console.trail import Trail
from savin.web.portal.views import Views

pytestmark = pytest.mark.e2e

OFFENDER = "MO-TRAIL-1"
INVALID = "+15005550001"  # the fake Twilio refuses it for good (21211)


def views_of(stack, store) -> tuple[Views, Trail]:
    topics = stack.topics
    views = Views(stack.bootstrap, topics.offender_status, topics.registrations, store,
                  escalations_topic=topics.escalations)
    return views, Trail(views, topics)


@contextlib.asynccontextmanager
async def running(views: Views):
    task = asyncio.create_task(views.run())
    try:
        await asyncio.wait_for(views.ready.wait(), 60)
        yield views
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish(stack, topic: str, key: bytes, value: bytes | None) -> None:
    prod = producer(stack.bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(topic, value, key=key, partition=partition_for(key, stack.partitions))
    finally:
        await prod.stop()


async def callback(stack, accepted: DeliveryResult, status: DeliveryStatus) -> None:
    """A status callback as the web's Twilio webhook writes it (TwilioSMS.result)."""
    result = DeliveryResult(notice_id=accepted.notice_id, registration_id=accepted.registration_id, status=status,
                            source="callback", provider="twilio", provider_ref=accepted.provider_ref,
                            at=dt.datetime.now(dt.UTC))
    key = accepted.registration_id.encode()
    await publish(stack, stack.topics.delivery_results, key, result.model_dump_json().encode())


async def jobs(stack) -> list[NoticeJob]:
    return [NoticeJob.model_validate_json(r.value) for topic in (stack.topics.notices_urgent, stack.topics.notices_routine)
            async for r in read_topic(stack.bootstrap, topic)]


async def test_the_trail_finds_every_notice_and_tells_its_story(stack):
    good, bad = phone(700), INVALID
    email = f"trail.{uuid.uuid4().hex[:6]}@example.org"
    stack.start_worker()
    await stack.import_registrations([registration("R-OK", OFFENDER, sms=good, email=email),
                                      registration("R-BAD", OFFENDER, sms=bad)])
    await stack.wait_caught_up(stack.topics.registrations)
    escape = event("ESCAPED", OFFENDER)
    event_id = escape["event_id"]
    await stack.publish_events([json.dumps(escape)])

    views, trail = views_of(stack, open_store(None, 8, 4))
    async with running(views):
        async def accepted_sms():
            found = [n for n in trail.search("R-OK") if n.channel == "sms"]
            return found[0] if found and found[0].status == "accepted" else None

        sms = await eventually(accepted_sms, 60, "the SMS notice accepted")
        (accepted,) = trail.results(sms.notice_id)
        for status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.SENT):  # a late "sent" too
            await callback(stack, accepted, status)

        async def delivered():
            n = trail.notice(sms.notice_id)
            return n if n.status == "delivered" and len(trail.results(n.notice_id)) == 4 else None

        sms = await eventually(delivered, 30, "the SMS notice delivered")

        async def failed_sms():
            found = [n for n in trail.search("R-BAD") if n.channel == "sms"]
            return found[0] if found and found[0].status == "failed" else None

        failed = await eventually(failed_sms, 60, "the invalid number's notice failed")

        # Search: by each kind of id, exactly.
        assert sms.event_id == event_id and sms.offender_id == OFFENDER and sms.event_type == "ESCAPED"
        assert sms.urgency == "urgent" and sms.contact_index == 0 and sms.attempts == 1
        assert sms.created_at is not None and sms.last_at >= sms.created_at
        assert {n.channel for n in trail.search("R-OK")} == {"sms", "email"}
        by_event = {n.notice_id for n in trail.search(event_id)}
        assert by_event == {n.notice_id for n in trail.search(OFFENDER)}
        assert {n.notice_id for n in trail.search("R-OK")} | {failed.notice_id} <= by_event
        assert [n.notice_id for n in trail.search(sms.notice_id)] == [sms.notice_id]
        assert [n.notice_id for n in trail.search(f"  {sms.notice_id.upper()} ")] == [sms.notice_id]
        assert trail.notice(sms.notice_id) == sms
        assert trail.search("R-O") == [] and trail.search("") == [] and trail.search("MO-TRAIL") == []
        assert trail.notice(str(uuid.uuid4())) is None and trail.timeline(str(uuid.uuid4())) is None
        assert len(trail.search(OFFENDER, limit=1)) == 1

        # The delivered SMS: the event, the match, the try, the callbacks.
        timeline = trail.timeline(sms.notice_id)
        kinds = [e.kind for e in timeline.entries if e.kind != "escalation"]
        assert kinds[:3] == ["event", "matched", "attempt"], kinds
        assert [(e.title, e.status) for e in timeline.entries if e.kind == "escalation"] == [
            ("Escalation open: waiting for an acknowledgement", "open")]
        assert [(e.kind, e.status) for e in timeline.entries if e.kind in ("attempt", "callback")] == [
            ("attempt", "accepted"), ("callback", "sent"), ("callback", "delivered"), ("callback", "sent")]
        event_entry, matched, attempt = [e for e in timeline.entries if e.kind != "escalation"][:3]
        assert event_entry.at == dt.datetime.fromisoformat(escape["occurred_at"])
        assert matched.title == "Matched to registration R-OK" and matched.at == sms.created_at
        assert attempt.title == "Try 1: accepted by twilio" and attempt.detail.startswith("ref SM")
        assert [e.at for e in timeline.entries] == sorted(e.at for e in timeline.entries)
        assert [e.title for e in timeline.entries if e.kind == "callback"][1] == "Callback from twilio: delivered"

        # The failed one: a try refused for good, with the provider's code, and a flag.
        timeline = trail.timeline(failed.notice_id)
        (attempt,) = [e for e in timeline.entries if e.kind == "attempt"]
        assert attempt.status == "failed" and attempt.title == "Try 1: failed at twilio"
        assert "21211" in attempt.detail and INVALID not in attempt.detail
        assert not [e for e in timeline.entries if e.kind == "callback"]

        async def flagged():
            return [f for f in trail.flags("R-BAD") if f.flag is FlagKind.CHANNEL_FAILED and f.channel.value == "sms"]

        (flag,) = await eventually(flagged, 30, "the lost contact's flag")
        assert flag.notice_id == uuid.UUID(failed.notice_id) and flag.reason == "21211"
        assert trail.flags("R-OK") == [] and flag in trail.open_flags()

        # The acknowledgement and the ladder's end, on every notice of that event.
        ack = Acknowledgement(registration_id="R-OK", event_id=uuid.UUID(event_id), channel=AckChannel.SMS,
                              notice_id=uuid.UUID(sms.notice_id), at=dt.datetime.now(dt.UTC))
        await publish(stack, stack.topics.acknowledgements, b"R-OK", ack.model_dump_json().encode())

        async def acknowledged():
            t = trail.timeline(sms.notice_id)
            esc = [e for e in t.entries if e.kind == "escalation"]
            return t if esc and esc[-1].status == EscalationState.ACKNOWLEDGED.value else None

        timeline = await eventually(acknowledged, 30, "the acknowledgement and the ladder's end in the timeline")
        (entry,) = [e for e in timeline.entries if e.kind == "acknowledgement"]
        assert entry.title == "Acknowledged by sms" and "through this notice" in entry.detail
        assert entry.at == ack.at
        opened, ended = [e for e in timeline.entries if e.kind == "escalation"]
        assert opened.title == "Escalation opened" and opened.at <= ended.at
        assert ended.title == "Escalation ended: acknowledged by sms" and ended.detail == "0 calls placed"
        email_notice = next(n for n in trail.search("R-OK") if n.channel == "email")
        email_acks = [e for e in trail.timeline(email_notice.notice_id).entries if e.kind == "acknowledgement"]
        assert len(email_acks) == 1 and "through this notice" not in email_acks[0].detail

        # Notices by status, as the audit of the whole topic counts them.
        now = dt.datetime.now(dt.UTC)

        async def counted():
            histories = notice_histories(await stack.results())
            truth = dict(Counter(h.status.value for h in histories.values()))
            return truth if trail.status_counts(now - dt.timedelta(hours=1)) == truth else None

        truth = await eventually(counted, 30, "the status counts to match the audit")
        assert truth["delivered"] >= 1 and truth["failed"] >= 1
        assert trail.status_counts(now - dt.timedelta(days=1)) == truth
        assert trail.status_counts(now + dt.timedelta(hours=2)) == {}
        assert trail.status_counts(sms.last_at).get("delivered", 0) >= 1

        # A flag cleared (a tombstone) is no longer open.
        await publish(stack, stack.topics.registration_flags, flag.key.encode(), None)
        await eventually(lambda: flag not in trail.flags("R-BAD"), 30,
                         "the flag cleared")
        assert flag not in trail.open_flags()

        # Nothing sealed, no code, no address and no event text in what the trail stored.
        secrets = [good, bad, email, "Jonah", "Farmington", "Test Registrant"]
        for job in await jobs(stack):
            secrets += [job.address_sealed] + ([job.ack_code] if job.ack_code else [])
        stored = [(k, v) for k, v in views.store.scan(b"t")]
        assert stored and len(secrets) > 6
        leaks = [(k, s) for k, v in stored for s in secrets if s.encode() in k + v]
        assert leaks == []
        before = {k: v for k, v in stored}
        counts = trail.status_counts(now - dt.timedelta(hours=1))

    # A restart over the same store reads only what it missed: nothing counted twice.
    again, trail2 = views_of(stack, views.store)
    async with running(again):
        assert trail2.status_counts(now - dt.timedelta(hours=1)) == counts
        assert {k: v for k, v in views.store.scan(b"t")} == before
        assert trail2.timeline(sms.notice_id) == trail.timeline(sms.notice_id)


def test_a_result_read_before_any_job_of_its_event_is_found_by_offender_once_a_job_comes():
    """A ladder's call (no job of its own) or a result read before its job: indexed by offender later."""
    from savin.domain.clock import utcnow

    class Store:  # the views' part the trail uses: its store, and follow()
        store = open_store(None, 8, 4)

        def follow(self, topic, apply):
            pass

    class Topics:
        notices_urgent = notices_routine = delivery_results = acknowledgements = registration_flags = "t"

    trail = Trail(Store(), Topics())
    event_id, now = uuid.uuid4(), utcnow()
    call = DeliveryResult(notice_id=uuid.uuid4(), registration_id="R-9", event_id=event_id, event_type="ESCAPED",
                          status=DeliveryStatus.FAILED, at=now)
    puts: dict = {}
    trail._apply_result(puts, b"R-9", call.model_dump_json().encode())
    trail.store.write(puts, {})
    assert trail.search("MO-LATE") == []
    job = NoticeJob.model_validate_json(json.dumps({
        "notice_id": str(uuid.uuid4()), "event_id": str(event_id), "event_type": "ESCAPED", "urgency": "urgent",
        "registration_id": "R-9", "offender_id": "MO-LATE", "channel": "sms", "address_sealed": "x",
        "language": "en", "timezone": "America/Chicago", "event": {"occurred_at": now.isoformat()},
        "created_at": now.isoformat()}))
    puts = {}
    trail._apply_notice(puts, b"R-9", job.model_dump_json().encode())
    trail.store.write(puts, {})
    assert {n.notice_id for n in trail.search("MO-LATE")} == {str(call.notice_id), str(job.notice_id)}
    assert trail.notice(str(call.notice_id)).offender_id == "MO-LATE"


@pytest.mark.parametrize(("state", "title"), [
    (EscalationState.ACKNOWLEDGED, "Escalation ended: acknowledged by sms"),
    (EscalationState.UNACKNOWLEDGED, "Escalation ended without an acknowledgement"),
    (EscalationState.CANCELLED, "Escalation stopped: its event was retracted"),
])
def test_an_ended_ladder_says_how_it_ended(state, title):
    from savin.schemas.escalation import Escalation
    from savin.web.console.trail import _escalation_entries

    at = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)
    esc = Escalation(registration_id="R-1", event_id=uuid.uuid4(), event_type="RELEASED", offender_id=OFFENDER,
                     state=state, code="K7P2", started_at=at, updated_at=at + dt.timedelta(minutes=5),
                     acknowledged_by=AckChannel.SMS if state is EscalationState.ACKNOWLEDGED else None)
    opened, ended = _escalation_entries(esc)
    assert (opened.title, ended.title, ended.status) == ("Escalation opened", title, state.value)
    assert "K7P2" not in repr(ended), "the code is never shown"
