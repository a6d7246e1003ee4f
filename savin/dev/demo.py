"""`savin demo`: the whole pipeline on one machine, start to finish.

Starts a Kafka broker (or uses SAVIN_KAFKA_BOOTSTRAP), the fake Twilio and an
SMTP server, runs the worker as its own process, imports sample registrations,
publishes a sample day of custody events (with a duplicate and a malformed
one), and shows what was delivered. A victim then registers on the portal, is
told of a hearing, and is followed up after an escape: the text first, then a
call on which a scripted callee types the PIN and presses 1. An operator then
signs in to the console and follows the escape notice's timeline. Everything it
started is stopped again; with ``serve=True`` it keeps running (broker, peers,
worker, web) until interrupted, and prints where the portal and the console
are and the demo operator's sign-in.
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


def run_demo(console: Console | None = None, workdir: Path = Path("var/demo"), serve: bool = False) -> int:
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
            console.print(f"[bold]1/9[/] using the broker at {bootstrap}")
        else:
            console.print("[bold]1/9[/] starting Kafka 3.9.1 (KRaft)")
            broker = DevBroker(data_dir=workdir / "kafka", port=free_port(), controller_port=free_port())
            bootstrap = broker.start(progress=lambda m: console.print(f"      {m}", highlight=False))

        console.print("[bold]2/9[/] starting the fake Twilio and the SMTP server")
        stack = LocalStack(bootstrap=bootstrap, workdir=workdir, namespace=f"demo{os.getpid()}")
        stack.start_peers()

        console.print("[bold]3/9[/] starting the worker (its own process; log: "
                      f"{workdir / 'worker.log'})")
        # A short ladder, so the demo shows the call that follows an unacknowledged text.
        stack.start_worker(SAVIN_ESCALATION_FIRST_CALL=str(DEMO_FIRST_CALL))
        web = stack.start_web()

        async def drive():
            console.print(f"[bold]4/9[/] importing {len(registrations)} registrations (sealed before publishing)")
            report = await stack.import_registrations(registrations)
            await stack.wait_caught_up(stack.topics.registrations)
            console.print(f"      {report.published} registrations applied")

            console.print(f"[bold]5/9[/] publishing {len(events)} custody events "
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
        console.print(f"[bold]6/9[/] a victim registers on the portal ({web.url}, log: {workdir / 'web-0.log'})")
        rid, portal_notices = asyncio.run(_register_on_the_portal(console, stack, web.url))
        console.print(f"[bold]7/9[/] {_ESCAPE['offender_name']} escapes: the registrant is texted, then called "
                      f"after {DEMO_FIRST_CALL} s")
        followed_up, escape_notice = asyncio.run(_escape_followed_up(console, stack, rid))
        console.print(f"[bold]8/9[/] an operator signs in to the console ({web.url}/console) and opens the "
                      "escape notice's timeline")
        password = asyncio.run(_operator_account(stack))
        _show_timeline(console, web.url, password, escape_notice)
        console.print("[bold]9/9[/] done in {:.1f}s\n".format(time.monotonic() - started))
        _show(console, results, letters, sent)
        _show_portal(console, portal_notices)
        console.print(followed_up)
        if serve:
            _serve(console, stack, web.url, bootstrap, password)
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
    sms = next(r.notice_id for r in await stack.results()
               if r.registration_id == rid and str(r.event_id) == event["event_id"] and r.channel.value == "sms")
    return (f"the escape notice was acknowledged by {done.acknowledged_by.value} "
            f"{done.acknowledged_at.timestamp() - published:.1f} s after the event, on call {done.calls}; "
            f"{planned}"), str(sms)


#: The console's demo account (an admin, so every page can be tried).
DEMO_OPERATOR = "demo"


async def _operator_account(stack) -> str:
    """Make the demo's operator account, as `savin operators add` does; its password."""
    from savin.domain.operators import generate_password
    from savin.ops.operators import action, new_account, write_records
    from savin.schemas.operators import Role

    password = generate_password()
    now = dt.datetime.now(dt.timezone.utc)
    await write_records(stack.settings(), [new_account(DEMO_OPERATOR, Role.ADMIN, password, now, "cli"),
                                           action("cli", "account.add", now, {"operator": [DEMO_OPERATOR]},
                                                  detail="role admin", via="cli")])
    return password


def _show_timeline(console: Console, url: str, password: str, notice_id: str) -> None:
    """Sign in as the demo operator and print the notice's timeline from its console page."""
    from savin.dev.testing.console_client import ConsoleClient

    client = ConsoleClient(url)
    try:
        deadline = time.monotonic() + 30
        while client.sign_in(DEMO_OPERATOR, password).status_code != 303:  # the account reaches the web's view
            if time.monotonic() > deadline:
                raise RuntimeError("the demo operator could not sign in to the console")
            time.sleep(0.3)
        page = ""
        while time.monotonic() < deadline:
            page = client.get(f"/console/notices/{notice_id}").text
            if "acknowledg" in page.lower():
                break
            time.sleep(0.3)
        for when, title in _TIMELINE.findall(page):
            console.print(f"      {_plain(when)}  {_plain(title)}", highlight=False, markup=False)
    finally:
        client.close()


_TIMELINE = re.compile(r'class="timeline__when[^"]*">(.*?)</p>\s*<p class="timeline__title">(.*?)</p>', re.S)


def _plain(fragment: str) -> str:
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _serve(console: Console, stack, url: str, bootstrap: str, password: str) -> None:
    """Keep everything running until Ctrl-C, and say where it is."""
    console.print("\n[bold]Still running[/] (Ctrl-C stops everything):")
    console.print(f"  portal            {url}/", highlight=False)
    console.print(f"  operator console  {url}/console   sign in as {DEMO_OPERATOR} / {password}", highlight=False)
    console.print(f"  operator API      {url}/api/v1/openapi.json (a token: savin operators token create "
                  f"{DEMO_OPERATOR} --scope viewer)", highlight=False)
    console.print(f"  worker metrics    {stack.workers[0].url}/metrics", highlight=False)
    console.print(f"  Kafka             {bootstrap} (namespace {stack.namespace})", highlight=False)
    console.print("  for the CLI:      " + " ".join(f"{k}={v}" for k, v in stack.env().items()
                                                   if k in ("SAVIN_KAFKA_BOOTSTRAP", "SAVIN_NAMESPACE",
                                                            "SAVIN_DATA_KEY", "SAVIN_INDEX_KEY")),
                  highlight=False, markup=False)
    try:
        while all(w.live() for w in stack.workers):
            time.sleep(1)
        console.print("[bold red]a process stopped[/]; see the logs in var/demo")
    except KeyboardInterrupt:
        console.print("\nstopping")


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
