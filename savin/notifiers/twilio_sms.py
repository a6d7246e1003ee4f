"""SMS through Twilio's Messages API, with the official SDK's async client.

Twilio's error codes are mapped here, and only here, to savin's temporary and
permanent failures (https://www.twilio.com/docs/api/errors).

Two things about twilio 9.x's async client shape this module:

* ``AsyncTwilioHttpClient`` does not apply its own ``timeout`` (each request
  passes ``timeout=None`` to aiohttp, which disables aiohttp's timeout), so
  every send is bounded here with :func:`asyncio.timeout`.
* It logs each request's URL and headers at INFO (on ``twilio.http_client``
  and ``twilio.async_http_client``); :meth:`TwilioSMS.start` sets both to
  WARNING. ``TwilioRestException`` carries Twilio's message and the request
  URI, which can hold the number, so nothing of it but the code and the HTTP
  status is copied into savin's errors.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from savin.notifiers.base import (
    DeliveryError,
    Notifier,
    Outbound,
    PermanentFailure,
    TemporaryFailure,
)
from savin.sealing import Sealer

__all__ = ["TwilioSMS", "classify", "ERROR_CLASSES", "SUPPRESS_CODES"]

#: Twilio error code -> what it means for savin.
ERROR_CLASSES: dict[int, type[DeliveryError]] = {
    20003: TemporaryFailure,  # authentication failed: wrong credentials, retried once operators fix them
    20429: TemporaryFailure,  # too many requests
    20500: TemporaryFailure,  # Twilio internal error
    20503: TemporaryFailure,  # Twilio unavailable
    30001: TemporaryFailure,  # queue overflow
    30003: TemporaryFailure,  # unreachable destination handset
    21211: PermanentFailure,  # invalid 'To' number
    21408: PermanentFailure,  # region not enabled
    21610: PermanentFailure,  # recipient replied STOP
    21612: PermanentFailure,  # 'To' not reachable by SMS
    21614: PermanentFailure,  # 'To' not a mobile number
}
#: Codes meaning the recipient opted out: no more notices to that contact until they opt in.
SUPPRESS_CODES = frozenset({21610})

_CONNECTION_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ConnectionError, OSError)
_QUIET_LOGGERS = ("twilio.http_client", "twilio.async_http_client")


def classify(exc: BaseException, notice_id: str | None = None) -> DeliveryError:
    """What a failed send means for savin. Messages carry codes and ids, never the number or body."""
    about = f"notice {notice_id}" if notice_id else "notice"
    if isinstance(exc, TwilioRestException):
        code = exc.code if isinstance(exc.code, int) else None
        status = exc.status if isinstance(exc.status, int) else None
        label = str(code) if code is not None else f"http-{status}"
        text = f"twilio refused {about}: error {label} (HTTP {status})"
        if code in SUPPRESS_CODES:
            return PermanentFailure(text + ", recipient opted out", label, suppress=True)
        if code in ERROR_CLASSES:
            return ERROR_CLASSES[code](text, label)
        # 401: the account's credentials are wrong; once operators fix them a retry succeeds.
        if status is None or status in (401, 429) or status >= 500:
            return TemporaryFailure(text, label)
        if 400 <= status < 500:
            return PermanentFailure(text, label)
        return TemporaryFailure(text, label)
    if isinstance(exc, _CONNECTION_ERRORS):
        return TemporaryFailure(f"twilio unreachable for {about}: {type(exc).__name__}", "connection")
    return TemporaryFailure(f"twilio send failed for {about}: {type(exc).__name__}", "unexpected")


class TwilioSMS(Notifier):
    provider = "twilio"
    channel = "sms"

    def __init__(
        self,
        sealer: Sealer,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ):
        super().__init__(sealer)
        if not (from_number or messaging_service_sid):
            raise ValueError("TwilioSMS needs a From number or a Messaging Service SID")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._sid = account_sid
        self._token = auth_token
        self._from = None if messaging_service_sid else from_number
        self._messaging_service_sid = messaging_service_sid
        self._status_callback = status_callback
        self._base_url = base_url.rstrip("/") if base_url else None
        self._timeout = timeout
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    async def start(self) -> None:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        if self._client is not None:
            return
        # The async HTTP client opens an aiohttp session, so it is made inside the running loop.
        self._http = AsyncTwilioHttpClient(timeout=self._timeout)
        self._client = Client(self._sid, self._token, http_client=self._http)
        if self._base_url:
            # Messages live on the "api" domain; savin uses no other. An edge or region
            # (TWILIO_EDGE / TWILIO_REGION) would rewrite the base URL's host, so none applies.
            self._client.api.base_url = self._base_url
            self._client.edge = self._client.region = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = None
        self._client = None

    def callback_url(self, params: dict[str, str]) -> str | None:
        """The StatusCallback for a notice: the configured URL with ``params`` as its query."""
        if not self._status_callback:
            return None
        if not params:
            return self._status_callback
        sep = "&" if "?" in self._status_callback else "?"
        return self._status_callback + sep + urllib.parse.urlencode(params)

    async def try_send(self, address: str, message: Outbound) -> str | None:
        if self._client is None:
            await self.start()
        assert self._client is not None
        params: dict[str, str] = {"to": address, "body": message.content.text}
        if self._messaging_service_sid:
            params["messaging_service_sid"] = self._messaging_service_sid
        elif self._from:
            params["from_"] = self._from
        if callback := self.callback_url(message.callback_params):
            params["status_callback"] = callback
        try:
            async with asyncio.timeout(self._timeout):
                sent = await self._client.messages.create_async(**params)
        except TwilioRestException as e:
            # Twilio's message and URI may name the number: keep neither, not even as a cause.
            raise classify(e, message.notice_id) from None
        except _CONNECTION_ERRORS as e:
            raise classify(e, message.notice_id) from e
        return sent.sid
