"""TwilioVoice through the official twilio SDK against a Calls API in this
process: the call's record written (and acknowledged) before the call is
placed, the call's parameters (TwiML URL with its signed token, status
callback, machine detection), Twilio's voice error codes as savin's
failures, the calls-per-second spacing (by counting, never by timing),
the call status callbacks, the call book on the real broker, the bootstrap
wiring, and privacy."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from support import closing
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from savin.domain.clock import utcnow
from savin.domain.escalation import CallResult
from savin.domain.links import read_token
from savin.notifiers.base import ConfigurationFault, DeliveryError, Outbound, PermanentFailure, TemporaryFailure
from savin.notifiers.twilio_sms import classify
from savin.notifiers.twilio_voice import (
    CALL_TOKEN,
    CALL_TTL,
    VOICE_ERRORS,
    CallSpacing,
    TwilioVoice,
    VoiceCallbacks,
    answered_by_machine,
)
from savin.rendering.voice import RenderedVoice
from savin.schemas import DeliveryStatus
from savin.schemas.escalation import CallRecord
from savin.sealing import Sealer

SID, TOKEN = "AC" + "ab" * 16, "voice-notifier-token"
FROM = "+15005550006"
NUMBER = "+15735550188"
WEB = "https://notify.example.gov"
KEY = b"l" * 32
EVENT_ID = str(uuid.uuid4())
SECRET_WORDS = "Jonah Test Doe, offender number M O 4 7 1 1, was released"
CALLS = f"/2010-04-01/Accounts/{SID}/Calls.json"


def words(language: str = "en-US", voice: str = "Polly.Joanna") -> RenderedVoice:
    return RenderedVoice(intro="Hello.", pin_prompt="Your PIN, then pound.", wrong_pin="Not right.",
                         message=SECRET_WORDS, confirm_prompt="Press 1.", thanks="Recorded.",
                         machine_message="Please call the office.", goodbye="Goodbye.", language=language,
                         voice=voice, event_id=EVENT_ID)


def outbound(sealer: Sealer, address: str = NUMBER, content: object | None = None) -> Outbound:
    notice = str(uuid.uuid4())
    return Outbound(notice, "R-V1", sealer.seal(address, purpose="contact"), content or words(),
                    {"notice_id": notice, "registration_id": "R-V1"})


@dataclass
class Book:
    """Records what the notifier puts, as the calls topic would; ``fail`` makes ``put`` raise."""

    records: list[CallRecord] = field(default_factory=list)
    fail: BaseException | None = None

    async def put(self, record: CallRecord) -> None:
        if self.fail is not None:
            raise self.fail
        self.records.append(record)


@dataclass
class PlacedCall:
    form: dict[str, list[str]]
    at: float
    #: The call ids the book held when Twilio was asked: the record must come first.
    booked: list[str]

    def one(self, name: str) -> str:
        (value,) = self.form[name]
        return value


class CallsApi:
    """Twilio's Create Call, as much of it as the notifier uses: Basic auth, errors in Twilio's
    JSON shape by destination number, and a calls-per-second limit (429 / 20429) like Twilio's."""

    def __init__(self, book: Book):
        self.book = book
        self.calls: list[PlacedCall] = []
        self.faults: dict[str, tuple[int, int]] = {}  # number -> (HTTP status, Twilio code)
        self.calls_per_second: int | None = None
        self.too_many_requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def create(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return self.error(401, 20003)
        form = urllib.parse.parse_qs((await request.read()).decode())
        now = time.monotonic()
        to = form["To"][0]
        if to in self.faults:
            return self.error(*self.faults[to])
        if self.calls_per_second is not None and sum(now - c.at < 1.0 for c in self.calls) >= self.calls_per_second:
            self.too_many_requests += 1
            return self.error(429, 20429)
        self.calls.append(PlacedCall(form, now, [str(r.call_id) for r in self.book.records]))
        sid = "CA" + uuid.uuid4().hex
        return web.json_response({"sid": sid, "account_sid": SID, "status": "queued", "to": to,
                                  "from": form["From"][0], "direction": "outbound-api"}, status=201)

    @staticmethod
    def error(status: int, code: int) -> web.Response:
        return web.json_response({"code": code, "message": f"Error {code} for 'To' {NUMBER}",
                                  "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
                                 status=status)

    async def start(self) -> CallsApi:
        app = web.Application()
        app.router.add_post(CALLS, self.create)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
def book() -> Book:
    return Book()


@pytest.fixture
async def api(book):
    a = await CallsApi(book).start()
    try:
        yield a
    finally:
        await a.stop()


def notifier(sealer: Sealer, api: CallsApi, book: Book, **kwargs) -> TwilioVoice:
    options = {"from_number": FROM, "calls": book, "link_key": KEY, "web_base": WEB + "/", "timeout": 2.0,
               "calls_per_second": 1000.0, **kwargs}
    return TwilioVoice(sealer, SID, TOKEN, base_url=api.url, **options)


@pytest.fixture
async def voice(sealer, api, book):
    async with closing(notifier(sealer, api, book)) as n:
        yield n


# ---- a call -------------------------------------------------------------------------------------


async def test_a_call_is_booked_then_placed_with_a_signed_single_call_twiml_url(voice, api, book, sealer):
    message = outbound(sealer)
    before = utcnow()
    receipt = await voice.send(message)
    (call,) = api.calls
    (record,) = book.records
    assert receipt.provider == "twilio-voice" and receipt.provider_ref.startswith("CA")
    assert call.booked == [message.notice_id]  # the record was on the topic before Twilio was asked
    assert (call.one("To"), call.one("From"), call.one("Method")) == (NUMBER, FROM, "POST")
    assert (call.one("MachineDetection"), call.one("Timeout"), call.form["StatusCallbackEvent"]) == (
        "DetectMessageEnd", "25", ["completed"])

    url = urllib.parse.urlsplit(call.one("Url"))
    assert f"{url.scheme}://{url.netloc}" == WEB and url.path.startswith("/voice/calls/") and not url.query
    token = url.path.rsplit("/", 1)[1]
    assert read_token(KEY, CALL_TOKEN, token, utcnow()) == (message.notice_id,)
    assert read_token(KEY, CALL_TOKEN, token, before + CALL_TTL + dt_second()) is None  # 15 minutes
    assert read_token(KEY, "unsubscribe", token, utcnow()) is None  # one purpose only

    callback = urllib.parse.urlsplit(call.one("StatusCallback"))
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{WEB}/callbacks/twilio/voice"
    assert dict(urllib.parse.parse_qsl(callback.query)) == {"notice_id": message.notice_id, "registration_id": "R-V1"}
    assert call.one("StatusCallbackMethod") == "POST"

    assert (str(record.call_id), record.registration_id, str(record.event_id), record.language) == (
        message.notice_id, "R-V1", EVENT_ID, "en")
    assert record.pin_required and record.answered_at is None
    assert before <= record.created_at and record.expires_at == record.created_at + CALL_TTL
    spoken = json.loads(sealer.open(record.content_sealed, purpose="call"))
    assert spoken == {k: v for k, v in words().__dict__.items() if k != "event_id"}
    assert SECRET_WORDS not in record.model_dump_json() and NUMBER not in record.model_dump_json()
    assert NUMBER not in call.one("Url") + call.one("StatusCallback")


def dt_second():
    from datetime import timedelta

    return timedelta(seconds=1)


async def test_without_machine_detection_or_pin_the_call_says_so(sealer, api, book):
    async with closing(notifier(sealer, api, book, machine_detection=False, pin_required=False)) as n:
        await n.send(outbound(sealer, content=words("es-MX", "Polly.Mia")))
    (call,) = api.calls
    assert "MachineDetection" not in call.form
    (record,) = book.records
    assert (record.pin_required, record.language) == (False, "es")


async def test_a_book_that_cannot_take_the_record_places_no_call(voice, api, book, sealer):
    from aiokafka.errors import KafkaTimeoutError

    book.fail = KafkaTimeoutError()
    with pytest.raises(TemporaryFailure) as e:
        await voice.send(outbound(sealer))
    assert e.value.code == "calls-topic" and api.calls == []


async def test_what_is_not_a_call_is_failed_for_good(voice, api, sealer):
    with pytest.raises(PermanentFailure) as e:
        await voice.send(outbound(sealer, content="a text message"))
    assert e.value.code == "not-voice"
    no_event = RenderedVoice(**{**words().__dict__, "event_id": ""})
    with pytest.raises(PermanentFailure) as e:
        await voice.send(outbound(sealer, content=no_event))
    assert e.value.code == "not-a-call" and api.calls == []


def test_a_caller_id_is_required(sealer, book):
    with pytest.raises(ValueError, match="From"):
        TwilioVoice(sealer, SID, TOKEN, from_number="", calls=book, link_key=KEY, web_base=WEB)


# ---- Twilio's error codes -----------------------------------------------------------------------


def rest_error(status: int, code: int | None) -> TwilioRestException:
    return TwilioRestException(status, f"https://api.twilio.com{CALLS}",
                               msg=f"Unable to create record: The phone number {NUMBER} is not valid", code=code)


@pytest.mark.parametrize("status,code,kind,fields", [
    (400, 21211, PermanentFailure, ()),
    (400, 21214, PermanentFailure, ()),
    (400, 21215, PermanentFailure, ()),
    (400, 21216, PermanentFailure, ()),
    (400, 21217, PermanentFailure, ()),
    (400, 13223, PermanentFailure, ()),
    (400, 13224, PermanentFailure, ()),
    (400, 21210, ConfigurationFault, ("from_number",)),
    (400, 21212, ConfigurationFault, ("from_number",)),
    (400, 21205, ConfigurationFault, ("web_base",)),
    (403, 10001, ConfigurationFault, ("account_sid",)),
    (403, 10005, ConfigurationFault, ("account_sid",)),
    (401, 20003, ConfigurationFault, ("account_sid", "auth_token")),
    (401, None, ConfigurationFault, ("account_sid", "auth_token")),
    (429, 20429, TemporaryFailure, ()),
    (400, 10004, TemporaryFailure, ()),
    (500, 20500, TemporaryFailure, ()),
    (503, 20503, TemporaryFailure, ()),
    (502, None, TemporaryFailure, ()),
    (400, 21999, PermanentFailure, ()),  # another 4xx: retrying cannot help
])
def test_the_voice_error_map(status, code, kind, fields):
    failure = classify(rest_error(status, code), "n-9", VOICE_ERRORS)
    assert type(failure) is kind and not failure.suppress
    assert getattr(failure, "fields", ()) == fields
    assert "n-9" in str(failure) and NUMBER not in str(failure) and "Accounts" not in str(failure)


@pytest.mark.parametrize("status,code,kind", [
    (400, 21217, PermanentFailure), (429, 20429, TemporaryFailure), (400, 21210, ConfigurationFault)])
async def test_twilios_refusals_through_the_sdk(voice, api, sealer, status, code, kind):
    api.faults[NUMBER] = (status, code)
    message = outbound(sealer)
    with pytest.raises(kind) as e:
        await voice.send(message)
    assert e.value.code == str(code) and message.notice_id in str(e.value)
    assert NUMBER not in str(e.value) and e.value.__cause__ is None and e.value.__suppress_context__
    if kind is ConfigurationFault:
        assert voice.config_fault is not None and voice.config_fault.fields == ("from_number",)
        del api.faults[NUMBER]
        await voice.send(outbound(sealer))  # a call placed again clears it
        assert voice.config_fault is None


async def test_wrong_credentials_are_a_configuration_fault(sealer, api, book):
    async with closing(TwilioVoice(sealer, SID, "not-the-token", from_number=FROM, calls=book, link_key=KEY,
                                   web_base=WEB, base_url=api.url, timeout=2.0)) as n:
        with pytest.raises(ConfigurationFault) as e:
            await n.send(outbound(sealer))
        assert e.value.code == "20003" and e.value.fields == ("account_sid", "auth_token")
        await n.check()  # the SMS notifier's account check covers the account: nothing asked here


async def test_an_unreachable_twilio_is_temporary(sealer, book):
    from savin.dev.broker import free_port

    async with closing(TwilioVoice(sealer, SID, TOKEN, from_number=FROM, calls=book, link_key=KEY, web_base=WEB,
                                   base_url=f"http://127.0.0.1:{free_port()}", timeout=2.0)) as n:
        with pytest.raises(TemporaryFailure) as e:
            await n.send(outbound(sealer))
    assert e.value.code == "connection"


async def test_no_number_or_words_reach_any_log_or_error(voice, api, sealer, caplog):
    caplog.set_level(logging.DEBUG)
    await voice.send(outbound(sealer))
    errors = []
    for code, status in ((21217, 400), (20429, 429), (21210, 400)):
        api.faults[NUMBER] = (status, code)
        with pytest.raises(DeliveryError) as e:
            await voice.send(outbound(sealer))
        errors.append(e.value)
    assert logging.getLogger("twilio.http_client").level == logging.WARNING
    assert len(caplog.records) >= 3
    said = [r.getMessage() for r in caplog.records] + [str(e) for e in errors]
    for text in said:
        for secret in (NUMBER, SECRET_WORDS, "Jonah", "Please call the office"):
            assert secret not in text, text


# ---- calls per second ---------------------------------------------------------------------------


def test_the_spacing_gives_each_call_the_next_slot_in_order():
    now = [100.0]
    spacing = CallSpacing(2.0, margin=0.0, max_wait=2.0, clock=lambda: now[0])
    assert [spacing.reserve() for _ in range(5)] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert spacing.reserve() is None  # 2.5 s away: more than max_wait, and no slot is taken
    now[0] += 10
    assert spacing.reserve() == 0.0 and spacing.reserve() == 0.5  # idle time is not saved up as a burst


def test_the_spacing_keeps_a_margin_and_refuses_nonsense():
    assert CallSpacing(1.0).interval == pytest.approx(1.05)
    with pytest.raises(ValueError):
        CallSpacing(0)


async def test_waiting_callers_sleep_for_their_own_slot():
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    spacing = CallSpacing(4.0, margin=0.0, clock=lambda: 0.0, sleep=sleep)
    assert await asyncio.gather(*(spacing.wait() for _ in range(4))) == [True] * 4
    assert slept == [0.25, 0.5, 0.75]  # the first goes at once


async def test_a_burst_of_calls_is_spaced_and_never_refused_for_calls_per_second(sealer, api, book):
    api.calls_per_second = 2
    async with closing(notifier(sealer, api, book, calls_per_second=2.0)) as n:
        messages = [outbound(sealer, f"+1573555{i:04d}") for i in range(5)]
        receipts = await asyncio.gather(*(n.send(m) for m in messages))
    assert api.too_many_requests == 0 and len(api.calls) == 5 and all(r.provider_ref for r in receipts)
    assert [c.one("To") for c in api.calls] == [f"+1573555{i:04d}" for i in range(5)]  # in the order asked


async def test_a_burst_past_what_the_limit_starts_in_time_is_deferred_not_sent(sealer, api, book):
    async with closing(notifier(sealer, api, book, calls_per_second=1.0, max_wait=0.5)) as n:
        first = await n.send(outbound(sealer))
        with pytest.raises(TemporaryFailure) as e:
            await n.send(outbound(sealer))
    assert first.provider_ref and e.value.code == "calls-per-second" and len(api.calls) == 1


# ---- call status callbacks ----------------------------------------------------------------------

NOTICE = str(uuid.uuid4())
CALLBACK = f"{WEB}/callbacks/twilio/voice"
QUERY = {"notice_id": NOTICE, "registration_id": "R-V1"}
CALLBACK_URL = f"{CALLBACK}?" + urllib.parse.urlencode(QUERY)


def call_form(status: str = "completed", **extra: str) -> dict[str, str]:
    return {"CallSid": "CA" + "c" * 32, "AccountSid": SID, "CallStatus": status, "CallDuration": "31",
            "To": NUMBER, "From": FROM, "Direction": "outbound-api", "ApiVersion": "2010-04-01", **extra}


def signed(form: dict[str, str], url: str = CALLBACK_URL, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


@pytest.mark.parametrize("status,answered_by,delivery,result", [
    ("completed", "human", DeliveryStatus.DELIVERED, CallResult.ANSWERED),
    ("completed", "unknown", DeliveryStatus.DELIVERED, CallResult.ANSWERED),
    ("completed", None, DeliveryStatus.DELIVERED, CallResult.ANSWERED),
    ("completed", "machine_start", DeliveryStatus.DELIVERED, CallResult.MACHINE),
    ("completed", "machine_end_beep", DeliveryStatus.DELIVERED, CallResult.MACHINE),
    ("completed", "machine_end_silence", DeliveryStatus.DELIVERED, CallResult.MACHINE),
    ("completed", "machine_end_other", DeliveryStatus.DELIVERED, CallResult.MACHINE),
    ("completed", "fax", DeliveryStatus.DELIVERED, CallResult.MACHINE),
    ("busy", None, DeliveryStatus.UNDELIVERED, CallResult.UNANSWERED),
    ("no-answer", None, DeliveryStatus.UNDELIVERED, CallResult.UNANSWERED),
    ("canceled", None, DeliveryStatus.UNDELIVERED, CallResult.UNANSWERED),
    ("failed", None, DeliveryStatus.FAILED, CallResult.UNANSWERED),
])
def test_a_signed_call_callback_says_what_the_call_came_to(status, answered_by, delivery, result):
    callbacks = VoiceCallbacks(TOKEN, CALLBACK)
    form = call_form(status, **({"AnsweredBy": answered_by} if answered_by else {}))
    verdict = callbacks.read(CALLBACK_URL, form, QUERY, signed(form))
    r = verdict.result
    assert verdict.outcome == "accepted" and r is not None
    assert (str(r.notice_id), r.registration_id, r.status, r.call_result, r.source, r.provider, r.provider_ref) == (
        NOTICE, "R-V1", delivery, result, "callback", "twilio-voice", form["CallSid"])
    assert r.channel.value == "voice" and NUMBER not in r.model_dump_json()


def test_forged_replayed_unknown_and_ignored_call_callbacks():
    callbacks = VoiceCallbacks(TOKEN, CALLBACK)
    form = call_form()
    assert callbacks.read(CALLBACK_URL, form, QUERY, signed(form, token="forged")).outcome == "forged"
    assert callbacks.read(CALLBACK_URL, {**form, "AnsweredBy": "machine_start"}, QUERY, signed(form)).outcome == (
        "forged")
    assert callbacks.read(CALLBACK_URL, form, QUERY, signed(form)).outcome == "accepted"
    assert callbacks.read(CALLBACK_URL, form, QUERY, signed(form)).outcome == "replayed"
    ringing = call_form("ringing")
    assert callbacks.read(CALLBACK_URL, ringing, QUERY, signed(ringing)).outcome == "ignored"
    bare = call_form("busy")
    assert callbacks.read(CALLBACK, bare, {}, signed(bare, url=CALLBACK)).outcome == "unknown-notice"


def test_machines_and_faxes_are_told_from_people():
    assert [answered_by_machine(v) for v in ("machine_start", "machine_end_beep", "fax")] == [True] * 3
    assert [answered_by_machine(v) for v in ("human", "unknown", "", None)] == [False] * 4


# ---- the call book and the wiring ---------------------------------------------------------------


@pytest.mark.e2e
async def test_the_call_book_puts_each_record_on_its_registrations_partition(kafka_bootstrap, namespace, sealer):
    from savin.ops.reading import read_topic
    from savin.settings import Settings
    from savin.streams.calls import CallBook
    from savin.topics import Topics, ensure_topics, partition_for

    settings = Settings(_env_file=None, kafka_bootstrap=kafka_bootstrap, namespace=namespace)
    topics = Topics(settings)
    await ensure_topics(kafka_bootstrap, topics.specs())
    calls = CallBook(kafka_bootstrap, topics.calls, settings.partitions)
    now = utcnow()
    records = [CallRecord(call_id=uuid.uuid4(), registration_id=f"R-B{i}", event_id=uuid.UUID(EVENT_ID),
                          language="en", content_sealed=sealer.seal("{}", purpose="call"), created_at=now,
                          expires_at=now + CALL_TTL) for i in range(6)]
    try:
        for r in records:
            await calls.put(r)  # returns once Kafka has it
    finally:
        await calls.stop()
    found = {r.key.decode(): r async for r in read_topic(kafka_bootstrap, topics.calls)}
    assert set(found) == {str(r.call_id) for r in records}
    for r in records:
        got = found[str(r.call_id)]
        assert got.partition == partition_for(r.registration_id.encode(), settings.partitions)
        assert CallRecord.model_validate_json(got.value) == r


def test_the_worker_gets_the_voice_notifier_when_a_caller_id_is_set():
    from savin.bootstrap import PROVIDERS, build_dispatcher, setting_names
    from savin.sealing import new_key
    from savin.settings import Settings

    settings = Settings(_env_file=None, data_key=new_key(), public_url="https://notify.example.gov/")
    (n,) = [n for n in build_dispatcher(settings).notifiers if n.channel == "voice"]
    assert isinstance(n, TwilioVoice) and n.provider == "twilio-voice"
    assert n.twiml_url("c-1").startswith("https://notify.example.gov/voice/calls/")
    assert n.callback_url({"notice_id": "x"}) == "https://notify.example.gov/callbacks/twilio/voice?notice_id=x"
    assert n.spacing.interval == pytest.approx(1.05 / settings.twilio_calls_per_second)
    off = Settings(_env_file=None, data_key=new_key(), twilio_voice_from="")
    assert [n.channel for n in build_dispatcher(off).notifiers if n.channel == "voice"] == []
    fault = ConfigurationFault("x", "21210", fields=("from_number",))
    assert setting_names("twilio-voice", fault) == ["SAVIN_TWILIO_VOICE_FROM"]
    assert "twilio-voice" in PROVIDERS
