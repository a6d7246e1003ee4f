"""The topics savin owns (names, partition counts, configs), how records are
partitioned onto them, and the producer settings every writer uses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.partitioner import DefaultPartitioner

from savin.schemas import StoredRegistration
from savin.settings import Settings

__all__ = ["TopicSpec", "Topics", "TopicSetupError", "partition_for", "registration_record", "ensure_topics",
           "min_insync_replicas", "producer", "with_admin"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


class Topics:
    """Names of every topic for one namespace (``savin`` in production)."""

    def __init__(self, settings: Settings):
        t = settings.topic
        self.namespace = settings.namespace
        self.partitions = settings.partitions
        self.custody_events = t("custody-events")
        self.registrations = t("registrations")
        self.notices_urgent = t("notices.urgent")
        self.notices_routine = t("notices.routine")
        self.retries = [t(f"notice-retries.{i}") for i in range(len(settings.retry_delays))]
        #: Seconds a notice waits on each retry tier before it is due (SAVIN_RETRY_DELAYS).
        self.retry_delays = dict(zip(self.retries, settings.retry_delays))
        self.delivery_results = t("delivery-results")
        self.dead_letters = t("dead-letters")
        #: Which dead letters were sent back (compacted, keyed by dead letter id).
        self.dead_letter_replays = t("dead-letter-replays")
        #: Changelog of the match stage's seen event ids (one record per batch and partition).
        self.match_seen = t("match-seen")
        self.dedup_days = settings.dedup_days
        #: Changelog of the deliver stage's ledger and suppressions (compacted, keyed by entry).
        self.deliver_state = t("deliver-state")
        #: Each offender's current status, kept by the match stage (compacted, keyed by offender id).
        self.offender_status = t("offender-status")
        #: Opt-outs and opt-ins of one contact slot (STOP, START, unsubscribe), keyed by
        #: registration id; the deliver stage applies them to its suppressions.
        self.consent = t("consent")
        #: Codes and links sent to prove a contact is its owner's, and the tries at them
        #: (compacted, keyed by contact slot); read by the web processes.
        self.verifications = t("verifications")
        #: Recent rate-limited tries (codes sent to a phone, wrong PINs), shared by the
        #: web processes (compacted, keyed by what is limited; ids, never addresses).
        self.attempts = t("attempts")
        #: Someone confirmed the notices of one event (any channel), keyed by registration id;
        #: the deliver stage ends that event's escalation ladder.
        self.acknowledgements = t("acknowledgements")
        #: Each (registration, event) ladder's state, written by the deliver stage (compacted,
        #: keyed by ``<registration id>:<event id>``); read by the web processes.
        self.escalations = t("escalations")
        #: What each call says, sealed, for the web process serving its TwiML (compacted and
        #: time-retained, keyed by the call's notice id).
        self.calls = t("calls")
        #: What operators must look at about a registration (compacted, keyed by flag).
        self.registration_flags = t("registration-flags")
        #: Operator accounts, API tokens and ended sessions (compacted, one partition).
        self.operators = t("operators")
        #: What each operator and token did (one partition, kept without a time limit).
        self.operator_audit = t("operator-audit")
        #: Holds on mass changes and operators' blocks of one offender (compacted, one partition,
        #: keyed by hold id); read whole by every match stage instance (:mod:`savin.schemas.safety`).
        self.holds = t("holds")
        #: The notices a hold keeps back, keyed by hold id (so one hold's notices share a partition).
        self.held_notices = t("held-notices")
        #: Each match partition's per-minute counts per (source, event type) (compacted, one partition).
        self.hold_counts = t("hold-counts")
        #: Each status partition's per-source newest event and hourly counts (compacted, one partition).
        self.feed_counts = t("feed-counts")
        #: Each change of a source's feed status (one partition, kept without a time limit).
        self.feed_status = t("feed-status")

    def group(self, stage: str) -> str:
        """The consumer group of a stage (``match``, ``deliver``)."""
        return f"{self.namespace}.{stage}"

    def stage_inputs(self, stage: str) -> list[str]:
        """The topics a stage (``match``, ``deliver``, ``status``) consumes, as its stage class names them."""
        return {
            "match": [self.custody_events, self.registrations],
            "deliver": [self.consent, self.acknowledgements, self.notices_urgent, self.notices_routine,
                        *self.retries, self.delivery_results],
            "status": [self.custody_events],
        }[stage]

    def stage_reading(self, topic: str) -> str:
        """The first stage that consumes ``topic``; KeyError for a topic no stage reads."""
        for stage in ("match", "deliver", "status"):
            if topic in self.stage_inputs(stage):
                return stage
        raise KeyError(f"no stage consumes {topic}")

    def specs(self) -> list[TopicSpec]:
        n = self.partitions
        compacted = {"cleanup.policy": "compact"}
        # Events and registrations are co-partitioned by offender id; notices,
        # retries and results by registration id. Both groups use ``n``.
        return [
            TopicSpec(self.custody_events, n),
            TopicSpec(self.registrations, n, compacted),
            TopicSpec(self.notices_urgent, n),
            TopicSpec(self.notices_routine, n),
            *(TopicSpec(r, n) for r in self.retries),
            TopicSpec(self.delivery_results, n),
            TopicSpec(self.dead_letters, 1),
            TopicSpec(self.dead_letter_replays, 1, compacted),
            TopicSpec(self.deliver_state, n, compacted),
            TopicSpec(self.offender_status, n, compacted),
            TopicSpec(self.consent, n),
            TopicSpec(self.verifications, n, compacted),
            TopicSpec(self.attempts, n, compacted),
            TopicSpec(self.acknowledgements, n),
            TopicSpec(self.escalations, n, compacted),
            TopicSpec(self.calls, n, {"cleanup.policy": "compact,delete", "retention.ms": str(CALLS_RETENTION_MS)}),
            TopicSpec(self.registration_flags, n, compacted),
            TopicSpec(self.operators, 1, compacted),
            TopicSpec(self.operator_audit, 1, {"cleanup.policy": "delete", "retention.ms": "-1"}),
            TopicSpec(self.holds, 1, compacted),
            TopicSpec(self.held_notices, n, {"cleanup.policy": "delete", "retention.ms": str(HELD_RETENTION_MS)}),
            # A record per partition every second or few: compacted hourly, not when a week's segment closes.
            TopicSpec(self.hold_counts, 1, {**compacted, "segment.ms": "3600000"}),
            TopicSpec(self.feed_counts, 1, {**compacted, "segment.ms": "3600000"}),
            TopicSpec(self.feed_status, 1, {"cleanup.policy": "delete", "retention.ms": "-1"}),
            TopicSpec(self.match_seen, n, {"cleanup.policy": "delete",
                                           "retention.ms": str(int(self.dedup_days * 86_400_000))}),
        ]


#: A call's record is needed for minutes; two days leaves room to look at one.
CALLS_RETENTION_MS = 2 * 86_400_000
#: Held notices wait for an operator's decision: a month is far longer than any hold should stay open.
HELD_RETENTION_MS = 30 * 86_400_000

_partitioner = DefaultPartitioner()


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner picks for ``key``,
    the same in Java clients, aiokafka and faust."""
    all_ = list(range(partitions))
    return _partitioner(key, all_, all_)


