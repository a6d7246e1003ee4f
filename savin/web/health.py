"""Whether the worker is alive and whether it is ready, judged from what it can see.

``/livez`` answers while the process serves HTTP at all. ``/readyz`` answers
503, naming each failing check, while any of these holds:

* ``kafka``: the worker's own metadata request (:class:`KafkaProbe`, every
  couple of seconds with a short timeout) gets no answer;
* ``stage:<name>``: the stage is restoring its partitions, or has made no
  progress (no commit, no idle poll) for several commit intervals;
* ``lag:<name>``: the stage's group, over the partitions this worker holds, is
  in STOP or STALL by Burrow's rules (:mod:`savin.streams.lag`); the detail
  names the partition and why, the code the status. WARN and REWIND are shown
  in the detail but do not make the worker unready;
* ``provider:<name>``: the provider refuses savin's configuration (wrong
  credentials, a closed account) on a send or a check; while it does, the
  notifier is checked again every :attr:`Health.recheck_interval` seconds, so a
  fix shows without waiting for the next notice.

The body holds check names, codes and durations, never personal data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from mode import Service

from savin import metrics
from savin.domain.lag import GroupLag, Status
from savin.notifiers.base import DeliveryError, Notifier

__all__ = ["Check", "KafkaProbe", "Readiness", "Health", "STALL_INTERVALS"]

log = logging.getLogger("savin.health")

#: A stage that has made no progress for this many commit intervals is not ready.
STALL_INTERVALS = 5


class StageLike(Protocol):
    name: str
    ready: asyncio.Event
    commit_interval: float
    last_progress: float


class LagLike(Protocol):
    #: The latest judgement of each stage's group (by stage name).
    groups: Mapping[str, GroupLag]


#: Consumer statuses that make a worker not ready.
UNREADY = frozenset({Status.STOP, Status.STALL})


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str | None = None
    code: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok}
        if self.detail:
            body["detail"] = self.detail
        if self.code:
            body["code"] = self.code
        return body


class KafkaProbe:
    """A cheap metadata request through a client of its own, with a short timeout.

    ``connected`` is None until the first answer or failure; ``since`` is the
    ``time.monotonic()`` at which it last changed.
    """

    def __init__(self, bootstrap: str, timeout: float = 3.0, clock: Callable[[], float] = time.monotonic):
        self.bootstrap = bootstrap
        self.timeout = timeout
        self._clock = clock
        self.connected: bool | None = None
        self.since = clock()
        self._client: AIOKafkaClient | None = None
        self._bootstrapped = False

    async def probe(self) -> bool:
        """One metadata request; records and returns whether Kafka answered in time."""
        if self._client is None:
            self._client = AIOKafkaClient(bootstrap_servers=self.bootstrap, client_id="savin-health",
                                          request_timeout_ms=int(self.timeout * 1000))
        try:
            async with asyncio.timeout(self.timeout):
                if not self._bootstrapped:
                    await self._client.bootstrap()
                    self._bootstrapped = True
                else:
                    await self._client.fetch_all_metadata()
            ok = True
        except (KafkaError, OSError, asyncio.TimeoutError):
            ok = False
        self._note(ok)
        return ok

    def _note(self, ok: bool) -> None:
        metrics.KAFKA_CONNECTED.set(1 if ok else 0)
        if ok is not self.connected:
            if self.connected is not None:
                log.warning("kafka %s", "answers again" if ok else "does not answer")
            self.connected, self.since = ok, self._clock()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client, self._bootstrapped = None, False

    def check(self, now: float) -> Check:
        if self.connected:
            return Check("kafka", True)
        if self.connected is None:
            return Check("kafka", False, "no answer from Kafka yet")
        return Check("kafka", False, f"no answer from Kafka for {now - self.since:.0f} s")


class Readiness:
    """The checks behind ``/readyz``; a plain object, so each rule is tested on its own.

    ``stall_after`` is the least time without progress that counts as a stall,
    whatever the stage's commit interval (the deliver stage commits after every
    batch, and a batch may wait on a slow provider).
    """

    def __init__(self, kafka: KafkaProbe | None, stages: Sequence[StageLike], notifiers: Iterable[Notifier],
                 stall_after: float = 20.0, clock: Callable[[], float] = time.monotonic, lag: LagLike | None = None):
        self.kafka = kafka
        self.stages = list(stages)
        self.notifiers = list(notifiers)
        self.lag = lag
        self.stall_after = stall_after
        self._clock = clock

    def checks(self) -> list[Check]:
        now = self._clock()
        found = [self.kafka.check(now)] if self.kafka is not None else []
        for stage in self.stages:
            found.append(self._stage(stage, now))
        for name, group in (self.lag.groups.items() if self.lag is not None else ()):
            found.append(self._lag(name, group))
        for n in self.notifiers:
            fault = n.config_fault
            name = f"provider:{n.provider}"
            found.append(Check(name, True) if fault is None else
                         Check(name, False, "the provider refuses savin's configuration", fault.code))
        return found

    def _stage(self, stage: StageLike, now: float) -> Check:
        name = f"stage:{stage.name}"
        if not stage.ready.is_set():
            return Check(name, False, "restoring its partitions")
        last = getattr(stage, "last_progress", None)
        limit = max(STALL_INTERVALS * stage.commit_interval, self.stall_after)
        if last is not None and now - last > limit:
            return Check(name, False, f"no progress for {now - last:.0f} s")
        return Check(name, True)

    @staticmethod
    def _lag(stage: str, group: GroupLag) -> Check:
        name = f"lag:{stage}"
        worst = group.worst
        if worst is None:
            return Check(name, True)
        detail = f"{worst.status.name}: {worst.topic}[{worst.partition}] {worst.reason}"
        return Check(name, worst.status not in UNREADY, detail, worst.status.name)

    def report(self) -> tuple[bool, dict[str, Any]]:
        checks = self.checks()
        ready = all(c.ok for c in checks)
        metrics.READY.set(1 if ready else 0)
        return ready, {
            "ready": ready,
            "failing": [c.name for c in checks if not c.ok],
            "checks": {c.name: c.as_json() for c in checks},
        }


class Health(Service):
    """Runs the Kafka probe, and checks refused providers again until they accept."""

    probe_interval = 2.0
    recheck_interval = 10.0

    def __init__(self, probe: KafkaProbe, notifiers: Iterable[Notifier], **kwargs: Any):
        super().__init__(**kwargs)
        self.probe = probe
        self.notifiers = list(notifiers)
        self._tasks: list[asyncio.Task] = []

    async def on_start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._probe_loop()), asyncio.ensure_future(self._recheck_loop())]

    async def on_stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.probe.close()

    async def _probe_loop(self) -> None:
        while True:
            started = time.monotonic()
            await self.probe.probe()
            await asyncio.sleep(max(0.0, self.probe_interval - (time.monotonic() - started)))

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_interval)
            for n in self.notifiers:
                if n.config_fault is None:
                    continue
                try:
                    await n.check()
                except DeliveryError:
                    pass  # the notifier recorded and logged it; readiness shows it
                except Exception:  # noqa: BLE001 - the loop must outlive a provider's surprise
                    log.exception("%s check failed unexpectedly", n.provider)
