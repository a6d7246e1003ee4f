"""The feed watchdog: thresholds from their setting, the usual rate, a source's
status, and downtime from status changes. Plain functions, no Kafka."""

from __future__ import annotations

import pytest

from savin.domain.feeds import (
    DEFAULT_SILENT_AFTER,
    FeedState,
    FeedStatus,
    StatusChange,
    Thresholds,
    downtime,
    downtime_hours,
    feed_status,
    parse_thresholds,
    usual_rate,
)

T0 = 1_800_000_000.0
H = 3600

THRESHOLDS = [
    ("", {}, DEFAULT_SILENT_AFTER),
    ("mo-doc-oms=900,default=3600", {"mo-doc-oms": 900}, 3600),
    (" mo-doc-oms = 900 , county-jail=7200,default=1800,", {"mo-doc-oms": 900, "county-jail": 7200}, 1800),
    ("mo-doc-oms=900", {"mo-doc-oms": 900}, DEFAULT_SILENT_AFTER),
]


@pytest.mark.parametrize(("text", "per_source", "default"), THRESHOLDS)
def test_thresholds_from_the_settings_string(text, per_source, default):
    t = parse_thresholds(text)
    assert t == Thresholds(per_source, default)
    assert t.silent_after("elsewhere") == default
    for source, seconds in per_source.items():
        assert t.silent_after(source) == seconds


BAD = [
    ("mo-doc-oms", "feed threshold 'mo-doc-oms': expected SOURCE=SECONDS"),
    ("=900", "feed threshold '=900': expected SOURCE=SECONDS"),
    ("mo-doc-oms=15m", "feed threshold 'mo-doc-oms=15m': SECONDS must be a whole number of at least 1"),
    ("mo-doc-oms=0", "feed threshold 'mo-doc-oms=0': SECONDS must be a whole number of at least 1"),
    ("mo-doc-oms=-5", "feed threshold 'mo-doc-oms=-5': SECONDS must be"),
    ("a=1,a=2", "feed threshold 'a=2': a is given twice"),
]


@pytest.mark.parametrize(("text", "error"), BAD, ids=[t for t, _ in BAD])
def test_a_bad_threshold_names_its_item(text, error):
    with pytest.raises(ValueError) as e:
        parse_thresholds(text)
    assert str(e.value).startswith(error)


USUAL = [
    ("under a day: unknown", [50] * 23, None),
    ("a steady day", [50] * 24, 50),
    ("a burst does not move it", [50] * 23 + [8000], 50),
    ("a dead hour does not move it", [0] + [50] * 23, 50),
    ("only the last week counts", [1000] * 100 + [40] * 168, 40),
    ("nights and days", [0] * 12 + [100] * 12, 50),
]


@pytest.mark.parametrize(("case", "hourly", "usual"), USUAL, ids=[c[0] for c in USUAL])
def test_the_usual_rate_is_a_median_of_the_last_hours(case, hourly, usual):
    assert usual_rate(hourly) == usual


OK = FeedStatus(FeedState.OK)
# (last event seconds before now, events in the last hour, usual rate, threshold, status)
STATUSES = [
    ("fresh and busy", 10, 60, 60, 900, OK),
    ("silent up to the limit", 900, 60, 60, 900, OK),
    ("silent past the limit", 901, 60, 60, 900, FeedStatus(FeedState.STALE, "no event for 15 min (limit 15 min)")),
    ("silent for hours", 3 * H + 600, 0, 60, 3600, FeedStatus(FeedState.STALE, "no event for 3 h 10 min (limit 60 min)")),
    ("a short limit", 45, 0, None, 30, FeedStatus(FeedState.STALE, "no event for 45 s (limit 30 s)")),
    ("never seen", None, 0, None, 900, FeedStatus(FeedState.STALE, "no event seen from this source")),
    # Heartbeats keep it fresh, but the events have all but stopped.
    ("heartbeats only", 30, 0, 60, 900, FeedStatus(FeedState.LOW, "0 events in the last hour, usual 60 "
                                                               "(below 10% of usual)")),
    ("well below usual", 30, 5, 60, 900, FeedStatus(FeedState.LOW, "5 events in the last hour, usual 60 "
                                                                "(below 10% of usual)")),
    ("at a tenth of usual", 30, 6, 60, 900, OK),
    ("a quiet source is not low", 30, 0, 9.5, 900, OK),
    ("usual not known yet", 30, 0, None, 900, OK),
    ("stale comes before low", 1000, 0, 60, 900, FeedStatus(FeedState.STALE, "no event for 16 min (limit 15 min)")),
]


