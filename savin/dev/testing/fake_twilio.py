"""A fake Twilio REST API for the demo, the tests and the benchmark.

It speaks the part of Twilio's 2010-04-01 API that savin uses (create and fetch a
Message, create and fetch a Call, fetch the Account) and validates every request
against Twilio's published OpenAPI spec with ``openapi-core`` (see
:mod:`savin.dev.testing.twilio_spec`; a quick check compiled from the same spec
accepts well-formed requests in tens of microseconds, so the fake takes little
CPU from what it serves). On top of the spec it checks the account's
credentials and Twilio's own rules (a To, a Body, a From or Messaging Service;
for a call a To, a From and one of Url, Twiml or ApplicationSid), and refuses
form parameters the spec does not know, which Twilio would ignore silently, so
a misspelt parameter shows up in tests.

Errors are answered in Twilio's JSON shape. Faults are injected by destination
number (``fail_numbers`` for messages, ``fail_call_numbers`` and
``fail_caller_ids`` for calls), the whole API can be switched into an outage,
the auth token can be rotated (the old one is then refused with 401 / 20003),
answers can be delayed, and accepted messages get status callbacks signed as
Twilio signs them (``sent`` then ``delivered`` or ``undelivered``, or out of
order when asked).

Rate limits. ``messages_per_second`` (None: no limit) refuses more messages
than that from one sender (its From, or its MessagingServiceSid) in any second,
and ``calls_per_second`` more calls than that, with 429 / 20429 (Twilio's error
body), counted in ``too_many_requests`` (calls and messages together) and
``messages_refused_429``; each accepted message's ``at`` says when it was taken. An accepted call
(201, a Call resource with a ``CA`` sid, ``queued``) is played to its end by the
scripted callee of its destination number, ``callees[number] =
Callee(kind, digits=...)`` (:mod:`savin.dev.testing.callee`; other numbers get
``default_callee``, a person who answers, listens and types nothing). A callee
that answers gets the call's TwiML fetched as Twilio fetches it: the call
parameters (CallSid, AccountSid, From, To, Caller, Called, CallStatus
``in-progress``, Direction ``outbound-api``, ApiVersion, and AnsweredBy when
MachineDetection was asked) to ``Url`` with ``Method``, signed with
``X-Twilio-Signature``. It follows ``<Say>``, ``<Play>``, ``<Pause>``,
``<Gather>`` (the callee's next ``digits`` posted to ``action`` as ``Digits``,
finishOnKey stripped, numDigits honoured; no input goes on to the next verb),
``<Redirect>`` and ``<Hangup>``; the end of a document hangs up, and a call
stops after ``max_twiml_fetches`` requests. Then the ``StatusCallback`` gets the
``StatusCallbackEvent`` events asked (``completed`` by default; ``ringing`` and
``answered`` too), signed, with CallStatus (completed, busy, no-answer or
failed), CallDuration, AnsweredBy, Timestamp, CallbackSource and
SequenceNumber. What a call heard and did is in :attr:`FakeTwilio.calls`
(:class:`PlacedCall`: ``said``, ``digits``, ``twiml``, ``http``, ``errors``,
``status``, ``answered_by``, ``duration``, ``callbacks``); wait for calls with
:meth:`FakeTwilio.wait_calls` or :meth:`FakeTwilio.wait_calls_async`. Time on a
call is simulated: pauses and Gather timeouts add to its duration, not to the
test's.

:meth:`FakeTwilio.send_incoming` plays a person texting savin's number: the
incoming-message request Twilio makes to the messaging webhook, its form
checked against Twilio's documented request parameters
(:data:`INCOMING_PARAMETERS`), signed as Twilio signs it; it returns the
HTTP status and the TwiML answer.

It never logs phone numbers, message bodies, digits or words said.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import logging
import re
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import yarl
from aiohttp import web
from twilio.request_validator import RequestValidator

from savin.dev.testing.callee import (
    CALL_EVENTS,
    MACHINE_DETECTION,
    Callee,
    CalleeKind,
    CallPlayer,
    PlacedCall,
    Said,
    rfc2822,
)
from savin.dev.testing.recording import Recorder
from savin.dev.testing.twilio_spec import Problem, SpecValidator
from savin.rendering.gsm import count

__all__ = ["FakeTwilio", "SentMessage", "Fault", "IncomingReply", "Callee", "CalleeKind", "PlacedCall", "Said",
           "ERRORS", "MESSAGES", "MESSAGE", "CALLS", "CALL", "ACCOUNT", "OPERATIONS", "INCOMING_PARAMETERS",
           "incoming_form_problems"]

log = logging.getLogger("savin.dev.testing.fake_twilio")

API_VERSION = "2010-04-01"
MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
CALLS = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
CALL = "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json"
ACCOUNT = "/2010-04-01/Accounts/{Sid}.json"
#: The operations the fake serves, each validated against Twilio's spec.
OPERATIONS = {MESSAGES: ["post"], MESSAGE: ["get"], CALLS: ["post"], CALL: ["get"], ACCOUNT: ["get"]}
#: The parameters each create operation requires, and Twilio's error code when one is missing or empty.
MESSAGE_REQUIRED = {"To": 21604}
CALL_REQUIRED = {"To": 21201, "From": 21213}

#: Twilio error code -> (HTTP status, message), as Twilio words them.
ERRORS: dict[int, tuple[int, str]] = {
    20001: (400, "Invalid parameter"),
    20003: (401, "Authenticate"),
    20004: (405, "Method not allowed"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21201: (400, "No 'To' number is specified"),
    21205: (400, "Invalid URL"),
    21210: (400, "'From' phone number not verified"),
    21211: (400, "Invalid 'To' Phone Number"),
    21212: (400, "Invalid 'From' Phone Number"),
    21213: (400, "'From' phone number is required"),
    21214: (400, "'To' phone number cannot be reached"),
    21215: (400, "Geo Permission configuration is not permitting call"),
    21216: (400, "Account not allowed to call this number"),
    21217: (400, "Phone number does not appear to be valid"),
    21218: (400, "Invalid ApplicationSid"),
    21408: (400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' or 'MessagingServiceSid' parameter is required to send a message"),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number is not currently reachable via SMS"),
    21614: (400, "'To' number is not a valid mobile number"),
}

_SID = r"[0-9a-f]{32}"
_E164 = r"\+[1-9][0-9]{6,14}"
#: The parameters of Twilio's request to an incoming-message webhook for an SMS, and the
#: form of each value, after https://www.twilio.com/docs/messaging/guides/webhook-request
#: (request parameters, media parameters, geographic parameters). ``{N}`` is a media index.
INCOMING_PARAMETERS: dict[str, str] = {
    "MessageSid": f"SM{_SID}",
    "SmsSid": f"SM{_SID}",  # the same value as MessageSid, kept for backward compatibility
    "SmsMessageSid": f"SM{_SID}",  # likewise
    "AccountSid": f"AC{_SID}",
    "MessagingServiceSid": f"MG{_SID}",
    "From": _E164,
    "To": _E164,
    "Body": r"[\s\S]{0,1600}",
    "NumMedia": r"[0-9]|10",
    "NumSegments": r"[1-9][0-9]?",
    "MediaContentType{N}": r"[\w.+-]+/[\w.+-]+",
    "MediaUrl{N}": r"https://\S+",
    "FromCity": r".*", "FromState": r".*", "FromZip": r".*", "FromCountry": r"[A-Z]{2}",
    "ToCity": r".*", "ToState": r".*", "ToZip": r".*", "ToCountry": r"[A-Z]{2}",
}
#: The parameters Twilio always sends with an incoming SMS.
INCOMING_REQUIRED = ("MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "From", "To", "Body", "NumMedia",
                     "NumSegments")


def incoming_form_problems(form: dict[str, str]) -> list[str]:
    """What in ``form`` Twilio's incoming-message request could not hold (names, never values)."""
    problems = [f"{name}: is required" for name in INCOMING_REQUIRED if name not in form]
    for name, value in form.items():
        pattern = INCOMING_PARAMETERS.get(re.sub(r"(?<=[a-z])(?:[0-9]|10)$", "{N}", name))
        if pattern is None:
            problems.append(f"{name}: not a parameter of Twilio's incoming-message request")
        elif re.fullmatch(pattern, value) is None:
            problems.append(f"{name}: not in the form Twilio sends")
    if len({form.get(k) for k in ("MessageSid", "SmsSid", "SmsMessageSid")}) != 1:
        problems.append("MessageSid, SmsSid, SmsMessageSid: not the same value")
    return problems


