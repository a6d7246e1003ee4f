"""Delivery guarantees under failure: a crashed worker, a restarted broker, a
provider outage, permanent provider errors, forged and replayed callbacks.

Real broker, worker as its own process, the fake Twilio and the SMTP server.
The figures each test measures are printed and attached as test properties.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.parse

import aiohttp
import pytest
from support import event, eventually, metric, phone, registration, tally
from twilio.request_validator import RequestValidator

from savin.dev.testing.fake_twilio import FakeTwilio
from savin.dev.testing.smtp_server import SmtpCatcher
from savin.dev.testing.stack import TWILIO_TOKEN, LocalStack
from savin.domain.delivery import retry_delay
from savin.schemas import DeliveryStatus

pytestmark = [pytest.mark.e2e, pytest.mark.fault]

FAST_RETRIES = {"SAVIN_RETRY_DELAYS": "2,4,8", "SAVIN_MAX_ATTEMPTS": "30"}


def fault_number(code: int) -> str:
    return next(n for n, c in FakeTwilio.FAULT_NUMBERS.items() if c == code)


def fault_address(code: int) -> str:
    return next(a for a, c in SmtpCatcher.FAULT_ADDRESSES.items() if c == code)


async def load(stack: LocalStack, regs: list[str]) -> None:
    report = await stack.import_registrations(regs)
    assert report.errors == []
    await stack.wait_caught_up(stack.topics.registrations)


async def settled(count, quiet: float) -> None:
    """Wait until ``count()`` has not changed for ``quiet`` seconds (late repeats would show)."""
    last, since = count(), time.monotonic()
    while time.monotonic() - since < quiet:
        await asyncio.sleep(0.2)
        if (now := count()) != last:
            last, since = now, time.monotonic()


@pytest.mark.parametrize("worker_id", [None, "worker-a"], ids=["dynamic", "static-membership"])
async def test_kill_9_mid_burst_loses_nothing_and_restarts_within_seconds(stack, record_property, worker_id):
    n = 2000
    batch = 200
    stack.worker_env.update(SAVIN_SEND_BATCH_SIZE=str(batch))
    if worker_id:
        stack.worker_env.update(SAVIN_WORKER_ID=worker_id)
    stack.twilio.latency = 0.02
    worker = stack.start_worker()
    await load(stack, [registration(f"R-{i}", f"O-{i}", sms=phone(i)) for i in range(n)])
    await stack.publish_events([json.dumps(event("RELEASE_SCHEDULED", f"O-{i}")) for i in range(n)])

    await eventually(lambda: len(stack.twilio.messages) >= n // 5, 60, "the burst to start")
    worker.kill()
    await settled(lambda: len(stack.twilio.messages), quiet=1.0)  # requests already on the wire land
    sent_before_kill = len(stack.twilio.messages)
    assert sent_before_kill < n, "the burst finished before the kill; nothing was tested"

    restarted = time.monotonic()
    stack.worker().launch()
    await eventually(lambda: len(stack.twilio.messages) > sent_before_kill, 120, "a notice after the restart")
    first_notice = time.monotonic() - restarted
    await eventually(lambda: len({m.to for m in stack.twilio.messages}) >= n, 120, "every notice after restart")
    await settled(lambda: len(stack.twilio.messages), quiet=3.0)

    distinct, repeats = tally(m.to for m in stack.twilio.messages)
    lost = n - distinct
    print(f"\nkill -9 after {sent_before_kill} of {n} sent ({'static' if worker_id else 'dynamic'} membership): "
          f"first notice {first_notice:.1f} s after the restart, lost {lost}, sent twice {repeats}")
    record_property("kill9_sent_before_kill", sent_before_kill)
    record_property("kill9_first_notice_s", round(first_notice, 2))
    record_property("kill9_lost", lost)
    record_property("kill9_duplicates", repeats)
    assert lost == 0
    assert repeats <= batch, "at most the sends in flight are repeated"


async def test_broker_restart_mid_stream_loses_nothing(own_broker, tmp_path, record_property):
    stack = LocalStack(bootstrap=own_broker.bootstrap, workdir=tmp_path / "stack")
    stack.start_peers()
    try:
        n = 300
        stack.start_worker()
        await load(stack, [registration(f"R-{i}", f"O-{i}", sms=phone(i)) for i in range(n)])
        first, second = range(0, n // 2), range(n // 2, n)
        await stack.publish_events([json.dumps(event("RELEASED", f"O-{i}")) for i in first])
        await eventually(lambda: len(stack.twilio.messages) >= len(first), 60, "the first half")

        down = time.monotonic()
        await asyncio.to_thread(own_broker.stop, progress=lambda m: None)
        await asyncio.sleep(3)
        await asyncio.to_thread(own_broker.start, progress=lambda m: None)
        print(f"\nbroker down for {time.monotonic() - down:.1f}s")

        await stack.publish_events([json.dumps(event("RELEASED", f"O-{i}")) for i in second])
        await eventually(lambda: len({m.to for m in stack.twilio.messages}) >= n, 180, "the second half")
        distinct, repeats = tally(m.to for m in stack.twilio.messages)
        record_property("broker_restart_lost", n - distinct)
        record_property("broker_restart_duplicates", repeats)
        assert distinct == n
        assert all(w.proc.poll() is None for w in stack.workers), "the worker died with the broker"
    finally:
        stack.stop()


async def test_provider_outage_for_a_minute_drains_after_it_without_failing_any(stack, record_property):
    n = 100
    stack.worker_env.update(FAST_RETRIES)
    stack.start_worker()
    await load(stack, [registration(f"R-{i}", f"O-{i}", sms=phone(i)) for i in range(n)])

    stack.twilio.outage(30, status=503)
    outage_started = time.time()
    await stack.publish_events([json.dumps(event("ABSCONDED", f"O-{i}")) for i in range(n)])
    await asyncio.sleep(30)
    stack.twilio.outage(30, status=429)
    await asyncio.sleep(30)
    outage_ended = time.time()
    assert stack.twilio.messages == [], "a message was accepted during the outage"

    await eventually(lambda: len({m.to for m in stack.twilio.messages}) >= n, 120, "the backlog to drain")
    drain = max(m.at for m in stack.twilio.messages) - outage_ended
    print(f"\noutage of {outage_ended - outage_started:.0f}s: drained {drain:.1f}s after it ended")
    record_property("outage_drain_seconds", round(drain, 1))

    results = await _results_until(stack, lambda rs: len({r.notice_id for r in rs
                                                          if r.status is DeliveryStatus.ACCEPTED}) >= n)
    assert not [r for r in results if r.status is DeliveryStatus.FAILED]
    retries = [r for r in results if r.status is DeliveryStatus.RETRYING]
    assert {r.error_code for r in retries} >= {"20503", "20429"} or {r.error_code for r in retries} >= {"503", "429"}
    # Backed off: each try waited at least its tier's delay (2 s, 4 s, then 8 s) after the one before.
    delays = [float(d) for d in FAST_RETRIES["SAVIN_RETRY_DELAYS"].split(",")]
    tries: dict = {}
    for r in results:
        if r.source == "attempt":
            tries.setdefault(r.notice_id, []).append(r)
    for history in tries.values():
        history.sort(key=lambda r: r.attempt)
        for before, after in zip(history, history[1:]):
            gap = (after.at - before.at).total_seconds()
            assert gap >= 0.9 * retry_delay(before.attempt, delays), (before.attempt, gap)
    assert max(r.attempt for r in retries) >= 4
    accepted = {r.notice_id for r in results if r.status is DeliveryStatus.ACCEPTED}
    assert len(accepted) == n


async def test_permanent_errors_end_at_once_and_opt_out_suppresses_the_contact(stack):
    codes = [21211, 21408, 21612, 21614, 21610]
    numbers = {code: fault_number(code) for code in codes}
    bounce, tempfail = fault_address(550), fault_address(451)
    # Texts only: a text refused for good would otherwise bring the escalation's call forward
    # to the same number (tests/test_escalation.py).
    stack.worker_env.update(SAVIN_RETRY_DELAYS="1,1", SAVIN_MAX_ATTEMPTS="3", SAVIN_ESCALATION_CALL_SMS_PHONE="false")
    worker = stack.start_worker()
    regs = [registration(f"R-{code}", "O-PERM", sms=numbers[code]) for code in codes]
    regs += [registration("R-BOUNCE", "O-PERM", email=bounce), registration("R-TEMP", "O-PERM", email=tempfail)]
    await load(stack, regs)

    first = event("RELEASED", "O-PERM")
    await stack.publish_events([json.dumps(first)])
    await eventually(lambda: len(stack.twilio.faults) >= len(codes), 30, "the first tries")
    await stack.wait_caught_up(stack.topics.notices_urgent)
    results = await stack.results()
    by_reg = {r.registration_id: r for r in results if r.status is not DeliveryStatus.RETRYING}
    for code in codes:
        r = by_reg[f"R-{code}"]
        expected = DeliveryStatus.SUPPRESSED if code == 21610 else DeliveryStatus.FAILED
        assert (r.status, r.error_code, r.attempt) == (expected, str(code), 0)
    assert (by_reg["R-BOUNCE"].status, by_reg["R-BOUNCE"].error_code) == (DeliveryStatus.FAILED, "550")
    assert not [r for r in results if r.status is DeliveryStatus.RETRYING and r.registration_id != "R-TEMP"]

    # The opted-out contact is not tried again; the others are (a later notice may succeed).
    faults_before = len(stack.twilio.faults)
    second = event("ESCAPED", "O-PERM")
    await stack.publish_events([json.dumps(second)])
    await eventually(lambda: len(stack.twilio.faults) >= faults_before + len(codes) - 1, 30, "the second tries")
    await stack.wait_caught_up(stack.topics.notices_urgent)
    await asyncio.sleep(1)
    assert len(stack.twilio.faults) == faults_before + len(codes) - 1
    suppressed = [r for r in await stack.results()
                  if r.registration_id == "R-21610" and str(r.event_id) == second["event_id"]]
    assert [(r.status, r.provider) for r in suppressed] == [(DeliveryStatus.SUPPRESSED, None)]

    # A temporary SMTP failure is retried until the tries run out, then failed for operators to see.
    def gave_up() -> list[dict]:
        done = subprocess.run([sys.executable, "-m", "savin.cli", "notices", "list", "--status", "failed",
                               "--registration-id", "R-TEMP", "--json"],
                              env={**os.environ, **stack.env()}, capture_output=True, text=True, check=True)
        return [json.loads(line) for line in done.stdout.splitlines()]

    deadline = time.monotonic() + 60
    while not (rows := gave_up()) or len(rows) < 2:
        assert time.monotonic() < deadline, "the temporary failures were never given up"
        await asyncio.sleep(1)
    assert {row["attempts"] for row in rows} == {3}
    assert all(row["last_error"].startswith("451") for row in rows)
    assert "@" not in json.dumps(rows)
    assert worker.proc.poll() is None


async def test_callbacks_forged_replayed_and_out_of_order(stack):
    """Twilio's status callbacks reach savin web, which publishes them; the worker's
    deliver stage applies them to the ledger."""
    stack.twilio.callbacks_out_of_order = True
    web = stack.start_web()
    worker = stack.start_worker(SAVIN_ESCALATION_CALL_SMS_PHONE="false")  # the texts' callbacks only
    await load(stack, [registration("R-CB", "O-CB", sms=phone(1)),
                       registration("R-UND", "O-CB", sms=next(iter(FakeTwilio.CALLBACK_OUTCOMES)))])
    await stack.publish_events([json.dumps(event("RELEASED", "O-CB"))])
    await eventually(lambda: len(stack.twilio.callback_responses) >= 4, 30, "the status callbacks")
    assert {status for *_, status in stack.twilio.callback_responses} == {200}

    results = [r for r in await _results_until(stack, lambda rs: len([r for r in rs if r.source == "callback"]) >= 4)]
    callbacks = [r for r in results if r.source == "callback"]
    final = {r.registration_id: r for r in callbacks if r.status is not DeliveryStatus.SENT}
    assert final["R-CB"].status is DeliveryStatus.DELIVERED
    assert final["R-UND"].status is DeliveryStatus.UNDELIVERED
    assert final["R-UND"].error_code == str(FakeTwilio.CALLBACK_OUTCOMES[next(iter(FakeTwilio.CALLBACK_OUTCOMES))])

    # The late "sent" after the final status changed nothing in the ledger.
    await stack.wait_caught_up(stack.topics.delivery_results)
    metrics = worker.metrics()
    assert metric(metrics, "savin_callbacks_total", outcome="stale") >= 2

    # Forged: a valid-looking callback signed with another token; replayed: one already honoured.
    url = f"{stack.env()['SAVIN_TWILIO_STATUS_CALLBACK']}?" + urllib.parse.urlencode(
        {"notice_id": str(final["R-CB"].notice_id), "registration_id": "R-CB"})
    params = {"MessageSid": final["R-CB"].provider_ref or "SM" + "0" * 32, "MessageStatus": "failed",
              "AccountSid": stack.settings().twilio_account_sid}
    good = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    forged = RequestValidator("not-the-token").compute_signature(url, params)
    async with aiohttp.ClientSession() as http:
        async def post(signature: str | None) -> int:
            headers = {"X-Twilio-Signature": signature} if signature else {}
            async with http.post(url, data=params, headers=headers) as resp:
                return resp.status

        assert await post(forged) == 403
        assert await post(None) == 403
        assert await post(good) == 200
        assert await post(good) == 409
    # The web process counts what it refused, on its own /metrics.
    seen = web.metrics()
    assert metric(seen, "savin_callbacks_total", outcome="forged") == 2
    assert metric(seen, "savin_callbacks_total", outcome="replayed") == 1
    # The one honoured "failed" arrived after "delivered": stale, not applied.
    await stack.wait_caught_up(stack.topics.delivery_results)
    assert metric(worker.metrics(), "savin_callbacks_total", outcome="stale") >= 3


async def _results_until(stack, predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        results = await stack.results()
        if predicate(results) or time.monotonic() > deadline:
            return results
        await asyncio.sleep(0.5)


async def test_a_worker_stopped_mid_batch_finishes_the_batch(stack, record_property):
    """A graceful stop finishes the batch with the provider; nothing is left half sent."""
    n = 40
    stack.twilio.latency = 1.0
    worker = stack.start_worker()
    await load(stack, [registration(f"R-{i}", f"OFF-{i}", sms=phone(i)) for i in range(n)])
    from savin.ops.reading import OffsetWatch

    await stack.publish_events([json.dumps(event("RELEASED", f"OFF-{i}")) for i in range(n)])
    async with OffsetWatch(stack.bootstrap) as watch:
        deadline = time.monotonic() + 30
        while await watch.total(stack.topics.notices_urgent) < n:
            assert time.monotonic() < deadline, "the notices were never planned"
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the batch is with the provider, which answers after 1 s
    assert len(stack.twilio.messages) == 0
    stopped = time.monotonic()
    worker.stop()
    record_property("stop_seconds", round(time.monotonic() - stopped, 2))
    sent_before_restart = len(stack.twilio.messages)
    stack.start_worker()
    assert stack.twilio.wait_for(n, timeout=30), f"{len(stack.twilio.messages)} of {n} sent"
    await settled(lambda: len(stack.twilio.messages), quiet=3.0)
    distinct, repeats = tally(m.to for m in stack.twilio.messages)
    print(f"stopped mid-batch: {sent_before_restart} sent before the restart, {distinct} distinct, {repeats} repeats")
    assert (distinct, repeats) == (n, 0)
    assert sent_before_restart == n  # the stopping worker finished the batch itself
