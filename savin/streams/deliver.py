"""The deliver stage: notice jobs in, provider sends out, every outcome recorded.

It consumes ``notices.urgent``, ``notices.routine``, the retry tiers and
``delivery-results`` (for provider status callbacks) as one consumer group on
the :class:`~savin.streams.stage.Stage` machinery; all are keyed by
registration id, so partition *p* of each lands on the same worker. The
partition's store holds the ledger (notice id -> status) and the suppressions
(contact slot -> the opt-out code), with ``deliver-state`` as their changelog.

Each batch is one round: urgent notices are fetched first and sent together
with whatever else is due, rendered and sent by the :class:`Dispatcher`
(concurrently, each recipient's notices in order). The stage commits after
every batch, so a crash repeats at most the batch in flight, and the ledger
skips any notice it already knows as sent.

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
from pydantic import ValidationError

from savin import metrics
from savin.domain.clock import utcnow
from savin.domain.consent import contact_key
from savin.domain.delivery import merge_status, plan_retry
from savin.notifiers.dispatcher import Dispatcher, Outcome
from savin.schemas import (
    DONE_STATUSES,
    DeliveryResult,
    DeliveryStatus,
    NoticeJob,
    describe_errors,
)
from savin.settings import Settings
from savin.streams.errors import fault
from savin.streams.stage import Pending, Stage, by_topic

__all__ = ["DeliverStage"]

_LEDGER = b"l:"  # + notice id -> JSON {"status", "provider_ref", "at"}
_SUPPRESSED = b"x:"  # + contact key -> provider code of the opt-out


def _slot(job: NoticeJob) -> bytes:
    """The store key of the job's contact slot in the suppressions."""
    return _SUPPRESSED + contact_key(job.registration_id, job.channel.value, job.contact_index).encode()


class DeliverStage(Stage):
    name = "deliver"

    def __init__(self, settings: Settings, dispatcher: Dispatcher, **kwargs):
        from savin.topics import Topics

        t = Topics(settings)
        super().__init__(settings, inputs=[t.notices_urgent, t.notices_routine, *t.retries, t.delivery_results],
                         changelogs=[t.deliver_state], commit_interval=0.0,
                         batch_size=settings.send_batch_size, fetch_bytes=512 * 1024, **kwargs)
        self.dispatcher = dispatcher
        self._retry_topics = set(t.retries)
        self._order = [t.notices_urgent, *t.retries, t.notices_routine, t.delivery_results]
        self._resume: dict[TopicPartition, asyncio.TimerHandle] = {}

    async def on_stop(self) -> None:
        await super().on_stop()
        await self.dispatcher.close()

    # ---- fetching: urgent first ----------------------------------------------------

    async def fetch(self) -> Mapping[TopicPartition, list]:
        urgent = [tp for tp in self.consumer.assignment() if tp.topic == self.topics.notices_urgent]
        got: dict[TopicPartition, list] = {}
        if urgent:  # drained first, so a backlog of routine notices never holds one up
            got.update(await self.consumer.getmany(*urgent, timeout_ms=0, max_records=self.batch_size))
        room = self.batch_size - sum(map(len, got.values()))
        if room > 0:
            wait = 0 if got else int(self.settings.send_batch_within * 1000)
            for tp, records in (await self.consumer.getmany(timeout_ms=wait, max_records=room)).items():
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
        pending.put(record.key, record.value)

    async def changelog(self, partition: int, pending: Pending):
        # Every change since the last commit, keyed as in the store, so compaction keeps the latest.
        topic = self.topics.deliver_state
        return [(topic, await self.producer.send(topic, value, key=key, partition=partition))
                for key, value in pending.items.items()]

    def _ledger_status(self, pending: Pending, notice_id: uuid.UUID) -> DeliveryStatus | None:
        raw = pending.get(_LEDGER + str(notice_id).encode())
        return DeliveryStatus(json.loads(raw)["status"]) if raw else None

    def _ledger_set(self, pending: Pending, notice_id: uuid.UUID, status: DeliveryStatus,
                    ref: str | None = None) -> bool:
        """Move a notice forward in the ledger; False when the ledger already knows better."""
        key = _LEDGER + str(notice_id).encode()
        raw = pending.get(key)
        current = json.loads(raw) if raw else {}
        if merge_status(DeliveryStatus(current["status"]) if current else None, status) is None:
            return False
        pending.put(key, json.dumps(
            {"status": status.value, "provider_ref": ref or current.get("provider_ref"), "at": utcnow().isoformat()}
        ).encode())
        return True

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
        for tp, records in by_topic(batches, self._order):
            pending = self.pending(tp, records[0].offset)
            if pending is None:
                continue
            if tp.topic == self.topics.delivery_results:
                await self._callbacks(pending, records)
                self.done(tp, records[-1].offset + 1)
                continue
            for r in records:
                try:
                    job = NoticeJob.model_validate_json(r.value or b"")
                except ValidationError as e:
                    self.done(tp, r.offset + 1)
                    await self.dead_letter(r, f"invalid notice job: {describe_errors(e)}")
                    continue
                if tp.topic in self._retry_topics and job.not_before is not None and job.not_before > now:
                    self._hold_until(tp, r.offset, job.not_before)
                    break
                self.done(tp, r.offset + 1)
                if job.notice_id in in_batch or self._ledger_status(pending, job.notice_id) in DONE_STATUSES:
                    metrics.NOTICES_SKIPPED.inc()
                    continue
                in_batch.add(job.notice_id)
                if (code := pending.get(_slot(job))) is not None:
                    self._ledger_set(pending, job.notice_id, DeliveryStatus.SUPPRESSED)
                    await self._publish_result(job, DeliveryStatus.SUPPRESSED, error_code=code.decode(),
                                               error="recipient opted out of this channel")
                    continue
                todo.append((pending, job, r))
        if todo:
            outcomes = await self.dispatcher.send_batch([job for _, job, _ in todo])
            for (pending, _, record), outcome in zip(todo, outcomes):
                try:
                    await self._record(pending, outcome)
                except Exception as e:  # noqa: BLE001
                    await self.dead_letter(record, f"recording outcome failed: {fault(e)}")

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
            pending.put(_slot(job), (outcome.error_code or "opted-out").encode())
        await self._publish_result(job, status, **extra)

    async def _callbacks(self, pending: Pending, records: list) -> None:
        for r in records:
            try:
                result = DeliveryResult.model_validate_json(r.value or b"")
                if result.source != "callback":
                    continue
                applied = self._ledger_set(pending, result.notice_id, result.status, result.provider_ref)
                metrics.CALLBACKS.labels(outcome="applied" if applied else "stale").inc()
            except ValidationError as e:
                await self.dead_letter(r, f"invalid delivery result: {describe_errors(e)}")
            except Exception as e:  # noqa: BLE001
                await self.dead_letter(r, f"callback failed: {fault(e)}")
