"""The rate limiter's rules, on a fake clock."""

import asyncio
import datetime as dt

import pytest
from prometheus_client import generate_latest
from support import EXAMPLES, metric

from savin.domain.matching import notices_for
from savin.notifiers.base import Notifier, RateLimited
from savin.notifiers.dispatcher import Dispatcher
from savin.notifiers.pacing import Budget, Pacer, Pacing, Schedule, share
from savin.schemas import DeliveryStatus, Registration, parse_event
from savin.sealing import seal_registration

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def most_in_any_window(times: list[float], seconds: float = 1.0) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + seconds) for t in times)


def drain(schedule: Schedule, n: int, start: float = 0.0) -> list[float]:
    """The times of ``n`` sends asked for all at once at ``start``."""
    now, sent = start, []
    for _ in range(n):
        now = schedule.next_at(now)
        schedule.take(now)
        sent.append(now)
    return sent


def test_shares_of_the_partitions_sum_to_at_most_the_whole():
    assert share(4, 4) == 1.0
    assert share(1, 4) == 0.25
    assert share(0, 4) == 0.0
    assert sum(share(a, 12) for a in (5, 4, 3)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        share(1, 0)


def test_never_more_than_the_limit_in_any_second_and_close_to_it():
    sent = drain(Schedule(100.0), 1000)
    assert most_in_any_window(sent) <= 100
    assert sent[-1] <= len(sent) / (0.95 * 100)  # at least 95 % of the limit


def test_a_pause_between_batches_is_made_up_without_going_over():
    s = Schedule(20.0)
    sent = drain(s, 20)
    sent += drain(s, 20, start=sent[-1] + 0.3)  # a commit between two batches
    assert most_in_any_window(sent) <= 20
    assert sent[-1] - sent[0] < 2 * 1.02 + 0.01  # the pause cost nothing: 40 in two windows


def test_sends_are_spread_not_bunched():
    sent = drain(Schedule(10.0, smoothing=2.0), 3)
    assert min(b - a for a, b in zip(sent, sent[1:])) >= 1.02 / 10 / 2 - 1e-9


def test_below_one_a_second_one_send_per_interval():
    sent = drain(Schedule(0.25), 3)
    assert sent[1] - sent[0] == pytest.approx(4 * 1.02)


def test_a_429_halves_the_rate_once_and_it_grows_back():
    s = Schedule(100.0, recover=0.1)
    s.too_many(10.0)
    s.too_many(10.1)  # the other sends in flight said the same: not halved again
    assert s.rate(10.1) == pytest.approx(50 + 1)
    assert s.slowed
    assert s.rate(15.0) == pytest.approx(100.0)
    assert not s.slowed
    s.too_many(20.0)
    s.too_many(21.5)  # a window later: halved again
    assert s.rate(21.5) < 50


def test_retry_after_holds_every_send_until_then():
    s = Schedule(100.0)
    s.too_many(5.0, retry_after=2.0)
    assert s.next_at(5.0) == pytest.approx(7.0)


def test_a_new_share_keeps_a_back_off_in_proportion():
    s = Schedule(100.0, recover=0.0)
    s.too_many(0.0)
    s.set_limit(25.0)
    assert s.rate(1.0) == pytest.approx(12.5)


async def test_urgent_waiters_are_served_before_routine_ones():
    clock = Clock()
    pacer = Pacer("sms", "test", 10.0, clock=clock, sleep=clock.sleep)
    order: list[str] = []

    async def send(name: str, urgent: bool) -> None:
        await pacer.acquire(urgent)
        order.append(name)

    routine = [asyncio.ensure_future(send(f"r{i}", False)) for i in range(5)]
    await asyncio.sleep(0)
    urgent = [asyncio.ensure_future(send(f"u{i}", True)) for i in range(3)]
    await asyncio.gather(*routine, *urgent)
    # The first routine one went at once, before the urgent ones came; then urgent first.
    assert order == ["r0", "u0", "u1", "u2", "r1", "r2", "r3", "r4"]


async def test_routine_waiters_wait_and_are_never_refused():
    clock = Clock()
    pacer = Pacer("email", "test", 5.0, clock=clock, sleep=clock.sleep)
    await asyncio.gather(*(pacer.acquire(False) for _ in range(30)))
    assert clock.now >= 5 * 1.02  # 30 at 5 a second: six windows, the first at once


async def test_a_cancelled_waiter_gives_its_turn_away():
    clock = Clock()
    pacer = Pacer("sms", "test", 1.0, clock=clock, sleep=clock.sleep)
    await pacer.acquire(True)
    gone = asyncio.ensure_future(pacer.acquire(True))
    kept = asyncio.ensure_future(pacer.acquire(False))
    await asyncio.sleep(0)
    gone.cancel()
    await kept
    assert pacer.waiting == 0


def test_pacing_shares_every_pacer_and_budgets_a_batch():
    clock = Clock()
    pacing = Pacing([Pacer("sms", "a", 100.0, clock=clock), Pacer("email", "b", 40.0, clock=clock)])
    pacing.share(1, 4)
    assert pacing.for_channel("sms").schedule.limit == pytest.approx(25.0)
    budget = pacing.budget(0.5)
    assert isinstance(budget, Budget)
    taken = 0
    while budget.fits("sms"):
        budget.take("sms")
        taken += 1
    assert taken == 12
    assert budget.fits("voice")  # no pacer: not limited
    pacing.share(0, 4)
    assert pacing.budget(0.5).fits("sms")  # at least one, so nothing waits for ever


# ---- the dispatcher waits on its channel's pacer ----------------------------------------------


class FakeRenderer:
    def render(self, event, channel, language, timezone):
        return f"{event['event_type']}/{channel}"


class RecordingNotifier(Notifier):
    channel = "sms"
    provider = "fake-sms"

    def __init__(self, sealer, refuse: int = 0):
        super().__init__(sealer)
        self.sent: list[str] = []
        self.refuse = refuse

    async def try_send(self, address, message):
        if self.refuse:
            self.refuse -= 1
            raise RateLimited(f"too many: notice {message.notice_id}", "20429", retry_after=3.0)
        self.sent.append(message.content)
        return f"ref-{len(self.sent)}"


def sms_jobs(sealer, *event_types):
    regs = [seal_registration(Registration.model_validate_json(line), sealer, NOW)
            for line in (EXAMPLES / "registrations.jsonl").read_text().splitlines()]
    jobs = []
    for t in event_types:
        jobs += notices_for(parse_event((EXAMPLES / "events" / f"{t}.json").read_text()), regs, NOW)
    return [j for j in jobs if j.channel.value == "sms"]


async def test_the_dispatcher_sends_urgent_notices_first_within_the_limit(sealer):
    clock = Clock()
    notifier = RecordingNotifier(sealer)
    pacer = Pacer("sms", "test", 1.0, clock=clock, sleep=clock.sleep)
    d = Dispatcher(FakeRenderer(), [notifier], pacing=Pacing([pacer]))
    routine, urgent = sms_jobs(sealer, "RELEASE_SCHEDULED"), sms_jobs(sealer, "RELEASED")
    assert routine and urgent
    assert len(routine) == len(urgent) == 2
    first = asyncio.ensure_future(d.send_batch(routine))
    await asyncio.sleep(0)  # the routine batch waits for the limit: one went at once
    await asyncio.gather(first, d.send_batch(urgent))
    assert notifier.sent == ["RELEASE_SCHEDULED/sms", "RELEASED/sms", "RELEASED/sms", "RELEASE_SCHEDULED/sms"]
    assert clock.now == pytest.approx((len(routine) + len(urgent) - 1) * 1.02)


async def test_a_providers_too_many_slows_the_channel_and_the_notice_is_retried(sealer):
    clock = Clock()
    notifier = RecordingNotifier(sealer, refuse=1)
    pacer = Pacer("sms", "test-429", 10.0, clock=clock, sleep=clock.sleep)
    d = Dispatcher(FakeRenderer(), [notifier], pacing=Pacing([pacer]))
    before = metric(generate_latest().decode(), "savin_provider_rate_limited_total", sender="test-429")
    (job,) = sms_jobs(sealer, "RELEASED")[:1]
    outcome = await d.send_one(job)
    assert outcome.status is DeliveryStatus.RETRYING and outcome.error_code == "20429"
    assert pacer.schedule.slowed and pacer.schedule.rate(clock.now) == pytest.approx(5.0)
    assert pacer.schedule.next_at(clock.now) == pytest.approx(3.0)  # Retry-After
    after = metric(generate_latest().decode(), "savin_provider_rate_limited_total", sender="test-429")
    assert after == before + 1
    assert metric(generate_latest().decode(), "savin_provider_rate_per_second", sender="test-429") == 5.0
