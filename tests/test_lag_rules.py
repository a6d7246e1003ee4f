"""Consumer lag judged by Burrow's rules, lag in seconds, and the readiness a
judgement gives: plain functions and objects, no Kafka."""

from __future__ import annotations

import pytest

from savin.domain.lag import (
    GroupLag,
    Look,
    PartitionLag,
    Sample,
    Status,
    Tracker,
    group_status,
    partition_status,
    why,
)
from savin.web.health import Readiness


def window(*looks: tuple[int, int, float], every: float = 10.0, held: bool = False) -> list[Sample]:
    """Samples ``every`` seconds apart from 0, each (offset, lag, committed at)."""
    return [Sample(i * every, offset, lag, committed_at, held) for i, (offset, lag, committed_at) in enumerate(looks)]


# Three looks at 0, 10 and 20 s, judged at 20 s: (offset, lag, when that offset was last committed).
RULES = [
    ("moving and catching up", [(1, 5, 0), (3, 4, 10), (6, 2, 20)], Status.OK),
    # Rule 1: a lag of zero anywhere in the window makes the whole window OK, whatever else it shows.
    ("lag zero at one look", [(7, 3, 0), (7, 0, 0), (7, 4, 0)], Status.OK),
    ("lag zero now", [(7, 3, 0), (7, 4, 0), (7, 0, 0)], Status.OK),
    # Rule 2: the committed offset went back; it comes before every other rule.
    ("offset went back", [(10, 5, 0), (8, 7, 10), (12, 3, 20)], Status.REWIND),
    ("went back, then stopped", [(10, 5, 0), (8, 7, 0), (8, 9, 0)], Status.REWIND),
    # Rule 3: no commit for longer than the window's commits span.
    ("never committed in the window", [(7, 3, 0), (7, 4, 0), (7, 5, 0)], Status.STOP),
    ("stopped after moving", [(5, 3, 0), (6, 3, 5), (6, 9, 5)], Status.STOP),
    # Rule 4: committed again and again at the same offset (a live consumer that does not move).
    ("same offset at every commit", [(7, 3, 0), (7, 4, 10), (7, 5, 20)], Status.STALL),
    ("same offset, lag fixed", [(7, 3, 0), (7, 3, 10), (7, 3, 20)], Status.STALL),
    # Rule 5: moving, but the lag never went down.
    ("moving, lag growing", [(1, 3, 0), (2, 3, 10), (3, 4, 20)], Status.WARN),
    ("moving, lag down once", [(1, 5, 0), (3, 4, 10), (4, 6, 20)], Status.OK),
    # The last commit is recent enough against the span: not STOP, and the offsets moved: not STALL.
    ("slow commit within the span", [(5, 6, 0), (6, 5, 10), (6, 5, 10)], Status.OK),
]


@pytest.mark.parametrize(("case", "looks", "status"), RULES, ids=[c for c, _, _ in RULES])
def test_burrows_rules_in_burrows_order(case, looks, status):
    assert partition_status(window(*looks), now=20.0, size=3) is status


def test_a_window_is_judged_only_once_it_is_full():
    stuck = window((7, 3, 0), (7, 4, 0))
    assert partition_status(stuck, now=10.0, size=3) is Status.OK
    assert partition_status(stuck, now=10.0, size=2) is Status.STOP


def test_records_waiting_out_their_delay_are_not_lag():
    held = window((7, 3, 0), (7, 3, 0), (7, 3, 0), held=True)
    assert partition_status(held, now=20.0, size=3) is Status.OK


@pytest.mark.parametrize(("status", "looks", "words"), [
    (Status.REWIND, [(10, 5, 0), (8, 7, 10), (12, 3, 20)], "the committed offset went back from 10 to 8"),
    (Status.STOP, [(7, 3, 0), (7, 4, 0), (7, 5, 0)], "no commit for 20 s with 5 records behind"),
    (Status.STALL, [(7, 3, 0), (7, 4, 10), (7, 5, 20)], "the committed offset stayed at 7 for 20 s with 5 records "
                                                          "behind"),
    (Status.WARN, [(1, 3, 0), (2, 3, 10), (3, 4, 20)], "the lag did not go down in 20 s (3 to 4 records)"),
    (Status.OK, [(1, 3, 0), (2, 3, 10), (3, 0, 20)], None),
])
def test_each_status_says_why_with_its_figures(status, looks, words):
    assert why(status, window(*looks), now=20.0) == words


