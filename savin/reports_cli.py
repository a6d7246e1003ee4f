"""``savin deadlines report`` and ``savin stats``: evidence of statutory deadlines met, and
program statistics with small cells suppressed. Both read the topics whole for a period
(:mod:`savin.ops.reports`); progress goes to stderr, the report to stdout or ``--output``."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]

CONTEXT = {"help_option_names": ["-h", "--help"]}
deadlines_app = typer.Typer(help="Statutory deadlines: the evidence that each notice was delivered or "
                                 "acknowledged in time.", no_args_is_help=True, context_settings=CONTEXT,
                            pretty_exceptions_enable=False)

FromOption = typer.Option(..., "--from", help="First day of the period (YYYY-MM-DD, UTC) or an ISO time.")
ToOption = typer.Option(..., "--to", help="Last day of the period, included (YYYY-MM-DD, UTC), or an ISO time "
                                          "(excluded).")

OutputOption = typer.Option(None, "--output", "-o", help="Write the report here (json or csv), not to stdout.")


class EvidenceFormat(str, enum.Enum):
    CSV = "csv"
    JSON = "json"


class StatsFormat(str, enum.Enum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def register(app: typer.Typer) -> None:
    """Add ``savin deadlines`` and ``savin stats`` to ``app``."""
    app.add_typer(deadlines_app, name="deadlines")
    app.command("stats")(stats_command)


def _period(start: str, end: str):
    from savin.cli import fail
    from savin.ops.reports import PeriodError, parse_period

    try:
        return parse_period(start, end)
    except PeriodError as e:
        raise fail(e.message, 2) from None


def _read(s):
    """Read the topics with a progress bar on stderr (shown only on a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from savin.cli import err, kafka, warn
    from savin.ops.reports import read_run

    with Progress(TextColumn("reading {task.description}"), BarColumn(), MofNCompleteColumn(), console=err,
                  transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(topic: str, done: int, total: int) -> None:
            if topic not in tasks:
                tasks[topic] = bar.add_task(topic, total=total)
            bar.update(tasks[topic], completed=done, total=total)

        run = kafka(s, lambda: read_run(s, progress))
    if run.unreadable:
        warn(f"{run.unreadable} records could not be read and are left out (see `savin dead-letters list`)")
    return run


def _write(text: str, output: Path | None) -> None:
    from savin.cli import fail, say

    if output is None:
        print(text, end="")
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise fail(f"--output {output}: cannot be written: {e.strerror}") from None
    say(f"wrote {output}")


@deadlines_app.command("report")
def deadlines_report(
    start: str = FromOption,
    end: str = ToOption,
    format: EvidenceFormat = typer.Option(EvidenceFormat.CSV, "--format", help="csv or json."),
    output: Optional[Path] = OutputOption,
):
    """Per notice made in the period: event, first try, delivery, acknowledgement, deadline, verdict (ids only)."""
    from savin.cli import fail, settings
    from savin.domain.clock import utcnow
    from savin.domain.deadlines import load_policy
    from savin.ops.reports import deadline_report, evidence_csv, evidence_document

    period = _period(start, end)
    s = settings()
    try:
        policy = load_policy(s.deadline_policy)
    except ValueError as e:
        raise fail(f"SAVIN_DEADLINE_POLICY: {e}", 2) from None
    now = utcnow()
    rows = deadline_report(_read(s), period, policy, now)
    if format is EvidenceFormat.JSON:
        text = json.dumps(evidence_document(period, now, policy.name, rows), indent=1) + "\n"
    else:
        text = evidence_csv(rows)
    _write(text, output)


def stats_command(
    start: str = FromOption,
    end: str = ToOption,
    format: StatsFormat = typer.Option(StatsFormat.TABLE, "--format", help="table, json or csv (one row per figure)."),
    output: Optional[Path] = OutputOption,
):
    """Program statistics for a period, with no personal data: cells under 5 are shown as <5."""
    from savin.cli import settings
    from savin.domain.clock import utcnow
    from savin.ops.reports import statistics, stats_csv

    period = _period(start, end)
    s = settings()
    figures = statistics(_read(s), period, utcnow())
    if format is StatsFormat.JSON:
        _write(json.dumps(figures.as_json(), indent=1) + "\n", output)
    elif format is StatsFormat.CSV:
        _write(stats_csv(figures), output)
    else:
        _show(figures)


def _show(figures) -> None:
    from rich.table import Table as RichTable
    from rich.text import Text

    from savin.cli import out, say
    from savin.ops.reports import duration_text

    p = figures.period.as_json()
    say(f"savin statistics from {p['from']} to {p['to']} (excluded); cells under 5 shown as <5, "
        "and cells that would give one away as 'suppressed'")
    for name, table, threshold in figures.tables():
        t = RichTable(title=name.replace("_", " "))
        for d in table.by:
            t.add_column(d.replace("_", " "))
        for c in table.records(threshold)[0]:
            if c not in table.by:
                t.add_column(c, justify="right")
        for record in table.records(threshold):
            t.add_row(*(Text(str(v)) for v in record.values()))
        out.print(t)
    t = RichTable(title="event to delivery")
    for c in ("channel", "delivered", "median", "p95"):
        t.add_column(c, justify="left" if c == "channel" else "right")
    for channel, d in figures.delivery_times.items():
        t.add_row(channel, str(d["count"]), duration_text(d["median"]), duration_text(d["p95"]))
    out.print(t)
    t = RichTable(title="acknowledgement rates")
    t.add_column("event type")
    t.add_column("rate", justify="right")
    for event_type, rate in figures.acknowledgement_rates.items():
        t.add_row(event_type, "–" if rate is None else f"{rate:.1%}" if isinstance(rate, float) else rate)
    out.print(t)
    t = RichTable(title="feed downtime")
    t.add_column("source")
    t.add_column("hours stale", justify="right")
    for source, hours in figures.feed_downtime_hours.items():
        t.add_row(Text(source), f"{hours:.2f}")
    if not figures.feed_downtime_hours:
        t.add_row("no feed status changes recorded", "")
    out.print(t)
