"""The deliver stage's ordering: urgent notices ahead of a routine backlog.

Real broker, the worker as its own process, the fake Twilio.
"""

from __future__ import annotations

import datetime as dt

import pytest

from savin.dev.bench import data
from savin.domain.matching import notices_for
from savin.schemas import Registration, parse_event
from savin.sealing import Sealer, seal_registration
from savin.settings import DataKeys
from savin.topics import ensure_topics, producer

pytestmark = pytest.mark.e2e


def notice_job(stack, n: int, event_type: str) -> tuple[bytes, bytes]:
    now = dt.datetime.now(dt.timezone.utc)
    reg = Registration.model_validate_json(
        data.registration_line(n, data.offender_id(n), email=False, hearings_only=False, language="en"))
    event = parse_event(data.event_line(event_type, reg.offender_id, n))
    (job,) = notices_for(event, [seal_registration(reg, Sealer(DataKeys.parse(stack.data_key)), now)], now)
    return job.registration_id.encode(), job.model_dump_json().encode()


async def test_an_urgent_notice_overtakes_a_routine_backlog(stack):
    backlog, batch = 2_000, 100
    stack.twilio.latency = 0.05
    topics = stack.topics
    await ensure_topics(stack.bootstrap, topics.specs())
    prod = producer(stack.bootstrap)
    await prod.start()
    try:
        for n in range(backlog):
            key, value = notice_job(stack, n, "HEARING_SCHEDULED")
            await prod.send(topics.notices_routine, value, key=key)
        key, value = notice_job(stack, backlog, "ESCAPED")
        await prod.send_and_wait(topics.notices_urgent, value, key=key)
    finally:
        await prod.stop()
    stack.start_worker(SAVIN_STAGES="deliver", SAVIN_SEND_BATCH_SIZE=str(batch))
    urgent = data.phone(backlog)
    assert stack.twilio.wait_for(backlog + 1, timeout=120)
    order = [m.to for m in stack.twilio.messages]
    # Taken into the first batch that had it fetched: at most two batches went before it.
    assert order.index(urgent) < 2 * batch, order.index(urgent)


async def test_a_new_machine_rebuilds_the_ledger_and_sends_nothing_twice(stack):
    import shutil

    topics = stack.topics
    await ensure_topics(stack.bootstrap, topics.specs())
    key, value = notice_job(stack, 1, "RELEASED")
    prod = producer(stack.bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(topics.notices_urgent, value, key=key)
        worker = stack.start_worker(SAVIN_STAGES="deliver")
        assert stack.twilio.wait_for(1, timeout=30)
        await stack.wait_caught_up(topics.notices_urgent)
        worker.stop()
        shutil.rmtree(stack.workdir / "worker" / "deliver")  # the local ledger is gone
        worker = stack.start_worker(SAVIN_STAGES="deliver")
        await prod.send_and_wait(topics.notices_urgent, value, key=key)  # the same notice again
    finally:
        await prod.stop()
    await stack.wait_caught_up(topics.notices_urgent)
    assert len(stack.twilio.messages) == 1
    assert "savin_notices_skipped_total 1.0" in worker.metrics()
