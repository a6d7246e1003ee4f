"""The TwiML savin web serves during a notice's call, on the real broker: the
portal's app in this process, a call's record put on the calls topic as the
worker's notifier puts it, and Twilio's requests played against it, signed
as Twilio signs them. A person with the right PIN hears the notice in the
registration's language and confirms it with 1 (an acknowledgement on its
topic); an answering machine, wrong PINs, a registration without a PIN or
locked, a second fetch, and a forged or expired link never hear a word of
the notice."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta

import httpx
import pytest
from support import event
from twilio.request_validator import RequestValidator

from savin.domain import verification as rules
from savin.domain.clock import utcnow
from savin.domain.escalation import CallResult
from savin.domain.links import sign_token
from savin.notifiers.base import Outbound
from savin.notifiers.twilio_voice import CALL_TOKEN, TwilioVoice
from savin.ops.reading import read_topic
from savin.rendering import Renderer
from savin.rendering.voice import RenderedVoice, spell
from savin.schemas import DeliveryResult, DeliveryStatus, Registration
from savin.schemas.consent import Attempts
from savin.schemas.escalation import AckChannel, Acknowledgement, CallRecord
from savin.schemas.registration import Actor
from savin.sealing import seal_registration
from savin.streams.calls import CallBook
from savin.topics import partition_for
from savin.web.portal.app import create_app
from savin.web.portal.voice import HEARINGS, MOST_HEARINGS, PIN_TRIES, Step

pytestmark = pytest.mark.e2e

BASE = "http://testserver"
PIN = "2468"
NAME = "Jonah Test Doe"
OFFENDER = "MO-4711"
FROM = "+15005550006"


@pytest.fixture
async def portal(stack):
    """The portal's app as ``savin web`` runs it (its topics made, every view), its store in memory."""
    stack.worker_env["SAVIN_STORE"] = "memory"
    s = stack.settings()
    app = create_app(s)
    async with app.router.lifespan_context(app):
        portal = app.state.portal
        await asyncio.wait_for(portal.views.ready.wait(), 60)
        portal.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        portal.book = CallBook(s.kafka_bootstrap, portal.topics.calls, s.partitions)
        try:
            yield portal
        finally:
            await portal.book.stop()
            await portal.http.aclose()


async def register(portal, rid: str, *, language: str = "en", pin: str | None = PIN) -> None:
    reg = Registration.model_validate_json(json.dumps({
        "registration_id": rid, "offender_id": OFFENDER, "language": language, "pin": pin,
        "contacts": [{"channel": "voice", "address": "+15735550140", "verified": True}]}))
    await portal.commands.save_registration(seal_registration(reg, portal.sealer, utcnow(), changed_by=Actor.PORTAL))


async def lock_pins(portal, rid: str) -> None:
    """The registration's PIN sign-in locked, as ten wrong PINs leave it."""
    await portal.commands.save_attempts(Attempts(key=rules.pin_key(rid), at=(),
                                                 locked_until=utcnow() + rules.PIN_LOCKOUT))


async def place(portal, rid: str, *, language: str = "en", pin_required: bool = True,
                event_type: str = "RELEASED") -> tuple[str, CallRecord, RenderedVoice]:
    """A call's record on the calls topic, as the worker's notifier writes it: (TwiML URL, record, words)."""
    voice = TwilioVoice(portal.sealer, portal.settings.twilio_account_sid, "unused", from_number=FROM,
                        calls=portal.book, link_key=portal.link_key, web_base=BASE, pin_required=pin_required)
    words = Renderer().render(event(event_type, OFFENDER), "voice", language, "America/Chicago")
    notice = str(uuid.uuid4())
    record = voice.record(Outbound(notice, rid, portal.sealer.seal("+15735550140", "contact"), words))
    await portal.book.put(record)
    return voice.twiml_url(notice), record, words


