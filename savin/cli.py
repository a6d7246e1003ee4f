"""The ``savin`` command line.

Every command that talks to Kafka first checks, quickly, that a broker
answers; a broker that does not, or a Kafka error later on, is one line on
stderr and exit code 1. Input files are read and checked before any
connection is made. Output carries ids, never a name, address or message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from savin import __version__
from savin.dev.broker import BrokerError
from savin.schemas.notices import DeliveryStatus
from savin.settings import Settings, SettingsError, load_settings

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _typer(help: str) -> typer.Typer:
    return typer.Typer(help=help, no_args_is_help=True, context_settings=CONTEXT, pretty_exceptions_enable=False)


app = _typer("savin: event-driven victim notification engine.")
schema_app = _typer("Published JSON Schemas.")
registrations_app = _typer("Victim registrations.")
dead_app = _typer("Inspect and replay dead letters.")
keys_app = _typer("Data keys for sealing personal data.")
notices_app = _typer("Audit notices: where each one stands and how it got there.")
app.add_typer(schema_app, name="schema")
app.add_typer(registrations_app, name="registrations")
app.add_typer(dead_app, name="dead-letters")
app.add_typer(keys_app, name="keys")
app.add_typer(notices_app, name="notices")

out = Console()
# Messages are never wrapped: one message, one line, whatever the terminal's width.
err = Console(stderr=True, soft_wrap=True, highlight=False)

T = TypeVar("T")


def _version(value: bool) -> None:
    if value:
        print(f"savin {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
):
    """savin: event-driven victim notification engine."""


def fail(message: str, code: int = 1) -> typer.Exit:
    # The message is text, not markup: "[A-Z]{3}" in a validation message must survive.
    err.print(Text.assemble(("error:", "bold red"), " ", message))
    return typer.Exit(code)


def say(message: str) -> None:
    """A line of output, as text (never markup), not wrapped."""
    out.print(Text(message), soft_wrap=True, highlight=False)


def warn(message: str) -> None:
    err.print(Text.assemble(("warning:", "bold yellow"), " ", message))


def dev_extra() -> None:
    """Fail cleanly when the development pieces (savin[dev]) are not installed."""
    import importlib.util

    missing = [m for m in ("aiosmtpd", "openapi_core") if importlib.util.find_spec(m) is None]
    if missing:
        raise fail(f"this command needs savin's development extra ({', '.join(missing)} missing): "
                   "pip install 'savin[dev]', or run it through `make`")


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as e:
        raise fail(str(e), 2) from None


@contextlib.contextmanager
def _quiet_kafka_client():
    """The Kafka client logs every failed connection attempt; the command says it once."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def check_broker(s: Settings) -> None:
    """Fail with one line unless a broker answers at SAVIN_KAFKA_BOOTSTRAP."""
    from savin.ops.connection import BrokerUnavailable, require_broker

    with _quiet_kafka_client():
        try:
            asyncio.run(require_broker(s.kafka_bootstrap))
        except BrokerUnavailable as e:
            raise fail(str(e)) from None


