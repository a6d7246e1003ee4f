"""Calls through Twilio's Calls API, with the official SDK's async client, and
the calls' status callbacks.

A call says nothing that travels with it: :meth:`TwilioVoice.try_send` seals
what the call says (a :class:`~savin.rendering.voice.RenderedVoice`) into a
:class:`~savin.schemas.escalation.CallRecord`, puts it on the calls topic
and waits for Kafka's acknowledgement, and only then asks Twilio to place
the call. Twilio fetches the call's TwiML from ``savin web``
(:mod:`savin.web.portal.voice`) at a single-use URL holding a signed,
15-minute token that names the call and nothing else; the web process asks
for the PIN before it says anything of the notice, and leaves an answering
machine only the neutral message.

What the Calls API shares with the Messages API (the account's client and
its check, a code map as savin's failures, the callbacks' signature and
replay checks) comes from :mod:`savin.notifiers.twilio_sms`. This module
owns the voice error codes (:data:`VOICE_ERRORS`) and the call statuses
(:class:`VoiceCallbacks`). Calls keep to Twilio's calls-per-second limit as
texts keep to theirs: the dispatcher waits on the voice channel's pacer
(:mod:`savin.notifiers.pacing`, ``SAVIN_TWILIO_CALLS_PER_SECOND``) before each send.

Machine detection asks Twilio for ``DetectMessageEnd``: Twilio answers
``AnsweredBy=human`` as soon as a person speaks, and for a machine waits for
the end of its greeting, so the whole neutral message lands after the beep.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol

from aiokafka.errors import KafkaError

from savin.domain.clock import utcnow
from savin.domain.escalation import CallResult
from savin.domain.links import sign_token
from savin.notifiers.base import (
    ConfigurationFault,
    Outbound,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from savin.notifiers.twilio_sms import ErrorCodes, StatusCallbacks, TwilioAccount, with_query
from savin.rendering.voice import RenderedVoice
from savin.schemas import DeliveryResult, DeliveryStatus
from savin.schemas.escalation import CallRecord
from savin.schemas.registration import Channel
from savin.sealing import Sealer

__all__ = [
    "TwilioVoice", "VoiceCallbacks", "VOICE_ERRORS", "CALL_STATUSES", "CALL_TTL", "CALL_TOKEN",
    "TWIML_PATH", "CALLBACK_PATH", "answered_by_machine",
]

#: The signed token in a call's TwiML URL: its purpose, and how long the URL works.
CALL_TOKEN = "call"
CALL_TTL = timedelta(minutes=15)
#: Where ``savin web`` serves a call's TwiML (``/voice/calls/<token>``) and takes its status callbacks.
TWIML_PATH = "/voice/calls/"
CALLBACK_PATH = "/callbacks/twilio/voice"

#: Twilio error code -> what it means for savin, for the Calls API.
VOICE_ERRORS = ErrorCodes(
    classes={
        20003: ConfigurationFault,  # authentication failed
        10001: ConfigurationFault,  # the account is not active
        10005: ConfigurationFault,  # voice calling is disabled for the account
        21205: ConfigurationFault,  # the TwiML Url is not a valid URL: the web's public address
        21210: ConfigurationFault,  # 'From' is not a verified caller ID of the account
        21212: ConfigurationFault,  # 'From' is not a valid caller ID
        10004: TemporaryFailure,  # call concurrency limit exceeded
        20429: RateLimited,  # too many requests
        20500: TemporaryFailure,  # Twilio internal error
        20503: TemporaryFailure,  # Twilio unavailable
        21211: PermanentFailure,  # invalid 'To' number
        21214: PermanentFailure,  # 'To' cannot be reached
        21215: PermanentFailure,  # the account's geo permissions do not allow calling that region
        21216: PermanentFailure,  # Twilio blocks calls to that number
        21217: PermanentFailure,  # the number does not appear to be valid
        13223: PermanentFailure,  # invalid phone number format
        13224: PermanentFailure,  # Twilio does not support calling the number, or it is invalid
    },
    fields={
        10001: ("account_sid",), 10005: ("account_sid",), 21205: ("web_base",),
        21210: ("from_number",), 21212: ("from_number",),
    },
)

#: Twilio CallStatus of a call that was not answered -> savin's status.
CALL_STATUSES: dict[str, DeliveryStatus] = {
    "busy": DeliveryStatus.UNDELIVERED,
    "no-answer": DeliveryStatus.UNDELIVERED,
    "canceled": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
}


def answered_by_machine(answered_by: str | None) -> bool:
    """Whether Twilio's ``AnsweredBy`` names a machine (``machine_start``,
    ``machine_end_beep``, ``machine_end_silence``, ``machine_end_other``) or a fax.
    ``human`` and ``unknown`` are treated as a person: they get the PIN prompt."""
    return bool(answered_by) and (answered_by.startswith("machine") or answered_by == "fax")


class Calls(Protocol):
    """Where a call's record goes before the call is placed (:class:`savin.streams.calls.CallBook`)."""

    async def put(self, record: CallRecord) -> None: ...


