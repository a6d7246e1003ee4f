"""The ``savin`` command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from savin.dev.broker import BrokerError, DevBroker
from savin.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="savin: event-driven victim notification engine.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
broker_app = typer.Typer(help="Run a local single-node Kafka (KRaft) for development.", no_args_is_help=True)
schema_app = typer.Typer(help="Published JSON Schemas.", no_args_is_help=True)
registrations_app = typer.Typer(help="Victim registrations.", no_args_is_help=True)
dead_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
keys_app = typer.Typer(help="Data keys for sealing personal data.", no_args_is_help=True)
notices_app = typer.Typer(help="Audit notices: where each one stands and how it got there.", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
app.add_typer(schema_app, name="schema")
app.add_typer(registrations_app, name="registrations")
app.add_typer(dead_app, name="dead-letters")
app.add_typer(keys_app, name="keys")
app.add_typer(notices_app, name="notices")

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


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


# ---- broker -------------------------------------------------------------------

DataDir = Annotated[Path, typer.Option(help="Where the broker keeps its data, config and log.")]


def _broker(data_dir: Path, port: int, controller_port: int, heap: str) -> DevBroker:
    return DevBroker(data_dir=data_dir, port=port, controller_port=controller_port, heap=heap)


@broker_app.command("start")
def broker_start(
    data_dir: DataDir = Path("var/kafka"),
    port: int = typer.Option(9092, help="Client port (PLAINTEXT listener)."),
    controller_port: int = typer.Option(9093, help="KRaft controller port."),
    heap: str = typer.Option("512m", help="JVM heap, e.g. 512m or 1g."),
):
    """Start Kafka and wait until it answers; print the bootstrap address."""
    external = os.environ.get("SAVIN_KAFKA_BOOTSTRAP")
    if external:
        from savin.dev.broker import broker_reachable

        if broker_reachable(external):
            out.print(f"SAVIN_KAFKA_BOOTSTRAP names a running broker; using {external}")
            print(external)
            return
        raise fail(f"SAVIN_KAFKA_BOOTSTRAP={external} is set but no broker answers there")
    try:
        bootstrap = _broker(data_dir, port, controller_port, heap).start(progress=lambda m: err.print(m))
    except BrokerError as e:
        raise fail(str(e)) from None
    print(bootstrap)


@broker_app.command("stop")
def broker_stop(data_dir: DataDir = Path("var/kafka")):
    """Stop the broker started from DATA_DIR; no process is left behind."""
    DevBroker(data_dir=data_dir).stop(progress=lambda m: err.print(m))


@broker_app.command("status")
def broker_status(data_dir: DataDir = Path("var/kafka")):
    """Say whether the broker runs, and where. Exit 1 when it does not."""
    st = DevBroker(data_dir=data_dir).status()
    if st.running:
        bootstrap = DevBroker(data_dir=data_dir).pid_file.read_text().split()[1]
        out.print(f"running: pid {st.pid}, bootstrap {bootstrap}, data {st.data_dir}")
    else:
        out.print(f"not running (data {st.data_dir})")
        raise typer.Exit(1)


# ---- schemas and keys -----------------------------------------------------------


@schema_app.command("export")
def schema_export(directory: Path = typer.Argument(..., help="Output directory.")):
    """Write one JSON Schema file per published model."""
    from savin.schemas.export import export

    for path in export(directory):
        out.print(f"wrote {path}")


@keys_app.command("new")
def keys_new(key_id: str = typer.Option("k1", help="Key id recorded in every sealed value.")):
    """Print a fresh AES-256 data key in SAVIN_DATA_KEY form."""
    from savin.sealing import new_key

    print(f"{key_id}:{new_key()}")


# ---- publishing ---------------------------------------------------------------------


def _lines(source: str):
    if source == "-":
        yield from sys.stdin.buffer
        return
    path = Path(source)
    if not path.exists():
        raise fail(f"{source}: no such file")
    with path.open("rb") as f:
        yield from f


def _publish(source: str, encoder_for, topic_of) -> None:
    from savin.ops.publishing import publish_lines
    from savin.topics import Topics

    s = settings()
    topics = Topics(s)
    encoder = encoder_for(s)
    with err.status("publishing...") as status:
        report = asyncio.run(
            publish_lines(_lines(source), encoder, s.kafka_bootstrap, topic_of(topics), topics,
                          progress=lambda n: status.update(f"published {n}"))
        )
    for e in report.errors:
        err.print(f"[red]{source}:{e.line}:[/] {e.error}", highlight=False)
    out.print(f"published {report.published}, rejected {len(report.errors)} to {topic_of(topics)}")
    if report.errors:
        raise typer.Exit(1)


@app.command("publish")
def publish(source: str = typer.Argument(..., help="JSON-lines file of custody events, or - for stdin.")):
    """Validate custody events and publish them to the custody-events topic."""
    from savin.ops.publishing import event_encoder

    _publish(source, lambda s: event_encoder(s.partitions), lambda t: t.custody_events)


@registrations_app.command("import")
def registrations_import(source: str = typer.Argument(..., help="JSON-lines file of registrations, or -.")):
    """Seal and publish registrations (add, update or cancel)."""
    from savin.ops.publishing import registration_encoder
    from savin.sealing import Sealer

    def encoder(s: Settings):
        try:
            return registration_encoder(Sealer(s.data_keys), s.partitions)
        except SettingsError as e:
            raise fail(str(e), 2) from None

    _publish(source, encoder, lambda t: t.registrations)


# ---- worker -------------------------------------------------------------------------


@app.command("worker")
def worker():
    """Run the stream processor (the match and deliver stages and the web endpoints)."""
    from savin.streams.worker import run_worker

    s = settings()
    try:
        s.data_keys
    except SettingsError as e:
        raise fail(str(e), 2) from None
    run_worker(s)


# ---- dead letters -------------------------------------------------------------------


@dead_app.command("list")
def dead_letters_list(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")):
    """Dead letters with their reason and source; never their content."""
    from savin.ops.dead_letters import list_dead_letters

    s = settings()
    letters = asyncio.run(list_dead_letters(s))
    if as_json:
        for d in letters:
            print(json.dumps({k: v for k, v in d.model_dump(mode="json").items() if k not in ("value_b64", "key_b64")}))
        return
    table = Table("id", "at", "source", "reason", title=f"{len(letters)} dead letters")
    for d in letters:
        table.add_row(str(d.dead_letter_id), d.at.isoformat(timespec="seconds"),
                      f"{d.source_topic}[{d.source_partition}]@{d.source_offset}", d.reason)
    out.print(table)


@dead_app.command("replay")
def dead_letters_replay(
    dead_letter_id: Optional[str] = typer.Option(None, "--id", help="Replay one dead letter."),
    all_: bool = typer.Option(False, "--all", help="Replay every dead letter."),
):
    """Send dead letters back to their source topic once the cause is fixed."""
    from savin.ops.dead_letters import replay_dead_letters

    if bool(dead_letter_id) == all_:
        raise fail("give exactly one of --id ID or --all", 2)
    s = settings()
    n = asyncio.run(replay_dead_letters(s, dead_letter_id))
    if dead_letter_id and n == 0:
        raise fail(f"no dead letter with id {dead_letter_id}")
    out.print(f"replayed {n}")


# ---- notices ------------------------------------------------------------------------


def _histories(s: Settings):
    from savin.ops.audit import delivery_results, notice_histories

    return notice_histories(asyncio.run(delivery_results(s)))


@notices_app.command("list")
def notices_list(
    status: Optional[str] = typer.Option(None, help="Only notices now in this status, e.g. failed, retrying."),
    event_id: Optional[str] = typer.Option(None, "--event-id", help="Only notices of this event."),
    registration_id: Optional[str] = typer.Option(None, "--registration-id", help="Only this registration's."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
):
    """Every notice with its current status, tries and last error (ids only, no contact details)."""
    from savin.schemas import DeliveryStatus

    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise fail(f"--status must be one of {', '.join(s.value for s in DeliveryStatus)}", 2)
    rows = []
    for h in _histories(settings()).values():
        if status and (h.status is None or h.status.value != status):
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
    table = Table("notice", "status", "event", "registration", "channel", "tries", "last error", "updated",
                  title=f"{len(rows)} notices")
    for row in rows:
        table.add_row(row["notice_id"], row["status"], row["event_type"], row["registration_id"], row["channel"],
                      str(row["attempts"]), row["last_error"] or "", row["updated"])
    out.print(table)


@notices_app.command("show")
def notices_show(notice_id: str = typer.Argument(..., help="The notice id (see `savin notices list`).")):
    """One notice end to end: every try, provider acceptance and status callback, in order."""
    import uuid as _uuid

    try:
        key = _uuid.UUID(notice_id)
    except ValueError:
        raise fail(f"not a notice id (UUID): {notice_id!r}", 2) from None
    h = _histories(settings()).get(key)
    if h is None:
        raise fail(f"no delivery results for notice {notice_id}")
    out.print(f"notice {notice_id}: [bold]{h.status.value if h.status else '?'}[/bold] "
              f"({h.first('event_type')} event {h.first('event_id')}, registration {h.first('registration_id')}, "
              f"{h.first('channel').value if h.first('channel') else '?'})")
    table = Table("at", "source", "status", "try", "provider", "reference", "error")
    for r in h.results:
        table.add_row(r.at.isoformat(timespec="milliseconds"), r.source, r.status.value, str(r.attempt),
                      r.provider or "", r.provider_ref or "", f"{r.error_code or ''} {r.error or ''}".strip())
    out.print(table)


# ---- demo and bench --------------------------------------------------------------------


@app.command("demo")
def demo():
    """Start a broker and local peers, run the worker, publish a sample day, show the notices."""
    dev_extra()
    from savin.dev.demo import run_demo

    raise typer.Exit(run_demo(out))


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
):
    """Measure throughput, latency and recovery against a raw aiokafka baseline."""
    import dataclasses

    dev_extra()
    from savin.dev.bench import QUICK, STANDARD, run_bench

    base = QUICK if quick else STANDARD
    given = dict(events=events, registrations=registrations, offenders=offenders, notices=notices,
                 rate=rate, duration=duration, recovery_registrations=recovery_registrations)
    for name, value in given.items():
        if value is not None and value <= 0:
            raise fail(f"--{name.replace('_', '-')} must be positive")
    sizes = dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})
    label = "quick" if quick else "standard"
    if sizes != base:
        label += " (custom sizes)"
    try:
        run_bench(sizes, out_dir, out, label=label)
    except (BrokerError, TimeoutError) as e:
        raise fail(str(e)) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
