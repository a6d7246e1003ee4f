"""Runs the measurements of ``savin bench`` and writes the results.

Every stage gets its own namespace (topics, consumer group, worker state) on
one broker, every worker runs as its own process, as in production, and so do
the fake Twilio and the SMTP server (:mod:`savin.dev.testing.peers`), so the
benchmark's own process only offers load and reads the clock. Throughput is
taken between the 10th and 90th percentile of the output's own timestamps, so
start-up and the last stragglers do not blur it. The match stage (with the
baseline of the same run) and the latency stage run ``Sizes.runs`` times, and
each figure is given as min / median / max.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from savin.dev.bench import data
from savin.domain.clock import utcnow
from savin.domain.matching import notices_for
from savin.ops.reading import OffsetWatch, read_topic
from savin.schemas import Registration, parse_event
from savin.sealing import Sealer, seal_registration
from savin.settings import DataKeys
from savin.topics import TopicSpec, ensure_topics, partition_for, producer, registration_record

__all__ = ["Sizes", "STANDARD", "QUICK", "STAGES", "run_bench"]


@dataclass(frozen=True)
class Sizes:
    events: int = 100_000  # match stage, and the baseline's message count
    registrations: int = 100_000
    offenders: int = 50_000
    notices: int = 5_000  # send stage
    twilio_latency: float = 0.05
    rate: int = 200  # latency stage: events offered per second
    duration: float = 60.0  # latency stage: seconds
    recovery_registrations: int = 1_000_000
    partitions: int = 4
    acknowledgements: int = 20  # urgent events, each acknowledged on a call by a scripted callee
    runs: int = 3  # of the match stage (each with its own baseline) and of the latency stage
    burst_events: int = 8_000  # urgent events, 2 registrations each with SMS and email
    burst_sms_per_second: int = 100  # the fake Twilio's limit in the burst
    backlog_notices: int = 20_000  # routine SMS notices queued before the urgent one
    backlog_sms_per_second: int = 200  # the fake Twilio's limit in the backlog
    cluster_events: int = 100_000  # match stage on the three-broker cluster, 3 workers


STANDARD = Sizes()
QUICK = Sizes(events=10_000, registrations=10_000, offenders=5_000, notices=1_000, duration=10.0,
              recovery_registrations=20_000, acknowledgements=5, runs=1, burst_events=500,
              backlog_notices=2_000, cluster_events=10_000)

#: The stages, in the order they run.
STAGES = ("match", "send", "latency", "recovery", "acknowledgement", "burst", "backlog", "cluster")

#: A provider limit no stage reaches: the send and latency stages measure savin, not a limit.
UNBOUND = 10_000

#: Seconds of the latency stage's warm-up at its rate, before the events it times.
WARM_UP_SECONDS = 3.0

#: The ladder of the acknowledgement stage: the call at once after the text, repeats after 3 s.
ACK_LADDER = {"SAVIN_ESCALATION_FIRST_CALL": "0", "SAVIN_ESCALATION_UNANSWERED_EVERY": "3",
              "SAVIN_ESCALATION_ANSWERED_EVERY": "3", "SAVIN_ESCALATION_GIVE_UP": "120"}

#: Each target, judged on every run: the worst run's figure must meet it.
TARGETS = {
    "match_ratio": (">=", 0.6),
    "send_per_second": (">=", 500),
    "latency_p99_ms": ("<=", 250),
    "recovery_seconds": ("<=", 30),
    "peak_rss_mb": ("<=", 400),
    "burst_share_of_limit": (">=", 0.95),
    "burst_429s": ("<=", 0),
    "backlog_urgent_seconds": ("<=", 2.0),
}


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max of the runs' figures."""
    v = sorted(values)
    return {"min": v[0], "median": statistics.median(v), "max": v[-1]}


