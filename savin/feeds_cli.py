"""``savin feeds``: each source's freshness, as the feed watchdog judges it."""

from __future__ import annotations

import datetime as dt
import json

import typer

__all__ = ["register"]


def _when(t: dt.datetime | None) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if t is not None else "never"


def _age(t: dt.datetime | None, now: dt.datetime) -> str:
    if t is None:
        return "-"
    s = max(0, int((now - t).total_seconds()))
    return f"{s} s" if s < 120 else f"{s // 60} min" if s < 7200 else f"{s // 3600} h {s % 3600 // 60} min"


def feeds(as_json: bool = typer.Option(False, "--json", help="One JSON object per source.")):
    """Every source the watchdog knows: its state as last recorded (ok, stale: silent past its
    SAVIN_FEED_SILENT_AFTER threshold, low: far below its usual rate; unknown before the first
    verdict) and why, its newest event or heartbeat, events in the last hour and its usual rate.
    Exit code 0 when every source is ok, 1 when any is stale or low (or Kafka fails)."""
    from savin.cli import kafka, say, settings, show_table
    from savin.ops.feeds import read_feeds

    s = settings()
    now = dt.datetime.now(dt.timezone.utc)
    rows = kafka(s, lambda: read_feeds(s, now))
    if as_json:
        for f in rows:
            print(json.dumps(f.as_dict()))
    elif not rows:
        say("No source seen yet: the status stage counts each source's events as they come.")
    else:
        show_table("Feeds", [("source", True), ("state", False), ("since", False), ("last event or heartbeat", False),
                             ("silent", False), ("limit", False), ("last hour", False), ("usual/h", False),
                             ("why", False)],
                   [[f.source, f.state, _when(f.since), _when(f.last_seen_at), _age(f.last_seen_at, now),
                     f"{f.silent_after} s", str(f.events_last_hour),
                     "-" if f.usual_per_hour is None else f"{f.usual_per_hour:g}", f.reason or ""] for f in rows])
    if any(f.alerting for f in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``savin feeds`` to ``app``."""
    app.command("feeds")(feeds)
