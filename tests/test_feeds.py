"""The feed watchdog: the counts summed over partitions and judged (plain
functions), and a worker (its own process, on the real broker) that sees a
source go silent past its threshold, raises the alert (feed-status, the
metrics, a WARNING naming the source, `savin feeds`) and clears it when the
source sends again; the downtime recorded for the statistics."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.request
from collections import Counter

import pytest
from support import event, eventually, metric, records, savin

from savin.domain.feeds import FeedState, StatusChange, downtime_hours, parse_thresholds
from savin.ops.feeds import (
    Seen,
    change_as_status_change,
    complete_hours,
    events_last_hour,
    feeds,
    judge,
    merge,
    read_feed_changes,
)
from savin.schemas.safety import FeedCounts, FeedStatusChange, SourceCounts
from savin.schemas.status import OffenderStatus

H = 3600
T0 = 1_800_000_000.0 - 1_800_000_000.0 % H  # the start of an hour
UTC = dt.timezone.utc


def at(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, UTC)


def counts(partition: int, **sources: SourceCounts) -> FeedCounts:
    return FeedCounts(partition=partition, sources=sources, at=at(T0))


def test_partitions_counts_are_summed_per_source():
    merged = merge([
        counts(0, demo=SourceCounts(last_event_at=at(T0 - 50), hourly={str(int(T0 // H) - 1): 3})),
        counts(1, demo=SourceCounts(last_event_at=at(T0 - 10), last_heartbeat_at=at(T0 - 5),
                                    hourly={str(int(T0 // H) - 1): 4, str(int(T0 // H)): 1}),
               jail=SourceCounts(last_heartbeat_at=at(T0 - 100))),
    ])
    assert merged["demo"] == Seen(T0 - 10, T0 - 5, {int(T0 // H) - 1: 7, int(T0 // H): 1})
    assert merged["demo"].last_seen_at == T0 - 5, "a heartbeat says the source is alive"
    assert merged["jail"].last_seen_at == T0 - 100 and merged["jail"].hourly == {}


def test_events_in_the_last_hour_take_the_part_of_the_previous_hour_still_within_it():
    hour = int(T0 // H)
    assert events_last_hour({hour - 1: 100, hour: 10}, T0) == 110
    assert events_last_hour({hour - 1: 100, hour: 10}, T0 + H / 4) == 85
    assert events_last_hour({hour - 2: 100}, T0 + 1) == 0


def test_complete_hours_fill_silent_hours_with_zero_and_keep_a_week():
    hour = int(T0 // H)
    assert complete_hours({hour - 3: 5, hour - 1: 2, hour: 9}, T0 + 10) == [5, 0, 2]
    assert len(complete_hours({hour - 1000: 1}, T0)) == 168
    assert complete_hours({}, T0) == []


def test_a_source_is_judged_on_its_newest_event_or_heartbeat_and_its_usual_rate():
    hour = int(T0 // H)
    week = {h: 60 for h in range(hour - 48, hour)}
    assert judge(Seen(T0 - 30, None, week), T0, 300).state is FeedState.OK
    assert judge(Seen(T0 - 400, None, week), T0, 300).state is FeedState.STALE
    assert judge(Seen(T0 - 400, T0 - 10, week), T0, 300).state is FeedState.OK
    quiet = {**{h: 60 for h in range(hour - 48, hour - 2)}, hour - 1: 2}
    low = judge(Seen(T0 - 30, T0 - 5, quiet), T0, 300)
    assert low.state is FeedState.LOW and "usual 60" in low.reason
    assert judge(None, T0, 300).reason == "no event seen from this source"


def test_the_rows_name_every_source_counted_recorded_or_given_a_threshold():
    change = FeedStatusChange(source="demo", state="stale", reason="no event for 9 s (limit 5 s)",
                              last_event_at=at(T0 - 9), at=at(T0))
    rows = feeds([counts(0, demo=SourceCounts(last_event_at=at(T0 - 9)))], {"demo": change},
                 parse_thresholds("demo=5,county=60,default=900"), T0 + 1)
    assert [(f.source, f.state, f.silent_after) for f in rows] == [("county", "unknown", 60), ("demo", "stale", 5)]
    demo = rows[1]
    assert demo.alerting and demo.last_seen_at == at(T0 - 9) and demo.since == at(T0)
    assert json.loads(json.dumps(demo.as_dict()))["last_seen_at"] == at(T0 - 9).isoformat()


def test_downtime_begins_with_the_last_event_and_ends_with_the_next():
    stale = FeedStatusChange(source="demo", state="stale", last_event_at=at(T0), at=at(T0 + 300))
    ok = FeedStatusChange(source="demo", state="ok", last_event_at=at(T0 + 1800), at=at(T0 + 1805))
    low = FeedStatusChange(source="demo", state="low", last_event_at=at(T0 + 1900), at=at(T0 + 2000))
    changes = [change_as_status_change(c) for c in (stale, ok, low)]
    assert changes == [StatusChange("demo", T0, FeedState.STALE), StatusChange("demo", T0 + 1800, FeedState.OK),
                       StatusChange("demo", T0 + 2000, FeedState.LOW)]
    assert downtime_hours(changes, T0 - H, T0 + H) == {"demo": 0.5}


# ---- a worker and a silent source ---------------------------------------------------------------

SILENT_AFTER = 5
WATCH = {"SAVIN_FEED_CHECK_INTERVAL": "1", "SAVIN_FEED_SILENT_AFTER": f"demo={SILENT_AFTER},default=3600"}


def _metrics(worker) -> str:
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as r:
        return r.read().decode()


def _changes(stack) -> list[FeedStatusChange]:
    return [FeedStatusChange.model_validate_json(r.value) for r in records(stack.bootstrap, stack.topics.feed_status)]


def _demo_events(n: int) -> list[str]:
    return [json.dumps(event("TRANSFERRED", f"MO-FEED-{i}", source="demo")) for i in range(n)]


@pytest.mark.e2e
async def test_a_silent_source_raises_the_alert_and_clears_it_when_events_resume(stack):
    worker = stack.start_worker(SAVIN_STAGES="status", **WATCH)
    await stack.publish_events(_demo_events(3) + [json.dumps(event("HEARTBEAT", "heartbeat", source="county-jail"))])

    def state(wanted: str):
        return lambda: next((c for c in reversed(_changes(stack)) if c.source == "demo" and c.state == wanted), None)

    ok = await eventually(state("ok"), 60, "the demo source judged ok")
    assert ok.last_event_at is not None and ok.reason is None

    # Silence: nothing from demo. Within a minute of its threshold the watchdog says it is stale.
    stale = await eventually(state("stale"), SILENT_AFTER + 60, "the demo source judged stale")
    silent_for = (stale.at - stale.last_event_at).total_seconds()
    assert SILENT_AFTER < silent_for <= SILENT_AFTER + 60
    assert stale.reason.startswith("no event for ") and f"limit {SILENT_AFTER} s" in stale.reason
    page = await asyncio.to_thread(_metrics, worker)
    assert metric(page, "savin_feed_stale", source="demo") == 1
    assert metric(page, "savin_feed_low", source="demo") == 0
    assert metric(page, "savin_feed_last_event_timestamp_seconds", source="demo") == pytest.approx(stale.last_event_at.timestamp())
    # A heartbeat keeps its source alive and moves no offender's status.
    assert metric(page, "savin_feed_stale", source="county-jail") == 0
    log = worker.log_path.read_text()
    assert "WARNING" in log and "feed source=demo is stale" in log

    env = {**stack.env(), **WATCH, "COLUMNS": "200"}
    shown = await asyncio.to_thread(savin, ["feeds", "--json"], env)
    assert shown.returncode == 1, shown.stderr
    rows = {r["source"]: r for r in map(json.loads, shown.stdout.splitlines())}
    assert rows["demo"]["state"] == "stale" and rows["demo"]["silent_after"] == SILENT_AFTER
    assert rows["county-jail"]["state"] == "ok" and rows["county-jail"]["last_heartbeat_at"]
    table = await asyncio.to_thread(savin, ["feeds"], env)
    assert table.returncode == 1 and "demo" in table.stdout and "stale" in table.stdout

    # The source sends again: the alert clears.
    await stack.publish_events(_demo_events(1))
    back = await eventually(lambda: next((c for c in _changes(stack) if c.source == "demo" and c.state == "ok"
                                          and c.at > stale.at), None), 60, "the demo source ok again")
    assert back.last_event_at > stale.last_event_at
    page = await asyncio.to_thread(_metrics, worker)
    assert metric(page, "savin_feed_stale", source="demo") == 0
    assert "feed source=demo is ok again (was stale)" in worker.log_path.read_text()
    shown = await asyncio.to_thread(savin, ["feeds", "--json"], env)
    assert shown.returncode == 0, shown.stdout

    # The downtime, for the statistics: from the last event before the silence to the one after it.
    start, end = ok.at - dt.timedelta(minutes=1), back.at + dt.timedelta(minutes=1)
    down = downtime_hours(await read_feed_changes(stack.settings(), start, end), start.timestamp(), end.timestamp())
    assert down["demo"] * 3600 == pytest.approx((back.last_event_at - stale.last_event_at).total_seconds())
    assert "county-jail" not in down
    statuses = [OffenderStatus.model_validate_json(r.value).offender_id
                for r in await asyncio.to_thread(records, stack.bootstrap, stack.topics.offender_status)]
    assert "MO-FEED-0" in statuses and "heartbeat" not in statuses
    # The offenders each source reported last (what a hold rule's share is of): demo's three (one of them
    # twice), none from a heartbeat.
    latest = {r.key: FeedCounts.model_validate_json(r.value)
              for r in await asyncio.to_thread(records, stack.bootstrap, stack.topics.feed_counts)}
    known = Counter()
    for c in latest.values():
        known.update({source: sc.offenders for source, sc in c.sources.items()})
    assert (known["demo"], known["county-jail"]) == (3, 0)


@pytest.mark.e2e
async def test_one_worker_judges_and_another_takes_up_from_the_record_when_it_stops(stack):
    from savin.dev.broker import free_port
    from savin.dev.testing.worker import WorkerProcess

    env = {**stack.env(), **WATCH, "SAVIN_STAGES": "match,status"}
    workers = []
    for n in (1, 2):
        w = WorkerProcess({**env, "SAVIN_DATA_DIR": str(stack.workdir / f"worker-{n}"), "SAVIN_WORKER_ID": f"w{n}"},
                          stack.workdir / f"worker-{n}.log", free_port())
        stack.workers.append(w)
        workers.append(w.start())
    # A source on the default threshold (an hour) stays ok throughout; a heartbeat is no invalid event.
    await stack.publish_events([json.dumps(event("TRANSFERRED", f"MO-JUDGE-{i}", source="state-doc"))
                                for i in range(8)] + [json.dumps(event("HEARTBEAT", "heartbeat", source="state-doc"))])

    def judges() -> list:
        return [w for w in workers if w.proc.poll() is None
                and 'savin_feed_stale{source="state-doc"}' in _metrics(w)]

    judge, = await eventually(lambda: len(judges()) == 1 and judges(), 60, "one worker judging state-doc")
    other, = (w for w in workers if w is not judge)
    def states() -> list[str]:
        return [c.state for c in _changes(stack) if c.source == "state-doc"]

    assert await asyncio.to_thread(states) == ["ok"]
    await asyncio.to_thread(judge.stop)
    await eventually(lambda: judges() == [other], 90, "the other worker judging state-doc")
    await asyncio.sleep(2)  # a few more checks by the new judge
    assert await asyncio.to_thread(states) == ["ok"], \
        "the new judge took up the recorded state instead of recording it again"
    assert await stack.dead_letters() == []


@pytest.mark.e2e
async def test_a_source_far_below_its_usual_rate_is_low_until_its_events_come_back(stack):
    """Two days of a source's hourly counts (100 an hour) are on feed-counts, as a status stage left
    them; the last two hours brought nothing but heartbeats. The watchdog says the source is low (not
    stale: its heartbeats come), and ok again once events come at a tenth of the usual rate."""
    from savin.topics import ensure_topics, producer

    await ensure_topics(stack.bootstrap, stack.topics.specs(), 1)
    now = dt.datetime.now(UTC).timestamp()
    hour = int(now // H)
    usual = {str(h): 100 for h in range(hour - 48, hour - 1)}
    counts = FeedCounts(partition=3, at=at(now), sources={"county-jail": SourceCounts(
        last_event_at=at((hour - 1) * H - 60), last_heartbeat_at=at(now - 5), hourly=usual)})
    p = producer(stack.bootstrap)
    await p.start()
    try:
        await p.send_and_wait(stack.topics.feed_counts, counts.model_dump_json().encode(), key=b"p3", partition=0)
    finally:
        await p.stop()
    worker = stack.start_worker(SAVIN_STAGES="status", **WATCH)
    await stack.publish_events([json.dumps(event("HEARTBEAT", "heartbeat", source="county-jail"))])

    def latest(wanted: str, after: dt.datetime | None = None):
        return lambda: next((c for c in reversed(_changes(stack)) if c.source == "county-jail" and c.state == wanted
                             and (after is None or c.at > after)), None)

    low = await eventually(latest("low"), 60, "county-jail judged low")
    assert low.reason == "0 events in the last hour, usual 100 (below 10% of usual)"
    assert not any(c.source == "county-jail" and c.state == "stale" for c in await asyncio.to_thread(_changes, stack))
    page = await asyncio.to_thread(_metrics, worker)
    assert (metric(page, "savin_feed_low", source="county-jail"), metric(page, "savin_feed_stale", source="county-jail")) \
        == (1, 0)
    shown = await asyncio.to_thread(savin, ["feeds", "--json"], {**stack.env(), **WATCH})
    rows = {r["source"]: r for r in map(json.loads, shown.stdout.splitlines())}
    assert shown.returncode == 1 and rows["county-jail"]["state"] == "low", shown.stdout
    assert "feed source=county-jail is low" in worker.log_path.read_text()

    # Events at more than a tenth of the usual rate: ok again, and low is no downtime.
    await stack.publish_events([json.dumps(event("TRANSFERRED", f"MO-LOW-{i}", source="county-jail"))
                                for i in range(15)])
    back = await eventually(latest("ok", after=low.at), 60, "county-jail ok again")
    assert back.at > low.at
    page = await asyncio.to_thread(_metrics, worker)
    assert metric(page, "savin_feed_low", source="county-jail") == 0
    start, end = low.at - dt.timedelta(minutes=1), back.at + dt.timedelta(minutes=1)
    down = downtime_hours(await read_feed_changes(stack.settings(), start, end), start.timestamp(), end.timestamp())
    assert down.get("county-jail", 0.0) == 0.0