class Call:
    """Twilio's side of one call: each TwiML request signed with the account's token."""

    def __init__(self, portal, answered_by: str | None = "human"):
        self.http: httpx.AsyncClient = portal.http
        self.validator = RequestValidator(portal.settings.twilio_auth_token.get_secret_value())
        self.sid = "CA" + uuid.uuid4().hex
        self.account = portal.settings.twilio_account_sid
        self.answered_by = answered_by
        self.url = ""
        self.bodies: list[str] = []

    def form(self, **extra: str) -> dict[str, str]:
        form = {"CallSid": self.sid, "AccountSid": self.account, "From": FROM, "To": "+15735550140",
                "CallStatus": "in-progress", "Direction": "outbound-api", "ApiVersion": "2010-04-01",
                "Caller": FROM, "Called": "+15735550140", **extra}
        if self.answered_by:
            form["AnsweredBy"] = self.answered_by
        return form

    async def post(self, url: str, *, signature: str | None = None, **extra: str) -> httpx.Response:
        url = urllib.parse.urljoin(self.url or BASE, url)
        form = self.form(**extra)
        signature = self.validator.compute_signature(url, form) if signature is None else signature
        return await self.http.post(url, data=form, headers={"X-Twilio-Signature": signature})

    async def fetch(self, url: str, **extra: str) -> ET.Element:
        """The TwiML at ``url`` (resolved against the last document's URL, as Twilio resolves it)."""
        response = await self.post(url, **extra)
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
        self.url = urllib.parse.urljoin(self.url or BASE, url)
        self.bodies.append(response.text)
        root = ET.fromstring(response.text)
        assert root.tag == "Response"
        return root

    async def gather(self, root: ET.Element, digits: str) -> ET.Element:
        (gather,) = root.iter("Gather")
        return await self.fetch(gather.get("action"), Digits=digits)

    async def redirect(self, root: ET.Element) -> ET.Element:
        (redirect,) = root.iter("Redirect")
        return await self.fetch(redirect.text)


def said(root: ET.Element) -> list[str]:
    return [s.text or "" for s in root.iter("Say")]


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


def hung_up_silently(root: ET.Element) -> bool:
    return verbs(root) == ["Hangup"]


def assert_nothing_of_the_notice(call: Call, words: RenderedVoice) -> None:
    for body in call.bodies:
        for secret in (NAME, "Doe", spell(OFFENDER), words.message, words.message[:40], words.confirm_prompt):
            assert secret not in body, body


async def held(portal, record: CallRecord) -> CallRecord:
    """The call's record once this process's view holds it."""
    for _ in range(100):
        if (found := portal.views.call(str(record.call_id))) is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("the view never got the call's record")


async def acknowledgements(portal) -> list:
    return [r async for r in read_topic(portal.settings.kafka_bootstrap, portal.topics.acknowledgements)]


# ---- a person ------------------------------------------------------------------------------------


@pytest.mark.parametrize("language,voice", [("en", "Polly.Joanna"), ("es", "Polly.Mia")])
async def test_the_right_pin_hears_the_notice_in_the_registrations_language_and_1_confirms_it(
        portal, language, voice):
    rid = f"R-VOICE-{language.upper()}"
    await register(portal, rid, language=language)
    url, record, words = await place(portal, rid, language=language)
    assert NAME in words.message  # the words of this notice, to look for where they must not be
    call = Call(portal)

    root = await call.fetch(url)
    assert said(root) == [words.intro, words.pin_prompt] and verbs(root) == ["Say", "Gather", "Redirect"]
    (gather,) = root.iter("Gather")
    assert (gather.get("input"), gather.get("finishOnKey"), gather.get("method")) == ("dtmf", "#", "POST")
    for say in root.iter("Say"):
        assert (say.get("voice"), say.get("language")) == (voice, words.language)
    assert_nothing_of_the_notice(call, words)  # nothing before the PIN

    root = await call.gather(root, PIN)
    assert said(root) == [words.message, words.confirm_prompt] and verbs(root) == ["Gather", "Redirect"]
    (gather,) = root.iter("Gather")
    assert (gather.get("numDigits"), gather.get("input")) == ("1", "dtmf")
    assert {(s.get("voice"), s.get("language")) for s in root.iter("Say")} == {(voice, words.language)}
    assert PIN not in "".join(call.bodies)

    root = await call.gather(root, "1")
    assert said(root) == [words.thanks, words.goodbye] and verbs(root) == ["Say", "Say", "Hangup"]
    (ack,) = [r for r in await acknowledgements(portal) if r.key == rid.encode()]
    a = Acknowledgement.model_validate_json(ack.value)
    assert (a.registration_id, a.event_id, a.channel, a.notice_id) == (rid, record.event_id, AckChannel.VOICE,
                                                                       record.call_id)
    assert ack.partition == partition_for(rid.encode(), portal.topics.partitions)
    assert portal.views.call(str(record.call_id)).answered_at is not None
    assert portal.views.attempts(rules.pin_key(rid)) is None  # nothing wrong to count


