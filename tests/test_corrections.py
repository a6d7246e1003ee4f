"""Precise corrections in the deliver stage: a correction goes only where the notice it
corrects went out, and a notice that has not gone out is cancelled instead.

The rule is a pure function (:mod:`savin.domain.corrections`), tested by table. The
stage is tested against the real broker with the worker as its own process, the fake
Twilio and the SMTP server; the correction jobs are published straight onto the notices
topics, as the match stage sends them for a retraction.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from support import event, eventually, metric, phone

from savin.domain.corrections import Correction, correction
from savin.domain.matching import notice_id, notices_for
from savin.ops.reading import read_topic
from savin.schemas import DeliveryStatus, NoticeJob, Registration, parse_event
from savin.schemas.escalation import Escalation, EscalationState
from savin.sealing import Sealer, seal_registration
from savin.settings import DataKeys
from savin.topics import ensure_topics, producer

S = DeliveryStatus

# ---- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize("sends, expected", [
    # A text or an email: one send, the notice itself.
    ([S.ACCEPTED], Correction.CORRECTED),
    ([S.SENT], Correction.CORRECTED),
    ([S.DELIVERED], Correction.CORRECTED),
    ([S.UNDELIVERED], Correction.CORRECTED),  # a provider took it: it may have been read
    ([None], Correction.CANCELLED),  # not seen yet
    ([S.RETRYING], Correction.CANCELLED),
    ([S.HELD], Correction.CANCELLED),
    ([S.FAILED], Correction.NONE),
    ([S.SUPPRESSED], Correction.NONE),
    ([S.REJECTED], Correction.NONE),
    ([S.CANCELLED], Correction.NONE),
    # A voice number on a ladder: the calls placed to it, None for one still to come.
    ([], Correction.NONE),  # the ladder ended before it was called
    ([S.FAILED, None], Correction.CANCELLED),
    ([S.UNDELIVERED, S.FAILED], Correction.CORRECTED),
    ([S.FAILED, S.DELIVERED, None], Correction.CORRECTED),
    ([S.FAILED, S.FAILED], Correction.NONE),
])
def test_a_correction_goes_where_its_notice_went_and_cancels_one_still_to_go(sends, expected):
    assert correction(sends) is expected


def test_every_status_has_an_answer():
    for status in [*DeliveryStatus, None]:
        assert correction([status]) in Correction


# ---- the deliver stage ------------------------------------------------------------------------

e2e = pytest.mark.e2e


def registration(stack, rid: str, *contacts: tuple[str, str]):
    """A sealed registration for offender O-<rid> with these (channel, address) contacts."""
    doc = {"registration_id": rid, "offender_id": f"O-{rid}", "name": "Test Registrant", "language": "en",
           "contacts": [{"channel": c, "address": a, "verified": True} for c, a in contacts]}
    reg = Registration.model_validate_json(json.dumps(doc))
    return seal_registration(reg, Sealer(DataKeys.parse(stack.data_key)), dt.datetime.now(dt.timezone.utc))


def released_and_retraction(reg) -> tuple[dict, dict]:
    released = event("RELEASED", reg.offender_id)
    retraction = event("EVENT_RETRACTED", reg.offender_id)
    retraction["payload"].update(retracted_event_id=released["event_id"], retracted_event_type="RELEASED",
                                 retracted_occurred_at=released["occurred_at"])
    return released, retraction


def jobs(doc: dict, reg, escalate: bool = False) -> list[NoticeJob]:
    return notices_for(parse_event(json.dumps(doc)), [reg], dt.datetime.now(dt.timezone.utc), escalate)


def corrections(retraction: dict, released: dict, reg) -> dict[str, NoticeJob]:
    """The retraction's notices (urgent, so they escalate), each correcting the released
    event's notice on its channel and contact, by channel."""
    corrected = uuid.UUID(released["event_id"])
    return {j.channel.value: j.model_copy(update={
        "corrects": notice_id(corrected, j.registration_id, j.channel.value, j.contact_index)})
        for j in jobs(retraction, reg, escalate=True)}


