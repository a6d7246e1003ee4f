"""The fake Twilio: Twilio's spec fetched and cached, every request validated
against it with openapi-core, Twilio's error shape, faults, outages, latency and
signed status callbacks; calls placed to scripted callees that follow a small
TwiML server's documents, signatures checked with the SDK's RequestValidator.
Real servers and the official SDK; nothing is mocked."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import http.server
import io
import json
import logging
import re
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from savin.dev.broker import free_port
from savin.dev.testing.fake_twilio import ACCOUNT, CALL, CALLS, MESSAGE, MESSAGES, Callee, CalleeKind, FakeTwilio, Said
from savin.dev.testing.fake_twilio import OPERATIONS as SERVED
from savin.dev.testing.twilio_spec import (
    FILENAME,
    MEMBER,
    SpecError,
    SpecValidator,
    cache_dir,
    fetch_spec,
    load_spec,
    spec_path,
    trimmed_spec,
)

SID, TOKEN = "AC" + "ab" * 16, "fake-token"
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
FROM, TO = "+15005550006", "+15735550101"
FORM_TYPE = "application/x-www-form-urlencoded"


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


AUTH = basic(SID, TOKEN)


@pytest.fixture
async def fake():
    f = await FakeTwilio(SID, TOKEN).start()
    try:
        yield f
    finally:
        await f.stop()


async def post(fake: FakeTwilio, form: dict | None = None, auth=AUTH, path: str = PATH, method: str = "POST",
               **kwargs) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, fake.base_url + path, data=form, headers=auth, **kwargs) as r:
            return r.status, await r.json()


def sdk(base_url: str) -> Client:
    client = Client(SID, TOKEN, http_client=AsyncTwilioHttpClient())
    client.api.base_url = base_url
    return client


# ---- the spec: fetched, verified, cached ------------------------------------------------------


def _tarball(content: bytes, member: str = MEMBER) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _integrity(blob: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode()


@pytest.fixture
def registry() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    """A local stand-in for the npm registry: (base URL, files it serves, paths requested)."""
    files: dict[str, bytes] = {}
    requested: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            requested.append(self.path)
            blob = files.get(self.path)
            self.send_response(200 if blob is not None else 404)
            self.end_headers()
            self.wfile.write(blob or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files, requested
    finally:
        server.shutdown()
        server.server_close()


def test_the_spec_is_downloaded_verified_extracted_and_then_reused(registry, tmp_path):
    base, files, requested = registry
    spec = json.dumps({"openapi": "3.0.1", "paths": {}}).encode()
    files["/pkg.tgz"] = tarball = _tarball(spec)
    dest = tmp_path / "cache" / "twilio" / "spec.json"
    assert fetch_spec(dest, url=base + "/pkg.tgz", integrity=_integrity(tarball)) == dest
    assert dest.read_bytes() == spec and requested == ["/pkg.tgz"]
    assert [p.name for p in dest.parent.iterdir()] == ["spec.json"]  # no temporary file left
    mtime = dest.stat().st_mtime_ns
    del files["/pkg.tgz"]
    assert fetch_spec(dest, url=base + "/pkg.tgz", integrity=_integrity(tarball)) == dest
    assert requested == ["/pkg.tgz"] and dest.stat().st_mtime_ns == mtime


def test_a_tampered_tarball_is_refused_and_nothing_is_cached(registry, tmp_path):
    base, files, _ = registry
    files["/pkg.tgz"] = _tarball(b'{"openapi": "3.0.1"}')
    dest = tmp_path / "spec.json"
    with pytest.raises(SpecError, match="integrity"):
        fetch_spec(dest, url=base + "/pkg.tgz", integrity=_integrity(b"the real tarball"))
    assert list(tmp_path.iterdir()) == []


def test_a_tarball_without_the_spec_is_refused(registry, tmp_path):
    base, files, _ = registry
    files["/pkg.tgz"] = blob = _tarball(b"{}", member="package/README.md")
    with pytest.raises(SpecError, match="twilio_api_v2010.json"):
        fetch_spec(tmp_path / "spec.json", url=base + "/pkg.tgz", integrity=_integrity(blob))


def test_a_failed_download_says_where_from(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/pkg.tgz"
    with pytest.raises(SpecError, match="could not download") as e:
        fetch_spec(tmp_path / "spec.json", url=url, integrity=_integrity(b""), timeout=5)
    assert url in str(e.value)


def test_the_cache_lives_under_savin_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SAVIN_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path / "twilio"
    monkeypatch.delenv("SAVIN_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "savin" / "twilio"


def test_twilios_spec_is_cached_once_and_is_the_2010_api():
    first = spec_path()
    mtime = first.stat().st_mtime_ns
    assert first.name == FILENAME and spec_path() == first and first.stat().st_mtime_ns == mtime
    spec = load_spec()
    assert spec["openapi"].startswith("3.0") and MESSAGES in spec["paths"] and len(spec["paths"]) > 50
    trimmed = trimmed_spec({MESSAGES: ["post"], MESSAGE: ["get"]})
    assert list(trimmed["paths"]) == [MESSAGES, MESSAGE]
    assert trimmed["paths"][MESSAGES]["post"] == spec["paths"][MESSAGES]["post"]
    assert "get" not in trimmed["paths"][MESSAGES]  # listing messages is not served


# ---- validation -----------------------------------------------------------------------------


CASES = [
    {"To": TO, "From": FROM, "Body": "hi"},
    {"To": TO, "MessagingServiceSid": "MG" + "0" * 32, "Body": "hi", "Attempt": "2"},
    {"To": TO, "Body": "hi", "StatusCallback": "http://127.0.0.1:1/cb?notice_id=1", "SmartEncoded": "true"},
    {"From": FROM, "Body": "no To"},
    {"To": TO, "Body": "hi", "Attempt": "twice"},
    {"To": TO, "Body": "hi", "MessagingServiceSid": "not-a-sid"},
    {"To": TO, "Body": "hi", "ValidityPeriod": "x"},
    {"To": TO, "Body": "hi", "ContentRetention": "forever"},
    {"To": TO, "Body": "hi", "SendAt": "tomorrow"},
    {"To": TO, "Body": "hi", "ProvideFeedback": "maybe"},
]


OPERATIONS = {MESSAGES: ["post"]}


def stock_openapi_core_errors(body: bytes) -> list:
    """What stock openapi-core, the reference, finds wrong with a Create Message request."""
    reference = OpenAPI.from_dict(trimmed_spec(OPERATIONS))
    request = MockRequest("https://api.twilio.com", "post", PATH, data=body, headers=AUTH, content_type=FORM_TYPE)
    return list(reference.request_validator.iter_errors(request))


@pytest.mark.parametrize("form", CASES)
def test_the_fast_accept_never_accepts_what_openapi_core_refuses(form):
    """Valid requests skip openapi-core's full pass; only openapi-core may refuse one."""
    body = urllib.parse.urlencode(form).encode()
    fast = SpecValidator(OPERATIONS)._fast[0]
    assert fast.accepts("POST", PATH, AUTH, FORM_TYPE, body) == (not stock_openapi_core_errors(body))
    assert not fast.accepts("POST", PATH, {}, FORM_TYPE, body)  # no credentials: openapi-core decides
    assert not fast.accepts("POST", PATH.replace("/Accounts/AC", "/Accounts/XX"), AUTH, FORM_TYPE, body)


