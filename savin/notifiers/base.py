"""What every notifier shares: opening the sealed address, timing, outcome,
logging by id, configuration faults, and turning unexpected exceptions into
savin's own.

A provider module subclasses :class:`Notifier`, declares its ``provider`` and
``channel``, and implements only :meth:`Notifier.try_send` (the call itself),
:meth:`Notifier.try_check` (a cheap authenticated request) and its own
error-code map.

Failures come in three classes:

* :class:`TemporaryFailure`: worth retrying later (rate limits, outages, timeouts);
* :class:`PermanentFailure`: retrying cannot help (invalid address, opted out);
* :class:`ConfigurationFault`: the provider refuses savin itself (wrong
  credentials, a closed account). Every notice would fail the same way, so the
  notice is kept for retry like a temporary failure, while the notifier records
  the fault (:attr:`Notifier.config_fault`) for readiness, counts it and logs it
  at error level once per interval, until a send or a check succeeds.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from savin import metrics
from savin.sealing import Sealer

__all__ = [
    "DeliveryError", "TemporaryFailure", "RateLimited", "PermanentFailure", "ConfigurationFault",
    "Outbound", "Receipt", "Notifier",
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


class RateLimited(TemporaryFailure):
    """The provider refused the send as one too many (HTTP 429, Twilio 20429, SMTP 421/451):
    the sender slows down (:mod:`savin.notifiers.pacing`), waiting ``retry_after`` seconds when given."""

    def __init__(self, message: str, code: str | None = None, *, retry_after: float | None = None):
        super().__init__(message, code)
        self.retry_after = retry_after


class PermanentFailure(DeliveryError):
    """Retrying cannot help: invalid address, landline for SMS, opted out."""


class ConfigurationFault(DeliveryError):
    """The provider refuses savin's configuration (credentials, account), not the notice.

    The notice is kept for retry (``temporary``): once an operator fixes the
    configuration it goes out. ``fields`` names the notifier's constructor
    arguments at fault (``"auth_token"``, ``"password"``), which the composition
    root translates into setting names.
    """

    temporary = True

    def __init__(self, message: str, code: str | None = None, *, fields: tuple[str, ...] = ()):
        super().__init__(message, code)
        self.fields = fields


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
    """A provider for one channel. Subclasses set ``provider`` and ``channel``;
    the dispatcher finds a notifier by its ``channel``."""

    provider: ClassVar[str] = "?"
    #: The contact channel this notifier serves (a :class:`savin.schemas.Channel` value).
    channel: ClassVar[str] = "?"
    #: Seconds between error lines while a configuration fault lasts.
    fault_log_interval: float = 60.0

    def __init__(self, sealer: Sealer):
        self._sealer = sealer
        self._fault: ConfigurationFault | None = None
        self._fault_logged_at = 0.0
        self._fault_unlogged = 0

    async def start(self) -> None:
        """Open connections or sessions; called once before the first send."""

    async def close(self) -> None:
        """Release what :meth:`start` opened."""

    # ---- configuration faults ------------------------------------------------------

    @property
    def _log(self) -> logging.Logger:
        # Its own logger, so one provider's lines are never taken for repeats of another's.
        return logging.getLogger(f"savin.notifiers.{self.provider}")

    @property
    def config_fault(self) -> ConfigurationFault | None:
        """The configuration fault of the last send or check, while it lasts."""
        return self._fault

    def _note_fault(self, fault: ConfigurationFault) -> None:
        metrics.PROVIDER_CONFIG_FAULTS.labels(provider=self.provider, code=fault.code or "?").inc()
        metrics.PROVIDER_CONFIG_OK.labels(provider=self.provider).set(0)
        now = time.monotonic()
        first = self._fault is None
        self._fault = fault
        if first or now - self._fault_logged_at >= self.fault_log_interval:
            repeats = f" ({self._fault_unlogged} more since the last report)" if self._fault_unlogged else ""
            self._log.error("%s refuses savin's configuration: %s%s", self.provider, fault, repeats)
            self._fault_logged_at, self._fault_unlogged = now, 0
        else:
            self._fault_unlogged += 1

    def _clear_fault(self) -> None:
        metrics.PROVIDER_CONFIG_OK.labels(provider=self.provider).set(1)
        if self._fault is not None:
            self._log.warning("%s accepts savin's configuration again", self.provider)
            self._fault, self._fault_unlogged = None, 0

    async def check(self, *, record: bool = True) -> None:
        """Ask the provider whether it accepts savin's configuration.

        Raises :class:`ConfigurationFault` when it refuses, and
        :class:`TemporaryFailure` when it cannot be asked; a success clears a
        recorded fault. With ``record=False`` a refusal is only raised, neither
        recorded, counted nor logged: the caller reports it (the start-up check).
        """
        try:
            await self.try_check()
        except ConfigurationFault as e:
            if record:
                self._note_fault(e)
            raise
        except DeliveryError:
            raise
        except (asyncio.TimeoutError, ConnectionError, OSError) as e:
            raise TemporaryFailure(f"{self.provider}: check failed: {type(e).__name__}", "connection") from e
        self._clear_fault()

    async def try_check(self) -> None:
        """A cheap authenticated request (fetch the account, log in). Raise
        :class:`ConfigurationFault` when the provider refuses savin's credentials."""

    # ---- sending ---------------------------------------------------------------------

    async def send(self, message: Outbound) -> Receipt:
        started = time.perf_counter()
        try:
            address = self._sealer.open(message.address_sealed, purpose="contact")
            ref = await self.try_send(address, message)
        except DeliveryError as e:
            metrics.SEND_SECONDS.labels(provider=self.provider).observe(time.perf_counter() - started)
            if isinstance(e, ConfigurationFault):
                self._note_fault(e)
            log.info(
                "send failed notice=%s registration=%s provider=%s code=%s temporary=%s",
                message.notice_id, message.registration_id, self.provider, e.code, e.temporary,
            )
            raise
        except (asyncio.TimeoutError, ConnectionError, OSError) as e:
            metrics.SEND_SECONDS.labels(provider=self.provider).observe(time.perf_counter() - started)
            raise TemporaryFailure(f"{self.provider}: {type(e).__name__}", "connection") from e
        elapsed = time.perf_counter() - started
        metrics.SEND_SECONDS.labels(provider=self.provider).observe(elapsed)
        # The provider took the notice, so it takes savin's configuration.
        if self._fault is not None:
            self._clear_fault()
        log.debug("sent notice=%s provider=%s ref=%s in %.3fs", message.notice_id, self.provider, ref, elapsed)
        return Receipt(self.provider, ref, elapsed)

    @abc.abstractmethod
    async def try_send(self, address: str, message: Outbound) -> str | None:
        """Send to the opened ``address``; return the provider's reference.

        Raise :class:`TemporaryFailure`, :class:`PermanentFailure` or
        :class:`ConfigurationFault` (``from`` the provider's exception, or
        ``from None`` when its text could hold personal data). Never put
        ``address`` or the body in a message.
        """
