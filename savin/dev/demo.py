"""`savin demo`: the whole pipeline on one machine, start to finish.

Starts a Kafka broker (or uses SAVIN_KAFKA_BOOTSTRAP), the fake Twilio and an
SMTP server, runs the worker as its own process, imports sample registrations,
publishes a sample day of custody events (with a duplicate and a malformed
one), and shows what was delivered. Everything it started is stopped again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

from savin.dev.broker import DevBroker, broker_reachable, free_port
from savin.domain.matching import notices_for
from savin.ops.reading import wait_until
from savin.schemas import DONE_STATUSES, Registration, parse_event
from savin.sealing import Sealer, new_key, seal_registration
from savin.settings import DataKeys

__all__ = ["run_demo", "expected_notices"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"  # the repository's examples/


def expected_notices(registration_lines: list[bytes], event_lines: list[bytes]) -> int:
    """How many notices the sample data calls for, by the same rules the worker uses."""
    sealer = Sealer(DataKeys.parse(new_key()))
    now = dt.datetime.now(dt.timezone.utc)
    regs = [seal_registration(Registration.model_validate_json(l), sealer, now) for l in registration_lines]
    events = {e.event_id: e for e in (parse_event(l) for l in event_lines)}
    return sum(len(notices_for(e, regs, now)) for e in events.values())


def run_demo(console: Console | None = None, workdir: Path = Path("var/demo")) -> int:
    console = console or Console()
    from savin.dev.testing.stack import LocalStack

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    registrations = [l for l in (EXAMPLES / "registrations.jsonl").read_bytes().splitlines() if l.strip()]
    events = [l for l in (EXAMPLES / "demo-events.jsonl").read_bytes().splitlines() if l.strip()]
    malformed = (EXAMPLES / "malformed-event.json").read_bytes().strip()
    expected = expected_notices(registrations, events)

    broker = None
    stack = None
    started = time.monotonic()
    try:
        external = os.environ.get("SAVIN_KAFKA_BOOTSTRAP")
        if external and broker_reachable(external):
            bootstrap = external
            console.print(f"[bold]1/6[/] using the broker at {bootstrap}")
        else:
            console.print("[bold]1/6[/] starting Kafka 3.9.1 (KRaft)")
            broker = DevBroker(data_dir=workdir / "kafka", port=free_port(), controller_port=free_port())
            bootstrap = broker.start(progress=lambda m: console.print(f"      {m}", highlight=False))

        console.print("[bold]2/6[/] starting the fake Twilio and the SMTP server")
        stack = LocalStack(bootstrap=bootstrap, workdir=workdir, namespace=f"demo{os.getpid()}")
        stack.start_peers()

        console.print("[bold]3/6[/] starting the worker (its own process; log: "
                      f"{workdir / 'worker.log'})")
        stack.start_worker()

        async def drive():
            console.print(f"[bold]4/6[/] importing {len(registrations)} registrations (sealed before publishing)")
            report = await stack.import_registrations(registrations)
            await stack.wait_caught_up(stack.topics.registrations)
            console.print(f"      {report.published} registrations applied")

            console.print(f"[bold]5/6[/] publishing {len(events)} custody events "
                          "(one is a repeat) and one malformed event")
            await stack.publish_events(events[:3])
            await stack.publish_raw(malformed, key=b"MO-1048576")
            await stack.publish_events(events[3:])

            with console.status(f"waiting for {expected} notices and 1 dead letter") as status:
                async def done():
                    results = await stack.results()
                    final = {r.notice_id for r in results if r.status in DONE_STATUSES}
                    status.update(f"delivered {len(final)}/{expected} notices")
                    return len(final) >= expected and len(await stack.dead_letters()) >= 1

                await wait_until(done, 90, interval=0.5, what="the demo's notices")
            return await stack.results(), await stack.dead_letters()

        results, letters = asyncio.run(drive())
        console.print("[bold]6/6[/] done in {:.1f}s\n".format(time.monotonic() - started))
        _show(console, results, letters, stack)
        return 0
    except Exception as e:  # the demo reports, then cleans up
        console.print(f"[bold red]demo failed:[/] {e}")
        if stack and stack.workers:
            console.print(stack.workers[-1].tail(), highlight=False, markup=False)
        return 1
    finally:
        if stack is not None:
            stack.stop()
        if broker is not None:
            broker.stop(progress=lambda m: None)
        console.print("stopped the worker, the peers and the broker")


def _show(console: Console, results, letters, stack) -> None:
    latest = {}
    for r in results:
        if r.source == "attempt":
            latest[r.notice_id] = r
    from savin.cli import show_table  # ids whole, as every listing of the CLI shows them

    show_table("Notices delivered",
               [("event", False), ("registration", True), ("channel", False), ("status", False),
                ("provider ref", True)],
               [[r.event_type, r.registration_id, r.channel.value, r.status.value, r.provider_ref or ""]
                for r in sorted(latest.values(), key=lambda r: (r.at, r.registration_id, r.channel.value))])
    counts = Counter(r.status.value for r in latest.values())
    console.print(f"{len(latest)} notices: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    console.print(f"fake Twilio accepted {len(stack.twilio.messages)} SMS; "
                  f"SMTP server received {len(stack.smtp.messages)} emails; "
                  f"the repeated event sent nothing more")
    show_table("Dead letters", [("dead letter", True), ("source", True), ("reason", False)],
               [[str(d.dead_letter_id), f"{d.source_topic}[{d.source_partition}]@{d.source_offset}", d.reason]
                for d in letters])
