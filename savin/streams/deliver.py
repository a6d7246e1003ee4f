"""The deliver stage: notice jobs in, provider sends out, every outcome recorded.

It consumes ``consent`` (opt-outs and opt-ins), ``notices.urgent``,
``notices.routine``, the retry tiers and ``delivery-results`` (for provider
status callbacks) as one consumer group on
the :class:`~savin.streams.stage.Stage` machinery; all are keyed by
registration id, so partition *p* of each lands on the same worker. The
partition's store holds the ledger (notice id -> status) and the suppressions
(contact slot -> the opt-out code), with ``deliver-state`` as their changelog.

Each batch is one round: urgent notices are fetched first and sent together
with whatever else is due, rendered and sent by the :class:`Dispatcher`
(concurrently, each recipient's notices in order). The stage commits after
every batch, and the ledger skips any notice it already knows as sent. Each
accepted send is also written to the local store the moment it completes,
marked ``unflushed`` until the commit puts it in ``deliver-state``; so a
crash repeats only the sends that were in flight, not the whole batch. A notice
found ``unflushed`` after a restart is not sent again: its result is published
again (the audit may hold it twice, never not at all) and it is flushed.

The ledger forgets a final entry after ``SAVIN_LEDGER_RETENTION_DAYS``: the
entry leaves the store and a tombstone goes to ``deliver-state``.

A retry tier holds notices until their ``not_before``. Each tier has one
delay, so its records are in ``not_before`` order: the stage takes the ones
that are due, and pauses the partition at the first that is not until it is.

What comes due by the clock is a timer in the store (:mod:`savin.streams.timers`),
carried by ``deliver-state`` like the ledger, so it survives a restart and a
move to another machine:

* A routine notice that meets the registration's quiet hours is held (a
  ``held`` result says until when) and sent, in the order it came, when they end.
* A notice of an event that escalates (``ack_code`` set) opens a ladder for its
  (registration, event): texts and emails go at once, the registration's calls
  wait as its later steps (:mod:`savin.domain.escalation`). Each round of calls
  is its own notices (ids from the event, registration, contact and round), so
  the ledger stops a round from being placed twice. A call's status callback
  says what it came to and sets the next round; an acknowledgement (from any
  channel, on ``acknowledgements``) ends the ladder; at ``give_up`` it ends
  unacknowledged and the registration is flagged. A text or email that fails
  for good brings the first call forward and flags the contact. Every change of
  a ladder is published to ``escalations``.
* A notice with a statutory deadline (:mod:`savin.domain.deadlines`, the policy
  in ``SAVIN_DEADLINE_POLICY``) is watched from the first time the stage meets
  it until it is delivered, acknowledged or no longer owed: from its warning
  time it counts as at risk (a warning names it once), and at its deadline it
  counts as missed.

A correction (a job with ``corrects``, from a retraction) is sent only where the
notice it corrects went out (:mod:`savin.domain.corrections`). A corrected
notice that has not gone out yet is cancelled instead: ``cancelled`` in the
ledger, so it is dropped whenever it comes (a retry, the end of quiet hours, a
hold released), with a ``cancelled`` result; its event's ladder stops. The
correction itself is then not sent, and is recorded ``cancelled`` too
(``docs/corrections.md``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import Mapping

from aiokafka import TopicPartition

from savin import metrics
from savin.domain import escalation as ladders
from savin.domain.clock import utcnow
from savin.domain.consent import OPTED_OUT, contact_key
from savin.domain.corrections import Correction, correction
from savin.domain.deadlines import NOT_OWED, deadline_for, load_policy, reached
from savin.domain.delivery import Decision, decide, forgotten, is_due, ledger_entry, plan_retry
from savin.domain.matching import notice_id
from savin.domain.quiet import quiet_hours_end
from savin.notifiers.dispatcher import Dispatcher, Outcome
from savin.notifiers.pacing import ROUTINE_HORIZON
from savin.schemas import DONE_STATUSES, Channel, DeliveryResult, DeliveryStatus, NoticeJob
from savin.schemas.consent import ConsentChange
from savin.schemas.escalation import (
    Acknowledgement,
    Escalation,
    EscalationState,
    FlagKind,
    RegistrationFlag,
)
from savin.settings import Settings
from savin.streams.checkpoint import Pending
from savin.streams.stage import Stage, by_topic
from savin.streams.store import Store
from savin.streams.timers import count_timers, due_timers, timer_key
from savin.topics import Topics

__all__ = ["DeliverStage"]

_LEDGER = b"l:"  # + notice id -> JSON {"status", "provider_ref", "at"[, "unflushed"]}
_SUPPRESSED = b"x:"  # + contact key -> provider code of the opt-out
_LADDER = b"e:"  # + registration id|event id -> JSON {"esc", "targets", "fallback", "notices", "timer", "end"}
_OF_LADDER = b"n:"  # + notice id of a ladder's notice -> JSON {"ladder", "round", "target"} (_link)
_ACKED_EARLY = b"a:"  # + registration id|event id -> an Acknowledgement that came before its ladder
_DEADLINE = b"d:"  # + notice id -> JSON {"event_type", "channel", "due", "timer", "missed"} (_watch)

#: Timer kinds: a held routine notice, a ladder's next round of calls, a ladder's end,
#: a watched notice's warning time and its deadline.
_HELD, _CALL, _END, _AT_RISK, _DUE = "q", "c", "g", "w", "m"
#: The state a retracted event's ladder ends in.
_STOPPED = EscalationState.CANCELLED
#: Seconds between looks at the timers.
_TICK = 0.1
_FAILED_FOR_GOOD = frozenset({DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED, DeliveryStatus.UNDELIVERED})


def _meets_deadline(status: DeliveryStatus, channel: str) -> bool:
    """Whether this status ends a notice's deadline watch: it reached the registrant (by the
    rule the deadline report judges with), or it is no longer owed."""
    return reached(status, channel) or status in NOT_OWED


def _slot(job: NoticeJob) -> bytes:
    """The store key of the job's contact slot in the suppressions."""
    return _SUPPRESSED + contact_key(job.registration_id, job.channel.value, job.contact_index).encode()


