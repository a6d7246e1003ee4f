"""The topics savin owns: names, partition counts and configs, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from savin.settings import Settings

__all__ = ["TopicSpec", "Topics"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


class Topics:
    """Names of every topic for one namespace (``savin`` in production)."""

    def __init__(self, settings: Settings):
        t = settings.topic
        self.partitions = settings.partitions
        self.custody_events = t("custody-events")
        self.registrations = t("registrations")
        self.notices_urgent = t("notices.urgent")
        self.notices_routine = t("notices.routine")
        self.retries = [t(f"notice-retries.{i}") for i in range(len(settings.retry_delays))]
        self.delivery_results = t("delivery-results")
        self.dead_letters = t("dead-letters")
        #: Changelog of the match stage's seen event ids (one record per batch and partition).
        self.match_seen = t("match-seen")
        self.dedup_days = settings.dedup_days
        #: Changelog of the deliver stage's ledger and suppressions (compacted, keyed by entry).
        self.deliver_state = t("deliver-state")
        #: The stages' consumer groups.
        self.match_group = t("match")
        self.deliver_group = t("deliver")

    def consumer_group(self, topic: str) -> str:
        """The consumer group that reads ``topic``."""
        return self.match_group if topic in (self.custody_events, self.registrations) else self.deliver_group

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
            TopicSpec(self.deliver_state, n, compacted),
            TopicSpec(self.match_seen, n, {"cleanup.policy": "delete",
                                           "retention.ms": str(self.dedup_days * 86_400_000)}),
        ]
