"""The safety checks' records: holds on mass changes, held notices, the counts
the match stage shares to judge a burst, and the feed watchdog's counts and status.

* ``<ns>.holds`` (compacted, one partition, keyed by hold id) holds a
  :class:`Hold` per hold: opened by the match stage when a source sends more
  events of one type than its rule allows (``kind`` ``mass``), or by an
  operator blocking one offender's notices (``kind`` ``offender``); approved or
  rejected by an operator. Every match stage instance reads it whole.
* ``<ns>.held-notices`` (keyed by hold id, so a hold's notices share a partition)
  holds a :class:`HeldNotice` per notice kept back by a hold.
* ``<ns>.hold-counts`` (compacted, one partition, keyed ``p<partition>``) holds
  each match partition's :class:`HoldCounts`: its per-minute event counts per
  (source, event type), summed by every instance to judge a burst across partitions.
* ``<ns>.feed-counts`` (compacted, one partition, keyed ``p<partition>``) holds
  each status partition's :class:`FeedCounts`: per source, the newest event and
  heartbeat and the events per hour.
* ``<ns>.feed-status`` (one partition, kept without a time limit) holds a
  :class:`FeedStatusChange` each time a source turns stale, low or ok again:
  the record of each source's downtime.

Ids, counts and times only: nothing here names a person.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field

from savin.domain.holds import HoldState
from savin.schemas.base import Strict, Timestamp, Uuid
from savin.schemas.notices import NoticeJob
from savin.schemas.payloads import Text

__all__ = ["HoldState", "HoldKind", "Hold", "HeldNotice", "HoldCounts", "SourceCounts", "FeedCounts",
           "FeedStatusChange"]


class HoldKind(str, enum.Enum):
    MASS = "mass"  # a burst of one event type from one source
    OFFENDER = "offender"  # an operator blocked one offender's notices while a record is fixed


class Hold(Strict):
    hold_id: Uuid
    kind: HoldKind
    state: HoldState
    #: Why it was opened (the rule's verdict, or the operator's words for a block).
    reason: Text
    #: A mass hold's source and event type.
    source: str | None = None
    event_type: str | None = None
    #: A block's offender.
    offender_id: str | None = None
    opened_at: Timestamp
    #: The operator who opened a block (None: the match stage opened it).
    opened_by: str | None = None
    decided_by: str | None = None
    decided_at: Timestamp | None = None
    #: The operator's reason for the decision.
    why: Text | None = None
    #: Notices released (approved) or recorded as rejected by the decision.
    notices: Annotated[int, Field(ge=0)] | None = None


class HeldNotice(Strict):
    hold_id: Uuid
    job: NoticeJob
    at: Timestamp


class HoldCounts(Strict):
    """One match partition's events per (source, event type) and minute (Unix minute -> count)."""

    partition: Annotated[int, Field(ge=0)]
    #: "<source>\u001f<event type>" -> {unix minute (as text): events}
    counts: dict[str, dict[str, int]]
    at: Timestamp


class SourceCounts(Strict):
    last_event_at: Timestamp | None = None
    last_heartbeat_at: Timestamp | None = None
    #: Unix hour (as text) -> events (heartbeats not counted), the last week.
    hourly: dict[str, int] = {}
    #: Offenders of the partition whose newest event came from this source (what a hold rule's
    #: share is of); approximate after a crash, which may move a few once more or not at all.
    offenders: Annotated[int, Field(ge=0)] = 0


class FeedCounts(Strict):
    """One status partition's view of every source it has seen events from."""

    partition: Annotated[int, Field(ge=0)]
    sources: dict[str, SourceCounts]
    at: Timestamp


class FeedStatusChange(Strict):
    source: str
    state: Literal["ok", "stale", "low"]
    reason: str | None = None
    #: The source's newest event or heartbeat when the state changed.
    last_event_at: Timestamp | None = None
    at: Timestamp