async def test_silence_says_the_notice_again_then_goodbye_and_2_repeats_it_a_bounded_number_of_times(portal):
    await register(portal, "R-VOICE-REPEAT")
    url, _, words = await place(portal, "R-VOICE-REPEAT")
    call = Call(portal)
    root = await call.gather(await call.fetch(url), PIN)
    for _ in range(HEARINGS - 1):
        assert verbs(root) == ["Gather", "Redirect"]
        root = await call.redirect(root)  # nobody pressed anything: Twilio goes on to the Redirect
        assert said(root)[:2] == [words.message, words.confirm_prompt]
    assert verbs(root) == ["Gather", "Say", "Hangup"] and said(root)[-1] == words.goodbye
    root = await call.gather(root, "7")  # not a choice: the prompt again
    assert said(root) == [words.confirm_prompt, words.goodbye] and verbs(root) == ["Gather", "Say", "Hangup"]
    heard = HEARINGS
    while said(root := await call.gather(root, "2")) != [words.goodbye]:
        heard += 1
        assert said(root) == [words.message, words.confirm_prompt, words.goodbye]
    assert heard == MOST_HEARINGS and verbs(root) == ["Say", "Hangup"]
    assert await acknowledgements(portal) == []


async def test_without_a_pin_asked_for_the_notice_follows_the_introduction(portal):
    await register(portal, "R-VOICE-NOPIN-ASKED", pin=None)
    url, _, words = await place(portal, "R-VOICE-NOPIN-ASKED", pin_required=False)
    root = await Call(portal).fetch(url)
    assert said(root) == [words.intro, words.message, words.confirm_prompt]


# ---- never a word of the notice --------------------------------------------------------------------


@pytest.mark.parametrize("answered_by", ["machine_end_beep", "machine_start", "machine_end_silence", "fax"])
async def test_an_answering_machine_hears_only_the_neutral_message(portal, answered_by):
    await register(portal, "R-VOICE-AM")
    url, _, words = await place(portal, "R-VOICE-AM")
    call = Call(portal, answered_by=answered_by)
    root = await call.fetch(url)
    assert said(root) == [words.machine_message] and verbs(root) == ["Say", "Hangup"]
    assert_nothing_of_the_notice(call, words)
    assert hung_up_silently(await call.fetch(url))  # and the link is spent


async def test_three_wrong_pins_end_the_call_with_the_neutral_message_and_count_toward_the_lockout(portal):
    await register(portal, "R-VOICE-WRONG", language="es")
    url, _, words = await place(portal, "R-VOICE-WRONG", language="es")
    call = Call(portal)
    root = await call.fetch(url)
    for n in range(1, PIN_TRIES):
        root = await call.gather(root, "1357")
        assert said(root) == [words.wrong_pin] and verbs(root) == ["Gather", "Redirect"]
        assert len(portal.views.attempts(rules.pin_key("R-VOICE-WRONG")).at) == n
    root = await call.gather(root, "1357")
    assert said(root) == [words.machine_message] and verbs(root) == ["Say", "Hangup"]
    assert len(portal.views.attempts(rules.pin_key("R-VOICE-WRONG")).at) == PIN_TRIES
    assert_nothing_of_the_notice(call, words)
    assert "1357" not in "".join(call.bodies)


async def test_silence_at_the_pin_prompt_asks_again_and_is_not_counted_as_a_wrong_pin(portal):
    await register(portal, "R-VOICE-SILENT")
    url, _, words = await place(portal, "R-VOICE-SILENT")
    call = Call(portal)
    root = await call.fetch(url)
    for _ in range(PIN_TRIES - 1):
        root = await call.redirect(root)  # the Gather timed out: Twilio goes on to the Redirect
        assert said(root) == [words.pin_prompt]
    root = await call.redirect(root)
    assert said(root) == [words.machine_message]
    assert portal.views.attempts(rules.pin_key("R-VOICE-SILENT")) is None
    assert_nothing_of_the_notice(call, words)


@pytest.mark.parametrize("case", ["no PIN", "locked", "locked during the call"])
async def test_a_registration_without_a_pin_or_locked_gets_only_the_neutral_message(portal, case):
    rid = "R-VOICE-" + case.replace(" ", "-").upper()
    await register(portal, rid, pin=None if case == "no PIN" else PIN)
    if case == "locked":
        await lock_pins(portal, rid)
    url, _, words = await place(portal, rid)
    call = Call(portal)
    root = await call.fetch(url)
    if case == "locked during the call":
        assert said(root) == [words.intro, words.pin_prompt]
        await lock_pins(portal, rid)  # wrong PINs at the portal's sign-in meanwhile
        root = await call.gather(root, PIN)  # even the right PIN is refused now
    assert said(root) == [words.machine_message] and verbs(root) == ["Say", "Hangup"]
    assert_nothing_of_the_notice(call, words)


