"""SMS through Twilio's Messages API, with the official SDK's async client.

Twilio's error codes are mapped here, and only here, to savin's temporary and
permanent failures (https://www.twilio.com/docs/api/errors).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from savin.notifiers.base import DeliveryError, Notifier, Outbound, PermanentFailure, TemporaryFailure
from savin.sealing import Sealer

__all__ = ["TwilioSMS", "classify", "TEMPORARY_CODES", "PERMANENT_CODES", "OPT_OUT_CODES"]

#: Worth retrying: rate limits, Twilio's own faults, queue overflow, carrier hiccups.
TEMPORARY_CODES = frozenset({20429, 20500, 20503, 30001, 30003})
#: Retrying cannot help: invalid number, region not enabled, unreachable by SMS, landline.
PERMANENT_CODES = frozenset({21211, 21408, 21612, 21614})
#: The recipient replied STOP: permanent, and no more notices to that contact until START.
OPT_OUT_CODES = frozenset({21610})


def classify(status: int | None, code: int | None, notice_id: str) -> DeliveryError:
    """Twilio's answer as a savin failure. Messages carry codes and ids, never the number or body."""
    label = str(code) if code is not None else f"http-{status}"
    text = f"twilio refused notice {notice_id}: error {label}"
    if code in OPT_OUT_CODES:
        return PermanentFailure(text + " (recipient opted out)", label, suppress=True)
    if code in PERMANENT_CODES:
        return PermanentFailure(text, label)
    if code in TEMPORARY_CODES or status == 429 or (status is not None and status >= 500):
        return TemporaryFailure(text, label)
    return PermanentFailure(text, label)


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
        self._sid = account_sid
        self._token = auth_token
        self._sender = {"messaging_service_sid": messaging_service_sid} if messaging_service_sid \
            else {"from_": from_number}
        self._status_callback = status_callback
        self._base_url = base_url
        self._timeout = timeout
        self._client: Client | None = None

    async def start(self) -> None:
        # The SDK logs request parameters (numbers, bodies) at INFO.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
        # The async HTTP client opens an aiohttp session, so it is made inside the running loop.
        http = AsyncTwilioHttpClient()
        self._client = Client(self._sid, self._token, http_client=http)
        if self._base_url:
            self._client.api.base_url = self._base_url.rstrip("/")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.http_client.close()
            self._client = None

    def callback_url(self, params: dict[str, str]) -> str | None:
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
        kwargs = dict(to=address, body=message.content.text, **self._sender)
        if callback := self.callback_url(message.callback_params):
            kwargs["status_callback"] = callback
        try:
            async with asyncio.timeout(self._timeout):
                sent = await self._client.messages.create_async(**kwargs)
        except TwilioRestException as e:
            raise classify(e.status, e.code, message.notice_id) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise TemporaryFailure(f"twilio unreachable for notice {message.notice_id}: {type(e).__name__}",
                                   "connection") from None
        return sent.sid