@pytest.mark.parametrize("form", CASES)
def test_the_configured_validator_agrees_with_stock_openapi_core(form):
    """The fake's openapi-core set-up is built for speed; stock openapi-core is the reference."""
    body = urllib.parse.urlencode(form).encode()
    reference_errors = stock_openapi_core_errors(body)
    ours = SpecValidator(OPERATIONS).problems("POST", PATH, AUTH, FORM_TYPE, body)
    assert bool(ours) == bool(reference_errors), (ours, reference_errors)
    for problem in ours:
        assert problem.field in form or problem.field == "To"
        assert str(form.get(problem.field)) not in problem.reason  # fields are named, values are not


async def test_what_the_sdk_sends_validates_and_is_recorded(fake):
    client = sdk(fake.base_url)
    try:
        sent = await client.messages.create_async(to=TO, from_=FROM, body="hello",
                                                  status_callback="http://127.0.0.1:9/cb?notice_id=n-1")
        fetched = await client.messages(sent.sid).fetch_async()
    finally:
        await client.http_client.close()
    assert fake.rejected == []
    (m,) = fake.messages
    assert (m.sid, m.to, m.from_, m.body, m.status_callback) == (
        sent.sid, TO, FROM, "hello", "http://127.0.0.1:9/cb?notice_id=n-1")
    assert sent.status == "queued" and sent.account_sid == SID and sent.num_segments == "1"
    assert sent.sid.startswith("SM") and len(sent.sid) == 34 and sent.api_version == "2010-04-01"
    assert sent.date_created is not None and sent.uri == f"/2010-04-01/Accounts/{SID}/Messages/{sent.sid}.json"
    assert fetched.sid == sent.sid and fetched.to == TO
    assert 0 <= time.time() - m.at < 10


async def test_answers_match_twilios_response_schema(fake):
    status, body = await post(fake, {"To": TO, "From": FROM, "Body": "x" * 161})
    assert status == 201 and body["num_segments"] == "2"  # GSM-7: 153 characters a segment once split
    form = urllib.parse.urlencode({"To": TO, "From": FROM, "Body": "x"}).encode()
    reference = OpenAPI.from_dict(trimmed_spec({MESSAGES: ["post"]}))
    request = MockRequest("https://api.twilio.com", "post", PATH, data=form, headers=AUTH, content_type=FORM_TYPE)
    reference.validate_response(request, MockResponse(json.dumps(body).encode(), status_code=201,
                                                      content_type="application/json"))


@pytest.mark.parametrize("form,code,field", [
    ({"From": FROM, "Body": "no To"}, 21604, "To"),
    ({"To": TO, "From": FROM, "Body": "hi", "Attempt": "x"}, 20001, "Attempt"),
    ({"To": TO, "Body": "hi", "MessagingServiceSid": "MGnope"}, 20001, "MessagingServiceSid"),
    ({"To": TO, "From": FROM, "Body": "hi", "SendAt": "tomorrow"}, 20001, "SendAt"),
    ({"To": TO, "From": FROM, "Body": "hi", "Colour": "blue"}, 20001, "Colour"),
    ({"To": TO, "From": FROM, "Body": "hi", "StatusCallBack": "http://x/"}, 20001, "StatusCallBack"),
])
async def test_a_request_against_the_spec_is_refused_naming_the_field(fake, form, code, field):
    status, body = await post(fake, form)
    assert (status, body["code"], body["status"]) == (400, code, 400)
    assert field in body["message"] and body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    ((path, reason),) = fake.rejected
    assert path == PATH and field in reason and TO not in reason
    assert fake.messages == []


async def test_wrong_content_type_unknown_paths_and_methods(fake):
    status, body = await post(fake, json={"To": TO, "From": FROM, "Body": "hi"})
    assert (status, body["code"]) == (400, 20001) and "Content-Type" in body["message"]
    status, body = await post(fake, {"FriendlyName": "q"}, path=f"/2010-04-01/Accounts/{SID}/Queues.json")
    assert (status, body["code"]) == (404, 20404)
    status, body = await post(fake, method="DELETE")
    assert (status, body["code"]) == (405, 20004)
    assert len(fake.rejected) == 3 and fake.messages == []


async def test_twilios_rules_beyond_the_schema(fake):
    assert (await post(fake, {"To": TO, "From": FROM}))[1]["code"] == 21602
    assert (await post(fake, {"To": TO, "Body": "hi"}))[1]["code"] == 21603
    assert fake.messages == []


@pytest.mark.parametrize("auth", [basic(SID, "wrong"), basic("AC" + "cd" * 16, TOKEN), {}, {"Authorization": "Bearer x"}])
async def test_wrong_or_missing_credentials_are_401(fake, auth):
    status, body = await post(fake, {"To": TO, "From": FROM, "Body": "hi"}, auth=auth)
    assert (status, body["code"], body["status"]) == (401, 20003, 401)
    assert fake.messages == []


async def test_another_accounts_path_is_401(fake):
    other = "AC" + "cd" * 16
    status, body = await post(fake, {"To": TO, "From": FROM, "Body": "hi"},
                              path=f"/2010-04-01/Accounts/{other}/Messages.json")
    assert (status, body["code"]) == (401, 20003)


