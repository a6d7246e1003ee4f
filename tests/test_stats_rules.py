"""Program statistics: tables of counts with small cells and their complements
suppressed, percentiles of durations, and rates. Every expected table is
worked out by hand. Plain functions, no Kafka."""

from __future__ import annotations

import enum
import json
import statistics

import pytest

from savin.domain.stats import COMPLEMENT, count_table, durations, percentile, rate

S = COMPLEMENT


def by_language_and_channel(cells: dict[tuple[str, str], int]):
    rows = [{"language": lang, "channel": ch, "count": n} for (lang, ch), n in cells.items()]
    return count_table(rows, ["language"], "channel", columns=["sms", "email", "voice"])


# Counts by (language, channel) and the table shown: one line per language, then the totals row,
# each as (sms, email, voice, total).
TABLES = [
    ("nothing small", {("en", "sms"): 30, ("en", "email"): 12, ("es", "sms"): 8, ("es", "email"): 7},
     [(30, 12, 0, 42), (8, 7, 0, 15), (38, 19, 0, 57)]),
    # es/sms = 3 is small. Its row then has one hidden entry: its smallest other, es/voice = 0, goes too.
    # Its column has one: en/sms (30, smaller than the total 33). Column voice: en/voice (9). Row en now
    # has two. Unknowns a+c = 39, b+d = 3, a+b = 33, c+d = 9: b is 1, 2 or 3, never pinned.
    ("one small cell", {("en", "sms"): 30, ("en", "email"): 12, ("en", "voice"): 9, ("es", "sms"): 3,
                        ("es", "email"): 7},
     [(S, 12, S, 51), ("<5", 7, S, 10), (33, 19, 9, 61)]),
    # Two small cells in one row and one column each: es/sms and es/voice share row es; column sms and
    # column voice each have one, so en/sms and en/voice go; row en then has two.
    ("two small cells in a row", {("en", "sms"): 20, ("en", "email"): 10, ("en", "voice"): 6, ("es", "sms"): 2,
                                  ("es", "email"): 9, ("es", "voice"): 1},
     [(S, 10, S, 36), ("<5", 9, "<5", 12), (22, 19, 7, 48)]),
    # A small total: es has 4 in all, so its total is small as well as its cells. Column sms has es/sms
    # alone hidden, so en/sms goes; column email, en/email; the column of totals, en's total (30, smaller
    # than 34). Unknowns a+c = 23, b+d = 11, c+d < 5, a+b+c+d = 34: c and d are each 1 to 4, never pinned.
    ("a small row total", {("en", "sms"): 20, ("en", "email"): 10, ("es", "sms"): 3, ("es", "email"): 1},
     [(S, S, 0, S), ("<5", "<5", 0, "<5"), (23, 11, 0, 34)]),
]


@pytest.mark.parametrize(("case", "cells", "shown"), TABLES, ids=[c[0] for c in TABLES])
def test_small_cells_and_their_complements_are_suppressed(case, cells, shown):
    records = by_language_and_channel(cells).records()
    assert [(r["sms"], r["email"], r["voice"], r["total"]) for r in records] == shown
    assert [r["language"] for r in records] == ["en", "es", "total"]


def test_no_line_is_left_with_exactly_one_suppressed_entry():
    cells = {(lang, ch): n for lang, row in zip("abcde", [[1, 9, 30], [0, 6, 2], [7, 3, 12], [40, 0, 4], [5, 5, 5]])
             for ch, n in zip(["sms", "email", "voice"], row)}
    records = by_language_and_channel(cells).records()
    grid = [[r[c] for c in ("sms", "email", "voice", "total")] for r in records]
    for line in grid + [list(col) for col in zip(*grid)]:
        assert sum(isinstance(v, str) for v in line) != 1, line
    # Every small cell is shown "<5"; a complement never is (it may be 5 or more).
    for lang, row in zip("abcde", grid):
        for ch, v in zip(["sms", "email", "voice"], row):
            assert (v == "<5") == (0 < cells[(lang, ch)] < 5)


def test_one_dimension_one_column():
    rows = [{"event_type": "RELEASED"}] * 12 + [{"event_type": "ESCAPED"}] * 2 + [{"event_type": "PARDON"}] * 6
    t = count_table(rows, ["event_type"])
    # ESCAPED (2) is small; the column then has one hidden entry, so the smallest other cell, PARDON (6).
    assert t.records() == [{"event_type": "ESCAPED", "count": "<5"}, {"event_type": "PARDON", "count": S},
                           {"event_type": "RELEASED", "count": 12}, {"event_type": "total", "count": 20}]