def kafka(s: Settings, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's Kafka work at the command boundary: the broker is checked
    first, and any Kafka failure becomes one line and exit code 1."""
    from aiokafka.errors import KafkaError

    from savin.ops.connection import BrokerUnavailable, require_broker
    from savin.topics import TopicSetupError

    async def run() -> T:
        await require_broker(s.kafka_bootstrap)
        return await work()

    with _quiet_kafka_client():
        try:
            return asyncio.run(run())
        except (BrokerUnavailable, TopicSetupError) as e:
            raise fail(str(e)) from None
        except (KafkaError, OSError, asyncio.TimeoutError) as e:
            raise fail(f"Kafka at {s.kafka_bootstrap} (SAVIN_KAFKA_BOOTSTRAP) failed: "
                       f"{type(e).__name__}{': ' + str(e) if str(e) else ''}") from None


def show_table(title: str, columns: list[tuple[str, bool]], rows: list[list[str]]) -> None:
    """A table; columns are (header, is an id). Ids are never cut short: they
    stay on one line, and when the terminal is too narrow for them and the
    other columns, each row is printed as a block of lines instead."""
    ids = [i for i, (_, is_id) in enumerate(columns) if is_id]
    id_width = sum(max([len(r[i]) for r in rows] + [len(columns[i][0])]) for i in ids)
    others = len(columns) - len(ids)
    if id_width + 10 * others + 3 * len(columns) + 1 <= out.width:
        table = Table(title=title)
        for header, is_id in columns:
            table.add_column(header, no_wrap=is_id, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        out.print(table)
        return
    out.print(Text(title, style="italic"))
    width = max(len(h) for h, _ in columns)
    for row in rows:
        out.print()
        for (header, _), cell in zip(columns, row):
            out.print(Text(f"{header:<{width}}  {cell}"), soft_wrap=True)


# ---- schemas and keys -----------------------------------------------------------


@schema_app.command("export")
def schema_export(directory: Path = typer.Argument(..., help="Output directory.")):
    """Write one JSON Schema file per published model."""
    from savin.schemas.export import export

    for path in export(directory):
        say(f"wrote {path}")


@keys_app.command("new")
def keys_new(key_id: str = typer.Option("k1", help="Key id recorded in every sealed value: letters, digits or _."),
             index: bool = typer.Option(False, "--index", help="A blind-index key (SAVIN_INDEX_KEY) instead.")):
    """Print a fresh AES-256 data key in SAVIN_DATA_KEY form (or, with --index, a SAVIN_INDEX_KEY)."""
    from savin.sealing import new_key
    from savin.settings import DataKeys

    if index:
        print(new_key())
        return
    line = f"{key_id}:{new_key()}"
    try:
        # Read back by the very rule SAVIN_DATA_KEY is read with, so a printed key is always usable;
        # a separator (",", ":") or a space in the id would make it read as something else.
        if key_id.strip() != key_id or "," in key_id or ":" in key_id or list(DataKeys.parse(line).keys) != [key_id]:
            raise ValueError(f"key id {key_id!r} must be letters, digits or _, not starting with a digit")
    except ValueError as e:
        raise fail(f"--key-id: {e}", 2) from None
    print(line)


# ---- publishing ---------------------------------------------------------------------


def _read_source(source: str) -> bytes:
    """The whole input, read before any connection is made."""
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    if not path.exists():
        raise fail(f"{source}: no such file")
    if path.is_dir():
        raise fail(f"{source}: is a directory, not a file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise fail(f"{source}: cannot be read ({e.strerror or type(e).__name__})") from None


def _publish(source: str, encoder_for, topic_of) -> None:
    from savin.ops.publishing import prepare, publish_prepared
    from savin.topics import Topics

    s = settings()
    data = _read_source(source)
    encode = encoder_for(s)
    topics = Topics(s)
    prepared = prepare(data, encode)
    for e in prepared.errors:
        err.print(Text.assemble((f"{source}:{e.line}:", "red"), " ", e.error))
    published = 0
    if prepared.outgoing:
        with err.status("publishing...") as status:
            published = kafka(s, lambda: publish_prepared(
                prepared.outgoing, s.kafka_bootstrap, topic_of(topics), topics,
                progress=lambda n: status.update(f"published {n}"), replication=s.replication_factor))
    say(f"published {published}, rejected {len(prepared.errors)} to {topic_of(topics)}")
    if prepared.errors:
        raise typer.Exit(1)


SourceHelp = ("A file of JSON lines, or one JSON document (an object or an array of objects, "
              "pretty-printed or not); - reads stdin.")


@app.command("publish")
def publish(source: str = typer.Argument(..., help=f"Custody events. {SourceHelp}")):
    """Validate custody events and publish them to the custody-events topic."""
    from savin.ops.publishing import event_encoder

    _publish(source, lambda s: event_encoder(s.partitions), lambda t: t.custody_events)


@registrations_app.command("import")
def registrations_import(source: str = typer.Argument(..., help=f"Registrations. {SourceHelp}")):
    """Seal and publish registrations (add, update or cancel)."""
    from savin.ops.publishing import registration_encoder
    from savin.sealing import Sealer

    def encoder(s: Settings):
        try:
            return registration_encoder(Sealer(s.data_keys, index_key=s.index_key_bytes), s.partitions)
        except SettingsError as e:
            raise fail(str(e), 2) from None

    _publish(source, encoder, lambda t: t.registrations)


@registrations_app.command("show")
def registrations_show(
    registration_id: str = typer.Argument(..., help="The registration id."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
):
    """One registration: contacts masked, status, language, notices wanted, and every change (who, when)."""
    import json as _json

    from savin.ops.registrations import consent_history, describe, registration_history
    from savin.sealing import Sealer
    from savin.topics import Topics

    s = settings()
    try:
        sealer = Sealer(s.data_keys)
    except SettingsError as e:
        raise fail(str(e), 2) from None
    topics = Topics(s)
    history = kafka(s, lambda: registration_history(s.kafka_bootstrap, topics.registrations, registration_id))
    if not history:
        raise fail(f"no registration {registration_id}")
    consent = kafka(s, lambda: consent_history(s.kafka_bootstrap, topics.consent, registration_id))
    view = describe(history, sealer, consent).as_dict()
    if as_json:
        print(_json.dumps(view, ensure_ascii=False))
        return
    wanted = ", ".join(view["event_types"]) if view["event_types"] is not None else "all"
    out.print(Text.assemble(f"registration {view['registration_id']}: ", (view["status"], "bold"),
                            f" (offender {view['offender_id']}, {view['name']}, language {view['language']}, "
                            f"{view['timezone']}, PIN {'set' if view['pin'] else 'not set'})"), soft_wrap=True)
    quiet = view["quiet_hours"]
    out.print(f"notices wanted: {wanted}; quiet hours {quiet['start']} to {quiet['end']}"
              f"{' (default)' if quiet.get('default') else ''}", soft_wrap=True)
    show_table(f"{len(view['contacts'])} contacts", [("channel", False), ("address", True), ("verified", False)],
               [[c["channel"], c["address"], (f"yes ({c['verified_by']})" if c["verified_by"] else "yes")
                 if c["verified"] else "no"] for c in view["contacts"]])
    show_table(f"{len(view['history'])} records", [("at", True), ("by", False), ("change", True)],
               [[h["updated_at"], h["changed_by"], h["change"]] for h in view["history"]])


# ---- worker -------------------------------------------------------------------------


def _serve(s: Settings, check, run) -> None:
    """Run a long-lived process: its configuration checked first (so a fault is told
    even without a broker), then the broker, then ``run`` until it stops."""
    from savin.bootstrap import StartupError
    from savin.topics import TopicSetupError

    try:
        check(s)
    except (SettingsError, StartupError) as e:
        raise fail(str(e), 2) from None
    check_broker(s)
    try:
        run(s)
    except TopicSetupError as e:
        raise fail(str(e)) from None


@app.command("worker")
def worker():
    """Run the stream processor (the match, deliver and status stages; /livez, /readyz, /metrics)."""
    from savin.bootstrap import check_settings
    from savin.streams.worker import run_worker

    def check(s: Settings) -> None:
        s.data_keys  # noqa: B018 - raises SettingsError naming SAVIN_DATA_KEY
        check_settings(s)

    _serve(settings(), check, run_worker)


@app.command("web")
def web():
    """Run the portal: the offender status search, in English and Spanish; /livez and /readyz."""
    from savin.web.portal.app import check_web_settings, run_web

    _serve(settings(), check_web_settings, run_web)


# ---- consumer lag -------------------------------------------------------------------


@app.command("lag")
def lag(
    stage: Optional[list[str]] = typer.Option(None, "--stage", help="Only this stage's group: match, deliver or "
                                                                     "status (repeatable; default: all three)."),
    looks: int = typer.Option(10, "--looks", min=2, help="Looks at the offsets, --every seconds apart (about 9 s "
                                                           "by default); the status is judged over all of them."),
    every: float = typer.Option(1.0, "--every", min=0.0, help="Seconds between looks."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per stage group, with its partitions."),
):
    """Each stage group's lag per input partition (committed and log-end offsets, records and seconds
    behind) and its status by Burrow's rules: OK, WARN (falling behind while it moves), STOP (no consumer
    commits while records wait), STALL (a consumer holds it but its offset does not move), REWIND (the
    committed offset went back); a group is as bad as its worst partition. Exit code 0 when every group is
    OK or WARN, 1 when any is STOP, STALL or REWIND (or Kafka fails)."""
    from savin.domain.lag import Status
    from savin.ops.lag import stage_lag
    from savin.settings import STAGES

    stages = stage or ["match", "deliver", "status"]
    if unknown := sorted(set(stages) - STAGES):
        raise fail(f"--stage must be match, deliver or status, not {', '.join(unknown)}", 2)
    s = settings()
    with err.status("looking at the offsets...") as status:
        groups = kafka(s, lambda: stage_lag(s, stages, looks, every,
                                            progress=lambda n: status.update(f"looked {n} of {looks} times")))

    def topic(p) -> str:
        return p.topic.removeprefix(s.namespace + ".")

    def reason(g) -> str | None:
        return f"{topic(g.worst)}[{g.worst.partition}] {g.worst.reason}" if g.worst is not None else None

    if as_json:
        for name, g in groups.items():
            print(json.dumps({
                "stage": name, "group": g.group, "status": g.status.name, "reason": reason(g),
                "partitions": [{"topic": topic(p), "partition": p.partition, "committed": p.committed, "end": p.end,
                                "lag": p.lag, "lag_seconds": p.seconds, "status": p.status.name, "reason": p.reason}
                               for p in g.partitions]}))
    else:
        rows = [[name, topic(p), str(p.partition), "-" if p.committed is None else str(p.committed), str(p.end),
                 str(p.lag), "?" if p.seconds is None else f"{p.seconds:.1f}", p.status.name]
                for name, g in groups.items() for p in g.partitions]
        show_table(f"{len(rows)} partitions, {looks} looks {every:g} s apart",
                   [("stage", False), ("topic", False), ("partition", False), ("committed", False), ("end", False),
                    ("lag", False), ("seconds", False), ("status", False)], rows)
        for name, g in groups.items():
            say(f"{name} ({g.group}): {g.status.name}{': ' + reason(g) if g.worst is not None else ''}")
    if any(g.status in (Status.STOP, Status.STALL, Status.REWIND) for g in groups.values()):
        raise typer.Exit(1)


# ---- dead letters -------------------------------------------------------------------

ReasonOption = typer.Option(None, "--reason", help="Only dead letters whose reason contains this (any case).")
TopicOption = typer.Option(None, "--topic", help="Only those from this source topic (the namespace may be left out).")
SinceOption = typer.Option(None, "--since", help="Only those from this time on: ISO (UTC unless it has an offset) "
                                                 "or a span back from now such as 30m, 2h, 7d.")
UntilOption = typer.Option(None, "--until", help="Only those up to this time; the same forms as --since.")


def _selection(ids: list[str], reason: str | None, topic: str | None, since: str | None, until: str | None):
    from savin.domain.clock import utcnow
    from savin.ops.dead_letters import Selection, parse_when

    now = utcnow()
    times = {}
    for name, text in (("since", since), ("until", until)):
        if text is not None:
            try:
                times[name] = parse_when(text, now)
            except ValueError as e:
                raise fail(f"--{name}: {e}", 2) from None
    return Selection(ids=frozenset(ids), reason=reason, topic=topic, **times)


def _replayed(entry) -> str:
    if entry.replay is not None:
        return f"yes, {entry.replay.at.isoformat(timespec='seconds')}"
    return "no (excerpt only)" if entry.letter.value_truncated else "no"


@dead_app.command("list")
def dead_letters_list(
    reason: Optional[str] = ReasonOption,
    topic: Optional[str] = TopicOption,
    since: Optional[str] = SinceOption,
    until: Optional[str] = UntilOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
):
    """Dead letters with their reason, source and whether they were replayed; never their content."""
    from savin.ops.dead_letters import dead_letter_entries

    s = settings()
    selection = _selection([], reason, topic, since, until)
    listing = kafka(s, lambda: dead_letter_entries(s, selection))
    if listing.unreadable:
        warn(f"{listing.unreadable} records on the dead-letter topics could not be read and are not shown")
    if as_json:
        for e in listing.entries:
            print(json.dumps(e.summary()))
        return
    rows = []
    for e in listing.entries:
        d = e.letter
        rows.append([e.id, d.at.isoformat(timespec="seconds"), f"{d.source_topic}[{d.source_partition}]@{d.source_offset}",
                     d.reason, _replayed(e), str(d.replay_of) if d.replay_of else ""])
    columns = [("id", True), ("at", False), ("source", False), ("reason", False), ("replayed", False),
               ("replay of", True)]
    if not any(row[-1] for row in rows):
        columns, rows = columns[:-1], [row[:-1] for row in rows]
    show_table(f"{len(rows)} dead letters", columns, rows)


@dead_app.command("replay")
def dead_letters_replay(
    dead_letter_ids: Optional[list[str]] = typer.Option(None, "--id", help="Replay this dead letter (repeatable)."),
    all_: bool = typer.Option(False, "--all", help="Replay every dead letter not yet replayed (narrowed by the filters)."),
    reason: Optional[str] = ReasonOption,
    topic: Optional[str] = TopicOption,
    since: Optional[str] = SinceOption,
    until: Optional[str] = UntilOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be sent; send nothing."),
):
    """Send dead letters back to their source topic once the cause is fixed; each is sent once, however often this runs."""
    from savin.ops.dead_letters import replay_dead_letters

    ids = dead_letter_ids or []
    if bool(ids) == all_:
        raise fail("give --id ID (one or more) or --all", 2)
    s = settings()
    selection = _selection(ids, reason, topic, since, until)
    report = kafka(s, lambda: replay_dead_letters(s, selection, dry_run=dry_run))
    for e in report.sent:
        d = e.letter
        if dry_run:
            say(f"would replay {e.id} to {d.source_topic}[{d.source_partition}] "
                f"({len(e.value)} bytes, from offset {d.source_offset})")
        else:
            r = e.replay
            say(f"replayed {e.id} to {r.to_topic}[{r.to_partition}]@{r.to_offset}")
    for e in report.already:
        if ids:
            say(f"{e.id} was replayed at {e.replay.at.isoformat(timespec='seconds')}; not sent again")
    for e, why in report.refused:
        err.print(Text.assemble(("refused:", "bold red"), f" dead letter {e.id} is not replayed: {why}"))
    found = {e.id for e in (*report.sent, *report.already, *(e for e, _ in report.refused))}
    missing = [i for i in ids if i not in found]
    filtered = any(v is not None for v in (reason, topic, since, until))
    for i in missing:
        fail(f"no dead letter with id {i}{' that matches the filters' if filtered else ''}")
    verb = "would replay" if dry_run else "replayed"
    say(f"{verb} {len(report.sent)}, already replayed {len(report.already)}, refused {len(report.refused)}")
    if report.refused or missing:
        raise typer.Exit(1)


# ---- notices ------------------------------------------------------------------------


def _histories(s: Settings):
    from savin.ops.audit import delivery_results, notice_histories

    return notice_histories(kafka(s, lambda: delivery_results(s)))


@notices_app.command("list")
def notices_list(
    # An enum, so --help lists the statuses and a typo is refused by name.
    status: Optional[DeliveryStatus] = typer.Option(
        None, metavar="STATUS", help="Only notices now in this status: " + ", ".join(s.value for s in DeliveryStatus) + "."),
    event_id: Optional[str] = typer.Option(None, "--event-id", help="Only notices of this event."),
    registration_id: Optional[str] = typer.Option(None, "--registration-id", help="Only this registration's."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
):
    """Every notice with its current status, tries and last error (ids only, no contact details)."""
    rows = []
    for h in _histories(settings()).values():
        if status is not None and h.status is not status:
            continue
        if event_id and str(h.first("event_id")) != event_id:
            continue
        if registration_id and h.first("registration_id") != registration_id:
            continue
        rows.append({
            "notice_id": str(h.notice_id), "status": h.status.value if h.status else None,
            "event_type": h.first("event_type"), "event_id": str(h.first("event_id")),
            "registration_id": h.first("registration_id"),
            "channel": h.first("channel").value if h.first("channel") else None,
            "attempts": h.attempts, "last_error": h.last_error,
            "updated": h.results[-1].at.isoformat(timespec="seconds"),
        })
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    show_table(f"{len(rows)} notices",
               [("notice", True), ("status", False), ("event", False), ("registration", True), ("channel", False),
                ("tries", False), ("last error", False), ("updated", False)],
               [[row["notice_id"], row["status"] or "", row["event_type"] or "", row["registration_id"] or "",
                 row["channel"] or "", str(row["attempts"]), row["last_error"] or "", row["updated"]] for row in rows])


@notices_app.command("show")
def notices_show(
    notice_id: str = typer.Argument(..., help="The notice id (see `savin notices list`)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line: each try, acceptance and callback."),
):
    """One notice end to end: every try, provider acceptance and status callback, in order."""
    import uuid as _uuid

    try:
        key = _uuid.UUID(notice_id)
    except ValueError:
        raise fail(f"not a notice id (UUID): {notice_id!r}", 2) from None
    h = _histories(settings()).get(key)
    if h is None:
        raise fail(f"no delivery results for notice {notice_id}")
    if as_json:
        for r in h.results:
            print(r.model_dump_json())
        return
    channel = h.first("channel")
    out.print(Text.assemble(f"notice {notice_id}: ", (h.status.value if h.status else "?", "bold"),
                            f" ({h.first('event_type')} event {h.first('event_id')}, registration "
                            f"{h.first('registration_id')}, {channel.value if channel else '?'})"), soft_wrap=True)
    show_table(f"{len(h.results)} results",
               [("at", False), ("source", False), ("status", False), ("try", False), ("provider", False),
                ("reference", True), ("error", False)],
               [[r.at.isoformat(timespec="milliseconds"), r.source, r.status.value, str(r.attempt), r.provider or "",
                 r.provider_ref or "", f"{r.error_code or ''} {r.error or ''}".strip()] for r in h.results])


@notices_app.command("escalations")
def notices_escalations(
    state: Optional[str] = typer.Option(None, help="Only ladders in this state: open, acknowledged, unacknowledged."),
    flags: bool = typer.Option(False, "--flags", help="The registration flags instead (contacts lost, "
                                                      "notices nobody acknowledged)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
):
    """The escalation ladder of each urgent notice: its state, calls made, the next, who acknowledged it."""
    from savin.ops.escalations import latest_escalations, registration_flags
    from savin.schemas.escalation import EscalationState

    s = settings()
    if flags:
        found = kafka(s, lambda: registration_flags(s))
        if as_json:
            for f in found:
                print(f.model_dump_json())
            return
        show_table(f"{len(found)} flags",
                   [("registration", True), ("flag", False), ("channel", False), ("event", True),
                    ("reason", False), ("at", False)],
                   [[f.registration_id, f.flag.value,
                     f"{f.channel.value} {f.contact_index}" if f.channel else "",
                     str(f.event_id or ""), f.reason or "", f.at.isoformat(timespec="seconds")] for f in found])
        return
    if state is not None and state not in {e.value for e in EscalationState}:
        raise fail(f"--state must be open, acknowledged or unacknowledged, not {state!r}", 2)
    ladders = [e for e in kafka(s, lambda: latest_escalations(s)) if state is None or e.state.value == state]
    if as_json:
        for e in ladders:
            print(e.model_dump_json())
        return
    show_table(f"{len(ladders)} escalations",
               [("registration", True), ("event", True), ("type", False), ("state", False), ("calls", False),
                ("next call", False), ("acknowledged", False), ("started", False)],
               [[e.registration_id, str(e.event_id), e.event_type, e.state.value, str(e.calls),
                 e.next_call_at.isoformat(timespec="seconds") if e.next_call_at else "",
                 f"{e.acknowledged_by.value} {e.acknowledged_at.isoformat(timespec='seconds')}"
                 if e.acknowledged_by and e.acknowledged_at else "",
                 e.started_at.isoformat(timespec="seconds")] for e in ladders])


# ---- demo and bench --------------------------------------------------------------------


@app.command("demo")
def demo(serve: bool = typer.Option(False, "--serve", help="Keep everything running afterwards (Ctrl-C stops "
                                                             "it), and print the portal's and the console's "
                                                             "addresses and the demo operator's sign-in.")):
    """Start a broker and local peers, run the worker and the web, publish a sample day, show the notices."""
    dev_extra()
    from savin.dev.demo import run_demo

    raise typer.Exit(run_demo(out, serve=serve))


@app.command("bench")
def bench(
    quick: bool = typer.Option(False, "--quick", help="Small sizes; finishes in under two minutes."),
    out_dir: Path = typer.Option(Path("bench"), "--out", help="Where results.json and RESULTS.md go."),
    events: Optional[int] = typer.Option(None, help="Events for the match stage and the baseline."),
    registrations: Optional[int] = typer.Option(None, help="Registrations for the match stage."),
    offenders: Optional[int] = typer.Option(None, help="Registered offenders for the match stage."),
    notices: Optional[int] = typer.Option(None, help="Notices for the send stage."),
    rate: Optional[int] = typer.Option(None, help="Events per second offered in the latency stage."),
    duration: Optional[float] = typer.Option(None, help="Seconds of the latency stage."),
    recovery_registrations: Optional[int] = typer.Option(None, help="Registrations held at the restart."),
    runs: Optional[int] = typer.Option(None, help="Runs of the match stage (each with its baseline) and of the "
                                                  "latency stage."),
    burst_events: Optional[int] = typer.Option(None, help="Urgent events of the burst (2 registrations each)."),
    backlog_notices: Optional[int] = typer.Option(None, help="Routine notices queued ahead of the urgent one."),
    only: list[str] = typer.Option([], "--only", help="Run only this stage (repeatable): match, send, latency, "
                                                      "recovery, acknowledgement, burst, backlog, cluster."),
):
    """Measure throughput, latency, recovery and provider pacing against a raw aiokafka baseline."""
    import dataclasses

    dev_extra()
    from savin.dev.bench import QUICK, STAGES, STANDARD, run_bench

    base = QUICK if quick else STANDARD
    if unknown := sorted(set(only) - set(STAGES)):
        raise fail(f"--only: no stage {', '.join(unknown)} (the stages: {', '.join(STAGES)})")
    given = dict(events=events, registrations=registrations, offenders=offenders, notices=notices,
                 rate=rate, duration=duration, recovery_registrations=recovery_registrations, runs=runs,
                 burst_events=burst_events, backlog_notices=backlog_notices)
    for name, value in given.items():
        if value is not None and value <= 0:
            raise fail(f"--{name.replace('_', '-')} must be positive")
    sizes = dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})
    label = "quick" if quick else "standard"
    if sizes != base:
        label += " (custom sizes)"
    if only:
        label += " (only " + ", ".join(only) + ")"
    try:
        run_bench(sizes, out_dir, out, label=label, only=only or STAGES)
    except (BrokerError, TimeoutError) as e:
        raise fail(str(e)) from None


from savin import broker_cli, feeds_cli, holds_cli, reports_cli  # noqa: E402 - their commands use the helpers above
from savin.operators_cli import operators_app  # noqa: E402

app.add_typer(operators_app, name="operators")
for part in (broker_cli, holds_cli, feeds_cli, reports_cli):
    part.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
