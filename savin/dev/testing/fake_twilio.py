"""A fake Twilio REST API for the demo, the tests and the benchmark.

It speaks the part of Twilio's 2010-04-01 API that savin uses (create a
Message, fetch a Message, fetch the Account) and validates every request against Twilio's
published OpenAPI spec with ``openapi-core`` (see
:mod:`savin.dev.testing.twilio_spec`). On top of the spec it checks the account's
credentials and Twilio's own rules (a To, a Body, a From or Messaging Service),
and refuses form parameters the spec does not know, which Twilio would ignore
silently, so a misspelt parameter shows up in tests.

Errors are answered in Twilio's JSON shape. Faults are injected by destination
number, the whole API can be switched into an outage, the auth token can be
rotated (the old one is then refused with 401 / 20003), answers can be delayed,
and accepted messages get status callbacks signed as Twilio signs them
(``sent`` then ``delivered`` or ``undelivered``, or out of order when asked).

:meth:`FakeTwilio.send_incoming` plays a person texting savin's number: the
incoming-message request Twilio makes to the messaging webhook, its form
checked against Twilio's documented request parameters
(:data:`INCOMING_PARAMETERS`), signed as Twilio signs it; it returns the
HTTP status and the TwiML answer.

It never logs phone numbers or message bodies.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import logging
import re
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from savin.dev.testing.recording import Recorder
from savin.dev.testing.twilio_spec import Problem, SpecValidator
from savin.rendering.gsm import count

__all__ = ["FakeTwilio", "SentMessage", "Fault", "IncomingReply", "ERRORS", "MESSAGES", "MESSAGE", "ACCOUNT",
           "OPERATIONS", "INCOMING_PARAMETERS", "incoming_form_problems"]

log = logging.getLogger("savin.dev.testing.fake_twilio")

API_VERSION = "2010-04-01"
MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
ACCOUNT = "/2010-04-01/Accounts/{Sid}.json"
#: The operations the fake serves, each validated against Twilio's spec.
OPERATIONS = {MESSAGES: ["post"], MESSAGE: ["get"], ACCOUNT: ["get"]}

#: Twilio error code -> (HTTP status, message), as Twilio words them.
ERRORS: dict[int, tuple[int, str]] = {
    20001: (400, "Invalid parameter"),
    20003: (401, "Authenticate"),
    20004: (405, "Method not allowed"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "Invalid 'To' Phone Number"),
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


def _rfc2822(at: float) -> str:
    return email.utils.format_datetime(dt.datetime.fromtimestamp(at, dt.timezone.utc).replace(microsecond=0))


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

    def __init__(self, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0):
        super().__init__("faults", "rejected", "callback_responses")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host, self.port = host, port
        #: Seconds added before answering each message request.
        self.latency = 0.0
        #: Destination number -> Twilio error code; starts as FAULT_NUMBERS, change it at will.
        self.fail_numbers: dict[str, int] = dict(self.FAULT_NUMBERS)
        self.callbacks_enabled = True
        #: Send the final status before ``sent``, as Twilio sometimes does.
        self.callbacks_out_of_order = False
        #: Seconds before each status callback.
        self.callback_delay = 0.01
        #: ``time.monotonic()`` until which every message request gets ``outage_code``.
        self.outage_until = 0.0
        self.outage_code = 20503
        #: The account's ``status`` as the account fetch answers it (active, suspended or closed).
        self.account_status = "active"
        self._validator = SpecValidator(OPERATIONS)
        self._message_fields = self._validator.form_fields[(MESSAGES, "post")]
        self._created = time.time()
        self.rotate_auth_token(auth_token)
        self._statuses: dict[str, str] = {}
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

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._statuses.clear()

    @staticmethod
    def number_ref(number: str) -> str:
        """How :class:`Fault` records name a number: a short hash, so records can be printed."""
        return "sha256:" + hashlib.sha256(number.encode()).hexdigest()[:16]

    # ---- switches ---------------------------------------------------------------------

    def outage(self, seconds: float, status: int = 503) -> None:
        """Answer every message request with HTTP ``status`` (503, 429 or 500) for ``seconds``."""
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
        app.router.add_get(ACCOUNT, self._fetch_account)
        app.router.add_route("*", "/{tail:.*}", self._other)
        return app

    async def _check(self, request: web.Request, account: str = "AccountSid") -> tuple[bytes, web.Response | None]:
        """The request's body, and the answer if it breaks the spec or is not authenticated.
        ``account`` is the path parameter naming the account."""
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
            return body, self._invalid(request.path, problems)
        return body, None

    def _authenticated(self, request: web.Request, account: str = "AccountSid") -> bool:
        given = request.headers.get("Authorization", "")
        return (hmac.compare_digest(given.encode(), self._expected_auth.encode())
                and request.match_info.get(account) == self.account_sid)

    def _invalid(self, path: str, problems: list[Problem]) -> web.Response:
        reason = "; ".join(p.reason for p in problems)
        self._refuse(path, reason)
        missing_to = any(p.field == "To" and p.reason.endswith("is required") for p in problems)
        return _error(21604 if missing_to else 20001, reason)

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
        form = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        if unknown := sorted({k for k, _ in form} - self._message_fields):
            return self._invalid(request.path, [
                Problem("body", k, f"{k}: not a parameter of Create Message in Twilio's spec") for k in unknown])
        params = dict(form)
        if not params.get("To"):
            return self._invalid(request.path, [Problem("body", "To", "To: is required")])
        if not (params.get("Body") or params.get("MediaUrl") or params.get("ContentSid")):
            self._refuse(request.path, "Body: is required")
            return _error(21602)
        if not (params.get("From") or params.get("MessagingServiceSid")):
            self._refuse(request.path, "From or MessagingServiceSid: is required")
            return _error(21603)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        to = params["To"]
        code = self.outage_code if time.monotonic() < self.outage_until else self.fail_numbers.get(to)
        if code is not None:
            self._note("faults", Fault(self.number_ref(to), code, ERRORS[code][0], time.time()))
            log.debug("fault injected: code %s", code)
            return _error(code)
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
            task = asyncio.create_task(self._send_callbacks(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(self._resource(message, "queued"), status=201)

    async def _fetch_message(self, request: web.Request) -> web.Response:
        _, refusal = await self._check(request)
        if refusal is not None:
            return refusal
        sid = request.match_info["Sid"]
        found = next((m for m in self.messages if m.sid == sid), None)
        if found is None:
            return _error(20404)
        with self._lock:
            status = self._statuses.get(sid, "queued")
        return web.json_response(self._resource(found, status))

    async def _fetch_account(self, request: web.Request) -> web.Response:
        _, refusal = await self._check(request, account="Sid")
        if refusal is not None:
            return refusal
        created = _rfc2822(self._created)
        base = f"/{API_VERSION}/Accounts/{self.account_sid}"
        return web.json_response({
            # Twilio answers the token too; the fake keeps it to itself.
            "auth_token": None, "date_created": created, "date_updated": created,
            "friendly_name": "savin fake account", "owner_account_sid": self.account_sid,
            "sid": self.account_sid, "status": self.account_status,
            "subresource_uris": {"messages": f"{base}/Messages.json"},
            "type": "Full", "uri": f"{base}.json",
        })

    def _resource(self, m: SentMessage, status: str) -> dict:
        """A Message resource as Twilio answers it."""
        created = _rfc2822(m.at)
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
        if signature is None:
            signature = self._signer.compute_signature(url, params)
        own = self._http is not None and self._loop is asyncio.get_running_loop()
        session = self._http if own else aiohttp.ClientSession()
        assert session is not None
        try:
            async with session.post(url, data=params, headers={"X-Twilio-Signature": signature},
                                    timeout=aiohttp.ClientTimeout(total=10)) as resp:
                return resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            log.debug("status callback not delivered: %s", type(e).__name__)
            return -1
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
