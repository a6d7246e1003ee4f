"""A fake Twilio REST API for the demo, the tests and the benchmark.

It speaks the part of Twilio's 2010-04-01 API that savin uses (create and
fetch a Message), validates every request against Twilio's published OpenAPI
spec, answers errors in Twilio's JSON shape, injects faults by destination
number, can be switched into an outage, and posts signed status callbacks the
way Twilio does (``sent`` then ``delivered``, or out of order when asked).

It never logs phone numbers or message bodies.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import logging
import threading
import time
import uuid
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from savin.testing.recording import Recorder
from savin.testing.twilio_spec import OperationValidator

__all__ = ["FakeTwilio", "SentMessage", "Fault"]

log = logging.getLogger("savin.testing.fake_twilio")

MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"

#: Twilio error code -> (HTTP status, message), as Twilio words them.
ERRORS: dict[int, tuple[int, str]] = {
    20001: (400, "Invalid parameter"),
    20003: (401, "Authenticate"),
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
class Fault:
    to: str | None
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

    def __init__(self, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host, self.port = host, port
        self.latency = 0.0
        self.fail_numbers: dict[str, int] = dict(self.FAULT_NUMBERS)
        self.callbacks_enabled = True
        self.callbacks_out_of_order = False
        self.callback_delay = 0.01
        self.outage_until = 0.0
        self.outage_code = 20503
        super().__init__("faults", "rejected", "callback_responses")
        self._validators = {MESSAGES: OperationValidator(MESSAGES, "post")}
        self._expected_auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._signer = RequestValidator(auth_token)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- what happened ------------------------------------------------------------

    @property
    def faults(self) -> list[Fault]:
        return self._copy("faults")

    @property
    def rejected(self) -> list[tuple[str, str]]:
        """(path, reason) of every request that failed validation against the spec."""
        return self._copy("rejected")

    @property
    def callback_responses(self) -> list[tuple[str, str, int]]:
        """(message sid, status, HTTP status of the receiver, or -1 if unreachable)."""
        return self._copy("callback_responses")

    # ---- switches -------------------------------------------------------------------

    def outage(self, seconds: float, status: int = 503) -> None:
        """Answer every message request with HTTP ``status`` (503 or 429) for ``seconds``."""
        self.outage_code = {503: 20503, 429: 20429, 500: 20500}[status]
        self.outage_until = time.monotonic() + seconds

    def end_outage(self) -> None:
        self.outage_until = 0.0

    # ---- the API ----------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(MESSAGES, self._create_message)
        app.router.add_get(MESSAGE, self._fetch_message)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def _not_found(self, request: web.Request) -> web.Response:
        self._note("rejected", (request.path, "no such operation in the fake"))
        return _error(20404)

    def _authenticated(self, request: web.Request) -> bool:
        return (request.headers.get("Authorization") == self._expected_auth
                and request.match_info.get("AccountSid") == self.account_sid)

    async def _create_message(self, request: web.Request) -> web.Response:
        form = list((await request.post()).items())
        problems = self._validators[MESSAGES].errors(
            dict(request.match_info), request.content_type, [(k, str(v)) for k, v in form])
        if problems:
            self._note("rejected", (request.path, "; ".join(problems)))
            return _error(20001, "; ".join(problems))
        if not self._authenticated(request):
            return _error(20003)
        params = dict(form)
        to = str(params.get("To", ""))
        if not to:
            return _error(21604)
        if not params.get("Body") and not params.get("MediaUrl") and not params.get("ContentSid"):
            return _error(21602)
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return _error(21603)
        if self.latency:
            await asyncio.sleep(self.latency)
        code = self.outage_code if time.monotonic() < self.outage_until else self.fail_numbers.get(to)
        if code is not None:
            self._note("faults", Fault(to, code, ERRORS[code][0], time.time()))
            return _error(code)
        message = SentMessage(
            sid="SM" + uuid.uuid4().hex, to=to, from_=params.get("From"),
            messaging_service_sid=params.get("MessagingServiceSid"), body=str(params.get("Body", "")),
            status_callback=params.get("StatusCallback"), at=time.time(),
        )
        self._record(message)
        if message.status_callback and self.callbacks_enabled:
            task = asyncio.create_task(self._send_callbacks(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(self._resource(message, "queued"), status=201)

    async def _fetch_message(self, request: web.Request) -> web.Response:
        if not self._authenticated(request):
            return _error(20003)
        sid = request.match_info["Sid"]
        found = next((m for m in self.messages if m.sid == sid), None)
        return web.json_response(self._resource(found, "sent")) if found else _error(20404)

    def _resource(self, m: SentMessage, status: str) -> dict:
        now = email.utils.format_datetime(dt.datetime.fromtimestamp(m.at, dt.timezone.utc))
        from savin.gsm import count

        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": m.body,
            "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": m.from_, "messaging_service_sid": m.messaging_service_sid,
            "num_media": "0", "num_segments": str(count(m.body).segments), "price": None, "price_unit": "USD",
            "sid": m.sid, "status": status,
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{m.sid}/Media.json"},
            "to": m.to, "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{m.sid}.json",
        }

    # ---- status callbacks ---------------------------------------------------------------

    async def _send_callbacks(self, m: SentMessage) -> None:
        failure = self.CALLBACK_OUTCOMES.get(m.to)
        final = ("undelivered", failure) if failure else ("delivered", None)
        order = [("sent", None), final]
        if self.callbacks_out_of_order:
            order.reverse()
        for status, error_code in order:
            await asyncio.sleep(self.callback_delay)
            params = {
                "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "From": m.from_ or "",
                "MessageSid": m.sid, "MessageStatus": status, "SmsSid": m.sid, "SmsStatus": status, "To": m.to,
            }
            if m.messaging_service_sid:
                params["MessagingServiceSid"] = m.messaging_service_sid
            if error_code:
                params["ErrorCode"] = str(error_code)
            http_status = await self.post_callback(m.status_callback, params)
            self._note("callback_responses", (m.sid, status, http_status))

    async def post_callback(self, url: str, params: dict[str, str], signature: str | None = None) -> int:
        """POST a status callback signed as Twilio signs it (or with ``signature``); the HTTP status."""
        signature = signature if signature is not None else self._signer.compute_signature(url, params)
        session = self._http or aiohttp.ClientSession()
        try:
            async with session.post(url, data=params, headers={"X-Twilio-Signature": signature},
                                    timeout=aiohttp.ClientTimeout(total=10)) as resp:
                return resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return -1
        finally:
            if session is not self._http:
                await session.close()

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> "FakeTwilio":
        self._http = aiohttp.ClientSession()
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
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
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.start())
            except BaseException as e:  # noqa: BLE001 - reported to the starting thread
                failure.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.stop())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fake-twilio", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