def registration_record(stored: StoredRegistration, partitions: int) -> tuple[bytes, bytes, int]:
    """(key, value, partition) of a registration on the registrations topic: keyed by
    registration id, so compaction keeps one record per registration; on the
    partition of its offender, so it is co-partitioned with the custody events."""
    return (stored.registration_id.encode(), stored.model_dump_json().encode(),
            partition_for(stored.offender_id.encode(), partitions))


T = TypeVar("T")


class TopicSetupError(RuntimeError):
    """A topic could not be created, or exists with the wrong partition count;
    the message names the setting to look at."""


def min_insync_replicas(replication: int) -> int:
    """How many replicas must hold a write before an acks=all producer hears it is
    kept (``min.insync.replicas``): all but one, so one broker may be down without
    stopping writes; at most two, which already survive the loss of any one broker;
    at least one. With three replicas: two."""
    return max(1, min(2, replication - 1))


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], replication: int = 1) -> None:
    """Create missing topics with ``replication`` replicas (SAVIN_REPLICATION_FACTOR)
    and :func:`min_insync_replicas`; check existing ones have the expected partition count."""
    specs = list(specs)
    await with_admin(bootstrap, lambda admin: _ensure_topics(admin, specs, replication))


async def _ensure_topics(admin: AIOKafkaAdminClient, specs: list[TopicSpec], replication: int) -> None:
    existing = set(await admin.list_topics())
    missing = [s for s in specs if s.name not in existing]
    if missing:
        in_sync = {"min.insync.replicas": str(min_insync_replicas(replication))}
        response = await admin.create_topics(
            [NewTopic(s.name, s.partitions, replication, topic_configs={**in_sync, **s.config}) for s in missing]
        )
        # The broker answers per topic and aiokafka does not raise: a topic left
        # uncreated would later be auto-created on first write, without its
        # compaction or partition count.
        for name, code, *message in response.topic_errors:
            error = for_code(code)
            if code == 0 or error is TopicAlreadyExistsError:
                continue
            detail = (message[0] if message else None) or error.__name__
            raise TopicSetupError(f"could not create topic {name} with {replication} replica(s) "
                                  f"(SAVIN_REPLICATION_FACTOR): {detail}")
    present = [s for s in specs if s.name in existing]
    if present:
        described = await admin.describe_topics([s.name for s in present])
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        for s in present:
            if counts.get(s.name) not in (None, s.partitions):
                raise TopicSetupError(
                    f"topic {s.name} has {counts[s.name]} partitions, expected {s.partitions} "
                    "(SAVIN_PARTITIONS); co-partitioned topics must match"
                )


async def with_admin(bootstrap: str, work: Callable[[AIOKafkaAdminClient], Awaitable[T]],
                     timeout: float = 30.0, **client) -> T:
    """``await work(admin)`` with an admin client of ``bootstrap``, closed after it;
    again with a fresh client while it fails with a retriable Kafka error, for up to
    ``timeout`` seconds. aiokafka's admin sends each request to a random broker of
    its metadata, and a broker that has just died stays there until the controller
    fences it (about 9 s in KRaft): such a request fails at once, the next may not."""
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client)
        try:
            await admin.start()  # no broker of bootstrap answering is an answer: not retried
            try:
                return await work(admin)
            except KafkaError as e:
                if not e.retriable or time.monotonic() >= deadline:
                    raise
        finally:
            await admin.close()
        await asyncio.sleep(0.5)


def producer(bootstrap: str, **kw) -> AIOKafkaProducer:
    kw.setdefault("acks", "all")
    kw.setdefault("enable_idempotence", True)
    kw.setdefault("linger_ms", 5)
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **kw)