async def publish(stack, *notices: NoticeJob, routine: bool = False) -> None:
    topics = stack.topics
    await ensure_topics(stack.bootstrap, topics.specs())
    prod = producer(stack.bootstrap)
    await prod.start()
    try:
        for job in notices:
            await prod.send_and_wait(topics.notices_routine if routine else topics.notices_urgent,
                                     job.model_dump_json().encode(), key=job.registration_id.encode())
    finally:
        await prod.stop()


async def result_of(stack, notice: uuid.UUID, status: DeliveryStatus, what: str):
    async def found():
        return next((r for r in await stack.results() if r.notice_id == notice and r.status is status), None)

    return await eventually(found, 60, what)


def texts_to(stack, number: str) -> list[str]:
    return [m.body for m in stack.twilio.messages if m.to == number]


@e2e
async def test_a_notice_that_went_out_gets_its_correction_on_the_same_channel(stack):
    number = phone(1401)
    reg = registration(stack, "R-CORR-SENT", ("sms", number), ("email", "sent@example.org"))
    released, retraction = released_and_retraction(reg)
    worker = stack.start_worker(SAVIN_STAGES="deliver")
    await publish(stack, *jobs(released, reg))
    await eventually(lambda: len(texts_to(stack, number)) == 1 and len(stack.smtp.messages) == 1, 30,
                     "the released notice by text and email")

    fixes = corrections(retraction, released, reg)
    await publish(stack, *fixes.values())
    await eventually(lambda: len(texts_to(stack, number)) == 2 and len(stack.smtp.messages) == 2, 30,
                     "the corrections by text and email")
    for fix in fixes.values():
        await result_of(stack, fix.notice_id, S.ACCEPTED, f"the {fix.channel.value} correction accepted")
    assert "release" in texts_to(stack, number)[0].lower()
    assert texts_to(stack, number)[1] != texts_to(stack, number)[0]
    assert stack.smtp.messages[1].rcpt_tos == ("sent@example.org",)
    assert not [r for r in await stack.results() if r.status is S.CANCELLED]
    assert metric(worker.metrics(), "savin_corrections_total", outcome="corrected") == 2


@e2e
async def test_a_notice_still_in_retry_is_cancelled_and_never_sent_and_not_corrected(stack):
    limited = next(n for n, c in stack.twilio.fail_numbers.items() if c == 20429)  # rate limited: retried
    reg = registration(stack, "R-CORR-RETRY", ("sms", limited))
    released, retraction = released_and_retraction(reg)
    worker = stack.start_worker(SAVIN_STAGES="deliver", SAVIN_RETRY_DELAYS="2", SAVIN_MAX_ATTEMPTS="100")
    (original,) = jobs(released, reg)
    await publish(stack, original)
    await result_of(stack, original.notice_id, S.RETRYING, "the released notice waiting for a retry")

    (fix,) = corrections(retraction, released, reg).values()
    await publish(stack, fix)
    cancelled = await result_of(stack, original.notice_id, S.CANCELLED, "the released notice cancelled")
    assert cancelled.event_id == original.event_id and cancelled.event_type == "RELEASED"
    assert cancelled.channel is original.channel
    await result_of(stack, fix.notice_id, S.CANCELLED, "the correction recorded as not sent")
    # From now on Twilio would take the text: only the cancellation keeps the retry from going.
    stack.twilio.fail_numbers.pop(limited)
    await stack.wait_caught_up(stack.topics.retries[0])  # the waiting retry came due and was dropped
    assert texts_to(stack, limited) == []
    text = worker.metrics()
    assert metric(text, "savin_corrections_total", outcome="cancelled") == 1
    assert metric(text, "savin_notices_skipped_total") >= 1
    statuses = [r.status for r in await stack.results() if r.notice_id == original.notice_id]
    assert statuses[-1] is S.CANCELLED and S.ACCEPTED not in statuses


