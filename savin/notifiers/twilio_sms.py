"""SMS through Twilio's Messages API, with the official SDK's async client,
and Twilio's status callbacks.

Everything Twilio-specific lives here: its error codes as savin's temporary,
permanent and configuration faults (https://www.twilio.com/docs/api/errors),
its message statuses as savin's, the status callback's signature check
and parsing (:class:`StatusCallbacks`), and the incoming-message webhook's
(:class:`IncomingMessages`, answered in TwiML); ``savin.web`` only carries the request.
The voice notifier (:mod:`savin.notifiers.twilio_voice`) builds on what is
not SMS-specific: one account's client and its check (:class:`TwilioAccount`),
a code map as failures (:class:`ErrorCodes`, :func:`classify`), and the
callbacks' signature and replay checks (:class:`StatusCallbacks`).

Two things about twilio 9.x's async client shape this module:

* ``AsyncTwilioHttpClient`` does not apply its own ``timeout`` (each request
  passes ``timeout=None`` to aiohttp, which disables aiohttp's timeout), so
  every request is bounded here with :func:`asyncio.timeout`.
* It logs each request's URL and headers at INFO (on ``twilio.http_client``
  and ``twilio.async_http_client``); :meth:`TwilioAccount.start` sets both to
  WARNING. ``TwilioRestException`` carries Twilio's message and the request
  URI, which can hold the number, so nothing of it but the code and the HTTP
  status is copied into savin's errors.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from savin.domain.clock import utcnow
from savin.notifiers.base import (
    ConfigurationFault,
    DeliveryError,
    Notifier,
    Outbound,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from savin.schemas import Channel, DeliveryResult, DeliveryStatus
from savin.sealing import Sealer

__all__ = [
    "TwilioSMS", "TwilioAccount", "classify", "ErrorCodes", "SMS_ERRORS", "ERROR_CLASSES", "SUPPRESS_CODES",
    "TWILIO_STATUSES", "StatusCallbacks", "CallbackVerdict", "IncomingMessages", "IncomingMessage",
]

#: The constructor arguments a refused authentication points at.
CREDENTIALS = ("account_sid", "auth_token")

#: Twilio error code -> what it means for savin.
ERROR_CLASSES: dict[int, type[DeliveryError]] = {
    20003: ConfigurationFault,  # authentication failed: wrong credentials; notices wait until they are fixed
    20429: RateLimited,  # too many requests
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


@dataclass(frozen=True)
class ErrorCodes:
    """One Twilio API's error codes as savin's failures (the Messages API's, the Calls API's)."""

    classes: Mapping[int, type[DeliveryError]]
    #: Codes meaning the recipient opted out.
    suppress: frozenset[int] = frozenset()
    #: The constructor arguments a :class:`ConfigurationFault` code points at (default: the credentials).
    fields: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


SMS_ERRORS = ErrorCodes(ERROR_CLASSES, SUPPRESS_CODES)

#: Twilio MessageStatus -> savin status; statuses not listed are not recorded.
TWILIO_STATUSES: dict[str, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
}

_CONNECTION_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ConnectionError, OSError)
_QUIET_LOGGERS = ("twilio.http_client", "twilio.async_http_client")


def classify(exc: BaseException, notice_id: str | None = None, codes: ErrorCodes = SMS_ERRORS) -> DeliveryError:
    """What a failed send means for savin, by ``codes`` (the SMS codes unless told).
    Messages carry codes and ids, never the number or body."""
    about = f"notice {notice_id}" if notice_id else "notice"
    if isinstance(exc, TwilioRestException):
        code = exc.code if isinstance(exc.code, int) else None
        status = exc.status if isinstance(exc.status, int) else None
        label = str(code) if code is not None else f"http-{status}"
        text = f"twilio refused {about}: error {label} (HTTP {status})"
        if code in codes.suppress:
            return PermanentFailure(text + ", recipient opted out", label, suppress=True)
        # 401: the account's credentials are wrong; once operators fix them a retry succeeds.
        if code == 20003 or (code not in codes.classes and status == 401):
            return ConfigurationFault(f"twilio refused savin's credentials for {about}: error {label} (HTTP {status})",
                                      label, fields=CREDENTIALS)
        kind = codes.classes.get(code) if code is not None else None
        if kind is ConfigurationFault:
            return ConfigurationFault(f"twilio refused savin's configuration for {about}: error {label} (HTTP {status})",
                                      label, fields=codes.fields.get(code, CREDENTIALS) if code else CREDENTIALS)
        if kind is not None:
            return kind(text, label)
        if status == 429:
            return RateLimited(text, label)
        if status is None or status >= 500:
            return TemporaryFailure(text, label)
        if 400 <= status < 500:
            return PermanentFailure(text, label)
        return TemporaryFailure(text, label)
    if isinstance(exc, _CONNECTION_ERRORS):
        return TemporaryFailure(f"twilio unreachable for {about}: {type(exc).__name__}", "connection")
    return TemporaryFailure(f"twilio send failed for {about}: {type(exc).__name__}", "unexpected")


_T = TypeVar("_T")


class TwilioAccount(Notifier):
    """What savin's Twilio notifiers share: one account's SDK client (its async HTTP
    client made in the running loop, its chatty loggers quietened), the account check,
    and each request bounded in time with Twilio's failures as savin's."""

    #: The account's error codes for this notifier's API.
    codes: ErrorCodes = SMS_ERRORS

    def __init__(self, sealer: Sealer, account_sid: str, auth_token: str, base_url: str | None = None,
                 timeout: float = 10.0):
        super().__init__(sealer)
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._sid = account_sid
        self._token = auth_token
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
            # Messages and Calls live on the "api" domain; savin uses no other. An edge or region
            # (TWILIO_EDGE / TWILIO_REGION) would rewrite the base URL's host, so none applies.
            self._client.api.base_url = self._base_url
            self._client.edge = self._client.region = None
        # The client imports each resource's modules when first asked for it (about 0.1 s for
        # Calls): import them now, not on the first send, where the delay would land between a
        # call's slot and its arrival at Twilio and bring it closer to the next than the limit allows.
        _ = self._client.messages, self._client.calls

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = None
        self._client = None

    async def client(self) -> Client:
        if self._client is None:
            await self.start()
        assert self._client is not None
        return self._client

    async def request(self, call: Callable[[Client], Awaitable[_T]], notice_id: str | None) -> _T:
        """``call(client)`` within the timeout; a refusal or an unreachable Twilio as savin's failure."""
        client = await self.client()
        try:
            async with asyncio.timeout(self._timeout):
                return await call(client)
        except TwilioRestException as e:
            # Twilio's message and URI may name the number: keep neither, not even as a cause.
            raise classify(e, notice_id, self.codes) from None
        except _CONNECTION_ERRORS as e:
            raise classify(e, notice_id, self.codes) from e

    async def try_check(self) -> None:
        """Fetch the account (``GET /2010-04-01/Accounts/{AccountSid}.json``): Twilio answers
        401 (20003) for wrong credentials, and the account's status says whether it may send."""
        client = await self.client()
        try:
            async with asyncio.timeout(self._timeout):
                account = await client.api.accounts(self._sid).fetch_async()
        except TwilioRestException as e:
            if e.status == 404:
                raise ConfigurationFault(f"twilio has no account {self._sid} for these credentials",
                                         str(e.code or "http-404"), fields=("account_sid",)) from None
            failure = classify(e, None, self.codes)
            if isinstance(failure, ConfigurationFault):
                raise ConfigurationFault(f"twilio refused the credentials of account {self._sid}: error {failure.code}",
                                         failure.code, fields=failure.fields) from None
            raise failure from None
        except _CONNECTION_ERRORS as e:
            raise TemporaryFailure(f"twilio unreachable for the account check: {type(e).__name__}",
                                   "connection") from e
        if account.status not in (None, "active"):
            raise ConfigurationFault(f"twilio account {self._sid} is {account.status}", f"account-{account.status}",
                                     fields=("account_sid",))


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to its query."""
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


class TwilioSMS(TwilioAccount):
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
        super().__init__(sealer, account_sid, auth_token, base_url, timeout)
        if not (from_number or messaging_service_sid):
            raise ValueError("TwilioSMS needs a From number or a Messaging Service SID")
        self._from = None if messaging_service_sid else from_number
        self._messaging_service_sid = messaging_service_sid
        self._status_callback = status_callback

    def callback_url(self, params: dict[str, str]) -> str | None:
        """The StatusCallback for a notice: the configured URL with ``params`` as its query."""
        return with_query(self._status_callback, params) if self._status_callback else None

    async def try_send(self, address: str, message: Outbound) -> str | None:
        params: dict[str, str] = {"to": address, "body": message.content.text}
        if self._messaging_service_sid:
            params["messaging_service_sid"] = self._messaging_service_sid
        elif self._from:
            params["from_"] = self._from
        # A message without ids to echo (a verification code) is not followed up.
        if message.callback_params and (callback := self.callback_url(message.callback_params)):
            params["status_callback"] = callback
        sent = await self.request(lambda client: client.messages.create_async(**params), message.notice_id)
        return sent.sid


# ---- status callbacks --------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackVerdict:
    """What a status callback amounts to. ``outcome`` is a metric label: ``accepted``,
    ``ignored``, ``forged``, ``replayed`` or ``unknown-notice``; ``result`` is set when
    accepted. ``reason`` names what is wrong, never a value from the request."""

    outcome: str
    result: DeliveryResult | None = None
    reason: str | None = None


class _SeenSignatures:
    """Signatures already honoured, so a replayed callback is refused (bounded LRU)."""

    def __init__(self, size: int = 100_000):
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, signature: str) -> bool:
        if signature in self._seen:
            return False
        self._seen[signature] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


class StatusCallbacks:
    """Twilio's status callbacks: the ``X-Twilio-Signature`` check, replay refusal,
    and the callback as a :class:`DeliveryResult`.

    Twilio signs the URL it was given (the configured ``StatusCallback`` with the
    notice's query), so the signature is checked against ``public_url`` when set.
    The notice is named by the query parameters :meth:`TwilioSMS.callback_url` added.
    A subclass reads another API's callbacks by overriding :meth:`result`.
    """

    def __init__(self, auth_token: str, public_url: str | None = None, *, remember: int = 100_000):
        self._validator = RequestValidator(auth_token)
        self._public_url = public_url
        self._seen = _SeenSignatures(remember)

    def signed_url(self, request_url: str, raw_query: str) -> str:
        """The URL Twilio signed, for a request that arrived at ``request_url``."""
        url = self._public_url or request_url.split("?")[0]
        return f"{url}?{raw_query}" if raw_query else url

    def read(self, url: str, form: Mapping[str, str], query: Mapping[str, str], signature: str) -> CallbackVerdict:
        """Judge one callback: ``url`` as :meth:`signed_url` gives it, the POSTed form, the query."""
        params = dict(form)
        if not signature or not self._validator.validate(url, params, signature):
            return CallbackVerdict("forged", reason="invalid X-Twilio-Signature")
        if not self._seen.add(signature):
            return CallbackVerdict("replayed", reason="callback already received")
        try:
            notice_id = uuid.UUID(query["notice_id"])
            registration_id = query["registration_id"]
        except (KeyError, ValueError):
            return CallbackVerdict("unknown-notice", reason="notice_id and registration_id query parameters required")
        result = self.result(params, notice_id, registration_id)
        return CallbackVerdict("accepted", result) if result is not None else CallbackVerdict("ignored")

    def result(self, params: Mapping[str, str], notice_id: uuid.UUID, registration_id: str) -> DeliveryResult | None:
        """The callback of a genuine request as a result; None for a status savin does not record."""
        status = TWILIO_STATUSES.get(params.get("MessageStatus", ""))
        if status is None:
            return None
        return DeliveryResult(
            notice_id=notice_id,
            registration_id=registration_id,
            channel=Channel.SMS,
            status=status,
            source="callback",
            provider=TwilioSMS.provider,
            provider_ref=params.get("MessageSid"),
            error_code=params.get("ErrorCode") or None,
            at=utcnow(),
        )


# ---- incoming messages -------------------------------------------------------------------


@dataclass(frozen=True)
class IncomingMessage:
    """An SMS sent to savin's number, as Twilio's incoming-message request carries it.
    Holds the number and the text: neither is ever logged."""

    sid: str
    sender: str
    body: str


class IncomingMessages:
    """Twilio's incoming-message webhook: the ``X-Twilio-Signature`` check, the message,
    and the TwiML that answers it.

    Twilio signs the URL it was configured with, so ``url`` is the public URL of the
    webhook when savin runs behind a proxy. A replayed message is not refused: what a
    message asks for (opt out, opt in, help, a code) comes to the same the second time.
    """

    def __init__(self, auth_token: str):
        self._validator = RequestValidator(auth_token)

    def read(self, url: str, form: Mapping[str, str], signature: str) -> IncomingMessage | None:
        """The message, or None when the request is unsigned or its signature is wrong."""
        if not signature or not self._validator.validate(url, form, signature):
            return None
        return IncomingMessage(form.get("MessageSid", ""), form.get("From", ""), form.get("Body", ""))

    @staticmethod
    def reply(text: str | None) -> str:
        """TwiML answering the sender with ``text`` (None: no answer at all)."""
        response = MessagingResponse()
        if text:
            response.message(text)
        return str(response)
