"""Program statistics with no personal data: counts in tables with small cells
suppressed, percentiles of durations, and rates.

Why: the federal SAVIN program asks states for figures (subscribers, notices,
downtime), and such figures are published. A cell of 1 to 4 in a table of
registrations by language and channel can point at one victim, so:

* **small cells**: a count from 1 to ``threshold - 1`` (4) is shown as
  ``"<5"``. A zero is shown: it says that nobody is in the cell.
* **complements**: a line (a row with its total, a column with its total, the
  totals row) with exactly one suppressed entry would give it away by
  subtraction, so the smallest other entry in that line is suppressed too, and
  so on until no line has exactly one. A complement is shown as
  ``"suppressed"``, not ``"<5"``: it may well be 5 or more, and a report must
  not say it is under 5.
* **durations**: a median of fewer than 5 notices is one person's wait; below
  the threshold only ``"<5"`` is given for the count, and no percentiles.
* **rates**: a rate whose part, whole or the rest (whole - part) is from 1 to 4
  is ``"<5"``; a whole of 0 has no rate (None).

Tables are plain data (:meth:`Table.records` for CSV, :meth:`Table.as_json`).
No numpy: percentiles interpolate linearly between closest ranks, as numpy's
default and ``statistics.quantiles(method="inclusive")`` do.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SMALL", "COMPLEMENT", "TOTAL", "Cell", "Table", "count_table", "percentile", "durations", "rate"]

#: Counts under this are small.
SMALL = 5
#: How a complement (suppressed so a small cell cannot be recomputed) is shown.
COMPLEMENT = "suppressed"
#: The key of the totals row and column.
TOTAL = "total"

Cell = int | str
Key = tuple[str, ...]


def _label(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    return "none" if value is None else str(value)


@dataclass(frozen=True)
class Table:
    """Counts by the dimensions ``by`` (a row each) and ``across`` (a column each; None: one
    column, ``count``)."""

    by: tuple[str, ...]
    across: str | None
    row_keys: tuple[Key, ...]
    columns: tuple[str, ...]
    counts: Mapping[tuple[Key, str], int]

    def count(self, row: Key, column: str) -> int:
        if row == (TOTAL,) and column == TOTAL:
            return sum(self.counts.values())
        if row == (TOTAL,):
            return sum(n for (_, c), n in self.counts.items() if c == column)
        if column == TOTAL:
            return sum(n for (r, _), n in self.counts.items() if r == row)
        return self.counts.get((row, column), 0)

    def _grid(self) -> tuple[list[Key], list[str]]:
        return [*self.row_keys, (TOTAL,)], [*self.columns, *([TOTAL] if self.across else [])]

    def shown(self, threshold: int = SMALL) -> dict[tuple[Key, str], Cell]:
        """Every entry, totals included, as it may be published."""
        rows, cols = self._grid()
        value = {(r, c): self.count(r, c) for r in rows for c in cols}
        small = {p for p, n in value.items() if 0 < n < threshold}
        hidden = set(small)
        lines = [[(r, c) for c in cols] for r in rows] if self.across else []
        lines += [[(r, c) for r in rows] for c in cols]
        changed = True
        while changed:
            changed = False
            for line in lines:
                if sum(p in hidden for p in line) == 1:
                    # The smallest other entry, a cell before a total, then in table order.
                    pick = min((p for p in line if p not in hidden),
                               key=lambda p: (value[p], TOTAL in (p[0][0], p[1]), line.index(p)))
                    hidden.add(pick)
                    changed = True
        return {p: (f"<{threshold}" if p in small else COMPLEMENT if p in hidden else n) for p, n in value.items()}

    def records(self, threshold: int = SMALL) -> list[dict[str, Cell]]:
        """One dict per row, the totals row last (its first dimension ``total``): CSV rows."""
        shown = self.shown(threshold)
        rows, cols = self._grid()
        out: list[dict[str, Cell]] = []
        for r in rows:
            key = r if r != (TOTAL,) else (TOTAL, *[""] * (len(self.by) - 1))
            names = {d: k for d, k in zip(self.by, key)}
            out.append({**names, **{c: shown[(r, c)] for c in cols}})
        return out

    def as_json(self, threshold: int = SMALL) -> dict[str, Any]:
        records = self.records(threshold)
        return {"by": list(self.by), "across": self.across, "columns": list(self.columns),
                "rows": records[:-1], "totals": records[-1]}


def count_table(rows: Iterable[Mapping[str, Any]], by: Sequence[str], across: str | None = None, *,
                columns: Sequence[str] = (), count: str = "count") -> Table:
    """Sum rows of dimensions into a table. A row's ``count`` (default 1: one row per thing counted)
    adds to the cell of its values of ``by`` and ``across``. ``columns``: the columns to show first
    and always, 0 where nothing was counted (a report's fixed shape); others found follow, sorted."""
    counts: dict[tuple[Key, str], int] = {}
    for row in rows:
        key = tuple(_label(row.get(d)) for d in by)
        column = _label(row.get(across)) if across else "count"
        counts[(key, column)] = counts.get((key, column), 0) + int(row.get(count, 1))
    if any(k == (TOTAL,) or c == TOTAL for k, c in counts):
        raise ValueError(f"{TOTAL!r} names the totals and cannot be a dimension's value")
    found = sorted({c for _, c in counts} - set(columns))
    cols = (*columns, *found) if across else ("count",)
    return Table(tuple(by), across, tuple(sorted({r for r, _ in counts})), tuple(cols), counts)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0 to 100), interpolated between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def durations(values: Sequence[float], threshold: int = SMALL) -> dict[str, Cell | float | None]:
    """Count, median and p95 of durations (seconds, to the millisecond), none of them from fewer
    than ``threshold``."""
    if 0 < len(values) < threshold:
        return {"count": f"<{threshold}", "median": None, "p95": None}

    def at(q: float) -> float | None:
        value = percentile(values, q)
        return None if value is None else round(value, 3)

    return {"count": len(values), "median": at(50), "p95": at(95)}


def rate(part: int, whole: int, threshold: int = SMALL) -> float | str | None:
    """``part / whole`` (acknowledged / sent), or ``"<5"`` when it rests on a small count."""
    if whole == 0:
        return None
    if any(0 < n < threshold for n in (part, whole, whole - part)):
        return f"<{threshold}"
    return part / whole