@e2e
async def test_a_notice_that_arrives_after_its_correction_is_dropped_even_from_a_hold(stack):
    number = phone(1402)
    reg = registration(stack, "R-CORR-FIRST", ("sms", number), ("email", "first@example.org"))
    released, retraction = released_and_retraction(reg)
    stack.start_worker(SAVIN_STAGES="deliver")
    fixes = corrections(retraction, released, reg)
    await publish(stack, *fixes.values())
    originals = jobs(released, reg)
    for job in originals:
        await result_of(stack, job.notice_id, S.CANCELLED, f"the {job.channel.value} notice cancelled unseen")
    for fix in fixes.values():
        await result_of(stack, fix.notice_id, S.CANCELLED, "the correction recorded as not sent")

    # The released notices come after all: by text on the urgent topic, by email as released
    # from a hold (routine here, so it takes the other topic).
    sms, email = sorted(originals, key=lambda j: j.channel.value != "sms")
    await publish(stack, sms)
    await publish(stack, email.model_copy(update={"hold_id": uuid.uuid4()}), routine=True)
    await stack.wait_caught_up(stack.topics.notices_urgent)
    await stack.wait_caught_up(stack.topics.notices_routine)
    assert texts_to(stack, number) == [] and stack.smtp.messages == []
    assert not [r for r in await stack.results() if r.status is S.ACCEPTED]


@e2e
async def test_a_notice_that_failed_for_good_gets_nothing(stack):
    invalid = next(n for n, c in stack.twilio.fail_numbers.items() if c == 21211)  # not a valid number
    reg = registration(stack, "R-CORR-FAILED", ("sms", invalid))
    released, retraction = released_and_retraction(reg)
    worker = stack.start_worker(SAVIN_STAGES="deliver")
    (original,) = jobs(released, reg)
    await publish(stack, original)
    await result_of(stack, original.notice_id, S.FAILED, "the released notice failed")
    tries = len(stack.twilio.faults)

    (fix,) = corrections(retraction, released, reg).values()
    await publish(stack, fix)
    recorded = await result_of(stack, fix.notice_id, S.CANCELLED, "the correction recorded as not sent")
    assert "never went out" in recorded.error
    assert len(stack.twilio.faults) == tries  # the correction was not even tried
    assert [r.status for r in await stack.results() if r.notice_id == original.notice_id] == [S.FAILED]
    assert metric(worker.metrics(), "savin_corrections_total", outcome="none") == 1


@e2e
async def test_a_correction_stops_the_ladder_and_a_call_not_yet_placed_is_cancelled(stack):
    number, voice = phone(1403), phone(1404)
    reg = registration(stack, "R-CORR-LADDER", ("sms", number), ("voice", voice))
    released, retraction = released_and_retraction(reg)
    stack.start_worker(SAVIN_STAGES="deliver", SAVIN_ESCALATION_FIRST_CALL="3600")
    originals = {j.channel.value: j for j in jobs(released, reg, escalate=True)}
    await publish(stack, *originals.values())
    await eventually(lambda: len(texts_to(stack, number)) == 1, 30, "the released notice by text")

    fixes = corrections(retraction, released, reg)
    await publish(stack, *fixes.values())
    await result_of(stack, fixes["sms"].notice_id, S.ACCEPTED, "the text's correction sent")
    await result_of(stack, originals["voice"].notice_id, S.CANCELLED, "the call still to come cancelled")
    await result_of(stack, fixes["voice"].notice_id, S.CANCELLED, "the call's correction not placed")

    async def ladder() -> Escalation | None:
        latest = None
        async for r in read_topic(stack.bootstrap, stack.topics.escalations):
            e = Escalation.model_validate_json(r.value)
            if e.registration_id == reg.registration_id and str(e.event_id) == released["event_id"]:
                latest = e
        return latest if latest is not None and latest.state is not EscalationState.OPEN else None

    stopped = await eventually(ladder, 30, "the released event's ladder stopped")
    assert stopped.state is EscalationState.CANCELLED, "stopped by the retraction, not unacknowledged"
    assert stopped.next_call_at is None and stopped.calls == 0
    assert stack.twilio.calls == [] and len(texts_to(stack, number)) == 2