def test_a_group_is_as_bad_as_its_worst_partition():
    assert group_status([]) is Status.OK
    assert group_status([Status.OK, Status.WARN]) is Status.WARN
    assert group_status([Status.STALL, Status.STOP, Status.WARN]) is Status.STALL
    assert group_status([Status.REWIND, Status.STALL]) is Status.REWIND
    rows = [PartitionLag("g", "t", 0, 1, 9, 8, 3.0, Status.WARN, "w"),
            PartitionLag("g", "t", 1, 1, 5, 4, 3.0, Status.STOP, "s"),
            PartitionLag("g", "t", 2, 1, 50, 49, 3.0, Status.STOP, "s2"),
            PartitionLag("g", "t", 3, 1, 1, 0, 0.0, Status.OK)]
    group = GroupLag("g", rows)
    assert group.status is Status.STOP
    assert group.worst is rows[2]  # of equals, the one furthest behind
    assert GroupLag("g", [rows[3]]).worst is None


# ---- the tracker: looks become windows -------------------------------------------------------


def look(committed: int | None, end: int, *, start: int = 0, head_at: float | None = None, live: bool = False,
         delay: float = 0.0, partition: int = 0) -> Look:
    return Look("savin.deliver", "savin.notices.urgent", partition, committed, start, end, head_at, live, delay)


def judge(tracker: Tracker, looks_at: list[tuple[float, list[Look]]]) -> list[PartitionLag]:
    rows = []
    for now, looks in looks_at:
        rows = tracker.observe(now, looks)
    return rows


def test_a_partition_nobody_holds_that_does_not_move_is_stop_one_a_live_consumer_holds_is_stall():
    def stuck(live: bool):
        return judge(Tracker(3), [(t, [look(7, int(10 + t), head_at=0.0, live=live)]) for t in (10.0, 20.0, 30.0)])[0]

    nobody, someone = stuck(False), stuck(True)
    assert (nobody.status, nobody.reason) == (Status.STOP, "no commit for 20 s with 33 records behind")
    assert (someone.status, someone.reason) == (Status.STALL, "the committed offset stayed at 7 for 20 s with 33 "
                                                              "records behind")
    assert (nobody.lag, nobody.seconds, nobody.committed, nobody.end) == (33, 30.0, 7, 40)


def test_an_offset_that_moves_is_a_commit_even_when_nobody_is_seen_holding_it():
    rows = judge(Tracker(3), [(10.0, [look(1, 20, head_at=5.0)]), (20.0, [look(4, 24, head_at=15.0)]),
                              (30.0, [look(9, 29, head_at=25.0)])])
    assert rows[0].status is Status.WARN  # moving, and the lag (19, 20, 20) never went down
    rows = judge(Tracker(3), [(10.0, [look(1, 20, head_at=5.0)]), (20.0, [look(4, 20, head_at=15.0)]),
                              (30.0, [look(9, 29, head_at=25.0)])])
    assert rows[0].status is Status.OK


def test_a_stuck_partition_is_judged_only_after_a_full_window():
    tracker = Tracker(3)
    first = tracker.observe(10.0, [look(7, 20, head_at=0.0)])
    second = tracker.observe(20.0, [look(7, 20, head_at=0.0)])
    third = tracker.observe(30.0, [look(7, 20, head_at=0.0)])
    assert [r[0].status for r in (first, second, third)] == [Status.OK, Status.OK, Status.STOP]