#: HTTP status of an outage -> the Twilio error code answered with it.
OUTAGE_CODES = {503: 20503, 429: 20429, 500: 20500}


@dataclass(frozen=True)
class SentMessage:
    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    at: float  # time.time() when accepted


@dataclass(frozen=True)
class IncomingReply:
    """What a messaging webhook answered: its HTTP status, its body, and the texts
    of the TwiML ``<Message>`` elements it asked Twilio to send back."""

    status: int
    body: str
    content_type: str

    @property
    def messages(self) -> list[str]:
        """The reply texts; ValueError when a 200 answer is not TwiML."""
        if self.status != 200:
            return []
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError as e:
            raise ValueError(f"the webhook answered something that is not XML: {e}") from None
        if root.tag != "Response":
            raise ValueError(f"the webhook answered <{root.tag}>, not a TwiML <Response>")
        return [m.text or "" for m in root.iter("Message")]


@dataclass(frozen=True)
class Fault:
    """An injected failure. ``to_ref`` is :meth:`FakeTwilio.number_ref` of the number, not the number."""

    to_ref: str
    code: int
    http_status: int
    at: float


def _error(code: int, detail: str | None = None) -> web.Response:
    status, message = ERRORS[code]
    return web.json_response(
        {"code": code, "message": f"{message}: {detail}" if detail else message,
         "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status=status,
    )


class FakeTwilio(Recorder[SentMessage]):
    #: Destination numbers that always fail, and with which Twilio error code.
    FAULT_NUMBERS: dict[str, int] = {
        "+15005550001": 21211,  # invalid number
        "+15005550002": 21408,  # region not enabled
        "+15005550003": 21612,  # not reachable by SMS
        "+15005550004": 21610,  # recipient replied STOP
        "+15005550009": 21614,  # landline
        "+15005550429": 20429,  # rate limited
        "+15005550500": 20500,  # server error
    }
    #: Destination numbers whose messages are accepted but end undelivered, with this ErrorCode.
    CALLBACK_OUTCOMES: dict[str, int] = {
        "+15005550303": 30003,  # unreachable handset
        "+15005550306": 30006,  # landline or unreachable carrier
    }
    #: Destination numbers whose calls are refused, and with which Twilio error code
    #: (after the magic numbers of Twilio's test credentials).
    CALL_FAULT_NUMBERS: dict[str, int] = {
        "+15005550001": 21217,  # not a valid number
        "+15005550002": 21214,  # cannot be reached
        "+15005550003": 21215,  # no geo permission for its country
        "+15005550004": 21216,  # blocked for the account
        "+15005550429": 20429,  # rate limited
        "+15005550500": 20500,  # server error
    }
    #: Caller ids (``From``) refused for calls.
    CALLER_ID_FAULTS: dict[str, int] = {
        "+15005550001": 21212,  # not a valid caller id
        "+15005550007": 21210,  # not a number of the account, nor verified
    }

    def __init__(self, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0):
        super().__init__("faults", "rejected", "callback_responses", "calls")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host, self.port = host, port
        #: Seconds added before answering each message or call request.
        self.latency = 0.0
        #: Destination number -> Twilio error code; starts as FAULT_NUMBERS, change it at will.
        self.fail_numbers: dict[str, int] = dict(self.FAULT_NUMBERS)
        #: The same for calls (CALL_FAULT_NUMBERS), and for their caller ids (CALLER_ID_FAULTS).
        self.fail_call_numbers: dict[str, int] = dict(self.CALL_FAULT_NUMBERS)
        self.fail_caller_ids: dict[str, int] = dict(self.CALLER_ID_FAULTS)
        #: Destination number -> who answers it; any other number gets ``default_callee``.
        self.callees: dict[str, Callee] = {}
        self.default_callee = Callee()
        #: Calls accepted in any one second (None: no limit); more get 429 / 20429.
        self.calls_per_second: float | None = None
        #: Messages accepted from one sender in any one second (None: no limit); more get 429 / 20429.
        self.messages_per_second: float | None = None
        #: TwiML requests one call may make before the fake hangs it up (a loop cannot run away).
        self.max_twiml_fetches = 50
        self.callbacks_enabled = True
        #: Send the final status before ``sent``, as Twilio sometimes does.
        self.callbacks_out_of_order = False
        #: Seconds before each status callback, and a call's ringing.
        self.callback_delay = 0.01
        #: ``time.monotonic()`` until which every message and call request gets ``outage_code``.
        self.outage_until = 0.0
        self.outage_code = 20503
        #: The account's ``status`` as the account fetch answers it (active, suspended or closed).
        self.account_status = "active"
        self._validator = SpecValidator(OPERATIONS)
        self._created = time.time()
        self.rotate_auth_token(auth_token)
        self._statuses: dict[str, str] = {}
        self._call_times: collections.deque[float] = collections.deque()
        self._message_times: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._too_many_requests = 0
        self._messages_refused = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- what happened ------------------------------------------------------------------

    @property
    def faults(self) -> list[Fault]:
        return self._copy("faults")

    @property
    def rejected(self) -> list[tuple[str, str]]:
        """(path, reason) of every request refused for breaking the spec or Twilio's rules."""
        return self._copy("rejected")

    @property
    def callback_responses(self) -> list[tuple[str, str, int]]:
        """(message sid, status, HTTP status of the receiver, or -1 if unreachable)."""
        return self._copy("callback_responses")

    @property
    def calls(self) -> list[PlacedCall]:
        """Every call accepted, in order, as it stands now (copies)."""
        with self._lock:
            return [c.snapshot() for c in self._lists["calls"]]

    @property
    def too_many_requests(self) -> int:
        """How many calls and messages were refused for going over ``calls_per_second`` or
        ``messages_per_second``."""
        with self._lock:
            return self._too_many_requests

    @property
    def messages_refused_429(self) -> int:
        """How many messages were refused for going over ``messages_per_second``."""
        with self._lock:
            return self._messages_refused

    def _finished_calls(self, n: int) -> list[PlacedCall] | None:
        done = [c for c in self.calls if c.finished]
        return done if len(done) >= n else None

    def wait_calls(self, n: int, timeout: float = 10.0) -> list[PlacedCall]:
        """Block until ``n`` calls are over, their last status callback answered; the
        finished calls, in the order placed. TimeoutError when they are not in time.
        From a test whose event loop also runs the fake, use :meth:`wait_calls_async`."""
        deadline = time.monotonic() + timeout
        while (done := self._finished_calls(n)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._finished_calls(0) or [])} of {n} calls finished in {timeout} s")
            time.sleep(0.02)
        return done

    async def wait_calls_async(self, n: int, timeout: float = 10.0) -> list[PlacedCall]:
        """:meth:`wait_calls` for a coroutine, from any event loop."""
        deadline = time.monotonic() + timeout
        while (done := self._finished_calls(n)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._finished_calls(0) or [])} of {n} calls finished in {timeout} s")
            await asyncio.sleep(0.02)
        return done

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._statuses.clear()
            self._call_times.clear()
            self._message_times.clear()
            self._too_many_requests = 0
            self._messages_refused = 0

    @staticmethod
    def number_ref(number: str) -> str:
        """How :class:`Fault` records name a number: a short hash, so records can be printed."""
        return "sha256:" + hashlib.sha256(number.encode()).hexdigest()[:16]

    # ---- switches ---------------------------------------------------------------------

    def outage(self, seconds: float, status: int = 503) -> None:
        """Answer every message and call request with HTTP ``status`` (503, 429 or 500) for ``seconds``."""
        if status not in OUTAGE_CODES:
            raise ValueError(f"an outage answers 503, 429 or 500, not {status}")
        self.outage_code = OUTAGE_CODES[status]
        self.outage_until = time.monotonic() + seconds

    def end_outage(self) -> None:
        self.outage_until = 0.0

    def rotate_auth_token(self, auth_token: str) -> None:
        """Make ``auth_token`` the account's token, as Twilio's console does: requests
        with any other are refused (401, 20003), and callbacks are signed with it."""
        self.auth_token = auth_token
        self._expected_auth = "Basic " + base64.b64encode(f"{self.account_sid}:{auth_token}".encode()).decode()
        self._signer = RequestValidator(auth_token)

    # ---- the API ------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(MESSAGES, self._create_message)
        app.router.add_get(MESSAGE, self._fetch_message)
        app.router.add_post(CALLS, self._create_call)
        app.router.add_get(CALL, self._fetch_call)
        app.router.add_get(ACCOUNT, self._fetch_account)
        app.router.add_route("*", "/{tail:.*}", self._other)
        return app

    async def _check(self, request: web.Request, account: str = "AccountSid",
                     required: dict[str, int] = MESSAGE_REQUIRED) -> tuple[bytes, web.Response | None]:
        """The request's body, and the answer if it breaks the spec or is not authenticated.
        ``account`` is the path parameter naming the account; ``required``, the operation's
        required parameters and the error code of each."""
        body = await request.read()
        problems = self._validator.problems(request.method, request.path, request.headers,
                                            request.content_type, body, request.query)
        if unroutable := [p for p in problems if p.kind in ("path", "method")]:
            self._refuse(request.path, "; ".join(p.reason for p in unroutable))
            return body, _error(20004 if unroutable[0].kind == "method" else 20404)
        if any(p.kind == "security" for p in problems) or not self._authenticated(request, account):
            self._refuse(request.path, "authentication failed")
            return body, _error(20003)
        if problems:
            return body, self._invalid(request.path, problems, required)
        return body, None

    def _authenticated(self, request: web.Request, account: str = "AccountSid") -> bool:
        given = request.headers.get("Authorization", "")
        return (hmac.compare_digest(given.encode(), self._expected_auth.encode())
                and request.match_info.get(account) == self.account_sid)

    def _invalid(self, path: str, problems: list[Problem], required: dict[str, int] = MESSAGE_REQUIRED
                 ) -> web.Response:
        reason = "; ".join(p.reason for p in problems)
        self._refuse(path, reason)
        missing = [required[p.field] for p in problems if p.field in required and p.reason.endswith("is required")]
        return _error(missing[0] if missing else 20001, reason)

    def _form(self, path: str, body: bytes, operation: str, what: str, required: dict[str, int]
              ) -> tuple[list[tuple[str, str]], web.Response | None]:
        """The form of a create request, and the answer if it holds a parameter the spec
        does not know (Twilio would ignore it silently) or lacks a required one."""
        form = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        known = self._validator.form_fields[(operation, "post")]
        if unknown := sorted({k for k, _ in form} - known):
            return form, self._invalid(path, [
                Problem("body", k, f"{k}: not a parameter of {what} in Twilio's spec") for k in unknown])
        given = {k for k, v in form if v}
        if missing := [name for name in required if name not in given]:
            return form, self._invalid(path, [Problem("body", name, f"{name}: is required") for name in missing],
                                       required)
        return form, None

    async def _refusal(self, to: str, numbers: dict[str, int], code: int | None = None,
                       over_limit: Callable[[], bool] = lambda: False) -> web.Response | None:
        """After ``latency``: the answer to a request for ``to`` during an outage, to a
        fault number, with ``code``, or, failing those, ``over_limit()``, recorded as a
        :class:`Fault`."""
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if time.monotonic() < self.outage_until:
            code = self.outage_code
        code = code or numbers.get(to) or (20429 if over_limit() else None)
        if code is None:
            return None
        self._note("faults", Fault(self.number_ref(to), code, ERRORS[code][0], time.time()))
        log.debug("fault injected: code %s", code)
        return _error(code)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refuse(self, path: str, reason: str) -> None:
        # Reasons name fields, never values, so they can be logged.
        log.debug("refused %s: %s", path, reason)
        self._note("rejected", (path, reason))

    async def _other(self, request: web.Request) -> web.Response:
        _, refusal = await self._check(request)
        return refusal or _error(20404)

    async def _create_message(self, request: web.Request) -> web.Response:
        body, refusal = await self._check(request)
        if refusal is not None:
            return refusal
        form, refusal = self._form(request.path, body, MESSAGES, "Create Message", MESSAGE_REQUIRED)
        if refusal is not None:
            return refusal
        params = dict(form)
        if not (params.get("Body") or params.get("MediaUrl") or params.get("ContentSid")):
            self._refuse(request.path, "Body: is required")
            return _error(21602)
        if not (params.get("From") or params.get("MessagingServiceSid")):
            self._refuse(request.path, "From or MessagingServiceSid: is required")
            return _error(21603)
        to = params["To"]
        sender = params.get("MessagingServiceSid") or params["From"]
        refusal = await self._refusal(to, self.fail_numbers, over_limit=lambda: self._over_messages_per_second(sender))
        if refusal is not None:
            return refusal
        message = SentMessage(
            sid="SM" + uuid.uuid4().hex, to=to, from_=params.get("From"),
            messaging_service_sid=params.get("MessagingServiceSid"), body=params.get("Body", ""),
            status_callback=params.get("StatusCallback"), at=time.time(),
        )
        with self._lock:
            self._statuses[message.sid] = "queued"
        self._record(message)
        log.debug("accepted message %s", message.sid)
        if message.status_callback and self.callbacks_enabled:
            self._spawn(self._send_callbacks(message))
        return web.json_response(self._resource(message, "queued"), status=201)

    async def _fetched(self, request: web.Request, records: list) -> tuple:
        """The record of ``records`` a fetch names by its sid, and the answer if the
        request is refused or names none."""
        _, refusal = await self._check(request)
        if refusal is not None:
            return None, refusal
        found = next((r for r in records if r.sid == request.match_info["Sid"]), None)
        return found, _error(20404) if found is None else None

    async def _fetch_message(self, request: web.Request) -> web.Response:
        found, refusal = await self._fetched(request, self.messages)
        if refusal is not None:
            return refusal
        with self._lock:
            status = self._statuses.get(found.sid, "queued")
        return web.json_response(self._resource(found, status))

    async def _fetch_account(self, request: web.Request) -> web.Response:
        _, refusal = await self._check(request, account="Sid")
        if refusal is not None:
            return refusal
        created = rfc2822(self._created)
        base = f"/{API_VERSION}/Accounts/{self.account_sid}"
        return web.json_response({
            # Twilio answers the token too; the fake keeps it to itself.
            "auth_token": None, "date_created": created, "date_updated": created,
            "friendly_name": "savin fake account", "owner_account_sid": self.account_sid,
            "sid": self.account_sid, "status": self.account_status,
            "subresource_uris": {"calls": f"{base}/Calls.json", "messages": f"{base}/Messages.json"},
            "type": "Full", "uri": f"{base}.json",
        })

    def _resource(self, m: SentMessage, status: str) -> dict:
        """A Message resource as Twilio answers it."""
        created = rfc2822(m.at)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{m.sid}.json"
        return {
            "account_sid": self.account_sid, "api_version": API_VERSION, "body": m.body,
            "date_created": created, "date_sent": None, "date_updated": created, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": m.from_,
            "messaging_service_sid": m.messaging_service_sid, "num_media": "0",
            "num_segments": str(count(m.body).segments), "price": None, "price_unit": "USD",
            "sid": m.sid, "status": status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json"),
                                 "feedback": uri.replace(".json", "/Feedback.json")},
            "to": m.to, "uri": uri,
        }

    # ---- calls ----------------------------------------------------------------------------

    async def _create_call(self, request: web.Request) -> web.Response:
        path = request.path
        body, refusal = await self._check(request, required=CALL_REQUIRED)
        if refusal is not None:
            return refusal
        form, refusal = self._form(path, body, CALLS, "Create Call", CALL_REQUIRED)
        if refusal is not None:
            return refusal
        params = dict(form)
        events = tuple(v for k, v in form if k == "StatusCallbackEvent") or ("completed",)
        if (refusal := self._call_rules(path, params, events)) is not None:
            return refusal
        to, from_, url, twiml = params["To"], params["From"], params.get("Url"), params.get("Twiml")
        refusal = await self._refusal(to, self.fail_call_numbers, self.fail_caller_ids.get(from_),
                                      self._over_calls_per_second)
        if refusal is not None:
            return refusal
        call = PlacedCall(
            sid="CA" + uuid.uuid4().hex, to=to, from_=from_, url=url,
            method=params.get("Method", "POST"), status_callback=params.get("StatusCallback"),
            status_callback_method=params.get("StatusCallbackMethod", "POST"), status_callback_events=events,
            # Twilio ignores MachineDetection when SendDigits is given.
            machine_detection=None if params.get("SendDigits") else params.get("MachineDetection"),
            timeout=int(params.get("Timeout", 60)), at=time.time(),
            callee=self.callees.get(to, self.default_callee),
        )
        self._note("calls", call)
        log.debug("accepted call %s", call.sid)
        # With both, Twilio fetches the Url and ignores the Twiml.
        player = CallPlayer(call, self._webhook, self._lock, self.account_sid, API_VERSION,
                            twiml=None if url else twiml,
                            ring=self.callback_delay, max_fetches=self.max_twiml_fetches)
        self._spawn(player.run())
        return web.json_response(self._call_resource(call.snapshot()), status=201)

    def _call_rules(self, path: str, params: dict[str, str], events: tuple[str, ...]) -> web.Response | None:
        """The answer to a Create Call request that breaks Twilio's rules beyond the spec."""
        detection = params.get("MachineDetection")
        choices = {"StatusCallbackEvent": (events, CALL_EVENTS),
                   "MachineDetection": (() if detection is None else (detection,), MACHINE_DETECTION)}
        if wrong := [name for name, (given, allowed) in choices.items() if any(v not in allowed for v in given)]:
            return self._invalid(path, [Problem("body", name, f"{name}: must be one of {list(choices[name][1])}")
                                        for name in wrong])
        url, twiml = params.get("Url"), params.get("Twiml")
        if not (url or twiml or params.get("ApplicationSid")):
            self._refuse(path, "Url, Twiml or ApplicationSid: is required")
            return _error(21205, "Url parameter is required")
        if url and urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            self._refuse(path, "Url: not an absolute http or https URL")
            return _error(21205, "Url is not a valid URL")
        if not (url or twiml):
            self._refuse(path, "ApplicationSid: the fake account has no applications")
            return _error(21218)
        return None

    def _over_calls_per_second(self) -> bool:
        """Whether a call now would be more than ``calls_per_second`` allows (:meth:`_over`)."""
        return self._over(self._call_times, self.calls_per_second)

    def _over_messages_per_second(self, sender: str) -> bool:
        """Whether a message from ``sender`` now would be more than ``messages_per_second`` allows."""
        over = self._over(self._message_times[sender], self.messages_per_second)
        if over:
            with self._lock:
                self._messages_refused += 1
        return over

    def _over(self, times: collections.deque[float], per_second: float | None) -> bool:
        """Whether one more request now would be more than ``per_second`` in any second (one in
        1/per_second seconds below 1 a second), noting it in ``times`` when it is not. A request
        up to 50 ms early is let through: a client spacing its requests exactly cannot control
        the network's jitter."""
        if per_second is None:
            return False
        window = max(1.0, 1.0 / per_second) - 0.05
        limit = max(1, int(per_second))
        now = time.monotonic()
        with self._lock:
            while times and now - times[0] >= window:
                times.popleft()
            if len(times) >= limit:
                self._too_many_requests += 1
                return True
            times.append(now)
            return False

    async def _fetch_call(self, request: web.Request) -> web.Response:
        found, refusal = await self._fetched(request, self.calls)
        return refusal or web.json_response(self._call_resource(found))

    def _call_resource(self, c: PlacedCall) -> dict:
        """A Call resource as Twilio answers it."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{c.sid}.json"
        times = {name: rfc2822(at) if at is not None else None
                 for name, at in (("start_time", c.answered_at), ("end_time", c.ended_at))}
        return {
            "account_sid": self.account_sid, "answered_by": c.answered_by, "api_version": API_VERSION,
            "caller_name": None, "date_created": rfc2822(c.at), "date_updated": rfc2822(c.ended_at or c.at),
            "direction": "outbound-api", "duration": str(c.duration) if c.ended_at else None, **times,
            "forwarded_from": None, "from": c.from_, "from_formatted": c.from_, "group_sid": None,
            "parent_call_sid": None, "phone_number_sid": None, "price": None, "price_unit": "USD",
            "queue_time": "0", "sid": c.sid, "status": c.status,
            "subresource_uris": {name: uri.replace(".json", f"/{part}.json") for name, part in (
                ("events", "Events"), ("notifications", "Notifications"), ("payments", "Payments"),
                ("recordings", "Recordings"), ("siprec", "Siprec"), ("streams", "Streams"),
                ("transcriptions", "Transcriptions"), ("user_defined_messages", "UserDefinedMessages"),
                ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"))},
            "to": c.to, "to_formatted": c.to, "trunk_sid": None, "uri": uri,
        }

    # ---- status callbacks -----------------------------------------------------------------

    async def _send_callbacks(self, m: SentMessage) -> None:
        assert m.status_callback is not None
        failure = self.CALLBACK_OUTCOMES.get(m.to)
        final = ("undelivered", failure) if failure else ("delivered", None)
        order = [("sent", None), final]
        if self.callbacks_out_of_order:
            order.reverse()
        for status, error_code in order:
            await asyncio.sleep(self.callback_delay)
            with self._lock:
                self._statuses[m.sid] = status
            params = {
                "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "From": m.from_ or "",
                "MessageSid": m.sid, "MessageStatus": status, "SmsSid": m.sid, "SmsStatus": status, "To": m.to,
            }
            if m.messaging_service_sid:
                params["MessagingServiceSid"] = m.messaging_service_sid
            if error_code:
                params["ErrorCode"] = str(error_code)
            http_status = await self.post_callback(m.status_callback, params)
            self._note("callback_responses", (m.sid, status, http_status))

    async def post_callback(self, url: str, params: dict[str, str], signature: str | None = None) -> int:
        """POST a status callback signed as Twilio signs it (or with ``signature``).

        Returns the receiver's HTTP status, or -1 when it could not be reached.
        Usable from any event loop, e.g. to forge or replay callbacks in a test.
        """
        status, _, _ = await self._webhook("POST", url, params, signature)
        return status

    async def _webhook(self, method: str, url: str, params: dict[str, str], signature: str | None = None
                       ) -> tuple[int, str, str]:
        """A request as Twilio makes it to an application: the parameters as a form
        (POST) or added to the query (GET), signed with the auth token over the full
        URL and the form. (HTTP status or -1 when unreachable, content type, body)."""
        if method == "GET":
            # Signed as aiohttp will send it (yarl leaves some characters unescaped).
            url, params = str(yarl.URL(url).extend_query(params)), {}
        if signature is None:
            signature = self._signer.compute_signature(url, params)
        own = self._http is not None and self._loop is asyncio.get_running_loop()
        session = self._http if own else aiohttp.ClientSession()
        assert session is not None
        try:
            async with session.request(method, url, data=params or None, headers={"X-Twilio-Signature": signature},
                                       timeout=aiohttp.ClientTimeout(total=15)) as resp:
                return resp.status, resp.content_type, await resp.text()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, UnicodeDecodeError) as e:
            log.debug("webhook request not answered: %s", type(e).__name__)
            return -1, "", ""
        finally:
            if not own:
                await session.close()

    # ---- incoming messages ------------------------------------------------------------------

    async def send_incoming(self, url: str, from_: str, body: str, *, to: str = "+15005550006",
                            signature: str | None = None, signed: bool = True,
                            extra: dict[str, str] | None = None) -> IncomingReply:
        """Text ``body`` from ``from_`` to savin's number ``to``, as Twilio hands it to the
        messaging webhook at ``url``: a form POST of the documented parameters, signed with
        the account's auth token (or with ``signature``; none when ``signed`` is false).

        Raises ValueError when the form is not one Twilio could send (``extra`` adds to it).
        Usable from any event loop.
        """
        sid = "SM" + uuid.uuid4().hex
        form = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": self.account_sid,
                "From": from_, "To": to, "Body": body, "NumMedia": "0",
                "NumSegments": str(max(1, count(body).segments)), **(extra or {})}
        if problems := incoming_form_problems(form):
            raise ValueError("not an incoming-message request Twilio sends: " + "; ".join(problems))
        headers = {}
        if signed:
            headers["X-Twilio-Signature"] = signature or self._signer.compute_signature(url, form)
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=form, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as r:
                return IncomingReply(r.status, await r.text(), r.content_type)

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> "FakeTwilio":
        """Listen in the running event loop; returns once listening."""
        self._loop = asyncio.get_running_loop()
        self._http = aiohttp.ClientSession()
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.debug("fake Twilio listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def start_in_thread(self) -> "FakeTwilio":
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:  # noqa: BLE001 - handed to the starting thread
                failure.append(e)
                loop.close()
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-twilio", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the fake Twilio did not start within 30 s")
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