class TwilioVoice(TwilioAccount):
    """Places a notice's call; :meth:`try_send` returns the call's sid.

    ``calls`` keeps each call's record (an object with ``put``; ``start`` and
    ``stop`` are called with the notifier's when it has them). ``link_key`` signs
    the TwiML URL's token, as ``savin web`` reads it (:attr:`Portal.link_key`);
    ``web_base`` is the web's address as Twilio reaches it.
    """

    provider = "twilio-voice"
    channel = "voice"
    codes = VOICE_ERRORS

    def __init__(
        self,
        sealer: Sealer,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str,
        calls: Calls,
        link_key: bytes,
        web_base: str,
        pin_required: bool = True,
        machine_detection: bool = True,
        base_url: str | None = None,
        timeout: float = 10.0,
        ring_timeout: int = 25,
    ):
        super().__init__(sealer, account_sid, auth_token, base_url, timeout)
        if not from_number:
            raise ValueError("TwilioVoice needs a From number (the caller ID)")
        self._from = from_number
        self._calls = calls
        self._link_key = link_key
        self._web_base = web_base.rstrip("/")
        self._pin_required = pin_required
        self._machine_detection = machine_detection
        self._ring_timeout = ring_timeout

    async def start(self) -> None:
        await super().start()
        if (start := getattr(self._calls, "start", None)) is not None:
            await start()

    async def close(self) -> None:
        await super().close()
        if (stop := getattr(self._calls, "stop", None)) is not None:
            await stop()

    async def try_check(self) -> None:
        """Nothing: the SMS notifier's check fetches the same account."""

    def twiml_url(self, call_id: str) -> str:
        token = sign_token(self._link_key, CALL_TOKEN, (call_id,), utcnow() + CALL_TTL)
        return f"{self._web_base}{TWIML_PATH}{token}"

    def callback_url(self, params: Mapping[str, str]) -> str:
        return with_query(self._web_base + CALLBACK_PATH, params)

    def record(self, message: Outbound) -> CallRecord:
        """The call's record: what it says, sealed, and for whom (ids only)."""
        voice = message.content
        if not isinstance(voice, RenderedVoice):
            raise PermanentFailure(f"notice {message.notice_id} is not a call's words", "not-voice")
        now = utcnow()
        try:
            return CallRecord(
                call_id=uuid.UUID(message.notice_id), registration_id=message.registration_id,
                event_id=uuid.UUID(voice.event_id), language=voice.language.split("-")[0],
                content_sealed=self._sealer.seal(json.dumps(voice.spoken(), ensure_ascii=False), purpose="call"),
                pin_required=self._pin_required, created_at=now, expires_at=now + CALL_TTL)
        except ValueError:
            raise PermanentFailure(f"notice {message.notice_id} has no call id or event id", "not-a-call") from None

    async def try_send(self, address: str, message: Outbound) -> str | None:
        record = self.record(message)
        try:
            async with asyncio.timeout(self._timeout):
                await self._calls.put(record)
        except (KafkaError, TimeoutError) as e:
            raise TemporaryFailure(f"the record of call {message.notice_id} was not written: {type(e).__name__}",
                                   "calls-topic") from e
        ids = message.callback_params or {"notice_id": message.notice_id, "registration_id": message.registration_id}
        params: dict = {
            "to": address, "from_": self._from, "url": self.twiml_url(message.notice_id), "method": "POST",
            "status_callback": self.callback_url(ids), "status_callback_method": "POST",
            "status_callback_event": ["completed"], "timeout": self._ring_timeout,
        }
        if self._machine_detection:
            params["machine_detection"] = "DetectMessageEnd"
        call = await self.request(lambda client: client.calls.create_async(**params), message.notice_id)
        return call.sid


class VoiceCallbacks(StatusCallbacks):
    """A call's status callback (signature and replay checks as for messages) as a
    :class:`DeliveryResult` with what the call came to (``call_result``)."""

    def result(self, params: Mapping[str, str], notice_id: uuid.UUID, registration_id: str) -> DeliveryResult | None:
        status = params.get("CallStatus", "")
        if status == "completed":
            machine = answered_by_machine(params.get("AnsweredBy"))
            delivery, result = DeliveryStatus.DELIVERED, CallResult.MACHINE if machine else CallResult.ANSWERED
        elif status in CALL_STATUSES:
            delivery, result = CALL_STATUSES[status], CallResult.UNANSWERED
        else:
            return None  # queued, ringing, in-progress: not asked for, not recorded
        return DeliveryResult(
            notice_id=notice_id,
            registration_id=registration_id,
            channel=Channel.VOICE,
            status=delivery,
            call_result=result,
            source="callback",
            provider=TwilioVoice.provider,
            provider_ref=params.get("CallSid"),
            error_code=params.get("ErrorCode") or None,
            at=utcnow(),
        )
