"""The one clock: rules take ``now`` as an argument; the edges read it here."""

from __future__ import annotations

import datetime as dt

__all__ = ["utcnow"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