# ---- the account --------------------------------------------------------------------------------

ACCOUNT_PATH = f"/2010-04-01/Accounts/{SID}.json"


async def get(fake: FakeTwilio, path: str, auth=AUTH) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(fake.base_url + path, headers=auth) as r:
            return r.status, await r.json()


async def test_the_sdk_fetches_the_account_and_the_answer_matches_twilios_schema(fake):
    client = sdk(fake.base_url)
    try:
        account = await client.api.accounts(SID).fetch_async()
    finally:
        await client.http_client.close()
    assert (account.sid, account.status, account.auth_token) == (SID, "active", None)
    assert fake.rejected == []
    status, body = await get(fake, ACCOUNT_PATH)
    reference = OpenAPI.from_dict(trimmed_spec({ACCOUNT: ["get"]}))
    request = MockRequest("https://api.twilio.com", "get", ACCOUNT_PATH, headers=AUTH)
    assert not list(reference.request_validator.iter_errors(request))
    reference.validate_response(request, MockResponse(json.dumps(body).encode(), status_code=status,
                                                      content_type="application/json"))


@pytest.mark.parametrize("auth", [basic(SID, "wrong"), {}, basic("AC" + "cd" * 16, TOKEN)])
async def test_the_account_fetch_refuses_wrong_credentials(fake, auth):
    status, body = await get(fake, ACCOUNT_PATH, auth=auth)
    assert (status, body["code"], body["status"]) == (401, 20003, 401)


async def test_another_account_or_a_malformed_sid_is_refused(fake):
    status, body = await get(fake, f"/2010-04-01/Accounts/{'AC' + 'cd' * 16}.json")
    assert (status, body["code"]) == (401, 20003)
    status, body = await get(fake, "/2010-04-01/Accounts/not-a-sid.json")
    assert status in (400, 401) and body["code"] in (20001, 20003)  # the spec's pattern, or no such account
    assert len(fake.rejected) == 2


async def test_a_rotated_token_refuses_the_old_one_and_signs_callbacks_with_the_new(fake):
    fake.rotate_auth_token("new-token")
    assert (await get(fake, ACCOUNT_PATH))[0] == 401
    assert (await post(fake, {"To": TO, "From": FROM, "Body": "hi"}))[0] == 401
    assert (await get(fake, ACCOUNT_PATH, auth=basic(SID, "new-token")))[0] == 200
    async with Receiver(token="new-token") as receiver:
        await post(fake, {"To": TO, "Body": "hi", "From": FROM, "StatusCallback": receiver.url},
                   auth=basic(SID, "new-token"))
        await receiver.wait(2)
    assert all(valid for *_, valid in receiver.received)


def test_every_operation_served_is_in_twilios_spec():
    trimmed = trimmed_spec(SERVED)
    assert {path: sorted(k for k in item if k in ("get", "post")) for path, item in trimmed["paths"].items()} == {
        MESSAGES: ["post"], MESSAGE: ["get"], CALLS: ["post"], CALL: ["get"], ACCOUNT: ["get"]}


# ---- faults, outages, latency -----------------------------------------------------------------


@pytest.mark.parametrize("number,code", list(FakeTwilio.FAULT_NUMBERS.items()))
async def test_fault_numbers_answer_their_error(fake, number, code):
    http = {20429: 429, 20500: 500}.get(code, 400)
    status, body = await post(fake, {"To": number, "Body": "hi", "From": FROM})
    assert (status, body["code"], body["status"]) == (http, code, http)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    ((fault),) = fake.faults
    assert (fault.code, fault.http_status, fault.to_ref) == (code, http, FakeTwilio.number_ref(number))
    assert number not in repr(fake.faults) and fake.messages == []


async def test_faults_can_be_set_at_run_time(fake):
    fake.fail_numbers[TO] = 21614
    assert (await post(fake, {"To": TO, "Body": "hi", "From": FROM}))[1]["code"] == 21614
    del fake.fail_numbers[TO]
    assert (await post(fake, {"To": TO, "Body": "hi", "From": FROM}))[0] == 201
    fake.fail_numbers[TO] = 21211
    assert TO not in FakeTwilio.FAULT_NUMBERS  # each fake has its own copy


async def test_an_outage_refuses_everything_until_it_ends(fake):
    form = {"To": TO, "Body": "hi", "From": FROM}
    fake.outage(0.4, status=503)
    assert fake.outage_until > time.monotonic()
    assert (await post(fake, form))[1] == {
        "code": 20503, "message": "Service Unavailable", "more_info": "https://www.twilio.com/docs/errors/20503",
        "status": 503}
    fake.outage(0.4, status=429)
    status, body = await post(fake, form)
    assert (status, body["code"]) == (429, 20429)
    await asyncio.sleep(0.5)
    assert (await post(fake, form))[0] == 201
    fake.outage(60, status=503)
    fake.end_outage()
    assert (await post(fake, form))[0] == 201
    assert [f.code for f in fake.faults] == [20503, 20429] and len(fake.messages) == 2


async def test_latency_delays_answers_concurrently(fake):
    fake.latency = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(*(post(fake, {"To": f"+1573555010{i}", "Body": "hi", "From": FROM})
                                     for i in range(5)))
    elapsed = loop.time() - started
    assert {status for status, _ in results} == {201}
    assert 0.3 <= elapsed < 1.2  # overlapping, not one after another
    assert len(fake.messages) == 5


# ---- status callbacks ------------------------------------------------------------------------


