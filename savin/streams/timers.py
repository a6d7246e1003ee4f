"""Timers kept in a stage's store: work that comes due by the clock.

A timer is a store entry whose key starts with its due time (UTC, fixed
width), so a prefix scan meets them in the order they fall due and stops at
the first one that is not yet due. They live in the store like any other
entry, so the stage's changelog carries them: a restarted worker, or one on a
new machine, finds every timer that was set and not yet fired.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from savin.streams.checkpoint import Pending
from savin.streams.store import Store

__all__ = ["TIMER", "timer_key", "due_of", "due_timers", "count_timers"]

TIMER = b"t:"
_STAMP = "%Y%m%dT%H%M%S.%fZ"
_AFTER_ANY_KIND = b"|\x7f"


def _stamp(when: dt.datetime) -> bytes:
    return when.astimezone(dt.timezone.utc).strftime(_STAMP).encode()


def timer_key(due: dt.datetime, kind: str, ident: str) -> bytes:
    """``t:<due>|<kind>|<ident>``; ``ident`` orders timers due at the same time."""
    return TIMER + _stamp(due) + b"|" + kind.encode() + b"|" + ident.encode()


def due_of(key: bytes) -> dt.datetime:
    stamp = key[len(TIMER):].split(b"|", 1)[0].decode()
    return dt.datetime.strptime(stamp, _STAMP).replace(tzinfo=dt.timezone.utc)


def due_timers(store: Store, pending: Pending | None, now: dt.datetime, limit: int) -> list[tuple[bytes, bytes]]:
    """The timers due at ``now``, earliest first, at most ``limit``: the store's, as
    changed by what is pending since the last commit."""
    last = TIMER + _stamp(now) + _AFTER_ANY_KIND
    found: dict[bytes, bytes | None] = {}
    for key, value in store.scan(TIMER):
        if key > last or len(found) >= limit:
            break
        found[key] = value
    for key, value in (pending.items.items() if pending is not None else ()):
        if key.startswith(TIMER) and key <= last:
            found[key] = value
    return sorted((k, v) for k, v in found.items() if v is not None)[:limit]


def count_timers(stores: Iterable[Store]) -> Counter[str]:
    """How many timers of each kind the stores hold (keys only are read)."""
    kinds: Counter[str] = Counter()
    for store in stores:
        for key, _ in store.scan(TIMER):
            kinds[key.split(b"|", 2)[1].decode()] += 1
    return kinds
