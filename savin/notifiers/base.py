"""What every notifier shares: opening the sealed address, timing, outcome,
logging by id, and turning unexpected exceptions into savin's own.

A provider module subclasses :class:`Notifier` and implements only
:meth:`Notifier.try_send` (the call itself) and its own error-code map.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from savin.sealing import Sealer

__all__ = [
    "DeliveryError", "TemporaryFailure", "PermanentFailure", "Outbound", "Receipt", "Notifier",
]

log = logging.getLogger("savin.notifiers")


class DeliveryError(Exception):
    """A send failed. ``code`` is the provider's code; the message holds no personal data."""

    temporary: bool = False

    def __init__(self, message: str, code: str | None = None, *, suppress: bool = False):
        super().__init__(message)
        self.code = code
        #: The recipient opted out: stop sending to this contact until they opt in.
        self.suppress = suppress


class TemporaryFailure(DeliveryError):
    """Worth retrying later: rate limits, outages, timeouts, carrier hiccups."""

    temporary = True


class PermanentFailure(DeliveryError):
    """Retrying cannot help: invalid address, landline for SMS, opted out."""


@dataclass(frozen=True)
class Outbound:
    """One notice ready to go. ``content`` is the rendered message for the channel."""

    notice_id: str
    registration_id: str
    address_sealed: str
    content: Any
    #: Values the provider may echo back in status callbacks (ids only).
    callback_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    provider: str
    provider_ref: str | None
    elapsed: float


class Notifier(abc.ABC):
    provider: str = "?"
    channel: str = "?"

    def __init__(self, sealer: Sealer):
        self._sealer = sealer

    async def start(self) -> None:
        """Open connections or sessions; called once before the first send."""

    async def close(self) -> None:
        """Release what :meth:`start` opened."""

    async def send(self, message: Outbound) -> Receipt:
        started = time.perf_counter()
        try:
            address = self._sealer.open(message.address_sealed, purpose="contact")
            ref = await self.try_send(address, message)
        except DeliveryError as e:
            log.info(
                "send failed notice=%s registration=%s provider=%s code=%s temporary=%s",
                message.notice_id, message.registration_id, self.provider, e.code, e.temporary,
            )
            raise
        except (asyncio.TimeoutError, ConnectionError, OSError) as e:
            raise TemporaryFailure(f"{self.provider}: {type(e).__name__}", "connection") from e
        elapsed = time.perf_counter() - started
        log.debug("sent notice=%s provider=%s ref=%s in %.3fs", message.notice_id, self.provider, ref, elapsed)
        return Receipt(self.provider, ref, elapsed)

    @abc.abstractmethod
    async def try_send(self, address: str, message: Outbound) -> str | None:
        """Send to the opened ``address``; return the provider's reference.

        Raise :class:`TemporaryFailure` or :class:`PermanentFailure` (``from`` the
        provider's exception). Never put ``address`` or the body in a message.
        """