def test_a_partition_that_moves_away_starts_a_fresh_window_when_it_comes_back():
    tracker = Tracker(3)
    for t in (10.0, 20.0, 30.0):
        rows = tracker.observe(t, [look(7, 20, head_at=0.0), look(3, 3, partition=1)])
    assert [r.status for r in rows] == [Status.STOP, Status.OK]
    assert [r.partition for r in tracker.observe(40.0, [look(3, 3, partition=1)])] == [1]
    assert tracker.observe(50.0, [look(7, 20, head_at=0.0), look(3, 3, partition=1)])[0].status is Status.OK


@pytest.mark.parametrize(("the_look", "lag", "seconds"), [
    (look(7, 7), 0, 0.0),  # nothing behind
    (look(7, 12, head_at=95.0), 5, 5.0),  # the first record behind was produced 5 s ago
    (look(7, 12, head_at=101.0), 5, 0.0),  # a producer's clock ahead of ours: never below 0
    (look(7, 12), 5, None),  # behind, but its record could not be read
    (look(None, 12, start=2, head_at=90.0), 10, 10.0),  # never committed: from the log start
    (look(1, 12, start=4, head_at=90.0), 8, 10.0),  # retention passed the commit: from the log start
    (look(9, 7), 0, 0.0),  # a commit ahead of a stale end offset
    (look(7, 12, head_at=80.0, delay=30.0), 5, 0.0),  # a retry tier: due at 110, not yet
    (look(7, 12, head_at=40.0, delay=30.0), 5, 30.0),  # due at 70: 30 s past due
])
def test_lag_in_records_and_in_seconds(the_look, lag, seconds):
    row = Tracker().observe(100.0, [the_look])[0]
    assert (row.lag, row.seconds) == (lag, seconds)


def test_a_retry_tier_holding_notices_is_ok_until_they_are_due_then_judged():
    tracker = Tracker(3)
    waiting = [tracker.observe(t, [look(7, 9, head_at=0.0, delay=300.0)])[0] for t in (100.0, 200.0, 290.0)]
    assert [(r.status, r.seconds, r.lag) for r in waiting] == [(Status.OK, 0.0, 2)] * 3
    due = [tracker.observe(t, [look(7, 9, head_at=0.0, delay=300.0)])[0] for t in (310.0, 320.0, 330.0)]
    assert [r.status for r in due] == [Status.OK, Status.OK, Status.STOP]
    assert due[-1].seconds == 30.0


def test_a_window_needs_two_looks():
    with pytest.raises(ValueError):
        Tracker(1)


# ---- readiness -------------------------------------------------------------------------------


class Lag:
    def __init__(self, **groups: GroupLag):
        self.groups = groups


def group(*statuses: Status) -> GroupLag:
    return GroupLag("savin.deliver", [PartitionLag("savin.deliver", "savin.notices.urgent", p, 7, 20, 13, 30.0, s,
                                                   None if s is Status.OK else f"because {s.name}")
                                      for p, s in enumerate(statuses)])


@pytest.mark.parametrize(("status", "ready"), [(Status.OK, True), (Status.WARN, True), (Status.REWIND, True),
                                               (Status.STALL, False), (Status.STOP, False)])
def test_a_worker_is_not_ready_while_a_group_it_runs_is_stop_or_stall(status, ready):
    readiness = Readiness(None, [], [], lag=Lag(match=group(Status.OK), deliver=group(Status.OK, status)))
    is_ready, body = readiness.report()
    assert is_ready is ready
    assert body["checks"]["lag:match"] == {"ok": True}
    expected = {"ok": ready}
    if status is not Status.OK:
        expected.update(detail=f"{status.name}: savin.notices.urgent[1] because {status.name}", code=status.name)
    assert body["checks"]["lag:deliver"] == expected
    assert body["failing"] == ([] if ready else ["lag:deliver"])


def test_readiness_without_a_lag_monitor_or_before_its_first_look_has_no_lag_checks():
    assert Readiness(None, [], []).report() == (True, {"ready": True, "failing": [], "checks": {}})
    assert Readiness(None, [], [], lag=Lag()).report()[0] is True
