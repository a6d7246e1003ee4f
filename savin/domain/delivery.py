"""Delivery decisions as plain functions: send or skip, retry scheduling,
ledger merging and how long the ledger remembers."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from savin.schemas import DONE_STATUSES, FINAL_STATUSES, DeliveryStatus, NoticeJob

__all__ = ["RetryPlan", "plan_retry", "retry_delay", "merge_status", "is_due", "Decision", "decide",
           "ledger_entry", "forgotten"]


def retry_delay(attempt: int, delays: tuple[float, ...]) -> float:
    """Delay before try ``attempt + 1``; the last tier repeats (e.g. every hour)."""
    return delays[min(attempt, len(delays) - 1)]


@dataclass(frozen=True)
class RetryPlan:
    tier: int  # index into the retry topics
    job: NoticeJob


def plan_retry(job: NoticeJob, delays: tuple[float, ...], max_attempts: int, now: dt.datetime) -> RetryPlan | None:
    """Schedule the next try of a temporarily failed notice, or None when tries are used up.

    ``job.attempt`` counts tries already made, so the first failure has attempt 0.
    """
    tries_made = job.attempt + 1
    if tries_made >= max_attempts:
        return None
    tier = min(job.attempt, len(delays) - 1)
    not_before = now + dt.timedelta(seconds=delays[tier])
    return RetryPlan(tier, job.model_copy(update={"attempt": tries_made, "not_before": not_before}))


# Rank of each status along a notice's life; a callback may only move it forward.
_RANK = {
    DeliveryStatus.RETRYING: 0,
    DeliveryStatus.HELD: 0,
    DeliveryStatus.ACCEPTED: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.UNDELIVERED: 3,
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.SUPPRESSED: 3,
    DeliveryStatus.CANCELLED: 3,
    DeliveryStatus.REJECTED: 3,
}


def merge_status(current: DeliveryStatus | None, incoming: DeliveryStatus) -> DeliveryStatus | None:
    """The ledger's new status, or None when ``incoming`` must be ignored.

    A final status is never overwritten: a late ``sent`` after ``delivered``
    changes nothing, and neither does a second final status.
    """
    if current is None:
        return incoming
    if current in FINAL_STATUSES:
        return None
    if _RANK[incoming] < _RANK[current]:
        return None
    return incoming if incoming != current else None


def is_due(job: NoticeJob, now: dt.datetime) -> bool:
    """A retried notice waits in its tier until ``not_before``."""
    return job.not_before is None or job.not_before <= now


class Decision(str, enum.Enum):
    SEND = "send"
    SKIP = "skip"  # already done, or already in this batch
    SUPPRESS = "suppress"  # the contact opted out


def decide(ledger: DeliveryStatus | None, opted_out: bool, in_batch: bool) -> Decision:
    """What to do with a notice job, given what the ledger and the suppressions know."""
    if in_batch or ledger in DONE_STATUSES:
        return Decision.SKIP
    return Decision.SUPPRESS if opted_out else Decision.SEND


def ledger_entry(current: dict | None, status: DeliveryStatus, ref: str | None, now: dt.datetime) -> dict | None:
    """The ledger entry after ``status`` arrives, or None when the ledger already knows better."""
    if merge_status(DeliveryStatus(current["status"]) if current else None, status) is None:
        return None
    return {"status": status.value, "provider_ref": ref or (current or {}).get("provider_ref"), "at": now.isoformat()}


def forgotten(entry: dict, now: dt.datetime, retention_days: int) -> bool:
    """A final ledger entry older than the retention is forgotten."""
    return (DeliveryStatus(entry["status"]) in FINAL_STATUSES
            and dt.datetime.fromisoformat(entry["at"]) < now - dt.timedelta(days=retention_days))
