"""Acknowledging an urgent notice: its SMS asks for a reply with the code, within
each urgent type's segment budget in both languages; its email carries a signed
link to confirm it; a notice that waits for no acknowledgement reads as before.
End to end (`savin web` as its own process, on the real broker): a reply with
the code or "1", the email link's page and its button, and the button on the
manage pages each put an Acknowledgement on the topic; any other reply is the
one an unknown text gets, byte for byte, registered or not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support import EXAMPLES
from test_rendering_budgets import LONG_NAMES, REAL_NAMES, SENDER, STOP, counted, event, kept_of

from savin.domain.matching import notices_for
from savin.rendering import EmailLinks, LinkMaker, RenderedEmail, RenderedSMS, Renderer, gsm
from savin.rendering.links import ACK_TTL, read_ack_token
from savin.schemas import Registration, parse_event
from savin.schemas.events import EVENT_TYPES, Urgency
from savin.sealing import seal_registration

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
    budget = EVENT_TYPES[event_type].sms_segments
    for longest in (False, True):
        ev = event(event_type, name, longest=longest)
        out = sms(renderer, ev, language)
        encoding, units, segments = counted(out.text)
        assert (out.segments.encoding, out.segments.units, out.segments.segments) == (encoding, units, segments)
        assert segments <= budget
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
@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
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
