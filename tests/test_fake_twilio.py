"""The fake Twilio: Twilio's spec fetched and cached, every request validated
against it with openapi-core, Twilio's error shape, faults, outages, latency and
signed status callbacks. Real servers and the official SDK; nothing is mocked."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import io
import json
import logging
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
from savin.dev.testing.fake_twilio import ACCOUNT, MESSAGE, MESSAGES, FakeTwilio
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
    status, body = await post(fake, {"To": TO}, path=f"/2010-04-01/Accounts/{SID}/Calls.json")
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
        MESSAGES: ["post"], MESSAGE: ["get"], ACCOUNT: ["get"]}


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
