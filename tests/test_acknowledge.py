"""Acknowledging an urgent notice: its SMS asks for a reply with the code, within
each urgent type's segment budget in both languages; its email carries a signed
link to confirm it; a notice that waits for no acknowledgement reads as before.
End to end (`savin web` as its own process, on the real broker): a reply with
the code or "1", the email link's page and its button, and the button on the
manage pages each put an Acknowledgement on the topic; any other reply is the
one an unknown text gets, byte for byte, registered or not."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from support import EXAMPLES, eventually, phone, registration
from support import event as example_event
from test_rendering_budgets import LONG_NAMES, REAL_NAMES, SENDER, STOP, event, kept_of, within_budget

from savin.domain.clock import utcnow
from savin.domain.escalation import ack_code
from savin.domain.matching import notices_for
from savin.domain.vocabulary import NOTICE_KINDS
from savin.ops.reading import read_topic
from savin.rendering import EmailLinks, LinkMaker, RenderedEmail, RenderedSMS, Renderer, gsm
from savin.rendering.links import ACK_TTL, read_ack_token
from savin.schemas import Registration, parse_event
from savin.schemas.escalation import Acknowledgement, Escalation, EscalationState
from savin.schemas.events import EVENT_TYPES, Urgency
from savin.sealing import seal_registration
from savin.topics import ensure_topics, partition_for, producer
from savin.web.portal.i18n import STRINGS
from savin.web.portal.webhooks import acknowledged_by, reply_text

LANGUAGES = ("en", "es")
URGENT = [t for t, kind in EVENT_TYPES.items() if kind.urgency is Urgency.URGENT]
CODE = "7KXM"
ACK_LINE = {"en": f"Reply {CODE} to confirm you got this.", "es": f"Responda {CODE} si recibió este aviso."}
CONFIRM = {"en": ("To confirm you received this notice, open this link:", "Confirm you received this notice"),
           "es": ("Para confirmar que recibió este aviso, abra este enlace:", "Confirmar que recibió este aviso")}
ACK_URL = "https://notify.example.gov/ack/T0KEN.s1g"
LINKS = EmailLinks(unsubscribe="https://notify.example.gov/unsubscribe/T0KEN.s1g",
                   manage="https://notify.example.gov/manage")
NOW = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def sms(renderer, ev, language, ack_code=CODE) -> RenderedSMS:
    out = renderer.render(ev, "sms", language, "America/Chicago", ack_code=ack_code)
    assert isinstance(out, RenderedSMS)
    return out


# ---- the SMS -------------------------------------------------------------------------------------


def test_every_urgent_type_escalates_and_the_line_is_gsm7():
    assert sorted(URGENT) == ["ABSCONDED", "ESCAPED", "EVENT_RETRACTED", "RELEASED"]
    assert gsm.is_gsm(ACK_LINE["en"]) and gsm.count(ACK_LINE["en"]).segments == 1


@pytest.mark.parametrize("name", list(LONG_NAMES.values()), ids=list(LONG_NAMES))
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", URGENT)
def test_an_urgent_sms_asks_for_the_code_within_its_budget_with_the_longest_values(
        renderer, event_type, language, name):
    for _, out, _ in within_budget(renderer, event_type, language, name, ack_code=CODE):
        # The code comes last before the opt-out line, whole, whatever had to be cut.
        assert out.text.startswith(SENDER[language]) and out.text.endswith(f" {ACK_LINE[language]}{STOP[language]}")
        assert "MO-1048576" in out.text and kept_of(name, out.text) >= 25
        if event_type in ("ESCAPED", "ABSCONDED"):
            assert "911" in out.text


@pytest.mark.parametrize("name", REAL_NAMES)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", URGENT)
def test_real_names_and_the_example_values_still_fit_in_full_with_the_code(renderer, event_type, language, name):
    ev = event(event_type, name)
    out = sms(renderer, ev, language)
    full = renderer.template(event_type, "sms", language).text(ev, "America/Chicago", compact=False, ack_code=CODE)
    assert out.text == full and ACK_LINE[language] in out.text
    assert out.segments.segments <= EVENT_TYPES[event_type].sms_segments


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", list(NOTICE_KINDS))
def test_without_a_code_an_sms_is_what_it_was(renderer, event_type, language):
    ev = event(event_type, "John Q. Doe")
    plain = renderer.render(ev, "sms", language, "America/Chicago")
    assert sms(renderer, ev, language, ack_code=None) == plain
    assert CODE not in plain.text and "confirm" not in plain.text and "recibió este aviso" not in plain.text
    assert plain.text == renderer.template(event_type, "sms", language).text(ev, "America/Chicago", compact=False)


def test_a_text_that_cannot_fit_is_cut_keeping_the_code_and_the_opt_out_line(tmp_path):
    base = (Path(__file__).resolve().parent.parent / "savin" / "templates" / "es" / "base.sms.j2").read_text()
    (tmp_path / "es").mkdir()
    (tmp_path / "es" / "base.sms.j2").write_text(base)
    (tmp_path / "es" / "ESCAPED.sms.j2").write_text(
        '{% extends "base.sms.j2" %}{% block body %}' + "Se fugó de la prisión. " * 30 + "{% endblock %}")
    out = Renderer(template_dir=tmp_path).render(event("ESCAPED", "Ana"), "sms", "es", "UTC", ack_code=CODE)
    assert out.segments.segments == EVENT_TYPES["ESCAPED"].sms_segments
    assert out.text.endswith(f"... {ACK_LINE['es']}{STOP['es']}")


# ---- the email -----------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event_type", URGENT)
def test_an_urgent_email_links_to_confirm_it_and_one_without_the_link_is_what_it_was(
        renderer, event_type, language):
    ev = event(event_type, "John Q. Doe")
    plain = renderer.render(ev, "email", language, "America/Chicago", links=LINKS)
    out = renderer.render(ev, "email", language, "America/Chicago",
                          links=EmailLinks(LINKS.unsubscribe, LINKS.manage, acknowledge=ACK_URL))
    assert isinstance(out, RenderedEmail) and out.subject == plain.subject and out.unsubscribe == plain.unsubscribe
    sentence, link = CONFIRM[language]
    # Under the notice, before the footer, in both parts.
    notice, footer = out.text.split("\n---\n", 1)
    assert notice.endswith(f"\n\n{sentence} {ACK_URL}\n") and footer == plain.text.split("\n---\n", 1)[1]
    assert out.text.replace(f"{sentence} {ACK_URL}\n\n", "") == plain.text
    main, html_footer = out.html.split("</main>", 1)
    assert f'<a href="{ACK_URL}"' in main and f">{link}</a></p>" in main and html_footer == plain.html.split(
        "</main>", 1)[1]
    for words in (sentence, link, ACK_URL):
        assert words not in plain.text and words not in plain.html


def test_the_link_maker_signs_a_confirm_link_for_the_registration_and_the_event():
    maker = LinkMaker("https://notify.example.gov/", b"k" * 32, clock=lambda: NOW)
    event_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    links = maker.for_contact("R-1", "email", 1, acknowledge=event_id)
    base, token = links.acknowledge.rsplit("/", 1)
    assert base == "https://notify.example.gov/ack" and "R-1" not in links.acknowledge
    assert ACK_TTL == dt.timedelta(days=30)
    assert read_ack_token(b"k" * 32, token, NOW + dt.timedelta(days=29)) == ("R-1", event_id)
    assert read_ack_token(b"k" * 32, token, NOW + dt.timedelta(days=31)) is None
    assert read_ack_token(b"x" * 32, token, NOW) is None
    assert read_ack_token(b"k" * 32, token[:-2], NOW) is None
    # Each link for its own purpose: an unsubscribe token confirms nothing, a confirm token unsubscribes nothing.
    from savin.domain.consent import read_unsubscribe_token

    assert read_ack_token(b"k" * 32, links.unsubscribe.rsplit("/", 1)[1], NOW) is None
    assert read_unsubscribe_token(b"k" * 32, token, NOW) is None
    assert maker.for_contact("R-1", "email", 1).acknowledge is None
    assert maker.for_contact("R-1", "sms", 0, acknowledge=event_id) is None


async def test_the_dispatcher_gives_an_urgent_sms_its_code_and_an_urgent_email_its_confirm_link(sealer):
    from test_dispatch import RecordingNotifier

    from savin.notifiers.dispatcher import Dispatcher

    regs = [seal_registration(Registration.model_validate_json(line), sealer, NOW)
            for line in (EXAMPLES / "registrations.jsonl").read_text().splitlines()]
    released = parse_event((EXAMPLES / "events" / "RELEASED.json").read_text())
    sms_out, email_out = RecordingNotifier(sealer, "sms"), RecordingNotifier(sealer, "email")
    d = Dispatcher(Renderer(), [sms_out, email_out], links=LinkMaker("https://n.example", b"k" * 32,
                                                                      clock=lambda: NOW))
    urgent = notices_for(released, regs, NOW, escalate=True)
    await d.send_batch(urgent + notices_for(released, regs, NOW))
    codes = {j.registration_id: j.ack_code for j in urgent}
    assert all(codes.values()) and len(set(codes.values())) == len(codes)
    texts = [content.text for _, content in sms_out.sent]
    assert len(texts) == 4 and sum(any(f"Reply {c} " in t or f"Responda {c} " in t for c in codes.values())
                                   for t in texts) == 2
    confirm = [content.text for _, content in email_out.sent if "/ack/" in content.text]
    assert len(email_out.sent) == 4 and len(confirm) == 2
    tokens = {t.split("/ack/", 1)[1].split()[0] for t in confirm}
    assert {read_ack_token(b"k" * 32, t, NOW) for t in tokens} == {(rid, str(released.event_id)) for rid in codes}


# ---- the replies and what a reply acknowledges ---------------------------------------------------


def escalation(rid: str, event_id: str, state: str = "open", event_type: str = "RELEASED",
               offender: str = "MO-5500123", started: dt.datetime = NOW) -> Escalation:
    return Escalation(registration_id=rid, event_id=event_id, event_type=event_type, offender_id=offender,
                      state=EscalationState(state), code=ack_code(event_id, rid), started_at=started,
                      updated_at=started)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_thank_you_reply_is_one_gsm7_segment_and_differs_from_the_unknown_text_reply(language):
    text = reply_text(language, "acknowledged")
    assert gsm.count(text).segments == 1 and gsm.count(text).encoding == "GSM-7"
    assert "\n" not in text and "  " not in text and text != reply_text(language, "other")
    assert text == {"en": "MO Victim Notification: thank you, we have recorded that you got this notice.",
                    "es": "Gracias: hemos anotado que el aviso le ha llegado."}[language]


def test_a_reply_acknowledges_the_notices_whose_code_it_is_or_the_only_one_waiting_with_1():
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    one = escalation("R-1", a)
    two = [one, escalation("R-2", b)]
    closed = escalation("R-1", b, state="acknowledged")
    for text in (one.code, one.code.lower(), f" {one.code[:2]} {one.code[2:].lower()}. ", f"{one.code}!"):
        assert acknowledged_by(text, two + [closed]) == [one], text
    assert acknowledged_by("1", [one, closed]) == [one]
    assert acknowledged_by(" 1 ", [one]) == [one]
    for text, waiting in (("1", two), ("1", []), ("1", [closed]), (closed.code, [one, closed]), ("", two),
                          (one.code + "X", two), ("2", [one]), ("HELLO", two)):
        assert acknowledged_by(text, waiting) == [], text


def test_every_event_type_names_its_notice_in_both_languages():
    for language in LANGUAGES:
        t = STRINGS[language]
        for event_type in NOTICE_KINDS:
            assert t[f"ack_kind_{event_type}"], (language, event_type)
        assert "{when}" in t["ack_sent"]
    assert len({STRINGS["en"][f"ack_kind_{e}"] for e in NOTICE_KINDS}) == len(NOTICE_KINDS)


# ---- end to end ----------------------------------------------------------------------------------

OFFENDER = {
    "offender_id": "MO-5500123", "offender_name": "Dale Everett Brandt", "status": "released",
    "location": "Algoa Correctional Center", "release_date": None, "next_hearing": None,
    "last_event_type": "RELEASED", "last_event_at": "2026-11-20T15:25:00Z", "updated_at": "2026-11-20T15:25:01Z",
}
PIN = "739158"
UNREGISTERED = "+13145559876"


async def put_escalations(stack, *escalations: Escalation) -> None:
    """Escalations as the deliver stage writes them (compacted, keyed <registration>:<event>, on the
    registration's partition), so the web has notices waiting without a worker."""
    s = stack.settings()
    await ensure_topics(s.kafka_bootstrap, stack.topics.specs(), s.replication_factor)
    prod = producer(s.kafka_bootstrap)
    await prod.start()
    try:
        for e in escalations:
            await prod.send_and_wait(stack.topics.escalations, e.model_dump_json().encode(),
                                     key=f"{e.registration_id}:{e.event_id}".encode(),
                                     partition=partition_for(e.registration_id.encode(), s.partitions))
    finally:
        await prod.stop()


async def acknowledgements(stack) -> list[tuple[str, str, str]]:
    """(registration id, event id, channel) of every acknowledgement, each checked to be keyed and
    partitioned by its registration."""
    found = []
    async for r in read_topic(stack.bootstrap, stack.topics.acknowledgements):
        a = Acknowledgement.model_validate_json(r.value)
        assert r.key == a.registration_id.encode()
        assert r.partition == partition_for(r.key, stack.settings().partitions)
        assert abs((a.at - utcnow()).total_seconds()) < 300
        found.append((a.registration_id, str(a.event_id), a.channel.value))
    return found


@pytest.mark.e2e
async def test_an_sms_reply_with_the_code_or_1_acknowledges_and_anything_else_reads_as_an_unknown_text(stack):
    en, es, two, none_open = phone(401), phone(402), phone(403), phone(404)
    await stack.import_registrations([
        registration("R-AS-EN", "O-AS", sms=en), registration("R-AS-ES", "O-AS", sms=es, language="es"),
        registration("R-AS-TWO", "O-AS", sms=two), registration("R-AS-NONE", "O-AS", sms=none_open),
        # A number on a registration only as an unverified contact acknowledges nothing.
        json.dumps({"registration_id": "R-AS-PEND", "offender_id": "O-AS",
                    "contacts": [{"channel": "sms", "address": phone(405), "verified": False}]}),
    ])
    e_en, e_old, e_es, e_two_a, e_two_b, e_pend = (str(uuid.uuid4()) for _ in range(6))
    waiting = {
        "en": escalation("R-AS-EN", e_en), "es": escalation("R-AS-ES", e_es, event_type="ESCAPED"),
        "two_a": escalation("R-AS-TWO", e_two_a), "two_b": escalation("R-AS-TWO", e_two_b, event_type="ABSCONDED"),
    }
    closed = escalation("R-AS-EN", e_old, state="acknowledged")
    await put_escalations(stack, *waiting.values(), closed, escalation("R-AS-NONE", e_old, state="unacknowledged"),
                          escalation("R-AS-PEND", e_pend))
    web = stack.start_web()  # ready once its views hold everything on the topics
    url = f"{web.url}/webhooks/twilio/sms"

    async def text(number: str, body: str):
        reply = await stack.twilio.send_incoming(url, number, body)
        assert (reply.status, reply.content_type) == (200, "application/xml")
        return reply

    async def reads_as_unknown(number: str, body: str, language: str = "en") -> None:
        known, unknown = await text(number, body), await text(UNREGISTERED, body)
        assert known.messages == [reply_text(language, "other")], (number, body)
        if language == "en":
            assert known.body == unknown.body, (number, body)

    # Nothing acknowledged yet: a wrong code, another registration's code, a closed notice's code, "1" with
    # two waiting or none, and a code from a number that is not verified: the unknown-text reply, byte for byte.
    for number, body in ((en, "XXXX"), (en, waiting["two_a"].code), (en, closed.code), (two, "1"),
                         (none_open, "1"), (phone(405), "1"), (phone(405), waiting["en"].code)):
        await reads_as_unknown(number, body)
    assert await text(es, waiting["two_b"].code) == await text(es, "hola")
    assert await acknowledgements(stack) == []

    # The code, in any case and spacing; "1" with exactly one waiting; one of two codes acknowledges only that one.
    code = waiting["en"].code
    assert (await text(en, f" {code[:2].lower()} {code[2:]} ")).messages == [reply_text("en", "acknowledged")]
    assert (await text(es, "1")).messages == [reply_text("es", "acknowledged")]
    assert (await text(two, waiting["two_b"].code)).messages == [reply_text("en", "acknowledged")]
    assert sorted(await acknowledgements(stack)) == [("R-AS-EN", e_en, "sms"), ("R-AS-ES", e_es, "sms"),
                                                     ("R-AS-TWO", e_two_b, "sms")]
    assert reply_text("en", "acknowledged") not in (await text(UNREGISTERED, code)).body

    # Neither the numbers nor the codes reach the web's log; ids do.
    log = web.tail(10**7)
    assert "R-AS-EN" in log
    for needle in (en, es, two, none_open, UNREGISTERED, en[2:], code, waiting["two_b"].code):
        assert needle not in log, needle



def confirm_link(stack, rid: str, event_id: str) -> str:
    """The confirm link the worker puts in a notice email: its own links, to the first web process."""
    from savin.bootstrap import build_links

    return build_links(stack.settings()).for_contact(rid, "email", 0, acknowledge=event_id).acknowledge


def expired_link(stack, base: str, rid: str, event_id: str) -> str:
    """A confirm link signed as the worker signs them, that ran out a minute ago."""
    from savin.domain.links import derive_key

    key = derive_key(stack.settings().web_secret.get_secret_value(), "links")
    return LinkMaker(base, key, ack_ttl=dt.timedelta(minutes=-1)).for_contact(rid, "email", 0,
                                                                               acknowledge=event_id).acknowledge


@pytest.mark.e2e
async def test_the_email_link_and_the_manage_button_acknowledge_and_every_page_is_accessible(
        stack, browser_page, axe_script, tmp_path):
    from test_portal import WIDTHS, check_page, fetch, publish_statuses, screenshots_dir
    from test_portal_manage import Browserless

    await publish_statuses(stack, OFFENDER)
    tours = [(lang, width) for lang in LANGUAGES for width in WIDTHS]
    rids = {tour: f"R-AK-{tour[0]}-{tour[1]}".upper() for tour in tours}
    await stack.import_registrations([
        registration(rid, OFFENDER["offender_id"], sms=phone(500 + n), email=f"ak{n}@example.org", pin=PIN,
                     language=lang, timezone="America/Chicago")
        for n, ((lang, _), rid) in enumerate(rids.items())])
    sent = dt.datetime(2026, 11, 20, 15, 25, tzinfo=dt.timezone.utc)
    released, escaped = {}, {}
    for tour, rid in rids.items():
        released[tour], escaped[tour] = str(uuid.uuid4()), str(uuid.uuid4())
    done_already = str(uuid.uuid4())
    await put_escalations(stack, *(escalation(rid, released[tour], started=sent) for tour, rid in rids.items()),
                          *(escalation(rid, escaped[tour], event_type="ESCAPED", started=sent + dt.timedelta(hours=1))
                            for tour, rid in rids.items()),
                          escalation(rids["en", "phone"], done_already, state="acknowledged"))
    web = stack.start_web()
    shots = screenshots_dir(tmp_path)

    # Opening a link changes nothing; a forged, cut or expired one, or a POST without the form's token, neither.
    link = confirm_link(stack, rids["en", "phone"], released["en", "phone"])
    assert link.startswith(f"{web.url}/ack/") and "R-AK" not in link
    status, headers, body = await asyncio.to_thread(fetch, link)
    assert status == 200 and STRINGS["en"]["ack_button"] in body and headers["cache-control"] == "no-store"
    expired = expired_link(stack, web.url, rids["en", "phone"], released["en", "phone"])
    for bad in (link[:-3], f"{web.url}/ack/not-a-token", link.replace("/ack/", "/ack/x"), expired):
        for data in (None, b"csrf=x"):
            status, _, body = await asyncio.to_thread(fetch, bad, data)
            assert status == 400 and STRINGS["en"]["reply_link_expired_title"] in body and 'href="/manage"' in body
            assert STRINGS["en"]["ack_expired_manage_before"] in body
    assert (await asyncio.to_thread(fetch, link, b"csrf=forged"))[0] == 403
    client = Browserless(web.url)
    client.get(link.removeprefix(web.url))
    assert client.post(link.removeprefix(web.url), csrf=False)[0] == 403
    assert await acknowledgements(stack) == []
    # A notice already acknowledged: the link thanks at once.
    status, _, body = client.get(confirm_link(stack, rids["en", "phone"], done_already).removeprefix(web.url))
    assert status == 200 and STRINGS["en"]["ack_done_title"] in body and STRINGS["en"]["ack_button"] not in body

    for tour in tours:
        lang, width_name = tour
        t, tag, rid = STRINGS[lang], f"{lang}-{width_name}", rids[tour]
        page = await browser_page(*WIDTHS[width_name])

        # The email's link: the notice, a button; then thanks, in the registration's language.
        await page.goto(confirm_link(stack, rid, released[tour]))
        assert await page.locator("html").get_attribute("lang") == lang
        assert await page.locator("h1").inner_text() == t["ack_title"]
        notice = await page.locator(".inset-text").inner_text()
        assert t["ack_kind_RELEASED"] in notice and "Dale Everett Brandt" in notice and "MO-5500123" in notice
        assert {"en": "Friday, November 20, 2026, at 9:25 AM CST",
                "es": "viernes 20 de noviembre de 2026, a las 9:25 CST"}[lang] in notice
        await check_page(page, axe_script, shots, f"acknowledge-{tag}")
        await page.get_by_role("button", name=t["ack_button"]).click()
        await page.wait_for_load_state()
        assert await page.locator("h1").inner_text() == t["ack_done_title"]
        await check_page(page, axe_script, shots, f"acknowledged-{tag}")

        # The manage overview: both notices still wait (no worker has read the acknowledgement), each with
        # its button; the release's is pressed by the link already, the escape's here.
        await page.goto(f"{web.url}/manage?lang={lang}")
        await page.get_by_label(t["manage_id_label"]).fill(rid)
        await page.get_by_label(t["manage_pin_label"], exact=True).fill(PIN)
        await page.get_by_role("button", name=t["manage_sign_in_button"], exact=True).click()
        await page.wait_for_url("**/manage/registration")
        items = page.locator(".ack-list__item")
        assert [t["ack_kind_RELEASED"] in x for x in await items.all_inner_texts()] == [True, False]
        assert t["ack_waiting_title"] in await page.locator(".notification").inner_text()
        await check_page(page, axe_script, shots, f"manage-waiting-{tag}")
        await items.nth(1).get_by_role("button", name=t["ack_button"]).click()
        await page.wait_for_url("**/manage/registration?saved=acknowledged*")
        assert t["manage_saved_acknowledged"] in await page.locator(".notification--success").inner_text()
        assert [t["ack_kind_RELEASED"] in x for x in await items.all_inner_texts()] == [True]
        await check_page(page, axe_script, shots, f"manage-acknowledged-{tag}")

        if width_name == "phone":
            await page.goto(f"{expired_link(stack, web.url, rid, released[tour])}?lang={lang}")
            assert await page.locator("h1").inner_text() == t["reply_link_expired_title"]
            await check_page(page, axe_script, shots, f"acknowledge-expired-{lang}-phone")

    # One acknowledgement by the email link and one by the portal for each registration, nothing else.
    found = await acknowledgements(stack)
    assert sorted(found) == sorted([(rid, released[tour], "email") for tour, rid in rids.items()]
                                   + [(rid, escaped[tour], "portal") for tour, rid in rids.items()])
    # The manage button acts only on a notice of the signed-in registration that waits.
    client = Browserless(web.url)
    assert client.sign_in(rids["en", "desktop"], PIN)[0] == 303
    for event_id in (escaped["es", "phone"], done_already, "not-an-id", ""):
        status, headers, _ = client.post("/manage/acknowledge", {"event_id": event_id})
        assert (status, headers["location"]) == (303, "/manage/registration")
    assert client.post("/manage/acknowledge", {"event_id": escaped["en", "desktop"]}, csrf=False)[0] == 403
    assert len(await acknowledgements(stack)) == len(found)
    log = web.tail(10**7)
    assert PIN not in log and "ak0@example.org" not in log and rids["en", "phone"] in log


@pytest.mark.e2e
async def test_a_notice_from_the_worker_carries_the_code_and_a_confirm_link_that_works(stack):
    from test_portal import fetch
    from test_portal_manage import Browserless

    web = stack.start_web()
    stack.start_worker()
    en, es = phone(601), phone(602)
    await stack.import_registrations([
        registration("R-PIPE-EN", "O-PIPE", sms=en, email="pipe.en@example.org"),
        registration("R-PIPE-ES", "O-PIPE", sms=es, email="pipe.es@example.org", language="es")])
    released, transferred = example_event("RELEASED", "O-PIPE"), example_event("TRANSFERRED", "O-PIPE")
    await stack.publish_events([json.dumps(released), json.dumps(transferred)])
    assert await asyncio.to_thread(stack.smtp.wait_for, 4, 90)
    await eventually(lambda: len(stack.twilio.messages) >= 4, 60, "four texts")
    for rid, number, mail, language in (("R-PIPE-EN", en, "pipe.en@example.org", "en"),
                                        ("R-PIPE-ES", es, "pipe.es@example.org", "es")):
        texts = [m.body for m in stack.twilio.messages if m.to == number]
        line = ACK_LINE[language].replace(CODE, ack_code(released["event_id"], rid))
        assert len(texts) == 2 and sum(line in t for t in texts) == 1, texts
        assert all(t.endswith(STOP[language]) for t in texts)
        bodies = [m.message.get_body(("plain",)).get_content() for m in stack.smtp.messages if mail in m.rcpt_tos]
        (urgent,) = [b for b in bodies if "/ack/" in b]
        link = urgent.split(f"{CONFIRM[language][0]} ", 1)[1].split()[0]
        assert link.startswith(f"{web.url}/ack/") and len(bodies) == 2

        # The link works on the web process: opening it records nothing, its button does.
        status, _, body = await asyncio.to_thread(fetch, link)
        assert status == 200 and STRINGS[language]["ack_button"] in body
        client = Browserless(web.url)
        client.get(link.removeprefix(web.url))
        status, _, body = client.post(link.removeprefix(web.url))
        assert status == 200 and STRINGS[language]["ack_done_title"] in body
    assert sorted(await acknowledgements(stack)) == [("R-PIPE-EN", released["event_id"], "email"),
                                                     ("R-PIPE-ES", released["event_id"], "email")]
