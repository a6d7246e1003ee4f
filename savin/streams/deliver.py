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
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Mapping

from aiokafka import TopicPartition

from savin import metrics
from savin.domain.clock import utcnow
from savin.domain.consent import OPTED_OUT, contact_key
from savin.domain.delivery import Decision, decide, forgotten, is_due, ledger_entry, plan_retry
from savin.notifiers.dispatcher import Dispatcher, Outcome
from savin.schemas import DeliveryResult, DeliveryStatus, NoticeJob
from savin.schemas.consent import ConsentChange
from savin.settings import Settings
from savin.streams.checkpoint import Pending
from savin.streams.stage import Stage, by_topic
from savin.streams.store import Store
from savin.topics import Topics

__all__ = ["DeliverStage"]

_LEDGER = b"l:"  # + notice id -> JSON {"status", "provider_ref", "at"[, "unflushed"]}
_SUPPRESSED = b"x:"  # + contact key -> provider code of the opt-out


def _slot(job: NoticeJob) -> bytes:
    """The store key of the job's contact slot in the suppressions."""
    return _SUPPRESSED + contact_key(job.registration_id, job.channel.value, job.contact_index).encode()


def _ledger_key(notice_id: uuid.UUID) -> bytes:
    return _LEDGER + str(notice_id).encode()


class DeliverStage(Stage):
    name = "deliver"

    def __init__(self, settings: Settings, dispatcher: Dispatcher, **kwargs):
        t = Topics(settings)
        super().__init__(settings, inputs=[t.consent, t.notices_urgent, t.notices_routine, *t.retries,
                                           t.delivery_results],
                         changelogs=[t.deliver_state], commit_interval=0.0,
                         batch_size=settings.send_batch_size, fetch_bytes=512 * 1024, **kwargs)
        self.dispatcher = dispatcher
        self._retry_topics = set(t.retries)
        # Consent first, so an opt-out in the same batch holds for the notices behind it.
        self._order = [t.consent, t.notices_urgent, *t.retries, t.notices_routine, t.delivery_results]
        self._resume: dict[TopicPartition, asyncio.TimerHandle] = {}

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
        return True

    def _record_locally(self, stores: dict[int, Store], outcome: Outcome) -> None:
        """Write an accepted send to the local store at once, so a crash before the
        commit does not send it again from this machine."""
        store = stores.get(outcome.job.registration_id and self.home(outcome.job.registration_id.encode()))
        if outcome.status is not DeliveryStatus.ACCEPTED or store is None:
            return
        entry = {"status": outcome.status.value, "provider_ref": outcome.provider_ref,
                 "at": utcnow().isoformat(), "unflushed": True}
        store.write({_ledger_key(outcome.job.notice_id): json.dumps(entry).encode()})

    async def _publish_result(self, job: NoticeJob, status: DeliveryStatus, **extra) -> None:
        result = DeliveryResult(
            notice_id=job.notice_id, registration_id=job.registration_id, event_id=job.event_id,
            event_type=job.event_type, channel=job.channel, status=status, attempt=job.attempt,
            at=utcnow(), **extra,
        )
        metrics.NOTICES.labels(channel=job.channel.value, status=status.value).inc()
        await self.send(self.topics.delivery_results, job.registration_id.encode(), result.model_dump_json().encode())

    # ---- one batch -------------------------------------------------------------------

    async def handle(self, batches: Mapping[TopicPartition, list]) -> None:
        now = utcnow()
        todo: list[tuple[Pending, NoticeJob, object]] = []
        in_batch: set[uuid.UUID] = set()
        stores: dict[int, Store] = {}
        for tp, records in by_topic(batches, self._order):
            pending = self.begin(tp, records[0].offset)
            if pending is None:
                continue
            if tp.topic == self.topics.delivery_results:
                await self._callbacks(pending, records)
                self.done(tp, records[-1].offset + 1)
                continue
            if tp.topic == self.topics.consent:
                await self._consent(pending, records)
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
                self.done(tp, r.offset + 1)
                async with self.guard(r, "notice job"):
                    await self._decide(pending, job, r, in_batch, todo)
        if todo:
            outcomes = await self.dispatcher.send_batch([job for _, job, _ in todo],
                                                        on_outcome=lambda o: self._record_locally(stores, o))
            for (pending, _, record), outcome in zip(todo, outcomes):
                async with self.guard(record, "delivery outcome"):
                    await self._record(pending, outcome)

    async def _decide(self, pending: Pending, job: NoticeJob, record, in_batch: set, todo: list) -> None:
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
        code = pending.get(_slot(job))
        decision = decide(DeliveryStatus(entry["status"]) if entry else None, code is not None,
                          job.notice_id in in_batch)
        if decision is Decision.SKIP:
            metrics.NOTICES_SKIPPED.inc()
            return
        in_batch.add(job.notice_id)
        if decision is Decision.SUPPRESS:
            self._ledger_set(pending, job.notice_id, DeliveryStatus.SUPPRESSED)
            await self._publish_result(job, DeliveryStatus.SUPPRESSED, error_code=code.decode(),  # type: ignore[union-attr]
                                       error="recipient opted out of this channel")
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

    async def _callbacks(self, pending: Pending, records: list) -> None:
        for r in records:
            async with self.guard(r, "delivery result"):
                result = DeliveryResult.model_validate_json(r.value or b"")
                if result.source != "callback":
                    continue
                applied = self._ledger_set(pending, result.notice_id, result.status, result.provider_ref)
                metrics.CALLBACKS.labels(outcome="applied" if applied else "stale").inc()
