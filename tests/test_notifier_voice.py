"""TwilioVoice through the official twilio SDK against the fake Twilio in this
process (a real HTTP server validating every request against Twilio's spec):
the call's record written (and acknowledged) before the call is
placed, the call's parameters (TwiML URL with its signed token, status
callback, machine detection), Twilio's voice error codes as savin's
failures, the calls-per-second spacing (by counting, never by timing),
the call status callbacks, the call book on the real broker, the bootstrap
wiring, and privacy."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from support import closing
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from savin.dev.broker import free_port
from savin.dev.testing.fake_twilio import Callee, CalleeKind, FakeTwilio
from savin.domain.clock import utcnow
from savin.domain.escalation import CallResult
from savin.domain.links import read_token
from savin.notifiers.base import (
    ConfigurationFault,
    DeliveryError,
    Outbound,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from savin.notifiers.pacing import Pacer
from savin.notifiers.twilio_sms import classify
from savin.notifiers.twilio_voice import (
    CALL_TOKEN,
    CALL_TTL,
    VOICE_ERRORS,
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
#: savin web's address in the calls: nobody listens there, so a call's callbacks go nowhere at once.
WEB = f"http://127.0.0.1:{free_port()}"
KEY = b"l" * 32
EVENT_ID = str(uuid.uuid4())
SECRET_WORDS = "Jonah Test Doe, offender number M O 4 7 1 1, was released"
CALLS = f"/2010-04-01/Accounts/{SID}/Calls.json"  # where Twilio's errors say they were refused


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
    """Records what the notifier puts, as the calls topic would, and when; ``fail`` makes ``put`` raise."""

    records: list[CallRecord] = field(default_factory=list)
    put_at: list[float] = field(default_factory=list)
    fail: BaseException | None = None

    async def put(self, record: CallRecord) -> None:
        if self.fail is not None:
            raise self.fail
        self.records.append(record)
        self.put_at.append(time.time())


@pytest.fixture
def book() -> Book:
    return Book()


@pytest.fixture
async def fake():
    f = await FakeTwilio(SID, TOKEN).start()
    # Nobody answers: the calls end at once, and nothing asks the (absent) web for TwiML.
    f.default_callee = Callee(CalleeKind.NO_ANSWER)
    try:
        yield f
    finally:
        await f.stop()


def notifier(sealer: Sealer, fake: FakeTwilio, book: Book, **kwargs) -> TwilioVoice:
    options = {"from_number": FROM, "calls": book, "link_key": KEY, "web_base": WEB + "/", "timeout": 2.0,
               **kwargs}
    return TwilioVoice(sealer, SID, TOKEN, base_url=fake.base_url, **options)


@pytest.fixture
async def voice(sealer, fake, book):
    async with closing(notifier(sealer, fake, book)) as n:
        yield n


# ---- a call -------------------------------------------------------------------------------------


async def test_a_call_is_booked_then_placed_with_a_signed_single_call_twiml_url(voice, fake, book, sealer):
    message = outbound(sealer)
    before = utcnow()
    receipt = await voice.send(message)
    (call,) = fake.calls
    (record,) = book.records
    assert receipt.provider == "twilio-voice" and receipt.provider_ref == call.sid and call.sid.startswith("CA")
    assert book.put_at[0] <= call.at  # the record was on the topic before Twilio was asked
    assert (call.to, call.from_, call.method) == (NUMBER, FROM, "POST")
    assert (call.machine_detection, call.timeout, call.status_callback_events) == (
        "DetectMessageEnd", 25, ("completed",))
    assert fake.rejected == []

    url = urllib.parse.urlsplit(call.url)
    assert f"{url.scheme}://{url.netloc}" == WEB and url.path.startswith("/voice/calls/") and not url.query
    token = url.path.rsplit("/", 1)[1]
    assert read_token(KEY, CALL_TOKEN, token, utcnow()) == (message.notice_id,)
    assert read_token(KEY, CALL_TOKEN, token, before + CALL_TTL + timedelta(seconds=1)) is None  # 15 minutes
    assert read_token(KEY, "unsubscribe", token, utcnow()) is None  # one purpose only

    callback = urllib.parse.urlsplit(call.status_callback)
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{WEB}/callbacks/twilio/voice"
    assert dict(urllib.parse.parse_qsl(callback.query)) == {"notice_id": message.notice_id, "registration_id": "R-V1"}
    assert call.status_callback_method == "POST"

    assert (str(record.call_id), record.registration_id, str(record.event_id), record.language) == (
        message.notice_id, "R-V1", EVENT_ID, "en")
    assert record.pin_required and record.answered_at is None
    assert before <= record.created_at and record.expires_at == record.created_at + CALL_TTL
    spoken = json.loads(sealer.open(record.content_sealed, purpose="call"))
    assert spoken == {k: v for k, v in words().__dict__.items() if k != "event_id"}
    assert SECRET_WORDS not in record.model_dump_json() and NUMBER not in record.model_dump_json()
    assert NUMBER not in call.url + call.status_callback


async def test_without_machine_detection_or_pin_the_call_says_so(sealer, fake, book):
    async with closing(notifier(sealer, fake, book, machine_detection=False, pin_required=False)) as n:
        await n.send(outbound(sealer, content=words("es-MX", "Polly.Mia")))
    (call,) = fake.calls
    assert call.machine_detection is None
    (record,) = book.records
    assert (record.pin_required, record.language) == (False, "es")


async def test_a_book_that_cannot_take_the_record_places_no_call(voice, fake, book, sealer):
    from aiokafka.errors import KafkaTimeoutError

    book.fail = KafkaTimeoutError()
    with pytest.raises(TemporaryFailure) as e:
        await voice.send(outbound(sealer))
    assert e.value.code == "calls-topic" and fake.calls == []


async def test_what_is_not_a_call_is_failed_for_good(voice, fake, sealer):
    with pytest.raises(PermanentFailure) as e:
        await voice.send(outbound(sealer, content="a text message"))
    assert e.value.code == "not-voice"
    no_event = RenderedVoice(**{**words().__dict__, "event_id": ""})
    with pytest.raises(PermanentFailure) as e:
        await voice.send(outbound(sealer, content=no_event))
    assert e.value.code == "not-a-call" and fake.calls == []


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
    (429, 20429, RateLimited, ()),
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


@pytest.mark.parametrize("number,code,kind", [
    ("+15005550001", 21217, PermanentFailure), ("+15005550002", 21214, PermanentFailure),
    ("+15005550003", 21215, PermanentFailure), ("+15005550004", 21216, PermanentFailure),
    ("+15005550429", 20429, TemporaryFailure), ("+15005550500", 20500, TemporaryFailure)])
async def test_twilios_refusals_of_a_number(voice, fake, sealer, number, code, kind):
    message = outbound(sealer, number)
    with pytest.raises(kind) as e:
        await voice.send(message)
    assert e.value.code == str(code) and message.notice_id in str(e.value) and voice.config_fault is None
    assert number not in str(e.value) and e.value.__cause__ is None and e.value.__suppress_context__


@pytest.mark.parametrize("caller_id,code", [("+15005550007", 21210), ("+15005550001", 21212)])
async def test_a_caller_id_twilio_refuses_is_a_configuration_fault_until_fixed(sealer, fake, book, caller_id, code):
    async with closing(notifier(sealer, fake, book, from_number=caller_id)) as n:
        with pytest.raises(ConfigurationFault) as e:
            await n.send(outbound(sealer))
        assert (e.value.code, e.value.fields, n.config_fault.fields) == (str(code), ("from_number",), ("from_number",))
        del fake.fail_caller_ids[caller_id]  # the operator fixes the account
        await n.send(outbound(sealer))  # a call placed again clears it
        assert n.config_fault is None


async def test_wrong_credentials_are_a_configuration_fault(sealer, fake, book):
    async with closing(TwilioVoice(sealer, SID, "not-the-token", from_number=FROM, calls=book, link_key=KEY,
                                   web_base=WEB, base_url=fake.base_url, timeout=2.0)) as n:
        with pytest.raises(ConfigurationFault) as e:
            await n.send(outbound(sealer))
        assert e.value.code == "20003" and e.value.fields == ("account_sid", "auth_token")
        await n.check()  # the SMS notifier's account check covers the account: nothing asked here


async def test_an_unreachable_twilio_is_temporary(sealer, book):
    async with closing(TwilioVoice(sealer, SID, TOKEN, from_number=FROM, calls=book, link_key=KEY, web_base=WEB,
                                   base_url=f"http://127.0.0.1:{free_port()}", timeout=2.0)) as n:
        with pytest.raises(TemporaryFailure) as e:
            await n.send(outbound(sealer))
    assert e.value.code == "connection"


async def test_no_number_or_words_reach_any_log_or_error(voice, fake, sealer, caplog):
    caplog.set_level(logging.DEBUG)
    await voice.send(outbound(sealer))
    errors = []
    for number in ("+15005550001", "+15005550429", "+15005550004"):
        with pytest.raises(DeliveryError) as e:
            await voice.send(outbound(sealer, number))
        errors.append(e.value)
    await fake.wait_calls_async(1)
    assert logging.getLogger("twilio.http_client").level == logging.WARNING
    assert len(caplog.records) >= 3
    said = [r.getMessage() for r in caplog.records] + [str(e) for e in errors]
    for text in said:
        for secret in (NUMBER, "+15005550001", "+15005550429", "+15005550004", SECRET_WORDS, "Jonah",
                       "Please call the office"):
            assert secret not in text, text


# ---- calls per second ---------------------------------------------------------------------------


async def test_a_burst_of_calls_is_spaced_and_never_refused_for_calls_per_second(sealer, fake, book):
    fake.calls_per_second = 2
    pacer = Pacer("voice", "test", 2.0)

    async def paced(n: TwilioVoice, message: Outbound):
        await pacer.acquire(urgent=True)
        return await n.send(message)

    async with closing(notifier(sealer, fake, book)) as n:
        messages = [outbound(sealer, f"+1573555{i:04d}") for i in range(5)]
        receipts = await asyncio.gather(*(paced(n, m) for m in messages))
    calls = fake.calls
    assert fake.too_many_requests == 0 and len(calls) == 5 and [r.provider_ref for r in receipts] == [
        c.sid for c in calls]
    assert [c.to for c in calls] == [f"+1573555{i:04d}" for i in range(5)]  # in the order asked

    # The same burst without the pacer: Twilio refuses what goes over its limit.
    async with closing(notifier(sealer, fake, book)) as n:
        outcomes = await asyncio.gather(*(n.send(outbound(sealer)) for _ in range(5)), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, TemporaryFailure)]
    assert fake.too_many_requests == len(refused) >= 1 and {o.code for o in refused} == {"20429"}


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
    pacer = build_dispatcher(settings).pacing.for_channel("voice")
    assert pacer is not None and pacer.schedule.limit == settings.twilio_calls_per_second
    off = Settings(_env_file=None, data_key=new_key(), twilio_voice_from="")
    assert [n.channel for n in build_dispatcher(off).notifiers if n.channel == "voice"] == []
    fault = ConfigurationFault("x", "21210", fields=("from_number",))
    assert setting_names("twilio-voice", fault) == ["SAVIN_TWILIO_VOICE_FROM"]
    assert "twilio-voice" in PROVIDERS