def _ledger_key(notice_id: uuid.UUID) -> bytes:
    return _LEDGER + str(notice_id).encode()


def _ladder_id(registration_id: str, event_id: uuid.UUID | str) -> str:
    return f"{registration_id}|{event_id}"


def call_notice_id(job: NoticeJob, round_: int) -> uuid.UUID:
    """The notice id of one call of a ladder: one per contact and round, so a round
    fired again after a crash finds its calls in the ledger."""
    return uuid.uuid5(job.event_id, f"{job.registration_id}:call:{job.channel.value}:{job.contact_index}:{round_}")


def _link(ladder_id: str, round_: int | None = None, target: NoticeJob | None = None) -> bytes:
    """What the ``n:`` entry of a ladder's notice holds: its ladder and, for a call, its
    round and the contact it called (a voice number, or the texting number called)."""
    return json.dumps({"ladder": ladder_id, "round": round_,
                       "target": [target.channel.value, target.contact_index] if target else None}).encode()


class _TimerRecord:
    """Where a fired timer came from, for a dead letter if handling it fails."""

    def __init__(self, topic: str, partition: int, key: bytes, value: bytes):
        self.topic, self.partition, self.offset = topic, partition, -1
        self.key, self.value = key, value
        self.headers = ()


class DeliverStage(Stage):
    name = "deliver"

    def __init__(self, settings: Settings, dispatcher: Dispatcher, **kwargs):
        t = Topics(settings)
        super().__init__(settings, inputs=[t.consent, t.acknowledgements, t.notices_urgent, t.notices_routine,
                                           *t.retries, t.delivery_results],
                         changelogs=[t.deliver_state], commit_interval=0.0,
                         batch_size=settings.send_batch_size, fetch_bytes=512 * 1024, **kwargs)
        self.dispatcher = dispatcher
        self._retry_topics = set(t.retries)
        # Consent first, so an opt-out in the same batch holds for the notices behind it.
        self._order = [t.consent, t.acknowledgements, t.notices_urgent, *t.retries, t.notices_routine,
                       t.delivery_results]
        self._resume: dict[TopicPartition, asyncio.TimerHandle] = {}
        self.ladder = ladders.Ladder(
            first_call_after=dt.timedelta(seconds=settings.escalation_first_call),
            unanswered_every=dt.timedelta(seconds=settings.escalation_unanswered_every),
            answered_every=dt.timedelta(seconds=settings.escalation_answered_every),
            give_up_after=dt.timedelta(seconds=settings.escalation_give_up),
        )
        self.deadlines = load_policy(settings.deadline_policy)
        self._last_tick = 0.0
        self._backlog_at = 0.0

    async def on_stop(self) -> None:
        await super().on_stop()
        await self.dispatcher.close()

    # ---- fetching: urgent first ----------------------------------------------------

    async def fetch(self) -> Mapping[TopicPartition, list]:
        urgent = [tp for tp in self.consumer.assignment() if tp.topic == self.topics.notices_urgent]
        got: dict[TopicPartition, list] = {}
        if urgent:  # drained first, so a backlog of routine notices never holds one up
            got.update(await self.getmany(*urgent, timeout_ms=0, max_records=self.batch_size))
        room = self.batch_size - sum(map(len, got.values()))
        if room > 0:
            wait = 0 if got else int(self.settings.send_batch_within * 1000)
            for tp, records in (await self.getmany(timeout_ms=wait, max_records=room)).items():
                got.setdefault(tp, []).extend(records)
        return got

    async def assigned(self, partitions: set[int]) -> None:
        # Each worker sends its partitions' share of every provider limit: the group never exceeds it.
        self.dispatcher.pacing.share(len(partitions), self.settings.partitions)
        for handle in self._resume.values():
            handle.cancel()
        self._resume.clear()

    def _hold_until(self, tp: TopicPartition, offset: int, when: dt.datetime) -> None:
        """Leave ``tp`` at ``offset`` until ``when``."""
        self.consumer.seek(tp, offset)
        self.consumer.pause(tp)
        delay = max(0.0, (when - utcnow()).total_seconds())

        def resume() -> None:
            self._resume.pop(tp, None)
            if tp in self.consumer.assignment():
                self.consumer.resume(tp)

        if (old := self._resume.pop(tp, None)) is not None:
            old.cancel()
        self._resume[tp] = asyncio.get_running_loop().call_later(delay, resume)

    # ---- the ledger and the suppressions ---------------------------------------------

    def restore(self, pending: Pending, record) -> None:
        if record.value is None:
            pending.delete(record.key)  # a tombstone: the entry was forgotten
        else:
            pending.put(record.key, record.value)

    def expired(self, store: Store, now: dt.datetime):
        days = self.settings.ledger_retention_days
        for key, raw in store.scan(_LEDGER):
            if forgotten(json.loads(raw), now, days):
                yield key
        # A ladder that has ended is forgotten with its notices' entries.
        for key, raw in store.scan(_LADDER):
            state = json.loads(raw)
            esc = Escalation.model_validate_json(json.dumps(state["esc"]))
            if esc.state is not EscalationState.OPEN and esc.updated_at < now - dt.timedelta(days=days):
                yield key
                yield from (_OF_LADDER + n.encode() for n in state["notices"])
        # An acknowledgement whose ladder never opened.
        for key, raw in store.scan(_ACKED_EARLY):
            if Acknowledgement.model_validate_json(raw).at < now - dt.timedelta(days=days):
                yield key
        # A deadline watch that was never settled (its notice missed it, or was never sent).
        for key, raw in store.scan(_DEADLINE):
            if dt.datetime.fromisoformat(json.loads(raw)["due"]) < now - dt.timedelta(days=days):
                yield key

    async def changelog(self, partition: int, pending: Pending):
        # Every change since the last commit, keyed as in the store, so compaction keeps the
        # latest; a forgotten entry goes as a tombstone, so compaction removes it too.
        topic = self.topics.deliver_state
        return [(topic, await self.producer.send(topic, value, key=key, partition=partition))
                for key, value in pending.items.items()]

    def _ledger(self, pending: Pending, notice_id: uuid.UUID) -> dict | None:
        raw = pending.get(_ledger_key(notice_id))
        return json.loads(raw) if raw else None

    def _ledger_set(self, pending: Pending, notice_id: uuid.UUID, status: DeliveryStatus,
                    ref: str | None = None) -> bool:
        """Move a notice forward in the ledger; False when the ledger already knows better."""
        current = self._ledger(pending, notice_id)
        if current is not None and current.get("unflushed"):
            # Written to the local store the moment the send was accepted; only the commit
            # makes it durable, so it counts as not yet known here.
            current = None
        entry = ledger_entry(current, status, ref, utcnow())
        if entry is None:
            return False
        pending.put(_ledger_key(notice_id), json.dumps(entry).encode())
        self._settle(pending, notice_id, status)
        return True

    def _record_locally(self, stores: dict[int, Store], outcome: Outcome) -> None:
        """Write an accepted send to the local store at once, so a crash before the
        commit does not send it again from this machine."""
        if outcome.status is not DeliveryStatus.ACCEPTED:
            return
        _observe_accepted(outcome.job)
        store = stores.get(outcome.job.registration_id and self.home(outcome.job.registration_id.encode()))
        if store is None:
            return
        entry = {"status": outcome.status.value, "provider_ref": outcome.provider_ref,
                 "at": utcnow().isoformat(), "unflushed": True}
        store.write({_ledger_key(outcome.job.notice_id): json.dumps(entry).encode()})

    async def _publish_result(self, job: NoticeJob, status: DeliveryStatus, **extra) -> None:
        fields = dict(notice_id=job.notice_id, registration_id=job.registration_id, event_id=job.event_id,
                      event_type=job.event_type, channel=job.channel, status=status, attempt=job.attempt)
        result = DeliveryResult(**{**fields, **extra}, at=utcnow())
        metrics.NOTICES.labels(channel=job.channel.value, status=status.value).inc()
        if result.provider is not None:
            _count_provider_result(result)
        await self.send(self.topics.delivery_results, job.registration_id.encode(), result.model_dump_json().encode())

    # ---- one batch -------------------------------------------------------------------

    async def handle(self, batches: Mapping[TopicPartition, list]) -> None:
        now = utcnow()
        todo: list[tuple[Pending, NoticeJob, object]] = []
        in_batch: set[uuid.UUID] = set()
        stores: dict[int, Store] = {}
        # Routine notices join the batch only as far as their channel's rate limit sends them within
        # ROUTINE_HORIZON, the rest wait in Kafka: an urgent notice never waits behind a long routine batch.
        budget = self.dispatcher.pacing.budget(ROUTINE_HORIZON)
        for tp, records in by_topic(batches, self._order):
            pending = self.begin(tp, records[0].offset)
            if pending is None:
                continue
            if tp.topic == self.topics.delivery_results:
                await self._callbacks(pending, records, now)
                self.done(tp, records[-1].offset + 1)
                continue
            if tp.topic == self.topics.consent:
                await self._consent(pending, records)
                self.done(tp, records[-1].offset + 1)
                continue
            if tp.topic == self.topics.acknowledgements:
                await self._acknowledgements(pending, records, now)
                self.done(tp, records[-1].offset + 1)
                continue
            stores[tp.partition] = pending.store
            for r in records:
                job = None
                async with self.guard(r, "notice job"):
                    job = NoticeJob.model_validate_json(r.value or b"")
                if job is None:
                    self.done(tp, r.offset + 1)
                    continue
                if tp.topic in self._retry_topics and not is_due(job, now):
                    self._hold_until(tp, r.offset, job.not_before)  # type: ignore[arg-type]
                    break
                if tp.topic == self.topics.notices_routine and not budget.fits(job.channel.value):
                    self.consumer.seek(tp, r.offset)  # the next batch starts here
                    break
                self.done(tp, r.offset + 1)
                sending = len(todo)
                async with self.guard(r, "notice job"):
                    await self._decide(pending, job, r, in_batch, todo, now)
                if len(todo) > sending:
                    budget.take(job.channel.value)
        await self._dispatch(todo, stores)

    async def _dispatch(self, todo: list, stores: dict[int, Store]) -> None:
        if not todo:
            return
        outcomes = await self.dispatcher.send_batch([job for _, job, _ in todo],
                                                    on_outcome=lambda o: self._record_locally(stores, o))
        for (pending, _, record), outcome in zip(todo, outcomes):
            async with self.guard(record, "delivery outcome"):
                await self._record(pending, outcome)

    async def _decide(self, pending: Pending, job: NoticeJob, record, in_batch: set, todo: list,
                      now: dt.datetime, released: bool = False) -> None:
        entry = self._ledger(pending, job.notice_id)
        if entry is not None and entry.get("unflushed"):
            # Accepted just before a crash: not sent again; its result and entry are made durable now.
            metrics.NOTICES_SKIPPED.inc()
            in_batch.add(job.notice_id)
            pending.put(_ledger_key(job.notice_id), json.dumps({k: v for k, v in entry.items()
                                                                 if k != "unflushed"}).encode())
            await self._publish_result(job, DeliveryStatus.ACCEPTED, provider=None,
                                       provider_ref=entry.get("provider_ref"))
            return
        known = DeliveryStatus(entry["status"]) if entry else None
        if (job.corrects is not None and job.call is None and known not in DONE_STATUSES
                and not await self._correct(pending, job, todo, now)):
            return  # nothing to correct: the corrected notice never went out
        code = pending.get(_slot(job))
        decision = decide(known, code is not None, job.notice_id in in_batch)
        if decision is Decision.SKIP:
            metrics.NOTICES_SKIPPED.inc()
            return
        if entry is None and decision is Decision.SEND and job.call is None:
            self._watch(pending, job, now)
        if job.ack_code is not None and not await self._on_ladder(pending, job, now):
            return  # a call kept for a later step of its ladder, or one the ladder no longer needs
        in_batch.add(job.notice_id)
        if decision is Decision.SUPPRESS:
            self._ledger_set(pending, job.notice_id, DeliveryStatus.SUPPRESSED)
            await self._publish_result(job, DeliveryStatus.SUPPRESSED, error_code=code.decode(),  # type: ignore[union-attr]
                                       error="recipient opted out of this channel")
            if job.ack_code is not None:
                await self._lost(pending, job.notice_id, job.registration_id, job.channel, job.contact_index,
                                 code.decode(), now)  # type: ignore[union-attr]
            return
        quiet = job.quiet_hours or self.settings.default_quiet_hours
        if not released and quiet is not None and job.urgency.value == "routine" and (
                until := quiet_hours_end(quiet, job.timezone, now)) is not None:
            # Held, never dropped: one timer per notice, in the order the notices came.
            ident = f"{job.created_at.isoformat()}|{job.notice_id}"
            pending.put(timer_key(until, _HELD, ident), job.model_dump_json().encode())
            metrics.NOTICES_HELD.inc()
            await self._publish_result(job, DeliveryStatus.HELD, not_before=until)
            return
        todo.append((pending, job, record))

    async def _record(self, pending: Pending, outcome: Outcome) -> None:
        job = outcome.job
        extra = dict(provider=outcome.provider, provider_ref=outcome.provider_ref,
                     error_code=outcome.error_code, error=outcome.error)
        if outcome.status is DeliveryStatus.RETRYING:
            plan = plan_retry(job, self.settings.retry_delays, self.settings.max_attempts, utcnow())
            if plan is not None:
                await self.send(self.topics.retries[plan.tier], job.registration_id.encode(),
                                plan.job.model_dump_json().encode())
                await self._publish_result(job, DeliveryStatus.RETRYING, **extra)
                return
            extra["error"] = f"gave up after {job.attempt + 1} tries: {outcome.error}"
            status = DeliveryStatus.FAILED
        else:
            status = outcome.status
        self._ledger_set(pending, job.notice_id, status, outcome.provider_ref)
        if status is DeliveryStatus.SUPPRESSED:
            pending.put(_slot(job), (outcome.error_code or OPTED_OUT).encode())
        await self._publish_result(job, status, **extra)
        if job.ack_code is not None and status in _FAILED_FOR_GOOD:
            await self._lost(pending, job.notice_id, job.registration_id, job.channel, job.contact_index,
                             outcome.error_code, utcnow())

    async def _consent(self, pending: Pending, records: list) -> None:
        """An opt-out suppresses the contact slot; an opt-in lifts it (a delete, tombstoned)."""
        for r in records:
            async with self.guard(r, "consent change"):
                change = ConsentChange.model_validate_json(r.value or b"")
                slot = _SUPPRESSED + contact_key(change.registration_id, change.channel.value,
                                                 change.contact_index).encode()
                if change.opted_out:
                    pending.put(slot, change.reason.encode())
                else:
                    pending.delete(slot)
                metrics.CONSENT.labels(channel=change.channel.value,
                                       change="opt-out" if change.opted_out else "opt-in").inc()

    async def _callbacks(self, pending: Pending, records: list, now: dt.datetime) -> None:
        for r in records:
            async with self.guard(r, "delivery result"):
                result = DeliveryResult.model_validate_json(r.value or b"")
                if result.source != "callback":
                    continue
                applied = self._ledger_set(pending, result.notice_id, result.status, result.provider_ref)
                metrics.CALLBACKS.labels(outcome="applied" if applied else "stale").inc()
                if applied:
                    _count_provider_result(result)
                    await self._ladder_callback(pending, result, now)

    # ---- timers: held notices and ladder steps ---------------------------------------------

    async def tick(self) -> None:
        if time.monotonic() - self._last_tick < _TICK:
            return
        self._last_tick = time.monotonic()
        if self._last_tick - self._backlog_at >= self.settings.lag_interval:
            self._backlog_at = self._last_tick
            self._export_backlog()
        now = utcnow()
        todo: list[tuple[Pending, NoticeJob, object]] = []
        stores: dict[int, Store] = {}
        # At most a batch's worth in a turn, so a morning's held notices go out at the stage's pace.
        per_partition = max(1, self.batch_size // max(1, len(self.stores)))
        for partition, store in list(self.stores.items()):
            due = due_timers(store, self.checkpoint.pending.get(partition), now, per_partition)
            if not due:
                continue
            pending = self.checkpoint.touch(partition, store)
            stores[partition] = store
            in_batch: set[uuid.UUID] = set()
            for key, value in due:
                pending.delete(key)
                record = _TimerRecord(self.topics.deliver_state, partition, key, value)
                async with self.guard(record, "timer"):
                    kind, ident = key.decode().split("|", 2)[1:]
                    if kind == _HELD:
                        job = NoticeJob.model_validate_json(value)
                        await self._decide(pending, job, record, in_batch, todo, now, released=True)
                    elif kind == _CALL:
                        await self._call_round(pending, ident, record, in_batch, todo, now)
                    elif kind == _END:
                        await self._give_up(pending, ident, now)
                    elif kind in (_AT_RISK, _DUE):
                        self._deadline_timer(pending, kind, ident, now)
        await self._dispatch(todo, stores)

    def _export_backlog(self) -> None:
        """The open ladders, the held notices and the notices at risk of missing their
        deadline in the partitions held: an open ladder has exactly one end timer, a held
        notice one timer of its own, a notice at risk its deadline timer."""
        kinds = count_timers(self.stores.values())
        metrics.ESCALATION_BACKLOG.set(kinds.get(_END, 0))
        metrics.HELD_BACKLOG.set(kinds.get(_HELD, 0))
        # A watched notice waits for its deadline timer only once its warning time has passed.
        metrics.DEADLINE_AT_RISK.set(kinds.get(_DUE, 0))

    # ---- corrections ------------------------------------------------------------------------

    async def _correct(self, pending: Pending, job: NoticeJob, todo: list, now: dt.datetime) -> bool:
        """Decide a correction from the ledger's entry for the notice it corrects; True when
        the correction is to be sent (that notice went out). A notice that has not gone out
        is cancelled; either way its event's ladder stops."""
        original = job.corrects
        assert original is not None
        outcome = correction(self._sends_of(pending, job, todo))
        metrics.CORRECTIONS.labels(outcome=outcome.value).inc()
        self.log.info("correction notice=%s corrects=%s registration=%s outcome=%s",
                      job.notice_id, original, job.registration_id, outcome.value)
        if outcome is Correction.CANCELLED:
            todo[:] = [t for t in todo if t[1].notice_id != original]  # in this batch, not yet sent
            payload = job.event.get("payload") or {}
            self._cancel(pending, original, now)
            await self._publish_result(job, DeliveryStatus.CANCELLED, notice_id=original, attempt=0,
                                       event_id=payload.get("retracted_event_id"),
                                       event_type=payload.get("retracted_event_type"),
                                       error=f"cancelled by correction {job.notice_id}: its event was retracted")
        self._unwatch(pending, original)  # its event is withdrawn: no deadline is owed
        if (raw := pending.get(_OF_LADDER + str(original).encode())) is not None:
            await self._stop_ladder(pending, json.loads(raw)["ladder"], now)
        if outcome is Correction.CORRECTED:
            return True
        why = ("the notice it corrects had not gone out and was cancelled" if outcome is Correction.CANCELLED
               else "the notice it corrects never went out")
        self._cancel(pending, job.notice_id, now)
        await self._publish_result(job, DeliveryStatus.CANCELLED, error=f"not sent: {why} ({original})")
        return False

    def _sends_of(self, pending: Pending, job: NoticeJob, todo: list) -> list[DeliveryStatus | None]:
        """What the ledger knows of each send of the notice ``job`` corrects: the notice
        itself, or for a voice number on a ladder each call placed to it (and one still to
        come while the ladder is open and calls it)."""
        original = job.corrects
        if any(t[1].notice_id == original for t in todo):
            return [None]  # to be sent in this batch: not yet gone
        entry = self._ledger(pending, original)  # type: ignore[arg-type]
        if entry is not None or job.channel is not Channel.VOICE:
            return [DeliveryStatus(entry["status"]) if entry else None]
        raw = pending.get(_OF_LADDER + str(original).encode())
        state = self._load(pending, json.loads(raw)["ladder"]) if raw is not None else None
        if state is None:
            return [None]  # not seen yet
        sends: list[DeliveryStatus | None] = list(self._calls_to(pending, state, job.contact_index))
        if state["esc"].state is EscalationState.OPEN and any(
                t["contact_index"] == job.contact_index for t in state["targets"]):
            sends.append(None)  # a later round will call it
        return sends

    def _calls_to(self, pending: Pending, state: dict, index: int) -> list[DeliveryStatus | None]:
        """What the ledger knows of each call a ladder placed to its voice number ``index``."""
        calls: list[DeliveryStatus | None] = []
        for notice in state["notices"]:
            link = pending.get(_OF_LADDER + notice.encode())
            if link is not None and json.loads(link)["target"] == [Channel.VOICE.value, index]:
                entry = self._ledger(pending, uuid.UUID(notice))
                calls.append(DeliveryStatus(entry["status"]) if entry else None)
        return calls

    def _cancel(self, pending: Pending, notice: uuid.UUID, now: dt.datetime) -> None:
        """``cancelled`` in the ledger, final: the notice is skipped whenever it comes."""
        entry = ledger_entry(None, DeliveryStatus.CANCELLED, None, now)
        pending.put(_ledger_key(notice), json.dumps(entry).encode())
        self._unwatch(pending, notice)

    async def _stop_ladder(self, pending: Pending, ladder_id: str, now: dt.datetime) -> None:
        """A retracted event's ladder ends: no call follows, nothing waits for an
        acknowledgement, and a voice notice none of whose calls was placed is cancelled."""
        state = self._load(pending, ladder_id)
        if state is None or state["esc"].state is not EscalationState.OPEN:
            return
        esc: Escalation = state["esc"]
        for target in state["targets"]:
            job = NoticeJob.model_validate_json(json.dumps(target))
            if not self._calls_to(pending, state, job.contact_index) and self._ledger(pending, job.notice_id) is None:
                self._cancel(pending, job.notice_id, now)
                await self._publish_result(job, DeliveryStatus.CANCELLED,
                                           error="its event was retracted before it was called")
        state["esc"] = esc.model_copy(update={"state": _STOPPED, "next_call_at": None, "updated_at": now})
        pending.delete(state["end"].encode())
        for notice in state["notices"]:
            self._unwatch(pending, uuid.UUID(notice))
        metrics.ESCALATIONS.labels(outcome="cancelled").inc()
        self.log.info("ladder stopped registration=%s event=%s calls=%d: its event was retracted",
                      esc.registration_id, esc.event_id, esc.calls)
        await self._save(pending, ladder_id, state)

    # ---- statutory deadlines ------------------------------------------------------------------

    def _watch(self, pending: Pending, job: NoticeJob, now: dt.datetime) -> None:
        """Start watching a notice's deadline, if the policy sets one: a timer at its warning
        time. One first met after its deadline has missed it already (whenever it is delivered)."""
        key = _DEADLINE + str(job.notice_id).encode()
        if pending.get(key) is not None:
            return
        try:
            deadline = deadline_for(self.deadlines, job.event_type,
                                    dt.datetime.fromisoformat(job.event["occurred_at"]), job.event.get("payload"))
        except (KeyError, TypeError, ValueError) as e:
            self.log.warning("no deadline notice=%s event=%s: %s", job.notice_id, job.event_id, e)
            return
        if deadline is None:
            return
        watch = {"event_type": job.event_type, "registration_id": job.registration_id,
                 "event_id": str(job.event_id), "channel": job.channel.value, "due": deadline.due.isoformat(),
                 "timer": None, "missed": False}
        if deadline.due < now:
            self._missed(str(job.notice_id), watch)
        else:
            watch["timer"] = timer_key(deadline.warn_from, _AT_RISK, str(job.notice_id)).decode()
            pending.put(watch["timer"].encode(), b"")
        pending.put(key, json.dumps(watch).encode())

    def _missed(self, ident: str, watch: dict) -> None:
        self.log.warning("deadline missed notice=%s registration=%s event=%s event_type=%s due=%s",
                         ident, watch["registration_id"], watch["event_id"], watch["event_type"], watch["due"])
        metrics.DEADLINE_MISSED.labels(event_type=watch["event_type"]).inc()
        watch.update(timer=None, missed=True)  # kept, so a notice released later is not watched again

    def _unwatch(self, pending: Pending, notice: uuid.UUID) -> None:
        key = _DEADLINE + str(notice).encode()
        raw = pending.get(key)
        if raw is None:
            return
        if (timer := json.loads(raw)["timer"]) is not None:
            pending.delete(timer.encode())
        pending.delete(key)

    def _settle(self, pending: Pending, notice: uuid.UUID, status: DeliveryStatus) -> None:
        """A notice's new status may end its deadline watch; a call answered ends the watch
        of the voice notice it was placed for."""
        raw = pending.get(_DEADLINE + str(notice).encode())
        if raw is not None and _meets_deadline(status, json.loads(raw)["channel"]):
            self._unwatch(pending, notice)
        if status is DeliveryStatus.DELIVERED and (link := pending.get(_OF_LADDER + str(notice).encode())):
            link = json.loads(link)
            if link["round"] is not None and link["target"] is not None:
                registration_id, event_id = link["ladder"].split("|", 1)
                channel, index = link["target"]
                self._unwatch(pending, notice_id(uuid.UUID(event_id), registration_id, channel, index))

    def _deadline_timer(self, pending: Pending, kind: str, ident: str, now: dt.datetime) -> None:
        """A watched notice's warning time (it is at risk: named once in a warning) or its
        deadline (missed)."""
        key = _DEADLINE + ident.encode()
        raw = pending.get(key)
        if raw is None:
            return
        watch = json.loads(raw)
        notice = uuid.UUID(ident)
        entry = self._ledger(pending, notice)
        if entry is not None and _meets_deadline(DeliveryStatus(entry["status"]), watch["channel"]):
            self._unwatch(pending, notice)
            return
        if kind == _AT_RISK:
            self.log.warning("deadline at risk notice=%s registration=%s event=%s event_type=%s due=%s",
                             ident, watch["registration_id"], watch["event_id"], watch["event_type"], watch["due"])
            watch["timer"] = timer_key(dt.datetime.fromisoformat(watch["due"]), _DUE, ident).decode()
            pending.put(watch["timer"].encode(), b"")
        else:
            self._missed(ident, watch)
        pending.put(key, json.dumps(watch).encode())

    # ---- escalation ladders -------------------------------------------------------------------

    def _load(self, pending: Pending, ladder_id: str) -> dict | None:
        raw = pending.get(_LADDER + ladder_id.encode())
        if raw is None:
            return None
        state = json.loads(raw)
        state["esc"] = Escalation.model_validate_json(json.dumps(state["esc"]))
        return state

    async def _save(self, pending: Pending, ladder_id: str, state: dict, publish: bool = True) -> None:
        esc: Escalation = state["esc"]
        # The next round's timer follows the record's next_call_at.
        want = (timer_key(esc.next_call_at, _CALL, ladder_id)
                if esc.next_call_at is not None and esc.state is EscalationState.OPEN else None)
        if state.get("timer") and state["timer"].encode() != want:
            pending.delete(state["timer"].encode())
        if want is not None:
            pending.put(want, b"")
        state["timer"] = want.decode() if want is not None else None
        pending.put(_LADDER + ladder_id.encode(),
                    json.dumps({**state, "esc": esc.model_dump(mode="json")}).encode())
        if publish:
            await self.send(self.topics.escalations, f"{esc.registration_id}:{esc.event_id}".encode(),
                            esc.model_dump_json().encode(), self.home(esc.registration_id.encode()))

    async def _on_ladder(self, pending: Pending, job: NoticeJob, now: dt.datetime) -> bool:
        """Join ``job`` to its ladder (opening it); False when the job is not to be sent now."""
        ladder_id = _ladder_id(job.registration_id, job.event_id)
        state = self._load(pending, ladder_id)
        if job.call is not None:  # a call of a round already placed: only while the ladder is open
            return state is not None and state["esc"].state is EscalationState.OPEN
        is_call = job.channel is Channel.VOICE
        opened = state is None
        if opened:
            esc = Escalation(registration_id=job.registration_id, event_id=job.event_id, event_type=job.event_type,
                             offender_id=job.offender_id, state=EscalationState.OPEN, code=job.ack_code,
                             started_at=now, updated_at=now)
            esc = ladders.ladder_opened(esc, self.ladder, now, only_calls=is_call)
            end = timer_key(now + self.ladder.give_up_after, _END, ladder_id)
            pending.put(end, b"")
            state = {"esc": esc, "targets": [], "fallback": [], "notices": [], "timer": None, "end": end.decode()}
            metrics.ESCALATIONS.labels(outcome="opened").inc()
            if (early := pending.get(_ACKED_EARLY + ladder_id.encode())) is not None:
                self._acknowledge(state, Acknowledgement.model_validate_json(early), now)
                pending.delete(_ACKED_EARLY + ladder_id.encode())
                pending.delete(end)  # ended already: nothing to give up on
        assert state is not None
        if state["esc"].state is EscalationState.ACKNOWLEDGED:
            self._unwatch(pending, job.notice_id)  # acknowledged already: its deadline is met
        if str(job.notice_id) not in state["notices"]:  # a job met again (a retry, a repeat) changes nothing
            state["notices"].append(str(job.notice_id))
            pending.put(_OF_LADDER + str(job.notice_id).encode(), _link(ladder_id))
            kept = state["targets"] if is_call else state["fallback"] if job.channel is Channel.SMS else None
            if kept is not None:
                kept.append(job.model_dump(mode="json"))
            await self._save(pending, ladder_id, state, publish=opened)
        return not is_call  # calls wait for their round (at once for a registration with only calls)

    async def _call_round(self, pending: Pending, ladder_id: str, record, in_batch: set, todo: list,
                          now: dt.datetime) -> None:
        state = self._load(pending, ladder_id)
        if state is None or state["esc"].state is not EscalationState.OPEN:
            return
        state["timer"] = None  # fired
        esc: Escalation = state["esc"]
        targets = [NoticeJob.model_validate_json(json.dumps(t)) for t in state["targets"]]
        if not targets and self.settings.escalation_call_sms_phone:
            targets = [NoticeJob.model_validate_json(json.dumps(t)) for t in state["fallback"]]
        if not targets:
            # Nobody to call: the ladder waits for an acknowledgement until its end.
            state["esc"] = esc.model_copy(update={"next_call_at": None, "updated_at": now})
            await self._save(pending, ladder_id, state)
            return
        round_ = esc.calls
        state["esc"] = ladders.call_placed(esc, self.ladder, now)
        metrics.ESCALATIONS.labels(outcome="call").inc()
        for target in targets:
            call = target.model_copy(update={
                "notice_id": call_notice_id(target, round_), "channel": Channel.VOICE, "call": round_,
                "attempt": 0, "not_before": None})
            pending.put(_OF_LADDER + str(call.notice_id).encode(), _link(ladder_id, round_, target))
            state["notices"].append(str(call.notice_id))
            await self._decide(pending, call, record, in_batch, todo, now, released=True)
        await self._save(pending, ladder_id, state)

    async def _ladder_callback(self, pending: Pending, result: DeliveryResult, now: dt.datetime) -> None:
        """A status callback of one of a ladder's notices: a call's result sets the next
        round; a text or email undelivered for good brings the first call forward."""
        raw = pending.get(_OF_LADDER + str(result.notice_id).encode())
        if raw is None:
            return
        if result.call_result is None:
            if result.status in _FAILED_FOR_GOOD:
                await self._lost(pending, result.notice_id, result.registration_id, result.channel, None,
                                 result.error_code, now)
            return
        link = json.loads(raw)
        ladder_id = link["ladder"]
        state = self._load(pending, ladder_id)
        if state is None or state["esc"].state is not EscalationState.OPEN:
            return
        esc: Escalation = state["esc"]
        if link["round"] == esc.calls - 1:  # a call of the latest round
            state["esc"] = ladders.call_ended(esc, self.ladder, result.call_result, now)
            await self._save(pending, ladder_id, state)

    async def _lost(self, pending: Pending, notice_id: uuid.UUID, registration_id: str, channel: Channel | None,
                    index: int | None, code: str | None, now: dt.datetime) -> None:
        """A notice of a ladder failed for good: flag the contact; a text or email lost
        brings the first call forward, a call lost leaves the number it called out of later
        rounds (with no voice number left, the texting number is called, if that is allowed)."""
        raw = pending.get(_OF_LADDER + str(notice_id).encode())
        if raw is None:
            return
        link = json.loads(raw)
        ladder_id = link["ladder"]
        await self._flag(RegistrationFlag(registration_id=registration_id, flag=FlagKind.CHANNEL_FAILED,
                                          channel=channel, contact_index=index, notice_id=notice_id,
                                          reason=code, at=now))
        state = self._load(pending, ladder_id)
        if state is None or state["esc"].state is not EscalationState.OPEN:
            return
        if link["target"] is not None:
            target_channel, target_index = link["target"]
            pool = "targets" if target_channel == Channel.VOICE.value else "fallback"
            state[pool] = [t for t in state[pool] if t["contact_index"] != target_index]
        else:
            state["esc"] = ladders.channel_lost(state["esc"], now)
        await self._save(pending, ladder_id, state)

    def _acknowledge(self, state: dict, ack: Acknowledgement, now: dt.datetime) -> bool:
        esc: Escalation = state["esc"]
        if esc.state is EscalationState.ACKNOWLEDGED:
            return False
        state["esc"] = esc.model_copy(update={
            "state": EscalationState.ACKNOWLEDGED, "acknowledged_by": ack.channel, "acknowledged_at": ack.at,
            "next_call_at": None, "updated_at": now})
        metrics.ESCALATIONS.labels(outcome="acknowledged").inc()
        metrics.ACKNOWLEDGEMENTS.labels(channel=ack.channel.value).inc()
        return True

    async def _acknowledgements(self, pending: Pending, records: list, now: dt.datetime) -> None:
        for r in records:
            async with self.guard(r, "acknowledgement"):
                ack = Acknowledgement.model_validate_json(r.value or b"")
                ladder_id = _ladder_id(ack.registration_id, ack.event_id)
                state = self._load(pending, ladder_id)
                if state is None:
                    # Before its ladder (a reply racing the notice): kept for when it opens.
                    pending.put(_ACKED_EARLY + ladder_id.encode(), r.value)
                    continue
                if self._acknowledge(state, ack, now):
                    pending.delete(state["end"].encode())
                    for notice in state["notices"]:  # an acknowledgement meets every deadline of the event
                        self._unwatch(pending, uuid.UUID(notice))
                    self.log.info("acknowledged registration=%s event=%s channel=%s",
                                  ack.registration_id, ack.event_id, ack.channel.value)
                    await self._save(pending, ladder_id, state)

    async def _give_up(self, pending: Pending, ladder_id: str, now: dt.datetime) -> None:
        state = self._load(pending, ladder_id)
        if state is None or state["esc"].state is not EscalationState.OPEN:
            return
        esc: Escalation = state["esc"]
        state["esc"] = esc.model_copy(update={"state": EscalationState.UNACKNOWLEDGED, "next_call_at": None,
                                              "updated_at": now})
        metrics.ESCALATIONS.labels(outcome="unacknowledged").inc()
        self.log.warning("not acknowledged registration=%s event=%s calls=%d",
                         esc.registration_id, esc.event_id, esc.calls)
        await self._save(pending, ladder_id, state)
        await self._flag(RegistrationFlag(registration_id=esc.registration_id, flag=FlagKind.UNACKNOWLEDGED,
                                          event_id=esc.event_id, reason=f"{esc.calls} calls", at=now))

    async def _flag(self, flag: RegistrationFlag) -> None:
        key = flag.key
        metrics.REGISTRATION_FLAGS.labels(flag=flag.flag.value).inc()
        await self.send(self.topics.registration_flags, key.encode(), flag.model_dump_json().encode(),
                        self.home(flag.registration_id.encode()))


def _count_provider_result(result: DeliveryResult) -> None:
    metrics.PROVIDER_RESULTS.labels(channel=result.channel.value if result.channel else "unknown",
                                    provider=result.provider, status=result.status.value,
                                    code=metrics.code_label(result.error_code)).inc()


def _observe_accepted(job: NoticeJob) -> None:
    """The publish-to-accepted latency of a notice a provider has just taken; a ladder's
    calls wait for their round by design, so they are left out."""
    if job.published_at is None or job.call is not None:
        return
    seconds = max(0.0, (utcnow() - job.published_at).total_seconds())
    metrics.PUBLISH_TO_ACCEPTED.labels(urgency=job.urgency.value, channel=job.channel.value).observe(seconds)