@pytest.mark.parametrize(("case", "ago", "rate", "usual", "limit", "status"), STATUSES, ids=[c[0] for c in STATUSES])
def test_feed_status(case, ago, rate, usual, limit, status):
    last = None if ago is None else T0 - ago
    assert feed_status(T0, last, rate, usual, limit) == status


def test_low_share_and_minimum_usual_can_be_set():
    assert feed_status(T0, T0, 20, 100, 900, low_share=0.25).state is FeedState.LOW
    assert feed_status(T0, T0, 0, 4, 900, min_usual=2).state is FeedState.LOW


def stale(source, at):
    return StatusChange(source, T0 + at, FeedState.STALE)


def ok(source, at):
    return StatusChange(source, T0 + at, FeedState.OK)


# Changes (seconds after T0), the period [T0, T0 + 10 h), and the intervals (seconds after T0).
DOWNTIME = [
    ("never stale", [ok("a", 0)], {}),
    ("one outage", [stale("a", H), ok("a", 3 * H)], {"a": [(H, 3 * H)]}),
    ("stale before the period", [stale("a", -5 * H), ok("a", H)], {"a": [(0, H)]}),
    ("still stale at its end", [stale("a", 8 * H)], {"a": [(8 * H, 10 * H)]}),
    ("stale throughout", [stale("a", -H)], {"a": [(0, 10 * H)]}),
    ("after the period", [stale("a", 11 * H)], {}),
    ("out of order", [ok("a", 3 * H), stale("a", H)], {"a": [(H, 3 * H)]}),
    ("repeated stale changes", [stale("a", H), stale("a", 2 * H), ok("a", 3 * H)], {"a": [(H, 3 * H)]}),
    ("low is not down", [StatusChange("a", T0 + H, FeedState.LOW), ok("a", 3 * H)], {}),
    ("low ends an outage", [stale("a", H), StatusChange("a", T0 + 2 * H, FeedState.LOW)], {"a": [(H, 2 * H)]}),
    ("two outages", [stale("a", 0), ok("a", H), stale("a", 5 * H), ok("a", 6 * H)], {"a": [(0, H), (5 * H, 6 * H)]}),
    ("back and down at once", [stale("a", 0), ok("a", H), stale("a", H), ok("a", 2 * H)], {"a": [(0, 2 * H)]}),
    ("per source", [stale("a", H), ok("a", 2 * H), stale("b", 0), ok("b", H / 2), ok("c", 0)],
     {"a": [(H, 2 * H)], "b": [(0, H / 2)]}),
]


@pytest.mark.parametrize(("case", "changes", "intervals"), DOWNTIME, ids=[c[0] for c in DOWNTIME])
def test_downtime_intervals_within_the_period(case, changes, intervals):
    got = downtime(changes, T0, T0 + 10 * H)
    assert {s: [(a - T0, b - T0) for a, b in iv] for s, iv in got.items()} == intervals


def test_downtime_hours_per_source():
    changes = [stale("a", H), ok("a", 3.5 * H), stale("b", 9 * H)]
    assert downtime_hours(changes, T0, T0 + 10 * H) == {"a": 2.5, "b": 1.0}
    assert downtime_hours([], T0, T0 + H) == {}
