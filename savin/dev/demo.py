"""`savin demo`: the whole pipeline on one machine, start to finish.

Starts a Kafka broker (or uses SAVIN_KAFKA_BOOTSTRAP), the fake Twilio and an
SMTP server, runs the worker as its own process, imports sample registrations,
publishes a sample day of custody events (with a duplicate and a malformed
one), and shows what was delivered. A victim then registers on the portal, is
told of a hearing, and is followed up after an escape: the text first, then a
call on which a scripted callee types the PIN and presses 1. Everything it
started is stopped again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shutil
import time
import uuid
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
            console.print(f"[bold]1/8[/] using the broker at {bootstrap}")
        else:
            console.print("[bold]1/8[/] starting Kafka 3.9.1 (KRaft)")
            broker = DevBroker(data_dir=workdir / "kafka", port=free_port(), controller_port=free_port())
            bootstrap = broker.start(progress=lambda m: console.print(f"      {m}", highlight=False))

        console.print("[bold]2/8[/] starting the fake Twilio and the SMTP server")
        stack = LocalStack(bootstrap=bootstrap, workdir=workdir, namespace=f"demo{os.getpid()}")
        stack.start_peers()

        console.print("[bold]3/8[/] starting the worker (its own process; log: "
                      f"{workdir / 'worker.log'})")
        # A short ladder, so the demo shows the call that follows an unacknowledged text.
        stack.start_worker(SAVIN_ESCALATION_FIRST_CALL=str(DEMO_FIRST_CALL))
        web = stack.start_web()

        async def drive():
            console.print(f"[bold]4/8[/] importing {len(registrations)} registrations (sealed before publishing)")
            report = await stack.import_registrations(registrations)
            await stack.wait_caught_up(stack.topics.registrations)
            console.print(f"      {report.published} registrations applied")

            console.print(f"[bold]5/8[/] publishing {len(events)} custody events "
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
        sent = (len(stack.twilio.messages), len(stack.smtp.messages))
        console.print(f"[bold]6/8[/] a victim registers on the portal ({web.url}, log: {workdir / 'web-0.log'})")
        rid, portal_notices = asyncio.run(_register_on_the_portal(console, stack, web.url))
        console.print(f"[bold]7/8[/] {_ESCAPE['offender_name']} escapes: the registrant is texted, then called "
                      f"after {DEMO_FIRST_CALL} s")
        followed_up = asyncio.run(_escape_followed_up(console, stack, rid))
        console.print("[bold]8/8[/] done in {:.1f}s\n".format(time.monotonic() - started))
        _show(console, results, letters, sent)
        _show_portal(console, portal_notices)
        console.print(followed_up)
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


#: The event the portal's registrant is told of: a hearing for an offender the sample day knows.
_HEARING = {
    "event_type": "HEARING_SCHEDULED", "offender_id": "MO-2097152", "offender_name": "Richard Roe",
    "source": "mo-parole-board", "schema_version": 1,
    "payload": {"hearing_id": "H-2027-0311", "starts_at": "2027-04-06T14:00:00-05:00",
                "location": "Parole Board, 3400 Knipp Drive, Jefferson City",
                "how_to_attend": "Call 573-751-8488 to attend or to submit a victim impact statement."},
}


#: Seconds before an unacknowledged urgent notice is followed by a call, in the demo (300 by default).
DEMO_FIRST_CALL = 8
_PHONE, _PIN = "+15735550177", "2468"
_ESCAPE = {
    "event_type": "ESCAPED", "offender_id": "MO-2097152", "offender_name": "Richard Roe",
    "source": "mo-doc-oms", "schema_version": 1, "payload": {"facility": "Farmington Correctional Center"},
}


async def _register_on_the_portal(console: Console, stack, url: str) -> tuple[str, list]:
    """Register in Spanish through the portal's forms, confirm the phone's code and the email's
    link as a victim would, then publish a hearing and wait for its two notices."""
    from savin.dev.testing.portal_client import PortalClient

    phone, mail = _PHONE, "rosa.demo@example.org"
    client = PortalClient(url, language="es")
    sms_before, mail_before = len(stack.twilio.messages), len(stack.smtp.messages)
    rid = await asyncio.to_thread(client.register, _HEARING["offender_id"], phone=phone, email=mail, pin=_PIN)
    console.print(f"      registration {rid}: a code sent by SMS, a link by email; nothing else until confirmed")

    async def proofs_sent():
        return len(stack.twilio.messages) > sms_before and len(stack.smtp.messages) > mail_before

    await wait_until(proofs_sent, 30, interval=0.2, what="the portal's code and link")
    code = re.search(r"\b(\d{6})\b", stack.twilio.messages[-1].body).group(1)
    text = stack.smtp.messages[-1].message.get_body(("plain",)).get_content()
    link = re.search(r"https?://\S+/verify/email/\S+", text).group(0)
    await asyncio.to_thread(client.confirm_code, code)
    await asyncio.to_thread(client.confirm_link, link)
    console.print("      the code typed on the portal and the link opened: both contacts confirmed")

    await stack.wait_caught_up(stack.topics.registrations)
    event = {**_HEARING, "event_id": str(uuid.uuid4()), "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    report = await stack.publish_events([json.dumps(event)])
    if report.published != 1:
        raise RuntimeError(f"the hearing event was refused: {report}")

    async def told():
        mine = [r for r in await stack.results()
                if r.registration_id == rid and r.source == "attempt" and r.status in DONE_STATUSES]
        return len({r.channel for r in mine}) == 2

    await wait_until(told, 60, interval=0.3, what="the portal registrant's notices")
    return rid, [r for r in await stack.results() if r.registration_id == rid and r.source == "attempt"]


async def _escape_followed_up(console: Console, stack, rid: str) -> str:
    """Publish an escape for the portal registrant's offender; nobody answers the text, so
    the call follows; the callee types the PIN and presses 1. What the call said, and that
    nothing followed the acknowledgement."""
    from savin.dev.testing.callee import Callee
    from savin.ops.escalations import latest_escalations
    from savin.schemas.escalation import EscalationState

    stack.twilio.callees[_PHONE] = Callee("person", digits=(_PIN + "#", "1"))
    texts_before = len([m for m in stack.twilio.messages if m.to == _PHONE])
    event = {**_ESCAPE, "event_id": str(uuid.uuid4()), "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    published = time.time()
    await stack.publish_events([json.dumps(event)])
    settings = stack.settings()

    async def acknowledged():
        return next((e for e in await latest_escalations(settings)
                     if e.registration_id == rid and str(e.event_id) == event["event_id"]
                     and e.state is EscalationState.ACKNOWLEDGED), None)

    done = await wait_until(acknowledged, 90, interval=0.5, what="the escape notice's acknowledgement")
    texts = [m for m in stack.twilio.messages if m.to == _PHONE][texts_before:]
    console.print(f"      SMS: {texts[0].body}", highlight=False, markup=False)
    calls = [c for c in stack.twilio.calls if c.to == _PHONE]
    for said in calls[-1].said:
        console.print(f"      call ({said.voice}): {said.text}", highlight=False, markup=False)
    planned = "no further call is planned" if done.next_call_at is None else f"next call {done.next_call_at}"
    return (f"the escape notice was acknowledged by {done.acknowledged_by.value} "
            f"{done.acknowledged_at.timestamp() - published:.1f} s after the event, on call {done.calls}; {planned}")


def _show_portal(console: Console, notices) -> None:
    by_channel = ", ".join(sorted(f"{r.channel.value} {r.status.value}" for r in notices))
    console.print(f"the registrant from the portal was told of the hearing in Spanish: {by_channel}")


def _show(console: Console, results, letters, sent: tuple[int, int]) -> None:
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
    console.print(f"fake Twilio accepted {sent[0]} SMS; SMTP server received {sent[1]} emails; "
                  f"the repeated event sent nothing more")
    show_table("Dead letters", [("dead letter", True), ("source", True), ("reason", False)],
               [[str(d.dead_letter_id), f"{d.source_topic}[{d.source_partition}]@{d.source_offset}", d.reason]
                for d in letters])