class Receiver:
    """A status-callback endpoint that checks Twilio's signature as savin does."""

    def __init__(self, token: str = TOKEN):
        self.token = token
        self.received: list[tuple[str, dict[str, str], bool]] = []

    async def __aenter__(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/status", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/status?notice_id=n-1&registration_id=R-1"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        params = dict(await request.post())
        url = str(request.url)  # includes the query string, as Twilio signs it
        valid = RequestValidator(self.token).validate(url, params, request.headers.get("X-Twilio-Signature", ""))
        self.received.append((params.get("MessageStatus", ""), params, valid))
        return web.Response(status=200 if valid else 403)

    async def wait(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < n:
            assert time.monotonic() < deadline, f"only {len(self.received)} callbacks arrived"
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("out_of_order", [False, True])
async def test_signed_status_callbacks_in_twilios_order_or_reversed(fake, out_of_order):
    fake.callbacks_out_of_order = out_of_order
    async with Receiver() as receiver:
        await post(fake, {"To": TO, "Body": "hi", "From": FROM, "StatusCallback": receiver.url})
        await receiver.wait(2)
    statuses = [s for s, _, _ in receiver.received]
    assert statuses == (["delivered", "sent"] if out_of_order else ["sent", "delivered"])
    assert all(valid for *_, valid in receiver.received)
    sid = fake.messages[0].sid
    params = receiver.received[0][1]
    assert params["MessageSid"] == params["SmsSid"] == sid and params["AccountSid"] == SID
    assert (params["From"], params["To"], params["ApiVersion"]) == (FROM, TO, "2010-04-01")
    assert params["SmsStatus"] == params["MessageStatus"] and "ErrorCode" not in params
    assert fake.callback_responses == [(sid, s, 200) for s in statuses]


@pytest.mark.parametrize("number,code", list(FakeTwilio.CALLBACK_OUTCOMES.items()))
async def test_undelivered_callbacks_carry_the_carrier_error(fake, number, code):
    async with Receiver() as receiver:
        status, _ = await post(fake, {"To": number, "Body": "hi", "From": FROM, "StatusCallback": receiver.url})
        assert status == 201
        await receiver.wait(2)
    final = receiver.received[-1]
    assert (final[0], final[1]["ErrorCode"], final[2]) == ("undelivered", str(code), True)


async def test_forged_and_replayed_callbacks(fake):
    async with Receiver() as receiver:
        params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "AccountSid": SID}
        assert await fake.post_callback(receiver.url, params, signature="forged") == 403
        forged = RequestValidator("not-the-token").compute_signature(receiver.url, params)
        assert await fake.post_callback(receiver.url, params, signature=forged) == 403
        assert await fake.post_callback(receiver.url, params) == 200
        assert await fake.post_callback(receiver.url, params) == 200  # a replay is signed identically
    assert [valid for *_, valid in receiver.received] == [False, False, True, True]
    assert await fake.post_callback(f"http://127.0.0.1:{free_port()}/status", params) == -1


async def test_callbacks_can_be_switched_off(fake):
    fake.callbacks_enabled = False
    async with Receiver() as receiver:
        await post(fake, {"To": TO, "Body": "hi", "From": FROM, "StatusCallback": receiver.url})
        await asyncio.sleep(0.2)
    assert receiver.received == [] and fake.callback_responses == []


# ---- incoming messages -------------------------------------------------------------------------


async def test_an_incoming_message_is_posted_as_twilio_documents_it_and_signed(fake):
    got: list[tuple[dict[str, str], bool]] = []

    async def webhook(request: web.Request) -> web.Response:
        params = dict(await request.post())
        valid = RequestValidator(TOKEN).validate(str(request.url), params, request.headers.get("X-Twilio-Signature", ""))
        got.append((params, valid))
        if not valid:
            return web.Response(status=403)
        twiml = MessagingResponse()
        twiml.message("Got it & thanks")
        return web.Response(text=str(twiml), content_type="application/xml")

    app = web.Application()
    app.router.add_post("/sms", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/sms"
    try:
        reply = await fake.send_incoming(url, TO, "Stop ")
        assert (reply.status, reply.content_type, reply.messages) == (200, "application/xml", ["Got it & thanks"])
        params, valid = got[0]
        assert valid and set(params) == {"MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "From", "To", "Body",
                                         "NumMedia", "NumSegments"}
        assert (params["From"], params["To"], params["Body"], params["AccountSid"]) == (TO, FROM, "Stop ", SID)
        assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"]
        assert (params["NumMedia"], params["NumSegments"]) == ("0", "1")
        assert (await fake.send_incoming(url, TO, "hi", signature="forged")).status == 403
        assert (await fake.send_incoming(url, TO, "hi", signed=False)).status == 403
        assert (await fake.send_incoming(url, TO, "hi", extra={"FromCountry": "US", "MediaUrl0": "https://x.test/1"}
                                         )).status == 200
        # A form Twilio would never send is refused before it leaves.
        for bad in ({"From": "5551234"}, {"Bogus": "1"}, {"NumMedia": "many"}, {"SmsSid": "SM" + "0" * 32}):
            with pytest.raises(ValueError, match="not an incoming-message request"):
                await fake.send_incoming(url, TO, "hi", extra=bad)
        assert len(got) == 4
    finally:
        await runner.cleanup()


# ---- lifecycle and privacy -------------------------------------------------------------------


async def test_served_from_its_own_thread(caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeTwilio(SID, TOKEN).start_in_thread()
    try:
        client = sdk(fake.base_url)
        try:
            await asyncio.gather(*(client.messages.create_async(to=f"+1573555{i:04d}", from_=FROM, body="in a thread")
                                   for i in range(20)))
        finally:
            await client.http_client.close()
        assert await asyncio.to_thread(fake.wait_for, 20, 5)
        assert not fake.wait_for(21, 0.1)
        async with Receiver() as receiver:  # callbacks from the fake's loop, forged ones from this loop
            assert await fake.post_callback(receiver.url, {"MessageStatus": "sent"}) == 200
            assert await fake.post_callback(receiver.url, {"MessageStatus": "sent"}, signature="x") == 403
        fake.reset()
        assert fake.messages == [] and fake.rejected == []
    finally:
        fake.stop_thread()
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(fake, {"To": TO, "Body": "hi", "From": FROM})
    assert "+1573555" not in caplog.text and "in a thread" not in caplog.text


async def test_numbers_and_bodies_are_never_logged(fake, caplog):
    caplog.set_level(logging.DEBUG)
    body = "Offender Jonah Test Doe was released"
    async with Receiver() as receiver:
        for form in ({"To": TO, "From": FROM, "Body": body, "StatusCallback": receiver.url},
                     {"To": "+15005550004", "From": FROM, "Body": body},
                     {"To": TO, "Body": body, "MessagingServiceSid": TO}):
            await post(fake, form)
        await receiver.wait(2)
    assert fake.rejected and fake.faults and fake.messages
    for text in (TO, "+15005550004", FROM, body):
        assert text not in caplog.text
        assert all(text not in reason for _, reason in fake.rejected)


# ---- calls: the request ---------------------------------------------------------------------

CALLS_PATH = f"/2010-04-01/Accounts/{SID}/Calls.json"
CALL_CASES = [
    {"To": TO, "From": FROM, "Url": "http://127.0.0.1:1/voice/calls/t", "Method": "POST", "Timeout": "25",
     "MachineDetection": "Enable", "StatusCallback": "http://127.0.0.1:1/cb?notice_id=1",
     "StatusCallbackEvent": "completed"},
    {"To": TO, "From": FROM, "Twiml": "<Response><Say>hi</Say></Response>"},
    {"To": TO, "From": FROM, "Url": "http://127.0.0.1:1/v", "Timeout": "soon"},
    {"To": TO, "From": FROM, "Url": "http://127.0.0.1:1/v", "Method": "PUT"},
    {"To": TO, "From": FROM, "Url": "http://127.0.0.1:1/v", "Record": "perhaps"},
    {"To": TO, "From": FROM, "ApplicationSid": "AP-nope"},
    {"From": FROM, "Url": "http://127.0.0.1:1/v"},
]


@pytest.mark.parametrize("form", CALL_CASES)
def test_the_fast_accept_of_calls_never_accepts_what_openapi_core_refuses(form):
    body = urllib.parse.urlencode(form).encode()
    reference = OpenAPI.from_dict(trimmed_spec({CALLS: ["post"]}))
    request = MockRequest("https://api.twilio.com", "post", CALLS_PATH, data=body, headers=AUTH,
                          content_type=FORM_TYPE)
    refused = bool(list(reference.request_validator.iter_errors(request)))
    validator = SpecValidator(SERVED)
    assert any(f.accepts("POST", CALLS_PATH, AUTH, FORM_TYPE, body) for f in validator._fast) == (not refused)
    assert bool(validator.problems("POST", CALLS_PATH, AUTH, FORM_TYPE, body)) == refused


@pytest.mark.parametrize("form,code,field", [
    ({"From": FROM, "Url": "http://127.0.0.1:1/v"}, 21201, "To"),
    ({"To": TO, "Url": "http://127.0.0.1:1/v"}, 21213, "From"),
    ({"To": "", "From": FROM, "Url": "http://127.0.0.1:1/v"}, 21201, "To"),
    ({"To": TO, "From": FROM, "Url": "http://127.0.0.1:1/v", "Timeout": "soon"}, 20001, "Timeout"),
    ({"To": TO, "From": FROM, "Url": "http://127.0.0.1:1/v", "Method": "PUT"}, 20001, "Method"),
    ({"To": TO, "From": FROM, "Url": "http://127.0.0.1:1/v", "Colour": "blue"}, 20001, "Colour"),
    ({"To": TO, "From": FROM, "Url": "http://127.0.0.1:1/v", "MachineDetection": "Yes"}, 20001, "MachineDetection"),
    ({"To": TO, "From": FROM, "Url": "http://127.0.0.1:1/v", "StatusCallbackEvent": "hung-up"}, 20001,
     "StatusCallbackEvent"),
    ({"To": TO, "From": FROM}, 21205, "Url"),
    ({"To": TO, "From": FROM, "Url": "/voice/calls/relative"}, 21205, "Url"),
    ({"To": TO, "From": FROM, "ApplicationSid": "AP" + "0" * 32}, 21218, "ApplicationSid"),
])
async def test_a_call_against_the_spec_or_twilios_rules_is_refused_naming_the_field(fake, form, code, field):
    status, body = await post(fake, form, path=CALLS_PATH)
    assert (status, body["code"], body["status"]) == (400, code, 400)
    ((path, reason),) = fake.rejected
    assert path == CALLS_PATH and field in reason and TO not in reason and TO not in body["message"]
    assert fake.calls == []


async def test_the_sdk_places_a_call_as_the_voice_notifier_does(fake):
    client = sdk(fake.base_url)
    try:
        call = await client.calls.create_async(
            to=TO, from_=FROM, url="http://127.0.0.1:9/voice/calls/tok", method="POST", machine_detection="Enable",
            status_callback="http://127.0.0.1:9/callbacks/twilio/voice?notice_id=n-1&registration_id=R-1",
            status_callback_event=["completed"], timeout=25)
        fetched = await client.calls(call.sid).fetch_async()
    finally:
        await client.http_client.close()
    assert fake.rejected == []
    assert type(call).__name__ == "CallInstance" and re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert (call.status, call.to, call._from, call.direction, call.account_sid) == (
        "queued", TO, FROM, "outbound-api", SID)
    (placed,) = fake.calls
    assert (placed.sid, placed.to, placed.from_, placed.url, placed.method, placed.machine_detection, placed.timeout,
            placed.status_callback_events) == (call.sid, TO, FROM, "http://127.0.0.1:9/voice/calls/tok", "POST",
                                               "Enable", 25, ("completed",))
    assert placed.status_callback.endswith("/callbacks/twilio/voice?notice_id=n-1&registration_id=R-1")
    assert fetched.sid == call.sid and 0 <= time.time() - placed.at < 10
    # Nobody serves the TwiML: Twilio's 11200, and the call still ends and says so.
    (done,) = await fake.wait_calls_async(1)
    assert (done.status, done.http, done.errors[0]) == ("completed", [-1], "11200 HTTP retrieval failure")


async def test_the_call_resource_matches_twilios_response_schema(fake):
    form = {"To": TO, "From": FROM, "Url": "http://127.0.0.1:9/v"}
    status, created = await post(fake, form, path=CALLS_PATH)
    (done,) = await fake.wait_calls_async(1)
    _, fetched = await get(fake, f"{CALLS_PATH[:-5]}/{created['sid']}.json")
    assert status == 201 and created["status"] == "queued" and created["duration"] is None
    assert (fetched["status"], fetched["duration"], fetched["answered_by"]) == ("completed", str(done.duration), None)
    reference = OpenAPI.from_dict(trimmed_spec({CALLS: ["post"], CALL: ["get"]}))
    body = urllib.parse.urlencode(form).encode()
    create = MockRequest("https://api.twilio.com", "post", CALLS_PATH, data=body, headers=AUTH, content_type=FORM_TYPE)
    fetch = MockRequest("https://api.twilio.com", "get", f"{CALLS_PATH[:-5]}/{created['sid']}.json", headers=AUTH)
    for request, answer, code in ((create, created, 201), (fetch, fetched, 200)):
        reference.validate_response(request, MockResponse(json.dumps(answer).encode(), status_code=code,
                                                          content_type="application/json"))
    assert (await get(fake, f"{CALLS_PATH[:-5]}/CA{'0' * 32}.json"))[0] == 404


@pytest.mark.parametrize("number,code", list(FakeTwilio.CALL_FAULT_NUMBERS.items()))
async def test_call_fault_numbers_answer_their_error(fake, number, code):
    status, body = await post(fake, {"To": number, "From": FROM, "Url": "http://127.0.0.1:9/v"}, path=CALLS_PATH)
    assert (status, body["code"]) == ({20429: 429, 20500: 500}.get(code, 400), code)
    assert [f.to_ref for f in fake.faults] == [FakeTwilio.number_ref(number)] and fake.calls == []


@pytest.mark.parametrize("caller_id,code", list(FakeTwilio.CALLER_ID_FAULTS.items()))
async def test_a_caller_id_not_of_the_account_is_refused(fake, caller_id, code):
    status, body = await post(fake, {"To": TO, "From": caller_id, "Url": "http://127.0.0.1:9/v"}, path=CALLS_PATH)
    assert (status, body["code"]) == (400, code) and fake.calls == []


async def test_calls_beyond_calls_per_second_get_429(fake):
    fake.calls_per_second = 1
    form = {"To": TO, "From": FROM, "Url": "http://127.0.0.1:9/v"}
    first, second = [await post(fake, form, path=CALLS_PATH) for _ in range(2)]
    assert first[0] == 201 and (second[0], second[1]["code"]) == (429, 20429)
    assert fake.too_many_requests == 1 and [f.code for f in fake.faults] == [20429]
    await asyncio.sleep(1.0)
    assert (await post(fake, form, path=CALLS_PATH))[0] == 201
    fake.calls_per_second = 2
    results = [(await post(fake, form, path=CALLS_PATH))[0] for _ in range(3)]
    assert results.count(201) == 1 and fake.too_many_requests == 3  # one of the two this second was taken
    fake.calls_per_second = None
    assert {(await post(fake, form, path=CALLS_PATH))[0] for _ in range(5)} == {201}
    assert len(fake.calls) == 8


def test_a_callee_is_checked_when_scripted():
    assert Callee("machine").kind is CalleeKind.MACHINE and Callee().kind is CalleeKind.PERSON
    with pytest.raises(TypeError):
        Callee(digits="2468#")
    with pytest.raises(ValueError):
        Callee(digits=("12a",))
    with pytest.raises(ValueError):
        Callee(kind="robot")
    with pytest.raises(ValueError):
        Callee(answered_by="robot")


# ---- calls: the callee follows the TwiML ------------------------------------------------------


class VoiceApp:
    """savin's side of a call in miniature: TwiML by path (text, a function of the
    request's parameters, or an HTTP status), every request's signature checked as
    savin checks it, and (path, method, parameters, signature valid) recorded.
    Paths it has no page for (status callbacks) answer 204."""

    def __init__(self, pages: dict, token: str = TOKEN, content_type: str = "text/xml"):
        self.pages, self.token, self.content_type = pages, token, content_type
        self.requests: list[tuple[str, str, dict[str, str], bool]] = []

    async def __aenter__(self) -> "VoiceApp":
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()

    def url(self, path: str) -> str:
        return self.base + path

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else {}
        valid = RequestValidator(self.token).validate(str(request.url), form,
                                                      request.headers.get("X-Twilio-Signature", ""))
        params = form if request.method == "POST" else dict(request.query)
        self.requests.append((request.path, request.method, params, valid))
        page = self.pages.get(request.path)
        if not valid:
            return web.Response(status=403)
        if page is None or isinstance(page, int):
            return web.Response(status=page or 204)
        return web.Response(text=page(params) if callable(page) else page, content_type=self.content_type)

    def got(self, path: str) -> list[dict[str, str]]:
        return [params for p, _, params, _ in self.requests if p == path]


PIN_FLOW = {
    "/voice": ('<?xml version="1.0" encoding="UTF-8"?><Response>'
               '<Say voice="Polly.Joanna" language="en-US">This is the Missouri victim notification line.</Say>'
               '<Gather input="dtmf" finishOnKey="#" timeout="8" action="pin?step=1">'
               '<Say voice="Polly.Joanna" language="en-US">Enter your PIN, then press pound.</Say></Gather>'
               '<Say>We did not get your PIN.</Say></Response>'),
    "/pin": ('<Response><Gather numDigits="1" action="/confirm"><Say language="en-US">Jonah Doe was released.'
             ' Press <emphasis>1</emphasis> to confirm.</Say><Pause length="3"/></Gather>'
             '<Redirect>/voice/again</Redirect></Response>'),
    "/confirm": "<Response><Say>Thank you.</Say><Hangup/><Say>never heard</Say></Response>",
    "/voice/again": "<Response><Say>Goodbye.</Say></Response>",
}
CALL_PARAMETERS = {"AccountSid", "ApiVersion", "CallSid", "CallStatus", "Called", "Caller", "Direction", "From", "To"}


async def call(fake: FakeTwilio, app: VoiceApp, to: str = TO, path: str = "/voice", **extra):
    form = {"To": to, "From": FROM, "Url": app.url(path), "StatusCallback": app.url("/status?notice_id=n-1"),
            **extra}
    status, body = await post(fake, form, path=CALLS_PATH)
    assert status == 201, body
    (done,) = [c for c in await fake.wait_calls_async(len(fake.calls)) if c.sid == body["sid"]]
    return done


async def test_a_person_enters_the_pin_and_confirms(fake):
    fake.callees[TO] = Callee(digits=("2468#", "17"))
    async with VoiceApp(PIN_FLOW) as app:
        done = await call(fake, app, MachineDetection="Enable")
    assert [(p, m, valid) for p, m, _, valid in app.requests] == [
        ("/voice", "POST", True), ("/pin", "POST", True), ("/confirm", "POST", True), ("/status", "POST", True)]
    first, pin, confirm, status = (params for _, _, params, _ in app.requests)
    assert set(first) == CALL_PARAMETERS | {"AnsweredBy"}
    assert (first["CallSid"], first["AccountSid"], first["CallStatus"], first["Direction"], first["ApiVersion"]) == (
        done.sid, SID, "in-progress", "outbound-api", "2010-04-01")
    assert (first["From"], first["Caller"], first["To"], first["Called"], first["AnsweredBy"]) == (
        FROM, FROM, TO, TO, "human")
    assert (pin["Digits"], confirm["Digits"]) == ("2468", "1")  # the pound key stripped; numDigits=1 takes one
    assert app.got("/pin") == [pin] and pin.keys() - first.keys() == {"Digits"}
    assert done.said == [
        Said("This is the Missouri victim notification line.", "Polly.Joanna", "en-US"),
        Said("Enter your PIN, then press pound.", "Polly.Joanna", "en-US"),
        Said("Jonah Doe was released. Press 1 to confirm.", None, "en-US"),
        Said("Thank you.", None, None)]
    assert "Jonah Doe was released" in done.spoken and "never heard" not in done.spoken
    assert (done.status, done.answered_by, done.digits, done.http) == ("completed", "human", ["2468", "1"], [200] * 3)
    assert done.verbs == ["Say", "Gather", "Gather", "Say", "Hangup"] and done.errors == []
    assert done.twiml == [PIN_FLOW["/voice"], PIN_FLOW["/pin"], PIN_FLOW["/confirm"]]
    assert set(status) == CALL_PARAMETERS | {"AnsweredBy", "CallDuration", "CallbackSource", "SequenceNumber",
                                             "Timestamp"}
    assert (status["CallStatus"], status["AnsweredBy"], status["CallDuration"], status["SequenceNumber"],
            status["CallbackSource"]) == ("completed", "human", str(done.duration), "0", "call-progress-events")
    assert email.utils.parsedate_to_datetime(status["Timestamp"]).tzinfo is not None
    assert done.duration >= 6 and done.callbacks == [("completed", 204)] and done.finished


async def test_a_person_who_types_nothing_hears_what_follows_the_gather(fake):
    async with VoiceApp(PIN_FLOW) as app:
        done = await call(fake, app)  # the default callee: answers, listens, presses nothing
    assert [p for p, *_ in app.requests] == ["/voice", "/status"]
    assert "AnsweredBy" not in app.got("/voice")[0]  # no machine detection asked
    assert [s.text for s in done.said][-1] == "We did not get your PIN." and done.digits == []
    assert done.duration >= 8 + 3  # the Gather's timeout counts, without waiting for it


async def test_a_pin_typed_without_the_pound_key_is_sent_after_the_timeout(fake):
    fake.callees[TO] = Callee(digits=("2468", ""))
    async with VoiceApp(PIN_FLOW) as app:
        done = await call(fake, app)
    assert done.digits == ["2468"] and [p for p, *_ in app.requests][-2:] == ["/voice/again", "/status"]


async def test_a_machine_hears_everything_and_types_nothing(fake):
    fake.callees[TO] = Callee(CalleeKind.MACHINE, digits=("2468#",))
    async with VoiceApp(PIN_FLOW) as app:
        enabled = await call(fake, app, MachineDetection="Enable")
        message_end = await call(fake, app, MachineDetection="DetectMessageEnd")
        undetected = await call(fake, app)
    assert [c.answered_by for c in (enabled, message_end, undetected)] == ["machine_start", "machine_end_beep", None]
    assert [params.get("AnsweredBy") for params in app.got("/voice")] == ["machine_start", "machine_end_beep", None]
    assert all(c.digits == [] and c.said[-1].text == "We did not get your PIN." for c in (enabled, message_end))
    assert app.got("/status")[0]["AnsweredBy"] == "machine_start"


async def test_answered_by_can_be_scripted(fake):
    fake.callees[TO] = Callee(CalleeKind.MACHINE, answered_by="human")  # detection mistakes it for a person
    async with VoiceApp(PIN_FLOW) as app:
        done = await call(fake, app, MachineDetection="Enable")
    assert done.answered_by == "human" and done.digits == []


async def test_a_callee_who_hangs_up_at_once(fake):
    fake.callees[TO] = Callee(CalleeKind.HANGS_UP)
    async with VoiceApp(PIN_FLOW) as app:
        done = await call(fake, app, MachineDetection="Enable")
    assert [p for p, *_ in app.requests] == ["/voice", "/status"]
    assert (done.status, done.answered_by, done.said, done.twiml, done.duration) == (
        "completed", "human", [], [PIN_FLOW["/voice"]], 1)


@pytest.mark.parametrize("kind,status", [("no_answer", "no-answer"), ("busy", "busy"), ("failed", "failed")])
async def test_callees_who_never_answer(fake, kind, status):
    fake.callees[TO] = Callee(kind)
    async with VoiceApp(PIN_FLOW) as app:
        done = await call(fake, app, MachineDetection="Enable")
    (params,) = app.got("/status")
    assert [p for p, *_ in app.requests] == ["/status"]
    assert (params["CallStatus"], params["CallDuration"], "AnsweredBy" in params) == (status, "0", False)
    assert (done.status, done.answered_by, done.twiml, done.duration, done.answered_at) == (status, None, [], 0, None)


async def test_progress_events_come_in_sequence_and_signed(fake):
    async with VoiceApp(PIN_FLOW) as app:
        form = [("To", TO), ("From", FROM), ("Url", app.url("/voice")), ("StatusCallback", app.url("/status")),
                *(("StatusCallbackEvent", e) for e in ("initiated", "ringing", "answered", "completed"))]
        assert (await post(fake, form, path=CALLS_PATH))[0] == 201
        (done,) = await fake.wait_calls_async(1)
    statuses = [(p["CallStatus"], p["SequenceNumber"]) for p in app.got("/status")]
    assert statuses == [("ringing", "0"), ("in-progress", "1"), ("completed", "2")]
    assert "CallDuration" not in app.got("/status")[1] and all(valid for *_, valid in app.requests)
    assert done.callbacks == [("ringing", 204), ("in-progress", 204), ("completed", 204)]


async def test_get_requests_carry_the_parameters_in_the_query_and_are_signed(fake):
    fake.callees[TO] = Callee(digits=("1",))
    pages = {"/voice": '<Response><Gather method="GET" action="/next"/></Response>',
             "/next": "<Response><Say>ok</Say></Response>"}
    async with VoiceApp(pages) as app:
        done = await call(fake, app, Method="GET", StatusCallbackMethod="GET")
    assert [(p, m, valid) for p, m, _, valid in app.requests] == [
        ("/voice", "GET", True), ("/next", "GET", True), ("/status", "GET", True)]
    assert app.got("/next")[0]["Digits"] == "1" and app.got("/status")[0]["notice_id"] == "n-1"
    assert done.said == [Said("ok", None, None)]


async def test_inline_twiml_and_a_url_that_wins_over_it(fake):
    async with VoiceApp({"/voice": "<Response><Say>from the url</Say></Response>"}) as app:
        status, _ = await post(fake, {"To": TO, "From": FROM, "Twiml": '<Response><Say loop="2">inline</Say>'
                                      '<Redirect method="POST">' + app.url("/voice") + "</Redirect></Response>"},
                               path=CALLS_PATH)
        both = await call(fake, app, Twiml="<Response><Say>ignored</Say></Response>")
    inline = (await fake.wait_calls_async(2))[0]
    assert [s.text for s in inline.said] == ["inline", "inline", "from the url"] and inline.http == [200]
    assert inline.url is None and inline.twiml[0].startswith("<Response><Say loop")
    assert both.spoken == "from the url"


@pytest.mark.parametrize("pages,content_type,error", [
    ({"/voice": 500}, "text/xml", "11200 HTTP retrieval failure"),
    ({"/voice": "<Response><Say>unclosed</Response>"}, "text/xml", "12100 Document parse failure"),
    ({"/voice": "<Html><Say>hi</Say></Html>"}, "text/xml", "12100 Document parse failure"),
    ({"/voice": "<Response><Say>hi</Say></Response>"}, "application/json", "12300 Invalid Content-Type"),
    ({"/voice": "<Response><Dial>+15735550199</Dial></Response>"}, "text/xml", "12200 Schema validation warning"),
    ({"/voice": "<Response><Gather><Dial/></Gather></Response>"}, "text/xml", "12200 Schema validation warning"),
    ({"/voice": '<Response><Redirect method="PUT">/voice</Redirect></Response>'}, "text/xml", "12200"),
    ({"/voice": "<Response><Redirect>ftp://example.test/x</Redirect></Response>"}, "text/xml", "11100"),
])
async def test_what_twilio_cannot_follow_ends_the_call_with_its_error(fake, pages, content_type, error):
    fake.callees[TO] = Callee(digits=("1",))
    async with VoiceApp(pages, content_type=content_type) as app:
        done = await call(fake, app)
    assert len(done.errors) == 1 and done.errors[0].startswith(error)
    assert done.status == "completed" and app.got("/status")[0]["CallStatus"] == "completed"
    assert "+1573555" not in done.errors[0]


async def test_a_redirect_loop_is_cut_short(fake):
    fake.max_twiml_fetches = 5
    async with VoiceApp({"/voice": '<Response><Pause/><Redirect></Redirect></Response>'}) as app:
        done = await call(fake, app)
    assert len(app.got("/voice")) == 5 and done.http == [200] * 5
    assert done.errors == ["the call asked for TwiML more than 5 times"] and done.duration == 5


async def test_a_signature_with_another_token_is_refused_by_the_app(fake):
    async with VoiceApp(PIN_FLOW, token="another-token") as app:
        done = await call(fake, app)
    assert done.http == [403] and done.errors == ["11200 HTTP retrieval failure"]
    assert done.callbacks == [("completed", 403)]


def test_calls_from_a_thread_and_waiting_for_them():
    fake = FakeTwilio(SID, TOKEN).start_in_thread()
    fake.callees[TO] = Callee(CalleeKind.BUSY)

    async def place() -> list:
        return [await post(fake, {"To": number, "From": FROM, "Url": "http://127.0.0.1:9/v"}, path=CALLS_PATH)
                for number in (TO, "+15735550102")]

    try:
        assert {status for status, _ in asyncio.run(place())} == {201}
        done = fake.wait_calls(2, 5)
        assert sorted(c.status for c in done) == ["busy", "completed"]
        with pytest.raises(TimeoutError, match="2 of 3 calls"):
            fake.wait_calls(3, 0.1)
        fake.reset()
        assert fake.calls == []
    finally:
        fake.stop_thread()


async def test_numbers_digits_and_words_of_calls_are_never_logged(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.callees[TO] = Callee(digits=("2468#", "1"))
    async with VoiceApp(PIN_FLOW) as app:
        await call(fake, app, MachineDetection="Enable")
        await post(fake, {"To": "+15005550004", "From": FROM, "Url": app.url("/voice")}, path=CALLS_PATH)
        await post(fake, {"To": TO, "From": FROM}, path=CALLS_PATH)
    assert fake.faults and fake.rejected and fake.calls
    for text in (TO, FROM, "+15005550004", "2468", "Jonah", "released"):
        assert text not in caplog.text
        assert all(text not in reason for _, reason in fake.rejected)


async def test_messages_beyond_messages_per_second_from_one_sender_get_429(fake):
    fake.messages_per_second = 2
    form = {"To": TO, "From": FROM, "Body": "hello"}
    results = [await post(fake, form) for _ in range(3)]
    assert [s for s, _ in results] == [201, 201, 429] and results[2][1]["code"] == 20429
    assert results[2][1]["more_info"].endswith("/20429")  # Twilio's error body
    # Another sender has a limit of its own.
    service = {"To": TO, "MessagingServiceSid": "MG" + "0" * 32, "Body": "hello"}
    assert (await post(fake, service))[0] == 201
    assert fake.messages_refused_429 == 1 == fake.too_many_requests and len(fake.messages) == 3
    assert all(m.at > 0 for m in fake.messages)  # when each was taken, for rate checks
    fake.reset()
    assert fake.messages_refused_429 == 0
