"""Runs the five measurements of ``savin bench`` and writes the results.

Every stage gets its own namespace (topics, consumer group, worker state) on
one broker, and every worker runs as its own process, as in production.
Throughput is taken between the 10th and 90th percentile of the output's own
timestamps, so start-up and the last stragglers do not blur it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
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
from savin.domain.matching import notices_for
from savin.ops.reading import OffsetWatch, read_topic
from savin.schemas import Registration, parse_event
from savin.sealing import Sealer, seal_registration
from savin.settings import DataKeys
from savin.topics import TopicSpec, ensure_topics, partition_for, producer, registration_record

__all__ = ["Sizes", "STANDARD", "QUICK", "run_bench"]


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


STANDARD = Sizes()
QUICK = Sizes(events=10_000, registrations=10_000, offenders=5_000, notices=1_000, duration=10.0,
              recovery_registrations=20_000, acknowledgements=5)

#: The ladder of the acknowledgement stage: the call at once after the text, repeats after 3 s.
ACK_LADDER = {"SAVIN_ESCALATION_FIRST_CALL": "0", "SAVIN_ESCALATION_UNANSWERED_EVERY": "3",
              "SAVIN_ESCALATION_ANSWERED_EVERY": "3", "SAVIN_ESCALATION_GIVE_UP": "120"}

TARGETS = {
    "match_ratio": (">=", 0.5),
    "send_per_second": (">=", 500),
    "latency_p99_ms": ("<=", 500),
    "recovery_seconds": ("<=", 30),
    "peak_rss_mb": ("<=", 400),
}


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

    # ---- helpers ------------------------------------------------------------

    def say(self, text: str) -> None:
        self.console.print(text)

    def stack(self, name: str, twilio_latency: float = 0.0):
        from savin.dev.testing.stack import LocalStack

        s = LocalStack(bootstrap=self.bootstrap, workdir=self.workdir / name,
                       namespace=f"bench-{name}-{uuid.uuid4().hex[:6]}", partitions=self.sizes.partitions,
                       worker_env={"SAVIN_LOG_LEVEL": "warning"})
        s.start_peers(twilio_latency=twilio_latency)
        s.twilio.callbacks_enabled = False
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
                      total: int) -> None:
        prod = producer(self.bootstrap, linger_ms=20, max_batch_size=512 * 1024)
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

        await ensure_topics(self.bootstrap, stack.topics.specs())
        await self.publish("registrations published", stack.topics.registrations, records(), total)

    async def wait_consumed(self, stack, topic: str, total: int, timeout: float = 120.0) -> None:
        async with OffsetWatch(self.bootstrap) as watch:
            async def done() -> int:
                return total - await watch.lag(stack.topics.group(stack.topics.stage_reading(topic)), topic)

            await self.wait_for(f"{topic.split('.', 1)[1]} consumed", total, done, timeout, interval=0.5)

    @staticmethod
    def event_records(lines: Iterable[bytes], partitions: int):
        for line in lines:
            key = json.loads(line)["offender_id"].encode()
            yield key, line, partition_for(key, partitions)

    # ---- 1. baseline ----------------------------------------------------------

    async def baseline(self) -> dict:
        n = self.sizes.events
        ns = f"bench-baseline-{uuid.uuid4().hex[:6]}"
        source, sink = f"{ns}.in", f"{ns}.out"
        await ensure_topics(self.bootstrap, [TopicSpec(source, self.sizes.partitions),
                                             TopicSpec(sink, self.sizes.partitions)])
        pop = data.Population(0, max(1, self.sizes.offenders))
        lines = [line for line, _ in pop.events(n)]
        size = sum(map(len, lines)) / len(lines)
        await self.publish("messages published", source, self.event_records(lines, self.sizes.partitions), n)
        proc = subprocess.Popen([sys.executable, "-m", "savin.dev.bench.passthrough", self.bootstrap, source, sink, ns],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            async with OffsetWatch(self.bootstrap) as watch:
                await self.wait_for("passthrough", n, lambda: watch.total(sink), timeout=60)
        finally:
            proc.terminate()
            proc.wait(30)
        stamps = [r.timestamp / 1000 async for r in read_topic(self.bootstrap, sink)]
        rate, span = spread_rate(stamps)
        return {"messages": n, "message_bytes": round(size), "per_second": round(rate), "seconds": round(span, 2)}

    # ---- 2. match ----------------------------------------------------------------

    async def match(self, baseline_rate: float) -> dict:
        z = self.sizes
        stack = self.stack("match")
        pop = data.Population(z.registrations, z.offenders)
        # Registrations first, applied by a worker that only does that...
        loader = stack.start_worker(SAVIN_STAGES="match")
        await self.import_registrations(stack, pop.registration_lines(), z.registrations)
        await self.wait_consumed(stack, stack.topics.registrations, z.registrations)
        loader.stop()
        # ...then the events, waiting for a worker that matches them.
        events = list(pop.events(z.events))
        expected = sum(k for _, k in events)
        await self.publish("events published", stack.topics.custody_events,
                           self.event_records((line for line, _ in events), z.partitions), z.events)
        stack.start_worker(SAVIN_STAGES="match", **self.profile("match"))
        out = (stack.topics.notices_urgent, stack.topics.notices_routine)
        async with OffsetWatch(self.bootstrap) as watch:
            await self.wait_for("notices planned", expected, lambda: watch.total(*out), timeout=60)
        stamps = [r.timestamp / 1000 for t in out async for r in read_topic(self.bootstrap, t)]
        rate, span = spread_rate(stamps, count=z.events)
        notices_rate, _ = spread_rate(stamps)
        return {
            "registrations": z.registrations, "offenders": z.offenders, "events": z.events,
            "notices": expected, "events_per_second": round(rate), "notices_per_second": round(notices_rate),
            "seconds": round(span, 2), "ratio_to_baseline": round(rate / baseline_rate, 3),
        }

    # ---- 3. send -------------------------------------------------------------------

    async def send(self) -> dict:
        z = self.sizes
        stack = self.stack("send", twilio_latency=z.twilio_latency)
        settings = stack.settings()
        sealer = Sealer(DataKeys.parse(stack.data_key))
        now = dt.datetime.now(dt.timezone.utc)

        def jobs():
            for n in range(z.notices):
                reg = Registration.model_validate_json(
                    data.registration_line(n, data.offender_id(n), email=False, hearings_only=False,
                                           language="es" if n % 4 == 0 else "en"))
                event = parse_event(data.event_line("RELEASE_SCHEDULED", reg.offender_id, n))
                (job,) = notices_for(event, [seal_registration(reg, sealer, now)], now)
                yield job.registration_id.encode(), job.model_dump_json().encode(), None

        await ensure_topics(self.bootstrap, stack.topics.specs())
        await self.publish("notices queued", stack.topics.notices_routine, jobs(), z.notices)
        stack.start_worker(SAVIN_STAGES="deliver", **self.profile("send"))
        await self.wait_for("notices sent", z.notices, lambda: len(stack.twilio.messages), timeout=60)
        rate, span = spread_rate([m.at for m in stack.twilio.messages])
        del settings
        return {"notices": z.notices, "provider_latency_ms": round(z.twilio_latency * 1000),
                "per_second": round(rate), "seconds": round(span, 2)}

    # ---- 4. latency ------------------------------------------------------------------

    async def latency(self) -> dict:
        z = self.sizes
        total = int(z.rate * z.duration)
        stack = self.stack("latency")
        # One offender and one SMS-only registration per event, so every accepted
        # message names the event it came from by its number.
        regs = (data.registration_line(n, data.offender_id(n), email=False, hearings_only=False, language="en")
                for n in range(total))
        stack.start_worker()
        await self.import_registrations(stack, regs, total)
        await self.wait_consumed(stack, stack.topics.registrations, total)
        lines = [data.event_line("RELEASED", data.offender_id(n), n) for n in range(total)]
        sent_at: dict[str, float] = {}
        topic = stack.topics.custody_events
        prod = producer(self.bootstrap)
        await prod.start()
        try:
            with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=self.console, transient=True) as bar:
                task = bar.add_task(f"offering {z.rate} events/s", total=total)
                start = time.monotonic()
                for n, line in enumerate(lines):
                    delay = start + n / z.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    key = data.offender_id(n).encode()
                    sent_at[data.phone(n)] = time.time()
                    await prod.send(topic, line, key=key,
                                    partition=partition_for(key, z.partitions))
                    if n % z.rate == 0:
                        bar.update(task, completed=n)
                await prod.flush()
        finally:
            await prod.stop()
        await self.wait_for("notices accepted", total, lambda: len(stack.twilio.messages), timeout=60)
        waits = [(m.at - sent_at[m.to]) * 1000 for m in stack.twilio.messages]
        # Where the time goes: publish -> notice job in Kafka is the match stage's share.
        planned: dict[str, float] = {}
        async for r in read_topic(self.bootstrap, stack.topics.notices_urgent):
            planned[json.loads(r.value)["offender_id"]] = r.timestamp / 1000
        offender_of = {data.phone(n): data.offender_id(n) for n in range(total)}
        to_job = [(planned[offender_of[m.to]] - sent_at[m.to]) * 1000 for m in stack.twilio.messages]
        return {"events": total, "offered_per_second": z.rate, "seconds": z.duration,
                **{f"{k}_ms": round(v, 1) for k, v in percentiles(waits).items()},
                "to_notice_job": {f"{k}_ms": round(v, 1) for k, v in percentiles(to_job).items()}}

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
                           self.event_records([data.event_line("ESCAPED", pop.notified_offender(), 0)], z.partitions), 1)
        await self.wait_for("first notice after restart", 1, lambda: len(stack.twilio.messages), timeout=300)
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
        from savin.dev.testing.callee import Callee
        from savin.schemas.escalation import Escalation, EscalationState

        z = self.sizes
        n, pin = z.acknowledgements, "2468"
        stack = self.stack("acknowledgement")
        stack.start_web()
        stack.start_worker(**ACK_LADDER)
        lines = []
        for i in range(n):
            stack.twilio.callees[data.phone(i)] = Callee("person", digits=(pin + "#", "1"))
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
                               self.event_records([data.event_line("ESCAPED", data.offender_id(i), i)],
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
        after = sum(1 for rid, e in done.items() for at in
                    [c.at for c in stack.twilio.calls if c.to == phone_of[rid]]
                    + [m.at for m in stack.twilio.messages if m.to == phone_of[rid]]
                    if at > e.acknowledged_at.timestamp())
        return {"events": n, **{f"{k}_ms": round(v, 1) for k, v in percentiles(waits).items()},
                "calls": len(stack.twilio.calls), "steps_after_acknowledgement": after}


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


def verdicts(results: dict) -> dict:
    figures = {
        "match_ratio": results["match"]["ratio_to_baseline"],
        "send_per_second": results["send"]["per_second"],
        "latency_p99_ms": results["latency"]["p99_ms"],
        "recovery_seconds": results["recovery"]["seconds_to_first_notice"],
        "peak_rss_mb": results["recovery"]["peak_rss_mb"],
    }
    out = {}
    for name, (op, target) in TARGETS.items():
        v = figures[name]
        out[name] = {"value": v, "target": f"{op} {target}", "met": v >= target if op == ">=" else v <= target}
    return out


async def _run(bench: Bench) -> dict:
    results: dict = {}
    steps: list[tuple[str, str, Callable[[], Awaitable[dict]]]] = [
        ("baseline", "raw aiokafka consume -> produce", bench.baseline),
        ("match", "registrations + events through the match stage", lambda: bench.match(results["baseline"]["per_second"])),
        ("send", "notices through the deliver stage to the fake Twilio", bench.send),
        ("latency", "publish -> accepted by the fake Twilio", bench.latency),
        ("recovery", "worker restart with a large registrations table", bench.recovery),
        ("acknowledgement", "urgent event -> text -> call -> PIN and 1 on the keypad", bench.acknowledgement),
    ]
    for i, (name, what, step) in enumerate(steps, 1):
        bench.say(f"[bold][{i}/{len(steps)}] {name}[/bold]: {what}")
        t = time.monotonic()
        try:
            results[name] = await step()
        finally:
            bench.close()  # each stage's workers stop before the next stage starts
        bench.say(f"  {_summary(name, results[name])}  [dim]({time.monotonic() - t:.0f}s)[/dim]")
    return results


def _summary(name: str, r: dict) -> str:
    return {
        "baseline": lambda: f"{r['per_second']:,} messages/s ({r['message_bytes']} bytes each)",
        "match": lambda: f"{r['events_per_second']:,} events/s, {r['notices_per_second']:,} notices/s out, "
                         f"{r['ratio_to_baseline']:.0%} of baseline",
        "send": lambda: f"{r['per_second']:,} notices/s at {r['provider_latency_ms']} ms provider latency",
        "latency": lambda: f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms",
        "recovery": lambda: f"first notice {r['seconds_to_first_notice']} s after start, peak RSS {r['peak_rss_mb']} MB",
        "acknowledgement": lambda: f"publish -> acknowledged p50 {r['p50_ms']} ms, max {r['max_ms']} ms; "
                                   f"{r['steps_after_acknowledgement']} steps after it",
    }[name]()


def run_bench(sizes: Sizes, out_dir: Path, console: Console | None = None, label: str = "standard") -> dict:
    """Run every stage against a broker of its own (or SAVIN_KAFKA_BOOTSTRAP); write the results."""
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
        results = asyncio.run(_run(bench))
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
