"""Operators' side of the holds (:mod:`savin.domain.holds`): list them, show what one
keeps back, approve (everything held goes out, urgent first, in event order) or
reject it (nothing goes out; each held notice is recorded as rejected, with who
and why), and block one offender's notices while a record is being fixed.

A decision is written to ``holds`` first, so the match stage stops adding to the
hold, then the held notices are read from ``held-notices`` and released or
recorded. Notices the match stage still added while the decision reached it are
picked up by a second pass after :data:`SETTLE` seconds. Deciding again (after a
crash, or twice by mistake) releases nothing twice: a released notice keeps its
id, and the deliver stage's ledger sends each id once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from savin import metrics
from savin.domain.holds import HoldState, release_order
from savin.ops.problems import Problem
from savin.ops.reading import read_topic
from savin.schemas import DeliveryResult, DeliveryStatus
from savin.schemas.safety import HeldNotice, Hold, HoldKind
from savin.settings import Settings
from savin.topics import Topics, producer

__all__ = ["Problem", "Decision", "read_holds", "find_hold", "held_notices", "decide", "block", "SETTLE"]

#: Seconds between a decision's two passes over the held notices.
SETTLE = 3.0


@dataclass
class Decision:
    hold: Hold
    notices: int


async def read_holds(settings: Settings) -> list[Hold]:
    """Every hold, newest state of each, newest opened first."""
    latest: dict[uuid.UUID, Hold] = {}
    async for r in read_topic(settings.kafka_bootstrap, Topics(settings).holds):
        if r.value is not None:
            hold = Hold.model_validate_json(r.value)
            latest[hold.hold_id] = hold
    return sorted(latest.values(), key=lambda h: h.opened_at, reverse=True)


async def find_hold(settings: Settings, hold_id: str) -> Hold:
    try:
        wanted = uuid.UUID(hold_id)
    except ValueError:
        raise Problem("hold_id", f"{hold_id!r} is not a hold id (a UUID)") from None
    for hold in await read_holds(settings):
        if hold.hold_id == wanted:
            return hold
    raise Problem("hold_id", f"no hold {hold_id}", status=404)


async def held_notices(settings: Settings, hold_id: uuid.UUID) -> list[HeldNotice]:
    """The notices ``hold_id`` keeps back, once each, in the order they were held."""
    out: dict[uuid.UUID, HeldNotice] = {}
    key = str(hold_id).encode()
    async for r in read_topic(settings.kafka_bootstrap, Topics(settings).held_notices):
        if r.key == key and r.value is not None:
            held = HeldNotice.model_validate_json(r.value)
            out.setdefault(held.job.notice_id, held)
    return list(out.values())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def decide(settings: Settings, hold_id: str, approve: bool, by: str, why: str,
                 progress: Callable[[str], None] = lambda _: None, settle: float = SETTLE) -> Decision:
    """Approve or reject an open hold (an offender's block included). ``by`` names the operator."""
    if not why.strip():
        raise Problem("why", "Say why: the reason is kept with the decision")
    hold = await find_hold(settings, hold_id)
    if hold.state is not HoldState.OPEN:
        raise Problem("hold_id", f"hold {hold.hold_id} was already {hold.state.value} by {hold.decided_by}",
                          status=409)
    t = Topics(settings)
    decided = hold.model_copy(update={"state": HoldState.APPROVED if approve else HoldState.REJECTED,
                                      "decided_by": by, "decided_at": _now(), "why": why.strip()})
    p = producer(settings.kafka_bootstrap)
    await p.start()
    try:
        await p.send_and_wait(t.holds, decided.model_dump_json().encode(), key=str(hold.hold_id).encode(),
                              partition=0)
        done: set[uuid.UUID] = set()
        for turn in range(2):
            if turn:
                progress(f"waiting {settle:g} s for notices still on their way to the hold")
                await asyncio.sleep(settle)
            todo = [h for h in await held_notices(settings, hold.hold_id) if h.job.notice_id not in done]
            if not todo and turn:
                break
            progress(f"{'releasing' if approve else 'recording as rejected'} {len(todo)} held notices")
            for held in release_order([_Ordered(h) for h in todo]):
                await _release(p, t, held.held) if approve else await _reject(p, t, held.held, by)
                done.add(held.held.job.notice_id)
            await p.flush()
        decided = decided.model_copy(update={"notices": len(done)})
        await p.send_and_wait(t.holds, decided.model_dump_json().encode(), key=str(hold.hold_id).encode(),
                              partition=0)
    finally:
        await p.stop()
    metrics.HOLD_NOTICES.labels(outcome="released" if approve else "rejected").inc(len(done))
    return Decision(decided, len(done))


class _Ordered:
    """A held notice as :func:`release_order` sorts it: urgent first, then event order."""

    __slots__ = ("held", "event_type", "occurred_at", "event_id")

    def __init__(self, held: HeldNotice):
        self.held = held
        self.event_type = held.job.event_type
        self.occurred_at = dt.datetime.fromisoformat(held.job.event["occurred_at"])
        self.event_id = held.job.event_id


async def _release(p, t: Topics, held: HeldNotice) -> None:
    job = held.job
    topic = t.notices_urgent if job.urgency.value == "urgent" else t.notices_routine
    await p.send(topic, job.model_dump_json().encode(), key=job.registration_id.encode())


async def _reject(p, t: Topics, held: HeldNotice, by: str) -> None:
    job = held.job
    result = DeliveryResult(notice_id=job.notice_id, registration_id=job.registration_id, event_id=job.event_id,
                            event_type=job.event_type, channel=job.channel, status=DeliveryStatus.REJECTED,
                            hold_id=held.hold_id, decided_by=by, at=_now())
    await p.send(t.delivery_results, result.model_dump_json().encode(), key=job.registration_id.encode())


async def block(settings: Settings, offender_id: str, by: str, why: str) -> Hold:
    """Hold every notice about ``offender_id`` until an operator approves or rejects the block."""
    offender_id = offender_id.strip()
    if not offender_id:
        raise Problem("offender_id", "Enter the offender id whose notices to block")
    if not why.strip():
        raise Problem("why", "Say why: the reason is kept with the block")
    for hold in await read_holds(settings):
        if hold.kind is HoldKind.OFFENDER and hold.offender_id == offender_id and hold.state is HoldState.OPEN:
            raise Problem("offender_id", f"that offender's notices are already blocked by hold {hold.hold_id}",
                              status=409)
    hold = Hold(hold_id=uuid.uuid4(), kind=HoldKind.OFFENDER, state=HoldState.OPEN, reason=why.strip(),
                offender_id=offender_id, opened_at=_now(), opened_by=by)
    p = producer(settings.kafka_bootstrap)
    await p.start()
    try:
        await p.send_and_wait(Topics(settings).holds, hold.model_dump_json().encode(),
                              key=str(hold.hold_id).encode(), partition=0)
    finally:
        await p.stop()
    return hold