def test_rows_by_two_dimensions_and_a_fixed_column_order():
    rows = [
        {"channel": "sms", "language": "en", "change": "new", "count": 40},
        {"channel": "sms", "language": "en", "change": "cancelled", "count": 10},
        {"channel": "email", "language": "en", "change": "new", "count": 25},
        {"channel": "email", "language": "en", "change": "changed", "count": 5},
    ]
    t = count_table(rows, ["channel", "language"], "change", columns=["new", "changed", "cancelled"])
    assert t.columns == ("new", "changed", "cancelled")
    assert t.records() == [
        {"channel": "email", "language": "en", "new": 25, "changed": 5, "cancelled": 0, "total": 30},
        {"channel": "sms", "language": "en", "new": 40, "changed": 0, "cancelled": 10, "total": 50},
        {"channel": "total", "language": "", "new": 65, "changed": 5, "cancelled": 10, "total": 80},
    ]


class Outcome(str, enum.Enum):
    DELIVERED = "delivered"


def test_columns_found_follow_the_fixed_ones_sorted_and_values_are_labels():
    rows = [{"k": "a", "o": Outcome.DELIVERED, "count": 5}, {"k": "a", "o": "bounced", "count": 5},
            {"k": None, "o": "accepted", "count": 5}]
    t = count_table(rows, ["k"], "o", columns=["delivered"])
    assert t.columns == ("delivered", "accepted", "bounced")
    assert [r["k"] for r in t.records()] == ["a", "none", "total"]


def test_total_cannot_be_a_value():
    with pytest.raises(ValueError, match="'total' names the totals"):
        count_table([{"channel": "total"}], ["channel"])


def test_tables_are_plain_data_for_json_and_csv():
    t = by_language_and_channel({("en", "sms"): 30, ("es", "sms"): 3, ("es", "email"): 7, ("en", "email"): 9})
    doc = json.loads(json.dumps(t.as_json()))
    assert doc["by"] == ["language"] and doc["across"] == "channel" and doc["columns"] == ["sms", "email", "voice"]
    assert doc["totals"] == {"language": "total", "sms": 33, "email": 16, "voice": 0, "total": 49}
    assert [r["language"] for r in doc["rows"]] == ["en", "es"]
    assert all(set(r) == {"language", "sms", "email", "voice", "total"} for r in t.records())


def test_threshold_can_be_set():
    t = count_table([{"k": "a", "count": 8}, {"k": "b", "count": 12}], ["k"])
    assert t.records(threshold=10)[0] == {"k": "a", "count": "<10"}
    assert t.records()[0] == {"k": "a", "count": 8}


PERCENTILES = [
    ([], 50, None),
    ([7], 50, 7),
    ([7], 95, 7),
    ([1, 2, 3, 4], 50, 2.5),
    ([4, 1, 3, 2], 50, 2.5),
    ([10, 20, 30, 40, 50], 50, 30),
    ([10, 20, 30, 40, 50], 95, 48),  # rank 0.95 * 4 = 3.8: 40 + 0.8 * 10
    (list(range(1, 101)), 95, 95.05),
    ([5, 5, 5], 95, 5),
    ([1, 2], 0, 1),
    ([1, 2], 100, 2),
]


@pytest.mark.parametrize(("values", "q", "value"), PERCENTILES)
def test_percentiles_interpolate_between_closest_ranks(values, q, value):
    got = percentile(values, q)
    assert got is None if value is None else got == pytest.approx(value)


def test_percentiles_agree_with_the_standard_library():
    values = [3.5, 120, 61, 8, 0.2, 45, 300, 17, 17, 90, 2]
    assert percentile(values, 50) == statistics.median(values)
    assert percentile(values, 95) == pytest.approx(statistics.quantiles(values, n=100, method="inclusive")[94])


DURATIONS = [
    ([], {"count": 0, "median": None, "p95": None}),
    ([60, 30], {"count": "<5", "median": None, "p95": None}),
    ([10, 20, 30, 40, 50], {"count": 5, "median": 30, "p95": 48}),
]


@pytest.mark.parametrize(("values", "summary"), DURATIONS)
def test_durations_from_too_few_notices_are_not_given(values, summary):
    assert durations(values) == summary


RATES = [
    (0, 0, None),
    (80, 100, 0.8),
    (0, 100, 0.0),
    (100, 100, 1.0),
    (3, 100, "<5"),  # three acknowledged
    (97, 100, "<5"),  # three did not acknowledge
    (3, 4, "<5"),  # four sent
    (5, 10, 0.5),
]


@pytest.mark.parametrize(("part", "whole", "value"), RATES)
def test_rates(part, whole, value):
    assert rate(part, whole) == value
