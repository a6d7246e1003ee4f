"""The mass-change hold: counts in a sliding window of minute buckets, merged
across partitions; the rules, their settings string, the reason, the hold's id
and the order held notices go out in. Plain functions, no Kafka."""

from __future__ import annotations

import uuid

import pytest

from savin.domain.holds import (
    DEFAULT_HOLD_RULES,
    Counts,
    HeldNotice,
    HoldRule,
    HoldState,
    Window,
    hold_id,
    parse_hold_rules,
    release_order,
    should_hold,
)

T0 = 1_800_000_000.0  # a whole minute (30_000_000 * 60)


# (events as (seconds after T0, n), now after T0, window, count)
COUNTS = [
    ("nothing", [], 0, 600, 0),
    ("one event now", [(0, 1)], 0, 600, 1),
    ("several in one minute", [(1, 3), (59, 2)], 59, 600, 5),
    ("all inside ten minutes", [(0, 1), (300, 1), (599, 1)], 599, 600, 3),
    # The window is rounded out to whole minutes: the minute holding now - window still counts.
    ("oldest minute counted whole", [(0, 4), (600, 1)], 659, 600, 5),
    ("a minute past the window", [(0, 4), (720, 1)], 720, 600, 1),
    ("n at once", [(10, 8000)], 60, 600, 8000),
]


@pytest.mark.parametrize(("case", "events", "now", "window", "count"), COUNTS, ids=[c[0] for c in COUNTS])
def test_counts_in_a_sliding_window_of_minutes(case, events, now, window, count):
    c = Counts(keep=3600)
    for at, n in events:
        c.add(T0 + at, n)
    assert c.count(T0 + now, window) == count


def test_old_buckets_are_dropped_so_memory_stays_bounded():
    c = Counts(keep=600)
    for minute in range(24 * 60):
        c.add(T0 + minute * 60)
    assert len(c.buckets) <= 600 // 60 + 1
    assert c.count(T0 + 24 * 60 * 60, 600) == 10


def test_a_producers_future_clock_does_not_wipe_the_counts():
    # Arrival times are savin's clock; counts stay whatever timestamp a record carries.
    c = Counts(keep=600)
    c.add(T0, 30)
    c.add(T0 + 5, 30)
    assert c.count(T0 + 5, 600) == 60


def test_partitions_publish_buckets_and_a_reader_sums_them():
    a, b = Window(keep=600), Window(keep=600)
    for i in range(30):
        a.add("mo-doc-oms", "RELEASED", T0 + i)
        b.add("mo-doc-oms", "RELEASED", T0 + 60 + i)
    b.add("mo-doc-oms", "ESCAPED", T0 + 1)
    total = Counts.summed([a.buckets()[("mo-doc-oms", "RELEASED")], b.buckets()[("mo-doc-oms", "RELEASED")]])
    assert total.count(T0 + 120, 600) == 60
    assert a.count("mo-doc-oms", "RELEASED", T0 + 120, 600) == 30
    assert a.count("mo-doc-oms", "ESCAPED", T0 + 120, 600) == 0
    assert b.count("mo-doc-oms", "ESCAPED", T0 + 120, 600) == 1


