"""The Faust app: topics, tables and thin agents over the plain functions in
:mod:`savin.dispatch` and :mod:`savin.delivery`, with the match stage
(:mod:`savin.streams.matcher`, batch-at-a-time on its own consumer) as one of
its services.

Every agent catches at its boundary: whatever goes wrong with one message
is dead-lettered with the reason and counted, and the stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
import weakref
from collections.abc import Awaitable, Iterator, Sequence

import faust
from faust.streams import _current_event  # see event_context()
from pydantic import ValidationError

from savin import metrics
from savin.delivery import merge_status, plan_retry
from savin.dispatch import Dispatcher, Outcome
from savin.matching import contact_key
from savin.schemas import (
    DONE_STATUSES,
    DeliveryResult,
    DeliveryStatus,
    NoticeJob,
    Urgency,
    describe_errors,
)
from savin.settings import Settings
from savin.streams.common import dead_letter_record, fault
from savin.streams.matcher import MatchStage
from savin.topics import Topics

__all__ = ["create_app"]

log = logging.getLogger("savin.worker")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@contextlib.contextmanager
def event_context(event: faust.EventT) -> Iterator[None]:
    """Make ``event`` faust's current event while touching tables.

    Faust picks a table key's store and changelog partition from the current
    event. Inside a ``take_events`` batch that is only the last event of the
    batch, which may come from another partition; setting it per message keeps
    every write on its own message's partition.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def create_app(settings: Settings, dispatcher: Dispatcher) -> faust.App:
    topics = Topics(settings)
    n = settings.partitions
    app = faust.App(
        settings.namespace,
        broker=";".join(f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")),
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        topic_partitions=n,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=1.0,
        # A crashed worker's partitions move to the others after 10 s, not Faust's 60.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        stream_wait_empty=True,
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=n)

    notice_topics = {
        Urgency.URGENT: raw_topic(topics.notices_urgent),
        Urgency.ROUTINE: raw_topic(topics.notices_routine),
    }
    retry_topics = [raw_topic(t) for t in topics.retries]
    results_topic = raw_topic(topics.delivery_results)
    dead_letters = app.topic(topics.dead_letters, key_serializer="raw", value_serializer="raw", partitions=1)

    # Faust's defaults (a 2 GB block cache and 3 x 64 MB write buffers for every
    # table partition's database) let a large table grow the worker past any
    # sensible memory limit; these keep it bounded and settable.
    mb = 1024 * 1024
    rocksdb_options = {
        "block_cache_size": settings.rocksdb_cache_mb * mb,
        "block_cache_compressed_size": settings.rocksdb_cache_mb * mb // 4,
        "write_buffer_size": settings.rocksdb_write_buffer_mb * mb,
        "max_write_buffer_number": 2,
        "target_file_size_base": 4 * settings.rocksdb_write_buffer_mb * mb,
    } if settings.store == "rocksdb" else None

    def table(name: str) -> faust.TableT:
        # bytes types make Faust use the raw codec for the store, the changelog
        # and recovery alike; the agents do their own (pydantic) encoding.
        return app.Table(name, partitions=n, key_type=bytes, value_type=bytes, options=rocksdb_options)

    #: notice_id -> JSON {"status", "provider_ref", "at"}
    ledger = table("ledger")
    #: contact key -> provider code of the opt-out
    suppressions = table("suppressions")

    async def send(topic: faust.TopicT, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        """Hand bytes straight to the producer (no per-message codec work). Faust
        flushes the producer before it commits offsets, and the agents flush at
        the end of each batch, so nothing is acknowledged before it is written."""
        await app.producer.send(topic.get_topic_name(), key, value, partition, None, None)

    async def send_and_wait(topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
        """For a web request: answer only once Kafka has the record."""
        await (await app.producer.send(topic.get_topic_name(), key, value, None, None, None))

    async def dead_letter(msg, reason: str) -> None:
        metrics.DEAD_LETTERS.labels(topic=msg.topic.removeprefix(settings.namespace + ".")).inc()
        log.warning("dead letter topic=%s partition=%s offset=%s reason=%s",
                    msg.topic, msg.partition, msg.offset, reason)
        await send(dead_letters, None, dead_letter_record(msg, reason))

    # ---- deliver ------------------------------------------------------------

    async def publish_result(outcome_or_job, status: DeliveryStatus, **extra) -> None:
        job = outcome_or_job.job if isinstance(outcome_or_job, Outcome) else outcome_or_job
        result = DeliveryResult(
            notice_id=job.notice_id, registration_id=job.registration_id, event_id=job.event_id,
            event_type=job.event_type, channel=job.channel, status=status, attempt=job.attempt,
            at=utcnow(), **extra,
        )
        metrics.NOTICES.labels(channel=job.channel.value, status=status.value).inc()
        await send(results_topic, job.registration_id.encode(), result.model_dump_json().encode())

    def ledger_set(notice_id: uuid.UUID, status: DeliveryStatus, ref: str | None = None) -> bool:
        """Move a notice forward in the ledger; False when the ledger already knows better."""
        key = str(notice_id)
        raw = ledger.get(key)
        current = json.loads(raw) if raw else {}
        if merge_status(DeliveryStatus(current["status"]) if current else None, status) is None:
            return False
        ledger[key] = json.dumps(
            {"status": status.value, "provider_ref": ref or current.get("provider_ref"), "at": utcnow().isoformat()}
        ).encode()
        return True

    def ledger_status(notice_id: uuid.UUID) -> DeliveryStatus | None:
        raw = ledger.get(str(notice_id))
        return DeliveryStatus(json.loads(raw)["status"]) if raw else None

    async def deliver_batch(batch: Sequence[faust.EventT]) -> None:
        todo: list[tuple[faust.EventT, NoticeJob]] = []
        in_batch: set[uuid.UUID] = set()
        for event in batch:
            msg = event.message
            try:
                job = NoticeJob.model_validate_json(msg.value)
            except ValidationError as e:
                await dead_letter(msg, f"invalid notice job: {describe_errors(e)}")
                continue
            with event_context(event):
                if job.notice_id in in_batch or ledger_status(job.notice_id) in DONE_STATUSES:
                    metrics.NOTICES_SKIPPED.inc()
                    continue
                suppressed = suppressions.get(contact_key(job.registration_id, job.channel.value, job.contact_index))
                if suppressed is not None:
                    ledger_set(job.notice_id, DeliveryStatus.SUPPRESSED)
            in_batch.add(job.notice_id)
            if suppressed is not None:
                await publish_result(job, DeliveryStatus.SUPPRESSED, error_code=suppressed.decode(),
                                     error="recipient opted out of this channel")
                continue
            todo.append((event, job))
        if todo:
            outcomes = await dispatcher.send_batch([job for _, job in todo])
            for (event, job), outcome in zip(todo, outcomes):
                try:
                    await record_outcome(event, outcome)
                except Exception as e:  # noqa: BLE001
                    await dead_letter(event.message, f"recording outcome failed: {fault(e)}")
        # Ledger entries and results reach Kafka before the next batch starts,
        # so a crash can repeat at most the batch in flight.
        await app.producer.flush()

    async def record_outcome(event: faust.EventT, outcome: Outcome) -> None:
        job = outcome.job
        extra = dict(provider=outcome.provider, provider_ref=outcome.provider_ref,
                     error_code=outcome.error_code, error=outcome.error)
        if outcome.status is DeliveryStatus.RETRYING:
            plan = plan_retry(job, settings.retry_delays, settings.max_attempts, utcnow())
            if plan is not None:
                await send(retry_topics[plan.tier], job.registration_id.encode(), plan.job.model_dump_json().encode())
                await publish_result(outcome, DeliveryStatus.RETRYING, **extra)
                return
            extra["error"] = f"gave up after {job.attempt + 1} tries: {outcome.error}"
            status = DeliveryStatus.FAILED
        else:
            status = outcome.status
        with event_context(event):
            ledger_set(job.notice_id, status, outcome.provider_ref)
            if status is DeliveryStatus.SUPPRESSED:
                suppressions[contact_key(job.registration_id, job.channel.value, job.contact_index)] = (
                    (outcome.error_code or "opted-out").encode()
                )
        await publish_result(outcome, status, **extra)

    async def deliver(stream):
        async for batch in stream.take_events(settings.send_batch_size, within=settings.send_batch_within):
            await finish(deliver_batch(batch))

    async def hand_back(batch: Sequence[faust.EventT]) -> None:
        """Put a batch back on its topic (same key and partition) for whoever runs next."""
        for event in batch:
            msg = event.message
            await app.producer.send(msg.topic, msg.key, msg.value, msg.partition, None, None)
        await app.producer.flush()

    # ---- retries ------------------------------------------------------------

    async def retry(stream):
        async for batch in stream.take_events(settings.send_batch_size, within=settings.send_batch_within):
            # Each tier has one delay, so messages arrive in not_before order:
            # waiting for the last one waits for them all.
            latest = max(
                (_not_before(e.message.value) for e in batch), default=None, key=lambda d: d or utcnow()
            )
            if latest is not None and (delay := (latest - utcnow()).total_seconds()) > 0:
                try:
                    await stream.sleep(delay)
                except asyncio.CancelledError:
                    await hand_back(batch)
                    raise
                if utcnow() < latest:  # woken early: the worker is stopping
                    await hand_back(batch)
                    return
            await finish(deliver_batch(batch))

    # ---- provider status callbacks -------------------------------------------

    async def apply_callbacks(stream):
        async for event in stream.events():
            msg = event.message
            try:
                result = DeliveryResult.model_validate_json(msg.value)
                if result.source != "callback":
                    continue
                with event_context(event):
                    applied = ledger_set(result.notice_id, result.status, result.provider_ref)
                metrics.CALLBACKS.labels(outcome="applied" if applied else "stale").inc()
            except ValidationError as e:
                await dead_letter(msg, f"invalid delivery result: {describe_errors(e)}")
            except Exception as e:  # noqa: BLE001
                await dead_letter(msg, f"callback failed: {fault(e)}")

    # ---- which agents run here ------------------------------------------------

    plan = {
        "deliver": [(notice_topics[Urgency.URGENT], deliver), (notice_topics[Urgency.ROUTINE], deliver)],
        "retry": [(t, retry) for t in retry_topics],
        "callbacks": [(results_topic, apply_callbacks)],
    }
    for group in sorted(settings.agents & plan.keys()):
        for topic, fun in plan[group]:
            # One agent per topic, so urgent notices never queue behind routine ones.
            app.agent(topic, name=f"{fun.__name__}-{topic.get_topic_name()}")(fun)

    # "registrations" and "match" are one stage: matching needs the registrations.
    stage = MatchStage(settings) if settings.agents & {"registrations", "match"} else None
    if stage is not None:
        app.service(stage)

    from savin.streams.callbacks import twilio_status_view

    app.page("/callbacks/twilio/status")(
        twilio_status_view(
            auth_token=settings.twilio_auth_token.get_secret_value(),
            public_url=settings.twilio_status_callback,
            publish=lambda key, value: send_and_wait(results_topic, key, value),
        )
    )

    # ---- web: health and metrics --------------------------------------------

    @app.page("/healthz")
    async def healthz(web, request):
        ready = app.consumer is not None and not app.rebalancing and app.tables.recovery.completed.is_set()
        ready = ready and (stage is None or stage.ready.is_set())
        return web.json({"ready": bool(ready)}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web, request):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    app.savin = {"topics": topics, "dispatcher": dispatcher, "match": stage}  # type: ignore[attr-defined]
    return app


async def finish(batch_work: Awaitable[None]) -> None:
    """Run a batch to its end even if the agent is stopped meanwhile.

    Faust acks every event of a ``take_events`` batch when the agent leaves the
    batch, finished or not, and commits them when it stops; a batch cut short
    would be committed unsent. Sends are bounded by the provider timeouts, so
    finishing bounds a graceful stop too.
    """
    task = asyncio.ensure_future(batch_work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _not_before(raw: bytes) -> dt.datetime | None:
    try:
        return NoticeJob.model_validate_json(raw).not_before
    except ValidationError:
        return None
