"""What Twilio asks ``savin web`` during a notice's call: the TwiML of each
step, and the call's status callback.

* ``POST /voice/calls/{token}``: the call is answered. The token (signed,
  15 minutes, made by :class:`~savin.notifiers.twilio_voice.TwilioVoice`)
  names the call; its :class:`~savin.schemas.escalation.CallRecord` holds
  what the call says, sealed. The URL is single-use: the first fetch writes
  the record again with ``answered_at``, and any later one gets only
  ``<Hangup/>``. An answering machine (or a fax) hears the neutral
  ``machine_message`` and nothing else. A person hears the introduction and
  is asked for the registration's PIN before anything of the notice; a
  registration without a PIN, or with its PIN sign-in locked, gets the
  neutral message instead.
* ``POST /voice/steps/{token}``: the next step, named by a signed token
  (:class:`Step`: which call, which Twilio call, the stage, PINs tried,
  times the notice was said), so any web process can serve it. A right PIN
  plays the notice with the confirm prompt; a wrong one is asked again, up
  to :data:`PIN_TRIES` in a call, then the neutral message ends the call.
  Wrong PINs count toward the registration's lockout, shared with the manage
  sign-in (:func:`savin.domain.verification.after_wrong_pin`). 1 on the
  keypad publishes an :class:`~savin.schemas.escalation.Acknowledgement` on
  the acknowledgements topic; 2 says the notice again; without an answer
  it is said again, :data:`HEARINGS` times in all, then goodbye.
* ``POST /callbacks/twilio/voice``: the call's final status
  (:class:`~savin.notifiers.twilio_voice.VoiceCallbacks`), published on
  delivery-results.

Every request must carry Twilio's signature of its URL and form (403
otherwise). A token, forged, expired, or for a call that is unknown or
already answered, gets a bare ``<Hangup/>``: nothing of the notice and
nothing saying why. Tokens hold ids, a stage and counts, never content or a
number; numbers, digits and words are never logged.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import re
import time
import weakref
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from fastapi.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from savin.domain import verification as rules
from savin.domain.clock import utcnow
from savin.domain.links import read_token, sign_token
from savin.notifiers.twilio_voice import CALL_TOKEN, CALLBACK_PATH, TWIML_PATH, VoiceCallbacks, answered_by_machine
from savin.schemas.consent import Attempts
from savin.schemas.escalation import AckChannel, Acknowledgement, CallRecord
from savin.schemas.registration import RegistrationStatus
from savin.sealing import SealError, check_pin
from savin.topics import partition_for
from savin.web.callbacks import twilio_status_handler
from savin.web.portal.context import Portal

__all__ = ["Step", "STEP_TOKEN", "PIN_TRIES", "HEARINGS", "routes"]

log = logging.getLogger("savin.web.voice")

_TWIML = "application/xml"
STEP_TOKEN = "call-step"
STEP_TTL = timedelta(minutes=30)
STEPS_PATH = "/voice/steps/"
#: PINs a call may try before it ends with the neutral message.
PIN_TRIES = 3
#: Times the notice is said when nobody presses a key; pressing 2 may hear it up to MOST_HEARINGS times.
HEARINGS = 3
MOST_HEARINGS = 6
#: Requests one call may make: a bound on any loop.
MOST_STEPS = 40
#: Seconds to wait for this process's view to hold a call's record the worker has just written.
RECORD_WAIT = 3.0
PIN_TIMEOUT = 10
KEY_TIMEOUT = 8
_PIN = re.compile(r"[0-9]{4,8}")
_STAGES = ("pin", "confirm", "repeat")


@dataclass(frozen=True)
class Step:
    """Where a call is, signed into the URL of its next request."""

    call_id: str
    call_sid: str
    stage: str  # "pin": Digits are a PIN; "confirm": Digits answer the confirm prompt; "repeat": say it again
    tries: int = 0  # PINs tried so far in this call
    heard: int = 0  # times the notice has been said
    n: int = 0  # requests so far

    def next(self, stage: str, **changes: int) -> Step:
        return replace(self, stage=stage, n=self.n + 1, **changes)

    def token(self, key: bytes, now: datetime) -> str:
        fields = (self.call_id, self.call_sid, self.stage, str(self.tries), str(self.heard), str(self.n))
        return sign_token(key, STEP_TOKEN, fields, now + STEP_TTL)

    @classmethod
    def read(cls, key: bytes, token: str, now: datetime) -> Step | None:
        fields = read_token(key, STEP_TOKEN, token, now)
        if fields is None or len(fields) != 6 or fields[2] not in _STAGES:
            return None
        call_id, call_sid, stage, tries, heard, n = fields
        try:
            return cls(call_id, call_sid, stage, int(tries), int(heard), int(n))
        except ValueError:
            return None


class PinCheck(enum.Enum):
    RIGHT = "right"
    WRONG = "wrong"
    REFUSED = "refused"  # locked, or no PIN to check: the call ends with the neutral message


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), media_type=_TWIML)


def _hangup() -> Response:
    response = VoiceResponse()
    response.hangup()
    return _twiml(response)


class CallAnswering:
    def __init__(self, portal: Portal):
        self.portal = portal
        auth_token = portal.settings.twilio_auth_token.get_secret_value()
        self._validator = RequestValidator(auth_token)
        # One take of a call and one PIN check of a registration at a time in this process.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        r = self.router = APIRouter()
        r.add_api_route(TWIML_PATH + "{token}", self.answer, methods=["POST"], include_in_schema=False)
        r.add_api_route(STEPS_PATH + "{token}", self.step, methods=["POST"], include_in_schema=False)
        public = portal.settings.public_url
        callbacks = VoiceCallbacks(auth_token, public.rstrip("/") + CALLBACK_PATH if public else None)
        r.add_api_route(CALLBACK_PATH, twilio_status_handler(callbacks, self.publish_result), methods=["POST"],
                        include_in_schema=False)

    # ---- requests -------------------------------------------------------------------------------

    async def publish_result(self, key: bytes, value: bytes) -> None:
        await self.portal.commands.publish(self.portal.topics.delivery_results, key, value)

    def signed_url(self, request: Request) -> str:
        """The URL Twilio signed: the public one (SAVIN_PUBLIC_URL) behind a proxy, else the request's."""
        public = self.portal.settings.public_url
        if not public:
            return str(request.url)
        query = request.url.query
        return public.rstrip("/") + request.url.path + (f"?{query}" if query else "")

    async def twilio_form(self, request: Request) -> dict[str, str] | None:
        """The request's form when Twilio signed it, else None."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not self._validator.validate(self.signed_url(request), form, signature):
            return None
        return form

    def url(self, path: str) -> str:
        """Where a step's TwiML points Twilio next: absolute behind a proxy (SAVIN_PUBLIC_URL), else
        relative to the document, so Twilio comes back to the address it reached."""
        public = self.portal.settings.public_url
        return public.rstrip("/") + path if public else path

    def step_url(self, step: Step) -> str:
        return self.url(STEPS_PATH + step.token(self.portal.link_key, utcnow()))

    # ---- the call's record ------------------------------------------------------------------------

    async def record(self, call_id: str) -> CallRecord | None:
        """The call's record, waiting a moment for the view to get one the worker has just written."""
        deadline = time.monotonic() + RECORD_WAIT
        while (found := self.portal.views.call(call_id)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return found

    async def take(self, record: CallRecord) -> bool:
        """Mark the call answered, once: False when it already was."""
        call_id = str(record.call_id)
        lock = self._locks.setdefault(f"call:{call_id}", asyncio.Lock())
        async with lock:
            current = self.portal.views.call(call_id) or record
            if current.answered_at is not None:
                return False
            answered = current.model_copy(update={"answered_at": utcnow()})
            partition = partition_for(record.registration_id.encode(), self.portal.topics.partitions)
            await self.portal.commands.write(self.portal.topics.calls, call_id.encode(),
                                             answered.model_dump_json().encode(), partition)
            return True

    def parts(self, record: CallRecord) -> dict[str, str] | None:
        try:
            parts = json.loads(self.portal.sealer.open(record.content_sealed, purpose="call"))
        except (SealError, ValueError) as e:
            log.warning("call %s: its words cannot be opened (%s)", record.call_id, type(e).__name__)
            return None
        return parts if isinstance(parts, dict) else None

    # ---- what a call says -----------------------------------------------------------------------

    @staticmethod
    def say(target: VoiceResponse | Gather, parts: dict[str, str], part: str) -> None:
        target.say(parts[part], voice=parts["voice"], language=parts["language"])

    def neutral(self, parts: dict[str, str]) -> Response:
        """Only the message an answering machine may hear, then the end of the call."""
        response = VoiceResponse()
        self.say(response, parts, "machine_message")
        response.hangup()
        return _twiml(response)

    def goodbye(self, parts: dict[str, str], *first: str) -> Response:
        response = VoiceResponse()
        for part in (*first, "goodbye"):
            self.say(response, parts, part)
        response.hangup()
        return _twiml(response)

    def ask_pin(self, parts: dict[str, str], step: Step, prompt: str, response: VoiceResponse | None = None) -> Response:
        """Ask for the PIN; the digits come back to ``step``, and so does silence (without Digits)."""
        response = response or VoiceResponse()
        gather = response.gather(input="dtmf", finish_on_key="#", timeout=PIN_TIMEOUT, action=self.step_url(step),
                                 method="POST")
        self.say(gather, parts, prompt)
        response.redirect(self.step_url(step), method="POST")
        return _twiml(response)

    def notice(self, parts: dict[str, str], step: Step, response: VoiceResponse | None = None) -> Response:
        """The notice and the confirm prompt, waiting for one key; said again when none is pressed."""
        response = response or VoiceResponse()
        heard = step.heard + 1
        gather = response.gather(input="dtmf", num_digits=1, timeout=KEY_TIMEOUT,
                                 action=self.step_url(step.next("confirm", heard=heard)), method="POST")
        self.say(gather, parts, "message")
        gather.pause(length=1)
        self.say(gather, parts, "confirm_prompt")
        if heard < HEARINGS:
            response.redirect(self.step_url(step.next("repeat", heard=heard)), method="POST")
        else:
            self.say(response, parts, "goodbye")
            response.hangup()
        return _twiml(response)

    # ---- the call is answered -------------------------------------------------------------------

    async def answer(self, request: Request, token: str) -> Response:
        form = await self.twilio_form(request)
        if form is None:
            return Response("invalid X-Twilio-Signature\n", status_code=403, media_type="text/plain")
        now = utcnow()
        fields = read_token(self.portal.link_key, CALL_TOKEN, token, now)
        record = await self.record(fields[0]) if fields else None
        if record is None or record.expires_at <= now:
            log.info("call TwiML refused: %s", "unknown or expired link" if record is None else "call expired")
            return _hangup()
        parts = self.parts(record)
        if parts is None:
            return _hangup()
        try:
            taken = await self.take(record)
        except (TimeoutError, KafkaError, OSError) as e:
            log.warning("call %s not marked answered (%s): hung up", record.call_id, type(e).__name__)
            return _hangup()
        if not taken:
            log.info("call %s: its link was already used", record.call_id)
            return _hangup()
        step = Step(str(record.call_id), form.get("CallSid", ""), "pin", n=1)
        if answered_by_machine(form.get("AnsweredBy")):
            log.info("call %s answered by a machine: the neutral message only", record.call_id)
            return self.neutral(parts)
        if not record.pin_required:
            response = VoiceResponse()
            self.say(response, parts, "intro")
            return self.notice(parts, step, response)
        if not self.pin_possible(record.registration_id, now):
            log.info("call %s: no PIN can be asked for: the neutral message only", record.call_id)
            return self.neutral(parts)
        response = VoiceResponse()
        self.say(response, parts, "intro")
        return self.ask_pin(parts, step, "pin_prompt", response)

    async def step(self, request: Request, token: str) -> Response:
        form = await self.twilio_form(request)
        if form is None:
            return Response("invalid X-Twilio-Signature\n", status_code=403, media_type="text/plain")
        step = Step.read(self.portal.link_key, token, utcnow())
        if step is None or step.call_sid != form.get("CallSid", "") or step.n >= MOST_STEPS:
            return _hangup()
        record = self.portal.views.call(step.call_id)
        parts = self.parts(record) if record is not None else None
        if record is None or parts is None:
            return _hangup()
        digits = form.get("Digits", "")
        if step.stage == "pin":
            return await self.take_pin(record, parts, step, digits)
        if step.stage == "repeat":
            return self.notice(parts, step.next("repeat"))
        if digits == "1":
            return await self.confirm(record, parts)
        if digits == "2" and step.heard < MOST_HEARINGS:
            return self.notice(parts, step.next("repeat"))
        if digits == "2":
            return self.goodbye(parts)
        response = VoiceResponse()
        gather = response.gather(input="dtmf", num_digits=1, timeout=KEY_TIMEOUT,
                                 action=self.step_url(step.next("confirm")), method="POST")
        self.say(gather, parts, "confirm_prompt")
        self.say(response, parts, "goodbye")
        response.hangup()
        return _twiml(response)

    # ---- the PIN ----------------------------------------------------------------------------------

    def pin_possible(self, registration_id: str, now: datetime) -> bool:
        reg = self.portal.views.registration(registration_id)
        if reg is None or reg.status is not RegistrationStatus.ACTIVE or reg.pin_hash is None:
            return False
        return not rules.pin_locked(self.portal.views.attempts(rules.pin_key(registration_id)), now)

    async def check(self, registration_id: str, digits: str) -> PinCheck:
        """The typed digits against the registration's PIN; a wrong one counts toward its lockout
        (the attempts the manage sign-in counts), and a right one while locked is refused."""
        reg = self.portal.views.registration(registration_id)
        if reg is None or reg.status is not RegistrationStatus.ACTIVE or reg.pin_hash is None:
            return PinCheck.REFUSED
        key = rules.pin_key(registration_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            tries = self.portal.views.attempts(key)
            now = utcnow()
            if rules.pin_locked(tries, now):
                return PinCheck.REFUSED
            if not _PIN.fullmatch(digits):
                return PinCheck.WRONG  # silence, or not a PIN's length: nothing to check or count
            if await asyncio.to_thread(check_pin, digits, reg.pin_hash):
                if tries is not None and (tries.at or tries.locked_until):
                    await self.portal.commands.save_attempts(Attempts(key=key, at=()))
                return PinCheck.RIGHT
            counted = rules.after_wrong_pin(tries, registration_id, now)
            await self.portal.commands.save_attempts(counted)
            if counted.locked_until is not None:
                log.info("PIN locked registration=%s until=%s after wrong PINs on a call", registration_id,
                         counted.locked_until.isoformat())
                return PinCheck.REFUSED
            return PinCheck.WRONG

    async def take_pin(self, record: CallRecord, parts: dict[str, str], step: Step, digits: str) -> Response:
        try:
            verdict = await self.check(record.registration_id, digits)
        except (TimeoutError, KafkaError, OSError) as e:
            # The count of wrong PINs could not be kept: refuse rather than allow an uncounted try.
            log.warning("call %s: PIN not checked (%s)", record.call_id, type(e).__name__)
            return self.neutral(parts)
        if verdict is PinCheck.RIGHT:
            log.info("call %s: PIN right", record.call_id)
            return self.notice(parts, step.next("repeat", heard=0))
        tries = step.tries + 1
        if verdict is PinCheck.REFUSED or tries >= PIN_TRIES:
            log.info("call %s: PIN refused after %d tries: the neutral message only", record.call_id, tries)
            return self.neutral(parts)
        log.info("call %s: PIN wrong (%d of %d)", record.call_id, tries, PIN_TRIES)
        return self.ask_pin(parts, step.next("pin", tries=tries), "wrong_pin" if digits else "pin_prompt")

    # ---- the keypad's confirmation --------------------------------------------------------------

    async def confirm(self, record: CallRecord, parts: dict[str, str]) -> Response:
        ack = Acknowledgement(registration_id=record.registration_id, event_id=record.event_id,
                              channel=AckChannel.VOICE, notice_id=record.call_id, at=utcnow())
        try:
            await self.portal.commands.acknowledge(ack)
        except (TimeoutError, KafkaError, OSError) as e:
            # Not thanked for what was not recorded; the next call of the ladder asks again.
            log.warning("call %s: acknowledgement not recorded (%s)", record.call_id, type(e).__name__)
            return self.goodbye(parts)
        log.info("call %s confirmed on the keypad registration=%s event=%s", record.call_id, record.registration_id,
                 record.event_id)
        return self.goodbye(parts, "thanks")


def routes(portal: Portal) -> APIRouter:
    return CallAnswering(portal).router
