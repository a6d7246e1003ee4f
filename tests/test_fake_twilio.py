"""The fake Twilio: validation against Twilio's published OpenAPI spec, Twilio's
error shape, faults, outages and signed status callbacks."""

from __future__ import annotations

import asyncio
import base64
import urllib.parse

import aiohttp
import pytest
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest
from twilio.request_validator import RequestValidator

from savin.testing.fake_twilio import MESSAGES, FakeTwilio
from savin.testing.twilio_spec import OperationValidator, spec_path, trimmed_spec

SID, TOKEN = "AC" + "ab" * 16, "fake-token"
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"


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


async def post(fake: FakeTwilio, form: dict, auth=AUTH, path: str = PATH) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(fake.base_url + path, data=form, headers=auth) as r:
            return r.status, await r.json()


def test_spec_is_fetched_once_and_cached():
    first = spec_path()
    mtime = first.stat().st_mtime_ns
    assert spec_path() == first and first.stat().st_mtime_ns == mtime
    assert first.stat().st_size > 1_000_000  # Twilio's whole 2010-04-01 API


@pytest.mark.parametrize("form", [
    {"To": "+15735550101", "From": "+15005550006", "Body": "hi"},
    {"To": "+15735550101", "MessagingServiceSid": "MG" + "0" * 32, "Body": "hi", "Attempt": "2"},
    {"From": "+15005550006", "Body": "no To"},
    {"To": "+15735550101", "Body": "hi", "Attempt": "twice"},
    {"To": "+15735550101", "Body": "hi", "MessagingServiceSid": "not-a-sid"},
    {"To": "+15735550101", "Body": "hi", "StatusCallback": "http://127.0.0.1:1/cb?notice_id=1", "ValidityPeriod": "x"},
])
def test_the_fast_validator_agrees_with_openapi_core(form):
    """Every request is checked by schemas compiled from the spec; openapi-core is the reference."""
    reference = OpenAPI.from_dict(trimmed_spec({MESSAGES: ["post"]}))
    body = urllib.parse.urlencode(form).encode()
    request = MockRequest("https://api.twilio.com", "post", PATH, data=body,
                          headers=AUTH,
                          content_type="application/x-www-form-urlencoded")
    try:
        reference.validate_request(request)
        reference_ok = True
    except Exception:  # noqa: BLE001 - any validation error
        reference_ok = False
    ours = OperationValidator(MESSAGES, "post").errors({"AccountSid": SID}, "application/x-www-form-urlencoded",
                                                       list(form.items()))
    assert (ours == []) == reference_ok, ours


async def test_a_request_against_the_spec_is_refused_naming_the_field(fake):
    status, body = await post(fake, {"To": "+15735550101", "Body": "hi", "From": "+15005550006", "Attempt": "x"})
    assert status == 400
    assert body["code"] == 20001 and body["status"] == 400 and "Attempt" in body["message"]
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20001"
    status, body = await post(fake, {"To": "+15735550101", "Body": "hi", "Colour": "blue"})
    assert status == 400 and "Colour" in body["message"]
    assert [reason for _, reason in fake.rejected] == [
        "Attempt: 'x' is not of type 'integer'", "Colour: not a parameter of this operation"]
    assert fake.messages == []


async def test_authentication_and_unknown_paths(fake):
    status, body = await post(fake, {"To": "+15735550101", "Body": "hi", "From": "+15005550006"},
                              auth=basic(SID, "wrong"))
    assert (status, body["code"]) == (401, 20003)
    status, body = await post(fake, {"To": "+1"}, path="/2010-04-01/Accounts/x/Calls.json")
    assert (status, body["code"]) == (404, 20404)


async def test_messages_are_recorded_and_answered_as_twilio_does(fake):
    status, body = await post(fake, {"To": "+15735550101", "Body": "hello", "From": "+15005550006"})
    assert status == 201
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert (body["status"], body["to"], body["num_segments"]) == ("queued", "+15735550101", "1")
    (m,) = fake.messages
    assert (m.sid, m.to, m.body, m.from_) == (body["sid"], "+15735550101", "hello", "+15005550006")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.base_url}/2010-04-01/Accounts/{SID}/Messages/{m.sid}.json", headers=AUTH) as r:
            assert (r.status, (await r.json())["sid"]) == (200, m.sid)