def test_published_buckets_are_a_copy():
    w = Window()
    w.add("s", "RELEASED", T0)
    published = w.buckets()
    w.add("s", "RELEASED", T0)
    assert published[("s", "RELEASED")] == {int(T0 // 60): 1}


def test_a_quiet_source_is_forgotten():
    w = Window(keep=600)
    w.add("county-jail", "RELEASED", T0)
    w.add("mo-doc-oms", "RELEASED", T0 + 3600)
    w.prune(T0 + 3600)
    assert list(w.counts) == [("mo-doc-oms", "RELEASED")]


RULES = [
    ("", {}),
    (DEFAULT_HOLD_RULES, {"RELEASED": HoldRule("RELEASED", 50, 600), "ESCAPED": HoldRule("ESCAPED", 20, 600)}),
    (" RELEASED = 50 / 600 , ", {"RELEASED": HoldRule("RELEASED", 50, 600)}),
    ("RELEASED=50/600/0.05", {"RELEASED": HoldRule("RELEASED", 50, 600, 0.05)}),
    ("ABSCONDED=10/300/5%", {"ABSCONDED": HoldRule("ABSCONDED", 10, 300, 0.05)}),
]


@pytest.mark.parametrize(("text", "rules"), RULES)
def test_rules_from_the_settings_string(text, rules):
    assert parse_hold_rules(text) == rules


BAD = [
    ("RELEASED=50", "hold rule 'RELEASED=50': expected TYPE=MAX/SECONDS or TYPE=MAX/SECONDS/SHARE"),
    ("RELEASED", "hold rule 'RELEASED': expected"),
    ("RELEASED=50/600/1/2", "hold rule 'RELEASED=50/600/1/2': expected"),
    ("FREED=50/600", "hold rule 'FREED=50/600': 'FREED' is not an event type"),
    ("RELEASED=50/600,RELEASED=5/60", "hold rule 'RELEASED=5/60': RELEASED is given twice"),
    ("ESCAPED=many/600", "hold rule 'ESCAPED=many/600': MAX and SECONDS must be whole numbers"),
    ("ESCAPED=0/600", "hold rule 'ESCAPED=0/600': MAX must be at least 1 and SECONDS at least 60"),
    ("ESCAPED=20/30", "hold rule 'ESCAPED=20/30': MAX must be at least 1"),
    ("ESCAPED=20/600/some", "hold rule 'ESCAPED=20/600/some': SHARE must be a fraction"),
    ("ESCAPED=20/600/150%", "hold rule 'ESCAPED=20/600/150%': SHARE must be above 0 and at most 1"),
    ("ESCAPED=20/600/0", "hold rule 'ESCAPED=20/600/0': SHARE must be above 0"),
]


@pytest.mark.parametrize(("text", "error"), BAD, ids=[t for t, _ in BAD])
def test_a_bad_rule_names_its_item(text, error):
    with pytest.raises(ValueError) as e:
        parse_hold_rules(text)
    assert str(e.value).startswith(error)


RELEASED = HoldRule("RELEASED", 50, 600)
SHARED = HoldRule("RELEASED", 50, 600, 0.05)
HOLDS = [
    (RELEASED, 50, None, None),
    (RELEASED, 51, None, "51 RELEASED from mo-doc-oms in 10 minutes (limit 50)"),
    (RELEASED, 8000, 30000, "8000 RELEASED from mo-doc-oms in 10 minutes (limit 50)"),
    (HoldRule("ESCAPED", 20, 60), 21, None, "21 ESCAPED from mo-doc-oms in 1 minute (limit 20)"),
    (HoldRule("ESCAPED", 20, 90), 21, None, "21 ESCAPED from mo-doc-oms in 90 seconds (limit 20)"),
    # The share is off unless the rule sets one, and judged only when the source's offenders are known.
    (RELEASED, 30, 100, None),
    (SHARED, 30, None, None),
    (SHARED, 30, 0, None),
    (SHARED, 5, 100, None),
    (SHARED, 6, 100, "6 RELEASED from mo-doc-oms in 10 minutes, 6.0% of its 100 offenders (limit 5.0%)"),
    (SHARED, 51, 100, "51 RELEASED from mo-doc-oms in 10 minutes (limit 50)"),
]


@pytest.mark.parametrize(("rule", "count", "known", "reason"), HOLDS)
def test_should_hold_says_why(rule, count, known, reason):
    assert should_hold(rule, count, known, source="mo-doc-oms") == reason


def test_the_oregon_burst_is_held_from_the_fifty_first_event():
    rule = parse_hold_rules(DEFAULT_HOLD_RULES)["RELEASED"]
    c = Counts(keep=rule.window_seconds)
    first_held = None
    for i in range(8000):
        at = T0 + i * 60 / 8000  # 8,000 within one minute
        c.add(at)
        if first_held is None and should_hold(rule, c.count(at, rule.window_seconds), 1891, source="or-doc"):
            first_held = i + 1
    assert first_held == 51


def test_a_hold_id_is_the_same_for_every_worker_within_its_minute():
    a = hold_id("mo-doc-oms", "RELEASED", T0 + 1)
    assert a == hold_id("mo-doc-oms", "RELEASED", T0 + 59)
    assert isinstance(a, uuid.UUID) and a.version == 5
    assert a != hold_id("mo-doc-oms", "RELEASED", T0 + 60)
    assert a != hold_id("mo-doc-oms", "ESCAPED", T0 + 1)
    assert a != hold_id("county-jail", "RELEASED", T0 + 1)
    # Stable across versions: a stored hold keeps its id.
    assert str(hold_id("mo-doc-oms", "RELEASED", T0)) == "a2e69596-cafd-5505-b96a-8e13d9b5a492"


def test_hold_states():
    assert [s.value for s in HoldState] == ["open", "approved", "rejected"]


def ids(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def test_release_order_urgent_first_then_event_order():
    held = [
        HeldNotice(ids(1), ids(11), "RELEASE_SCHEDULED", T0 + 1),
        HeldNotice(ids(2), ids(12), "RELEASED", T0 + 5),
        HeldNotice(ids(3), ids(13), "RELEASED", T0 + 2),
        HeldNotice(ids(4), ids(15), "TRANSFERRED", T0),
        HeldNotice(ids(5), ids(14), "RELEASED", T0 + 2),  # same time as notice 3: event id settles it
        HeldNotice(ids(6), ids(16), "ESCAPED", T0 + 3),
    ]
    assert [n.notice_id.int for n in release_order(held)] == [3, 5, 6, 2, 4, 1]


def test_release_order_takes_anything_with_the_three_fields():
    assert release_order([]) == []
    assert release_order(iter([HeldNotice(ids(1), ids(1), "PARDON", T0)]))[0].event_type == "PARDON"


def test_a_share_rule_is_judged_on_the_offenders_the_status_stage_counted_for_the_source():
    import datetime as dt

    from savin.schemas.safety import FeedCounts, SourceCounts
    from savin.streams.holding import HoldBook

    book = HoldBook(parse_hold_rules("RELEASED=1000/600/5%"))
    at = dt.datetime.fromtimestamp(T0, dt.timezone.utc)
    for n in range(30):
        book.add(n % 2, "county-jail", "RELEASED", T0 + n)
    assert book.verdict("county-jail", "RELEASED", T0 + 30) is None, "no offenders known yet: no share is judged"
    # Two status partitions: 300 and 200 of the jail's offenders, 5 % of them is 25.
    book.apply_feed_counts(FeedCounts(partition=0, sources={"county-jail": SourceCounts(offenders=300),
                                                            "other": SourceCounts(offenders=9000)}, at=at))
    book.apply_feed_counts(FeedCounts(partition=1, sources={"county-jail": SourceCounts(offenders=200)}, at=at))
    assert book.offenders_known("county-jail") == 500
    reason = book.verdict("county-jail", "RELEASED", T0 + 30)
    assert reason is not None and "500 offenders" in reason and "5.0%" in reason
    # A partition's newer counts replace its older ones.
    book.apply_feed_counts(FeedCounts(partition=1, sources={"county-jail": SourceCounts(offenders=900)}, at=at))
    assert book.offenders_known("county-jail") == 1200
    assert book.verdict("county-jail", "RELEASED", T0 + 30) is None, "30 of 1,200 is 2.5 %"
