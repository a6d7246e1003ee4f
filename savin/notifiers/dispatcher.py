"""Render and send notices; report each outcome. No Kafka in here, so it is
tested with fakes, and the deliver stage only moves messages around it."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from savin.domain.vocabulary import Urgency
from savin.notifiers.base import DeliveryError, Notifier, Outbound, PermanentFailure, RateLimited
from savin.notifiers.pacing import Pacing
from savin.rendering.links import LinkMaker
from savin.schemas import DeliveryStatus, NoticeJob

__all__ = ["Outcome", "Dispatcher"]

log = logging.getLogger("savin.notifiers.dispatcher")


@dataclass(frozen=True)
class Outcome:
    job: NoticeJob
    #: ACCEPTED, RETRYING (temporary or configuration fault) or FAILED / SUPPRESSED (permanent)
    status: DeliveryStatus
    provider: str | None = None
    provider_ref: str | None = None
    error_code: str | None = None
    error: str | None = None


class Dispatcher:
    """Sends a batch concurrently, but each recipient's notices in order.

    ``renderer`` has ``render(event, channel, language, timezone, links=None, ack_code=None)``;
    ``notifiers`` are found by the channel each declares (:attr:`Notifier.channel`),
    at most one per channel. ``links`` (a :class:`~savin.rendering.links.LinkMaker`)
    gives each message the links its channel carries (an email's unsubscribe and
    manage links, and its confirm link when the notice waits for an
    acknowledgement); a channel without links renders as before. A job's
    ``ack_code`` goes to the renderer too, which gives it to the channels that
    print it (SMS).

    ``pacing`` (a :class:`~savin.notifiers.pacing.Pacing`) keeps each channel within its
    provider's rate limit: a send waits for its channel's pacer, urgent notices first, and a
    provider's "too many" (:class:`RateLimited`) slows the channel down.
    """

    def __init__(self, renderer, notifiers: Iterable[Notifier], links: LinkMaker | None = None,
                 pacing: Pacing | None = None):
        self._renderer = renderer
        self._links = links
        self.pacing = pacing or Pacing([])
        self._notifiers: dict[str, Notifier] = {}
        for n in notifiers:
            if n.channel in self._notifiers:
                raise ValueError(f"two notifiers for channel {n.channel}: "
                                 f"{self._notifiers[n.channel].provider} and {n.provider}")
            self._notifiers[n.channel] = n
        self._started = False
        self._start_lock = asyncio.Lock()

    @property
    def notifiers(self) -> list[Notifier]:
        return list(self._notifiers.values())

    def notifier_for(self, channel: str) -> Notifier | None:
        return self._notifiers.get(channel)

    async def start(self) -> None:
        async with self._start_lock:
            if not self._started:
                for n in self._notifiers.values():
                    await n.start()
                self._started = True

    async def close(self) -> None:
        for n in self._notifiers.values():
            await n.close()
        self._started = False

    async def send_one(self, job: NoticeJob) -> Outcome:
        channel = job.channel.value
        notifier = self._notifiers.get(channel)
        try:
            if notifier is None:
                raise PermanentFailure(f"no notifier configured for channel {channel}", "no-channel")
            try:
                content = self._renderer.render(job.event, channel, job.language, job.timezone, **self._shown(job))
            except Exception as e:
                # A template fault is ours to fix; the notice is failed, never silently dropped.
                raise PermanentFailure(f"render failed: {e}", "render") from e
            outbound = Outbound(
                notice_id=str(job.notice_id),
                registration_id=job.registration_id,
                address_sealed=job.address_sealed,
                content=content,
                callback_params={"notice_id": str(job.notice_id), "registration_id": job.registration_id},
            )
            receipt = await self._paced(notifier, outbound, channel, job.urgency is Urgency.URGENT)
        except DeliveryError as e:
            if e.temporary:
                status = DeliveryStatus.RETRYING
            else:
                status = DeliveryStatus.SUPPRESSED if e.suppress else DeliveryStatus.FAILED
            return Outcome(job, status, getattr(notifier, "provider", None), None, e.code, str(e))
        except Exception as e:  # noqa: BLE001 - an unknown fault must not lose the notice
            log.exception("unexpected send fault notice=%s", job.notice_id)
            return Outcome(job, DeliveryStatus.RETRYING, getattr(notifier, "provider", None), None,
                           "unexpected", type(e).__name__)
        return Outcome(job, DeliveryStatus.ACCEPTED, receipt.provider, receipt.provider_ref)

    async def _paced(self, notifier: Notifier, outbound: Outbound, channel: str, urgent: bool):
        """``notifier.send`` within the channel's rate limit, when it has one."""
        pacer = self.pacing.for_channel(channel)
        if pacer is None:
            return await notifier.send(outbound)
        await pacer.acquire(urgent)
        try:
            receipt = await notifier.send(outbound)
        except RateLimited as e:
            pacer.too_many(e.retry_after)
            raise
        pacer.sent()
        return receipt

    def _shown(self, job: NoticeJob) -> dict:
        """What the message shows beside the event: an email's links (with the one that confirms
        the notice when it waits for an acknowledgement) and the code a reply quotes; only what
        the job has, so a renderer that takes neither is called as before."""
        shown: dict = {}
        if self._links is not None:
            links = self._links.for_contact(job.registration_id, job.channel.value, job.contact_index,
                                            acknowledge=str(job.event_id) if job.ack_code else None)
            if links is not None:
                shown["links"] = links
        if job.ack_code:
            shown["ack_code"] = job.ack_code
        return shown

    async def send_batch(self, jobs: Sequence[NoticeJob],
                         on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Outcomes in the order of ``jobs``; ``on_outcome`` hears each one as it completes."""
        await self.start()
        lanes: dict[tuple[str, str, int], list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            lanes[(job.registration_id, job.channel.value, job.contact_index)].append(i)
        outcomes: list[Outcome | None] = [None] * len(jobs)

        async def run_lane(indexes: list[int]) -> None:
            for i in indexes:
                outcomes[i] = outcome = await self.send_one(jobs[i])
                if on_outcome is not None:
                    on_outcome(outcome)

        await asyncio.gather(*(run_lane(ix) for ix in lanes.values()))
        return outcomes  # type: ignore[return-value]