async def test_semantic_rules_beyond_the_schema(fake):
    assert (await post(fake, {"To": "+15735550101", "From": "+15005550006"}))[1]["code"] == 21602
    assert (await post(fake, {"To": "+15735550101", "Body": "hi"}))[1]["code"] == 21603


@pytest.mark.parametrize("number,code,http", [
    (n, c, {20429: 429, 20500: 500}.get(c, 400)) for n, c in FakeTwilio.FAULT_NUMBERS.items()
])
async def test_fault_numbers_answer_their_error(fake, number, code, http):
    status, body = await post(fake, {"To": number, "Body": "hi", "From": "+15005550006"})
    assert (status, body["code"], body["status"]) == (http, code, http)
    assert [f.code for f in fake.faults] == [code]


async def test_an_outage_refuses_everything_until_it_ends(fake):
    form = {"To": "+15735550101", "Body": "hi", "From": "+15005550006"}
    fake.outage(0.5, status=503)
    assert (await post(fake, form))[0] == 503
    fake.outage(0.5, status=429)
    assert (await post(fake, form))[1]["code"] == 20429
    await asyncio.sleep(0.6)
    assert (await post(fake, form))[0] == 201


async def test_latency_is_added_to_each_answer(fake):
    fake.latency = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(post(fake, {"To": f"+1573555010{i}", "Body": "hi", "From": "+15005550006"})
                           for i in range(5)))
    elapsed = loop.time() - started
    assert 0.3 <= elapsed < 1.5  # concurrent, not one after another
    assert len(fake.messages) == 5


class Receiver:
    """A status-callback endpoint that checks Twilio's signature."""

    def __init__(self):
        self.received: list[tuple[str, dict, bool]] = []

    async def __aenter__(self):
        app = web.Application()
        app.router.add_post("/status", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/status?notice_id=n-1"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()

    async def handle(self, request):
        params = dict(await request.post())
        valid = RequestValidator(TOKEN).validate(self.url, params, request.headers.get("X-Twilio-Signature", ""))
        self.received.append((params["MessageStatus"], params, valid))
        return web.Response(status=200 if valid else 403)


async def wait_received(receiver: Receiver, n: int) -> None:
    for _ in range(100):
        if len(receiver.received) >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(receiver.received)} callbacks arrived")


@pytest.mark.parametrize("out_of_order", [False, True])
async def test_signed_status_callbacks_in_twilios_order_or_reversed(fake, out_of_order):
    fake.callbacks_out_of_order = out_of_order
    async with Receiver() as receiver:
        await post(fake, {"To": "+15735550101", "Body": "hi", "From": "+15005550006", "StatusCallback": receiver.url})
        await wait_received(receiver, 2)
    statuses = [s for s, _, _ in receiver.received]
    assert statuses == (["delivered", "sent"] if out_of_order else ["sent", "delivered"])
    assert all(valid for *_, valid in receiver.received)
    params = receiver.received[0][1]
    assert params["MessageSid"] == fake.messages[0].sid and params["AccountSid"] == SID
    assert [code for *_, code in fake.callback_responses] == [200, 200]


async def test_undelivered_callbacks_carry_the_carrier_error(fake):
    number, code = next(iter(FakeTwilio.CALLBACK_OUTCOMES.items()))
    async with Receiver() as receiver:
        await post(fake, {"To": number, "Body": "hi", "From": "+15005550006", "StatusCallback": receiver.url})
        await wait_received(receiver, 2)
        final = receiver.received[-1]
        assert (final[0], final[1]["ErrorCode"]) == ("undelivered", str(code))
        # A callback signed with another token is refused by a receiver that checks.
        assert await fake.post_callback(receiver.url, {"MessageStatus": "sent"}, signature="forged") == 403