async def test_the_link_works_once_and_forged_expired_or_borrowed_links_get_a_bare_hangup(portal):
    await register(portal, "R-VOICE-ONCE")
    url, record, words = await place(portal, "R-VOICE-ONCE")
    first = Call(portal)
    root = await first.fetch(url)
    assert said(root)[0] == words.intro

    second = Call(portal)
    assert hung_up_silently(await second.fetch(url))  # a second fetch, even as another call

    expired = sign_token(portal.link_key, CALL_TOKEN, (str(record.call_id),), utcnow() - timedelta(seconds=1))
    other_purpose = sign_token(portal.link_key, "unsubscribe", (str(record.call_id),), utcnow() + timedelta(hours=1))
    unknown = sign_token(portal.link_key, CALL_TOKEN, (str(uuid.uuid4()),), utcnow() + timedelta(minutes=5))
    for token in (expired, other_purpose, unknown, url.rsplit("/", 1)[1][:-2], "not-a-token"):
        assert hung_up_silently(await second.fetch(f"/voice/calls/{token}"))

    # The first call's next step, taken by another call: nothing.
    (gather,) = root.iter("Gather")
    second.url = first.url
    assert hung_up_silently(await second.fetch(gather.get("action"), Digits=PIN))
    # A step token that was never signed, or that names a stage it was not given.
    forged = Step(str(record.call_id), first.sid, "repeat").token(b"x" * 32, utcnow())
    assert hung_up_silently(await first.fetch(f"/voice/steps/{forged}"))
    assert_nothing_of_the_notice(second, words)
    assert_nothing_of_the_notice(first, words)


async def test_requests_twilio_did_not_sign_are_refused(portal):
    await register(portal, "R-VOICE-FORGED")
    url, record, _ = await place(portal, "R-VOICE-FORGED")
    call = Call(portal)
    step = Step(str(record.call_id), call.sid, "repeat").token(portal.link_key, utcnow())
    for path in (url, f"/voice/steps/{step}", "/callbacks/twilio/voice?notice_id=x&registration_id=y"):
        for signature in ("", "bm90IGEgc2lnbmF0dXJl"):
            response = await call.post(path, signature=signature)
            assert response.status_code == 403 and "<Say" not in response.text
    assert (await held(portal, record)).answered_at is None  # the link is not spent by a forgery
    assert said(await call.fetch(url))  # and still works for Twilio


# ---- the call's status callback -------------------------------------------------------------------


async def test_a_call_status_callback_is_published_on_delivery_results(portal):
    notice = str(uuid.uuid4())
    call = Call(portal, answered_by="machine_end_beep")
    path = "/callbacks/twilio/voice?" + urllib.parse.urlencode({"notice_id": notice, "registration_id": "R-VOICE-CB"})
    response = await call.post(path, CallStatus="completed", CallDuration="42")
    assert response.status_code == 200 and response.json() == {"recorded": True}
    assert (await call.post(path, CallStatus="completed", CallDuration="42")).status_code == 409  # a replay
    results = [DeliveryResult.model_validate_json(r.value)
               async for r in read_topic(portal.settings.kafka_bootstrap, portal.topics.delivery_results)
               if r.key == b"R-VOICE-CB"]
    (r,) = results
    assert (str(r.notice_id), r.status, r.call_result, r.provider, r.provider_ref) == (
        notice, DeliveryStatus.DELIVERED, CallResult.MACHINE, "twilio-voice", call.sid)


# ---- end to end: the fake Twilio places the calls, savin web serves them ------------------------

#: PINs no log line holds by chance.
CALL_PIN = "739158"
WRONG_PINS = ("864209", "503718", "290467")