def spread_rate(timestamps: list[float], count: int | None = None) -> tuple[float, float]:
    """(items per second, seconds) between the 10th and 90th percentile of ``timestamps``.

    ``count`` is what the timestamps stand for when they are a proportional
    sample (notices standing for the events that produced them).
    """
    ts = sorted(timestamps)
    if len(ts) < 10:
        raise ValueError("too few samples to measure a rate")
    lo, hi = ts[len(ts) // 10], ts[(len(ts) * 9) // 10]
    span = max(hi - lo, 1e-3)
    return 0.8 * (count if count is not None else len(ts)) / span, span


def percentiles(values: list[float]) -> dict[str, float]:
    v = sorted(values)

    def at(q: float) -> float:
        return v[min(len(v) - 1, int(q * len(v)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": v[-1]}


class Bench:
    def __init__(self, bootstrap: str, workdir: Path, sizes: Sizes, console: Console):
        self.bootstrap = bootstrap
        self.workdir = workdir
        self.sizes = sizes
        self.console = console
        self.stacks: list = []
        self.peers: list = []

    # ---- helpers ------------------------------------------------------------

    def say(self, text: str) -> None:
        self.console.print(text)

    def stack(self, name: str, twilio_latency: float = 0.0, callee_digits: tuple[str, ...] = (),
              bootstrap: str | None = None, **twilio_options: object):
        """A stack of its own namespace, its peers in a process of their own (stopped with it)."""
        from savin.dev.testing.peers import RemotePeers
        from savin.dev.testing.stack import LocalStack

        peers = RemotePeers(twilio_latency, callee_digits, callbacks_enabled=False, **twilio_options).start()
        self.peers.append(peers)
        s = LocalStack(bootstrap=bootstrap or self.bootstrap, workdir=self.workdir / name,
                       namespace=f"bench-{name}-{uuid.uuid4().hex[:6]}", partitions=self.sizes.partitions,
                       worker_env={"SAVIN_LOG_LEVEL": "warning", **sender_env(UNBOUND)},
                       twilio=peers.twilio, smtp=peers.smtp)
        s.peers = peers
        self.stacks.append(s)
        return s

    def profile(self, stage: str) -> dict[str, str]:
        """Worker settings that profile ``stage`` when SAVIN_BENCH_PROFILE names a directory."""
        where = os.environ.get("SAVIN_BENCH_PROFILE")
        if not where:
            return {}
        Path(where).mkdir(parents=True, exist_ok=True)
        return {"SAVIN_PROFILE": str(Path(where).resolve() / f"{stage}.html")}

    def close(self) -> None:
        while self.stacks:
            self.stacks.pop().stop()
        while self.peers:
            self.peers.pop().stop()

    async def wait_for(self, label: str, total: int, count: Callable[[], Awaitable[int] | int],
                       timeout: float, interval: float = 0.2) -> None:
        """Show progress until ``count()`` reaches ``total``; fail after ``timeout`` s without progress."""
        with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task(label, total=total)
            last, last_change = -1, time.monotonic()
            while True:
                n = count()
                if asyncio.iscoroutine(n):
                    n = await n
                bar.update(task, completed=n)
                if n >= total:
                    return
                if n != last:
                    last, last_change = n, time.monotonic()
                elif time.monotonic() - last_change > timeout:
                    raise TimeoutError(f"{label}: stuck at {n:,}/{total:,} for {timeout:.0f}s")
                await asyncio.sleep(interval)

    async def publish(self, label: str, topic: str, records: Iterable[tuple[bytes, bytes, int | None]],
                      total: int, bootstrap: str | None = None) -> None:
        prod = producer(bootstrap or self.bootstrap, linger_ms=20, max_batch_size=512 * 1024)
        await prod.start()
        sent = 0
        try:
            with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=self.console, transient=True) as bar:
                task = bar.add_task(label, total=total)
                pending = []
                for key, value, partition in records:
                    pending.append(await prod.send(topic, value, key=key, partition=partition))
                    sent += 1
                    if len(pending) >= 5000:
                        await asyncio.gather(*pending)
                        pending.clear()
                        bar.update(task, completed=sent)
                await asyncio.gather(*pending)
                bar.update(task, completed=sent)
        finally:
            await prod.stop()

    async def import_registrations(self, stack, lines: Iterable[bytes], total: int) -> None:
        settings = stack.settings()
        sealer = Sealer(settings.data_keys)
        now = dt.datetime.now(dt.timezone.utc)
        n = settings.partitions

        def records():
            for line in lines:
                yield registration_record(seal_registration(Registration.model_validate_json(line), sealer, now), n)

        await ensure_topics(stack.bootstrap, stack.topics.specs(), replication=settings.replication_factor)
        await self.publish("registrations published", stack.topics.registrations, records(), total,
                           bootstrap=stack.bootstrap)

    async def wait_consumed(self, stack, topic: str, total: int, timeout: float = 120.0) -> None:
        async with OffsetWatch(stack.bootstrap) as watch:
            async def done() -> int:
                return total - await watch.lag(stack.topics.group(stack.topics.stage_reading(topic)), topic)

            await self.wait_for(f"{topic.split('.', 1)[1]} consumed", total, done, timeout, interval=0.5)

    @staticmethod
    def event_records(lines: Iterable[bytes], partitions: int):
        for line in lines:
            key = json.loads(line)["offender_id"].encode()
            yield key, line, partition_for(key, partitions)

    # ---- 1. baseline ----------------------------------------------------------

    async def baseline(self, events: int | None = None, bootstrap: str | None = None, replication: int = 1) -> dict:
        bootstrap = bootstrap or self.bootstrap
        n = events or self.sizes.events
        ns = f"bench-baseline-{uuid.uuid4().hex[:6]}"
        source, sink = f"{ns}.in", f"{ns}.out"
        await ensure_topics(bootstrap, [TopicSpec(source, self.sizes.partitions),
                                        TopicSpec(sink, self.sizes.partitions)], replication=replication)
        pop = data.Population(0, max(1, self.sizes.offenders))
        lines = [line for line, _ in pop.events(n)]
        size = sum(map(len, lines)) / len(lines)
        await self.publish("messages published", source, self.event_records(lines, self.sizes.partitions), n,
                           bootstrap=bootstrap)
        proc = subprocess.Popen([sys.executable, "-m", "savin.dev.bench.passthrough", bootstrap, source, sink, ns],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            async with OffsetWatch(bootstrap) as watch:
                await self.wait_for("passthrough", n, lambda: watch.total(sink), timeout=60)
        finally:
            proc.terminate()
            proc.wait(30)
        stamps = [r.timestamp / 1000 async for r in read_topic(bootstrap, sink)]
        rate, span = spread_rate(stamps)
        return {"messages": n, "message_bytes": round(size), "per_second": round(rate), "seconds": round(span, 2)}

    # ---- 2. match ----------------------------------------------------------------

    async def match_run(self, events: int | None = None, bootstrap: str | None = None, workers: int = 1,
                        name: str = "match", replication: int = 1) -> dict:
        """The baseline, then the match stage on the same broker(s), its ratio to that baseline."""
        base = await self.baseline(events, bootstrap, replication)
        found = await self.match(base["per_second"], events, bootstrap, workers, name, replication)
        return {"baseline": base, **found}

    async def match(self, baseline_rate: float, events: int | None = None, bootstrap: str | None = None,
                    workers: int = 1, name: str = "match", replication: int = 1) -> dict:
        z = self.sizes
        events = events or z.events
        stack = self.stack(name, bootstrap=bootstrap)
        stack.worker_env["SAVIN_REPLICATION_FACTOR"] = str(replication)
        bootstrap = stack.bootstrap
        pop = data.Population(z.registrations, z.offenders)
        # Registrations first, applied by a worker that only does that...
        loader = stack.start_worker(SAVIN_STAGES="match")
        await self.import_registrations(stack, pop.registration_lines(), z.registrations)
        await self.wait_consumed(stack, stack.topics.registrations, z.registrations)
        loader.stop()
        # ...then the events, waiting for the workers that match them.
        found = list(pop.events(events))
        expected = sum(k for _, k in found)
        await self.publish("events published", stack.topics.custody_events,
                           self.event_records((line for line, _ in found), z.partitions), events,
                           bootstrap=bootstrap)
        launched = [stack.worker(SAVIN_STAGES="match", **self.profile(name)).launch() for _ in range(workers)]
        for w in launched:
            w.wait_ready(120)
        out = (stack.topics.notices_urgent, stack.topics.notices_routine)
        async with OffsetWatch(bootstrap) as watch:
            await self.wait_for("notices planned", expected, lambda: watch.total(*out), timeout=60)
        stamps = [r.timestamp / 1000 for t in out async for r in read_topic(bootstrap, t)]
        rate, span = spread_rate(stamps, count=events)
        notices_rate, _ = spread_rate(stamps)
        return {
            "registrations": z.registrations, "offenders": z.offenders, "events": events, "workers": workers,
            "notices": expected, "events_per_second": round(rate), "notices_per_second": round(notices_rate),
            "seconds": round(span, 2), "ratio_to_baseline": round(rate / baseline_rate, 3),
        }

    # ---- 3. send -------------------------------------------------------------------

    def routine_jobs(self, stack, count: int, first: int = 0):
        """``count`` routine SMS notice jobs (RELEASE_SCHEDULED), one registration and number each."""
        sealer = Sealer(DataKeys.parse(stack.data_key))
        now = dt.datetime.now(dt.timezone.utc)
        for n in range(first, first + count):
            reg = Registration.model_validate_json(
                data.registration_line(n, data.offender_id(n), email=False, hearings_only=False,
                                       language="es" if n % 4 == 0 else "en"))
            event = parse_event(data.event_line("RELEASE_SCHEDULED", reg.offender_id, n, now))
            (job,) = notices_for(event, [seal_registration(reg, sealer, now)], now)
            yield job.registration_id.encode(), job.model_dump_json().encode(), None

    async def send(self) -> dict:
        z = self.sizes
        stack = self.stack("send", twilio_latency=z.twilio_latency)
        await ensure_topics(self.bootstrap, stack.topics.specs())
        await self.publish("notices queued", stack.topics.notices_routine, self.routine_jobs(stack, z.notices),
                           z.notices)
        stack.start_worker(SAVIN_STAGES="deliver", **self.profile("send"))
        await self.wait_for("notices sent", z.notices, lambda: stack.peers.counts()["messages"], timeout=60)
        rate, span = spread_rate([m.at for m in stack.twilio.messages])
        return {"notices": z.notices, "provider_latency_ms": round(z.twilio_latency * 1000),
                "per_second": round(rate), "seconds": round(span, 2)}

    # ---- 4. latency ------------------------------------------------------------------

    async def offer(self, label: str, topic: str, lines: list[bytes], keys: list[bytes], rate: int,
                    bootstrap: str | None = None) -> list[float]:
        """Publish ``lines`` at ``rate`` a second, each with its key; the wall-clock time
        (time.time()) each was handed to the producer."""
        sent_at: list[float] = []
        prod = producer(bootstrap or self.bootstrap)
        await prod.start()
        # What earlier stages left on the heap is kept out of the collector's way: a full
        # collection in this process would hold up the offering and the clock reading.
        gc.collect()
        gc.freeze()
        try:
            # Redrawn here once a second, not by rich's refresh thread, which would take the GIL
            # from the offering ten times a second.
            with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=self.console, transient=True, auto_refresh=False) as bar:
                task = bar.add_task(label, total=len(lines))
                start = time.monotonic()
                for n, (key, line) in enumerate(zip(keys, lines)):
                    delay = start + n / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    sent_at.append(time.time())
                    await prod.send(topic, line, key=key, partition=partition_for(key, self.sizes.partitions))
                    if n % rate == 0:
                        bar.update(task, completed=n, refresh=True)
                await prod.flush()
        finally:
            gc.unfreeze()
            await prod.stop()
        return sent_at

    async def latency(self, run: int = 1) -> dict:
        z = self.sizes
        total = int(z.rate * z.duration)
        warm = int(z.rate * WARM_UP_SECONDS)
        stack = self.stack(f"latency-{run}")
        # One offender and one SMS-only registration per event, so every accepted
        # message names the event it came from by its number; the warm-up's come after.
        regs = (data.registration_line(n, data.offender_id(n), email=False, hearings_only=False, language="en")
                for n in range(total + warm))
        stack.start_worker(**self.profile(f"latency-{run}"))
        await self.import_registrations(stack, regs, total + warm)
        await self.wait_consumed(stack, stack.topics.registrations, total + warm)

        def events(numbers: range) -> tuple[list[bytes], list[bytes]]:
            return ([data.event_line("RELEASED", data.offender_id(n), n, utcnow()) for n in numbers],
                    [data.offender_id(n).encode() for n in numbers])

        # The warm-up: the first seconds of a worker that has sent nothing yet, timed apart.
        warm_stamps = await self.offer("warming up", stack.topics.custody_events, *events(range(total, total + warm)),
                                       z.rate)
        await self.wait_for("warm-up notices accepted", warm, lambda: stack.peers.counts()["messages"], timeout=60)
        warm_waits = [(m.at - warm_stamps[int(m.to[-7:]) - total]) * 1000 for m in stack.twilio.messages]
        stamps = await self.offer(f"offering {z.rate} events/s", stack.topics.custody_events,
                                  *events(range(total)), z.rate)
        sent_at = {data.phone(n): at for n, at in enumerate(stamps)}
        await self.wait_for("notices accepted", total + warm, lambda: stack.peers.counts()["messages"], timeout=60)
        accepted = stack.twilio.messages[warm:]
        waits = [(m.at - sent_at[m.to]) * 1000 for m in accepted]
        # Where the time goes: publish -> notice job in Kafka is the match stage's share.
        planned: dict[str, float] = {}
        async for r in read_topic(self.bootstrap, stack.topics.notices_urgent):
            planned[json.loads(r.value)["offender_id"]] = r.timestamp / 1000
        offender_of = {data.phone(n): data.offender_id(n) for n in range(total)}
        to_job = [(planned[offender_of[m.to]] - sent_at[m.to]) * 1000 for m in accepted]
        # Each notice's times, for finding where a slow one waited: published, job, accepted.
        (stack.workdir / "timeline.json").write_text(json.dumps(
            sorted((sent_at[m.to], planned[offender_of[m.to]], m.at) for m in accepted)))
        return {"events": total, "offered_per_second": z.rate, "seconds": z.duration,
                **{f"{k}_ms": round(v, 1) for k, v in percentiles(waits).items()},
                "to_notice_job": {f"{k}_ms": round(v, 1) for k, v in percentiles(to_job).items()},
                "warm_up": {"events": warm, **{f"{k}_ms": round(v, 1) for k, v in percentiles(warm_waits).items()}}}

    # ---- 5. recovery ---------------------------------------------------------------------

    async def recovery(self) -> dict:
        z = self.sizes
        stack = self.stack("recovery")
        offenders = max(1, z.recovery_registrations // 2)
        pop = data.Population(z.recovery_registrations, offenders)
        loader = stack.start_worker()
        await self.import_registrations(stack, pop.registration_lines(), z.recovery_registrations)
        await self.wait_consumed(stack, stack.topics.registrations, z.recovery_registrations, timeout=300)
        loaded_rss = loader.peak_rss()
        loader.stop()
        self.say(f"  worker stopped holding {z.recovery_registrations:,} registrations; starting it again")
        worker = stack.worker()
        started = time.time()
        worker.launch()
        await self.publish("event published", stack.topics.custody_events,
                           self.event_records([data.event_line("ESCAPED", pop.notified_offender(), 0, utcnow())], z.partitions), 1)
        await self.wait_for("first notice after restart", 1, lambda: stack.peers.counts()["messages"], timeout=300)
        first = min(m.at for m in stack.twilio.messages)
        restarted_rss = worker.peak_rss()
        return {"registrations": z.recovery_registrations, "seconds_to_first_notice": round(first - started, 2),
                "peak_rss_mb_loading": round(loaded_rss / 2**20), "peak_rss_mb_restart": round(restarted_rss / 2**20),
                "peak_rss_mb": round(max(loaded_rss, restarted_rss) / 2**20)}

    # ---- 6. acknowledgement ---------------------------------------------------------------

    async def acknowledgement(self) -> dict:
        """Urgent events, one registration each (a texting number that is also called); the
        scripted callee answers, types the PIN and presses 1. Publish -> acknowledgement, and
        every step of any channel sent after it."""
        from savin.schemas.escalation import Escalation, EscalationState

        z = self.sizes
        n, pin = z.acknowledgements, "2468"
        stack = self.stack("acknowledgement", callee_digits=(pin + "#", "1"))
        stack.start_web()
        stack.start_worker(**ACK_LADDER)
        lines = []
        for i in range(n):
            lines.append(json.dumps({
                "registration_id": f"R-{i:08d}", "offender_id": data.offender_id(i), "name": f"Victim {i}",
                "language": "es" if i % 4 == 3 else "en", "pin": pin,
                "contacts": [{"channel": "sms", "address": data.phone(i), "verified": True},
                             {"channel": "voice", "address": data.phone(i), "verified": True}]}).encode())
        await self.import_registrations(stack, lines, n)
        await self.wait_consumed(stack, stack.topics.registrations, n)
        sent_at: dict[str, float] = {}
        for i in range(n):  # one at a time, so the calls do not queue behind the account's CPS
            sent_at[f"R-{i:08d}"] = time.time()
            await self.publish("event published", stack.topics.custody_events,
                               self.event_records([data.event_line("ESCAPED", data.offender_id(i), i, utcnow())],
                                                  z.partitions), 1)
            await asyncio.sleep(1.0)

        async def acknowledged() -> dict[str, Escalation]:
            found = {}
            async for r in read_topic(self.bootstrap, stack.topics.escalations):
                e = Escalation.model_validate_json(r.value)
                if e.state is EscalationState.ACKNOWLEDGED:
                    found[e.registration_id] = e
            return found

        async def count() -> int:
            return len(await acknowledged())

        await self.wait_for("notices acknowledged", n, count, timeout=120)
        await asyncio.sleep(3 * float(ACK_LADDER["SAVIN_ESCALATION_UNANSWERED_EVERY"]))  # a repeat would come now
        done = await acknowledged()
        waits = [(e.acknowledged_at.timestamp() - sent_at[rid]) * 1000 for rid, e in done.items()]
        phone_of = {f"R-{i:08d}": data.phone(i) for i in range(n)}
        calls, texts = stack.twilio.calls, stack.twilio.messages
        after = sum(1 for rid, e in done.items() for at in
                    [c.at for c in calls if c.to == phone_of[rid]] + [m.at for m in texts if m.to == phone_of[rid]]
                    if at > e.acknowledged_at.timestamp())
        return {"events": n, **{f"{k}_ms": round(v, 1) for k, v in percentiles(waits).items()},
                "calls": len(calls), "steps_after_acknowledgement": after}

    # ---- 7. burst --------------------------------------------------------------------------

    async def burst(self) -> dict:
        """A statewide change: urgent events, two registrations each with SMS and email, the
        fake Twilio allowing ``burst_sms_per_second``. Time to drain, the SMS rate against
        that limit, and how many requests the fake refused with 429."""
        z = self.sizes
        limit = z.burst_sms_per_second
        stack = self.stack("burst", **limit_options(limit))
        stack.worker_env.update(sender_env(limit))
        regs = (data.registration_line(n, data.offender_id(n // 2), email=True, hearings_only=False,
                                       language="es" if n % 4 == 0 else "en") for n in range(2 * z.burst_events))
        stack.start_worker()
        await self.import_registrations(stack, regs, 2 * z.burst_events)
        await self.wait_consumed(stack, stack.topics.registrations, 2 * z.burst_events)
        lines = [data.event_line("RELEASED", data.offender_id(n), n, utcnow()) for n in range(z.burst_events)]
        texts = mails = 2 * z.burst_events
        started = time.time()
        await self.publish("events published", stack.topics.custody_events,
                           self.event_records(lines, z.partitions), z.burst_events)

        def delivered() -> int:
            c = stack.peers.counts()
            return c["messages"] + c["mails"]

        # No progress for a minute: the fake's 429s have sent the rest to the retry tiers.
        drained = await self.wait_until_stuck("notices accepted", texts + mails, delivered, stuck_after=60)
        sms = [m.at for m in stack.twilio.messages]
        email = [m.at for m in stack.smtp.messages]
        counts = stack.peers.counts()
        rate, span = spread_rate(sms) if len(sms) >= 10 else (0.0, 0.0)
        last = max(sms + email) if sms or email else started
        return {"events": z.burst_events, "registrations": 2 * z.burst_events, "notices": texts + mails,
                "sms": len(sms), "email": len(email), "drained": drained, "sms_limit_per_second": limit,
                "seconds_to_drain": round(last - started, 1),
                "sms_per_second": round(rate, 1), "share_of_limit": round(rate / limit, 3),
                "sms_seconds": round(span, 1),
                "too_many_requests": counts["too_many_requests"] + counts["faults_429"]}

    # ---- 8. backlog --------------------------------------------------------------------------

    async def backlog(self) -> dict:
        """Routine notices queued, the fake Twilio allowing ``backlog_sms_per_second``; halfway
        through, an urgent event: publish -> its SMS accepted."""
        z = self.sizes
        limit = z.backlog_sms_per_second
        stack = self.stack("backlog", **limit_options(limit))
        stack.worker_env.update(sender_env(limit))
        urgent = z.backlog_notices + 1  # its registration's number, beyond the routine ones
        stack.start_worker()
        await self.import_registrations(
            stack, [data.registration_line(urgent, data.offender_id(urgent), email=False, hearings_only=False,
                                           language="en")], 1)
        await self.wait_consumed(stack, stack.topics.registrations, 1)
        await self.publish("routine notices queued", stack.topics.notices_routine,
                           self.routine_jobs(stack, z.backlog_notices), z.backlog_notices)
        await self.wait_for("half the routine notices accepted", z.backlog_notices // 2,
                            lambda: stack.peers.counts()["messages"], timeout=60, interval=0.05)
        queued = z.backlog_notices - stack.peers.counts()["messages"]
        (published,) = await self.offer("urgent event published", stack.topics.custody_events,
                                        [data.event_line("ESCAPED", data.offender_id(urgent), urgent, utcnow())],
                                        [data.offender_id(urgent).encode()], rate=1)
        phone = data.phone(urgent)

        def urgent_accepted() -> int:
            return int(any(m.to == phone for m in stack.twilio.messages))

        await self.wait_for("urgent notice accepted", 1, urgent_accepted, timeout=120, interval=0.05)
        accepted = next(m.at for m in stack.twilio.messages if m.to == phone)
        await self.wait_until_stuck("routine notices accepted", z.backlog_notices + 1,
                                    lambda: stack.peers.counts()["messages"], stuck_after=60)
        sms = [m.at for m in stack.twilio.messages if m.to != phone]
        rate, _ = spread_rate(sms) if len(sms) >= 10 else (0.0, 0.0)
        counts = stack.peers.counts()
        return {"routine_notices": z.backlog_notices, "sms_limit_per_second": limit,
                "routine_waiting_at_publish": queued, "urgent_seconds": round(accepted - published, 3),
                "routine_sms_per_second": round(rate, 1), "routine_accepted": len(sms),
                "too_many_requests": counts["too_many_requests"] + counts["faults_429"]}

    # ---- 9. cluster --------------------------------------------------------------------------

    async def cluster(self) -> dict:
        """The match ratio with 3 workers on a three-broker cluster (replication 3,
        ``min.insync.replicas`` 2), against the baseline on the same cluster."""
        try:
            from savin.dev.broker import DevCluster
        except ImportError:
            return {"measured": False, "reason": "this savin has no three-broker dev cluster"}
        from savin.dev.broker import free_port

        z = self.sizes
        cluster = DevCluster(self.workdir / "cluster", ports=[free_port() for _ in range(3)],
                             controller_ports=[free_port() for _ in range(3)], heap="512m")
        progress = lambda m: self.console.print(f"[dim]cluster: {m}[/dim]")  # noqa: E731
        await asyncio.to_thread(cluster.start, progress=progress)  # it waits with an event loop of its own
        try:
            found = await self.match_run(z.cluster_events, bootstrap=cluster.bootstrap, workers=3, name="cluster",
                                         replication=cluster.replication)
        finally:
            self.close()
            await asyncio.to_thread(cluster.stop, progress=progress)
        return {"measured": True, "brokers": 3, "replication": cluster.replication, **found}

    async def wait_until_stuck(self, label: str, total: int, count: Callable[[], int], stuck_after: float) -> bool:
        """:meth:`wait_for`, but a count that stops moving ends the wait (False) instead of failing."""
        try:
            await self.wait_for(label, total, count, timeout=stuck_after, interval=0.2)
            return True
        except TimeoutError as e:
            self.say(f"  [yellow]{e}[/yellow]")
            return False


def limit_options(per_second: float) -> dict[str, object]:
    """The fake Twilio's options that make it refuse (429) more than ``per_second`` messages a second."""
    return {"messages_per_second": per_second}


def sender_env(sms_per_second: float, email_per_second: float = UNBOUND) -> dict[str, str]:
    """The worker's settings for its provider limits (shared by its partitions)."""
    return {"SAVIN_SMS_PER_SECOND": str(sms_per_second), "SAVIN_EMAIL_PER_SECOND": str(email_per_second)}


# ---- the run --------------------------------------------------------------------------------


def machine() -> dict:
    import platform
    from importlib.metadata import version

    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(), "memory_gb": round(mem / 2**30, 1), "cpu": cpu,
        "python": platform.python_version(), "kafka": "3.9.1",
        **{pkg: version(pkg) for pkg in ("faust-streaming", "aiokafka", "twilio", "savin")},
    }


def summarise(runs: list[dict], *fields: str) -> dict:
    """min / median / max of each field over the runs (a dotted name reaches into a run)."""
    def get(run: dict, name: str):
        for part in name.split("."):
            run = run[part]
        return run

    return {name: spread([get(r, name) for r in runs]) for name in fields}


def figures(results: dict) -> dict[str, float]:
    """Each target's figure: the worst run's where there are several."""
    out: dict[str, float] = {}
    if "match" in results:
        out["match_ratio"] = results["match"]["ratio_to_baseline"]["min"]
    if "send" in results:
        out["send_per_second"] = results["send"]["per_second"]
    if "latency" in results:
        out["latency_p99_ms"] = results["latency"]["p99_ms"]["max"]
    if "recovery" in results:
        out["recovery_seconds"] = results["recovery"]["seconds_to_first_notice"]
        out["peak_rss_mb"] = results["recovery"]["peak_rss_mb"]
    if "burst" in results:
        out["burst_share_of_limit"] = results["burst"]["share_of_limit"]
        out["burst_429s"] = results["burst"]["too_many_requests"]
    if "backlog" in results:
        out["backlog_urgent_seconds"] = results["backlog"]["urgent_seconds"]
    return out


def verdicts(results: dict) -> dict:
    out = {}
    for name, v in figures(results).items():
        op, target = TARGETS[name]
        out[name] = {"value": v, "target": f"{op} {target}", "met": v >= target if op == ">=" else v <= target}
    return out


async def _runs(bench: Bench, what: str, step: Callable[[int], Awaitable[dict]]) -> list[dict]:
    """``Sizes.runs`` runs of ``step``, each stage's workers stopped before the next run."""
    runs = []
    for i in range(1, bench.sizes.runs + 1):
        try:
            runs.append(await step(i))
        finally:
            bench.close()
        bench.say(f"  run {i}: {_summary(what, runs[-1])}")
    return runs


async def _match(bench: Bench) -> dict:
    runs = await _runs(bench, "match", lambda i: bench.match_run(name=f"match-{i}"))
    first = runs[0]
    return {"runs": runs, **{k: first[k] for k in ("registrations", "offenders", "events", "notices")},
            "message_bytes": first["baseline"]["message_bytes"],
            **summarise(runs, "baseline.per_second", "events_per_second", "notices_per_second", "ratio_to_baseline")}


async def _latency(bench: Bench) -> dict:
    runs = await _runs(bench, "latency", bench.latency)
    first = runs[0]
    return {"runs": runs, **{k: first[k] for k in ("events", "offered_per_second", "seconds")},
            **summarise(runs, "p50_ms", "p95_ms", "p99_ms", "max_ms", "to_notice_job.p50_ms",
                        "to_notice_job.p99_ms")}


async def _run(bench: Bench, only: Iterable[str] = STAGES) -> dict:
    results: dict = {}
    steps: list[tuple[str, str, Callable[[], Awaitable[dict]]]] = [
        ("match", f"raw aiokafka consume -> produce, then the match stage; {bench.sizes.runs} run(s)",
         lambda: _match(bench)),
        ("send", "notices through the deliver stage to the fake Twilio", bench.send),
        ("latency", f"publish -> accepted by the fake Twilio; {bench.sizes.runs} run(s)", lambda: _latency(bench)),
        ("recovery", "worker restart with a large registrations table", bench.recovery),
        ("acknowledgement", "urgent event -> text -> call -> PIN and 1 on the keypad", bench.acknowledgement),
        ("burst", "urgent events over SMS and email against the provider's rate limit", bench.burst),
        ("backlog", "an urgent event behind a backlog of routine notices", bench.backlog),
        ("cluster", "the match stage with 3 workers on a three-broker cluster", bench.cluster),
    ]
    steps = [step for step in steps if step[0] in set(only)]
    for i, (name, what, step) in enumerate(steps, 1):
        bench.say(f"[bold][{i}/{len(steps)}] {name}[/bold]: {what}")
        t = time.monotonic()
        try:
            results[name] = await step()
        finally:
            bench.close()  # each stage's workers stop before the next stage starts
        bench.say(f"  {_summary(name, results[name])}  [dim]({time.monotonic() - t:.0f}s)[/dim]")
    return results


def _mmm(d: dict, unit: str = "", pct: bool = False) -> str:
    f = (lambda v: f"{v:.0%}") if pct else (lambda v: f"{v:,}{unit}")
    return " / ".join(f(d[k]) for k in ("min", "median", "max"))


def _summary(name: str, r: dict) -> str:
    if "runs" in r:  # several runs: min / median / max
        return {
            "match": lambda: f"{_mmm(r['events_per_second'])} events/s, {_mmm(r['ratio_to_baseline'], pct=True)}"
                             f" of baseline (min / median / max)",
            "latency": lambda: f"p99 {_mmm(r['p99_ms'], ' ms')} (min / median / max)",
        }[name]()
    return {
        "match": lambda: f"baseline {r['baseline']['per_second']:,} messages/s; {r['events_per_second']:,} events/s, "
                         f"{r['notices_per_second']:,} notices/s out, {r['ratio_to_baseline']:.0%} of baseline",
        "send": lambda: f"{r['per_second']:,} notices/s at {r['provider_latency_ms']} ms provider latency",
        "latency": lambda: f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms",
        "recovery": lambda: f"first notice {r['seconds_to_first_notice']} s after start, peak RSS {r['peak_rss_mb']} MB",
        "acknowledgement": lambda: f"publish -> acknowledged p50 {r['p50_ms']} ms, max {r['max_ms']} ms; "
                                   f"{r['steps_after_acknowledgement']} steps after it",
        "burst": lambda: f"{r['notices']:,} notices in {r['seconds_to_drain']} s, SMS at {r['sms_per_second']}/s"
                         f" ({r['share_of_limit']:.0%} of {r['sms_limit_per_second']}/s), "
                         f"{r['too_many_requests']} × 429",
        "backlog": lambda: f"urgent notice accepted {r['urgent_seconds']} s after publishing, behind "
                           f"{r['routine_waiting_at_publish']:,} routine notices",
        "cluster": lambda: (f"{r['events_per_second']:,} events/s with {r['workers']} workers, "
                            f"{r['ratio_to_baseline']:.0%} of the cluster's baseline" if r.get("measured")
                            else f"not measured: {r['reason']}"),
    }[name]()


def run_bench(sizes: Sizes, out_dir: Path, console: Console | None = None, label: str = "standard",
              only: Iterable[str] = STAGES) -> dict:
    """Run the stages (every one, or ``only`` those) against a broker of its own (or
    SAVIN_KAFKA_BOOTSTRAP); write the results."""
    from savin.dev.bench.report import write_results
    from savin.dev.broker import DevBroker, broker_reachable, free_port

    console = console or Console()
    workdir = Path(os.environ.get("SAVIN_BENCH_DIR", "var/bench")).resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    broker = None
    external = os.environ.get("SAVIN_KAFKA_BOOTSTRAP")
    started = time.monotonic()
    if external and broker_reachable(external):
        bootstrap = external
        console.print(f"using the broker at {bootstrap}")
    else:
        broker = DevBroker(data_dir=workdir / "kafka", port=free_port(), controller_port=free_port(), heap="1g")
        broker.start(progress=lambda m: console.print(f"[dim]broker: {m}[/dim]"))
        bootstrap = broker.bootstrap
    bench = Bench(bootstrap, workdir, sizes, console)
    try:
        results = asyncio.run(_run(bench, only))
    finally:
        bench.close()
        if broker is not None:
            broker.stop(progress=lambda m: console.print(f"[dim]broker: {m}[/dim]"))
    document = {
        "run": {"label": label, "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - started, 1)},
        "machine": machine(),
        "sizes": asdict(sizes),
        **results,
    }
    document["targets"] = verdicts(document)
    write_results(document, out_dir)
    console.print(f"results written to {out_dir / 'results.json'} and {out_dir / 'RESULTS.md'}")
    return document