async def test_calls_placed_through_the_fake_twilio_are_served_by_savin_web(stack):
    from support import registration

    from savin.bootstrap import build_notifiers, build_sealer
    from savin.dev.testing.fake_twilio import Callee, CalleeKind

    await stack.import_registrations([
        registration("R-CALL-EN", "O-CALL", sms="+13145550101", pin=CALL_PIN),
        registration("R-CALL-ES", "O-CALL", sms="+13145550102", pin=CALL_PIN, language="es"),
        registration("R-CALL-AM", "O-CALL", sms="+13145550103", pin=CALL_PIN),
        registration("R-CALL-NA", "O-CALL", sms="+13145550104", pin=CALL_PIN),
    ])
    web = stack.start_web()  # restores the registrations before it is ready
    fake = stack.twilio
    fake.callees.update({
        "+13145550101": Callee(CalleeKind.PERSON, digits=(f"{CALL_PIN}#", "1")),
        "+13145550102": Callee(CalleeKind.PERSON, digits=tuple(f"{p}#" for p in WRONG_PINS)),
        "+13145550103": Callee(CalleeKind.MACHINE),
        "+13145550104": Callee(CalleeKind.NO_ANSWER),
    })
    settings = stack.settings()
    sealer = build_sealer(settings)
    (voice,) = [n for n in build_notifiers(settings, sealer) if n.channel == "voice"]  # as the worker builds it
    renderer = Renderer()
    placed = {}
    try:
        for rid, number, language in (("R-CALL-EN", "+13145550101", "en"), ("R-CALL-ES", "+13145550102", "es"),
                                      ("R-CALL-AM", "+13145550103", "en"), ("R-CALL-NA", "+13145550104", "en")):
            words = renderer.render(event("ESCAPED", "O-CALL"), "voice", language, "America/Chicago")
            notice = str(uuid.uuid4())
            receipt = await voice.send(Outbound(notice, rid, sealer.seal(number, "contact"), words,
                                                {"notice_id": notice, "registration_id": rid}))
            placed[rid] = (receipt.provider_ref, notice, words)
        calls = {c.sid: c for c in await fake.wait_calls_async(4, 60)}
    finally:
        await voice.close()
    assert fake.too_many_requests == 0 and fake.rejected == []

    def call_of(rid):
        sid, notice, words = placed[rid]
        call = calls[sid]
        assert call.errors == [] and set(call.http) <= {200}, (call.errors, call.http)
        return call, notice, words

    en, en_notice, en_words = call_of("R-CALL-EN")
    assert [s.text for s in en.said] == [en_words.intro, en_words.pin_prompt, en_words.message,
                                         en_words.confirm_prompt, en_words.thanks, en_words.goodbye]
    assert {(s.voice, s.language) for s in en.said} == {("Polly.Joanna", "en-US")}
    assert en.digits == [CALL_PIN, "1"] and en.answered_by == "human"

    es, _, es_words = call_of("R-CALL-ES")
    assert [s.text for s in es.said] == [es_words.intro, es_words.pin_prompt, es_words.wrong_pin,
                                         es_words.wrong_pin, es_words.machine_message]
    assert {(s.voice, s.language) for s in es.said} == {("Polly.Mia", "es-MX")}

    machine, _, am_words = call_of("R-CALL-AM")
    assert [s.text for s in machine.said] == [am_words.machine_message]
    assert machine.answered_by == "machine_end_beep"

    unanswered, _, _ = call_of("R-CALL-NA")
    assert unanswered.twiml == [] and unanswered.status == "no-answer"

    for call, words in ((es, es_words), (machine, am_words)):
        for secret in (NAME, "Doe", words.message, spell("O-CALL")):
            assert secret not in call.spoken and not any(secret in doc for doc in call.twiml)

    # The keypad's 1 is an acknowledgement; every call's end is a delivery result.
    acks = [Acknowledgement.model_validate_json(r.value)
            async for r in read_topic(stack.bootstrap, stack.topics.acknowledgements)]
    assert [(a.registration_id, str(a.notice_id), a.channel) for a in acks] == [
        ("R-CALL-EN", en_notice, AckChannel.VOICE)]
    results = {r.registration_id: r for r in await stack.results() if r.source == "callback"}
    assert {rid: (r.status, r.call_result) for rid, r in results.items()} == {
        "R-CALL-EN": (DeliveryStatus.DELIVERED, CallResult.ANSWERED),
        "R-CALL-ES": (DeliveryStatus.DELIVERED, CallResult.ANSWERED),
        "R-CALL-AM": (DeliveryStatus.DELIVERED, CallResult.MACHINE),
        "R-CALL-NA": (DeliveryStatus.UNDELIVERED, CallResult.UNANSWERED),
    }
    for call in calls.values():
        assert call.callbacks[-1][1] == 200
    log = web.tail(10**6)
    for secret in ("+1314555010", CALL_PIN, *WRONG_PINS, NAME, "Doe"):
        assert secret not in log
