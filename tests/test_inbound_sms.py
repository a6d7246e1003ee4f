"""SMS sent to savin's number, end to end: the fake Twilio texts the web
process's webhook as Twilio does, signed; the web process records consent on
Kafka; the worker's deliver stage honours it. Worker and web run as their own
processes on the real broker. And the reply texts themselves, in both languages."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from support import event, eventually, phone, registration
from test_proving import portal  # noqa: F401 - the portal in this process, to send a code as a page does

from savin.ops.reading import read_topic
from savin.rendering import gsm
from savin.rendering.renderer import OFFICE_PHONE
from savin.schemas.consent import ConsentChange
from savin.schemas.registration import Actor
from savin.web.portal.proving import Sent, send_code
from savin.web.portal.webhooks import reply_text

KINDS = ("help", "stopped", "started", "confirmed", "wrong_code", "other")
UNREGISTERED = "+13145559876"


# ---- the texts ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_reply_is_one_segment_on_one_line(kind, language):
    text = reply_text(language, kind)
    segments = gsm.count(text)
    assert segments.segments == 1, (kind, language, segments, text)
    assert "\n" not in text and "  " not in text and "{" not in text
    # GSM-7 wherever the words allow it; a short Spanish text with accents still fits one segment.
    if (kind, language) != ("wrong_code", "es"):
        assert segments.encoding == "GSM-7", (kind, language, text)


def test_the_replies_say_what_they_are_for():
    assert "Office of Victim Services" in reply_text("en", "help") and OFFICE_PHONE in reply_text("en", "help")
    assert "Office of Victim Services" in reply_text("es", "help") and OFFICE_PHONE in reply_text("es", "help")
    assert "Correcciones de Missouri" in reply_text("es", "help") and "Llame gratis" in reply_text("es", "help")
    assert "START" in reply_text("en", "stopped") and "Email notices are not changed" in reply_text("en", "stopped")
    assert "START" in reply_text("es", "stopped") and "correo no cambian" in reply_text("es", "stopped")
    assert "STOP" in reply_text("en", "started") and "STOP" in reply_text("es", "started")
    assert "confirmed" in reply_text("en", "confirmed") and "confirmado" in reply_text("es", "confirmed")
    assert "not right or has expired" in reply_text("en", "wrong_code")
    assert reply_text("es", "wrong_code") == "Ese código no es correcto o ya venció. Pida otro en el sitio web."
    assert "HELP" in reply_text("en", "other") and "HELP" in reply_text("es", "other")
    for kind in KINDS:
        assert reply_text("en", kind) != reply_text("es", kind)


# ---- end to end -----------------------------------------------------------------------------


async def consent_changes(stack) -> list[ConsentChange]:
    return [ConsentChange.model_validate_json(r.value)
            async for r in read_topic(stack.bootstrap, stack.topics.consent)]


def sms_to(stack, number: str) -> list[str]:
    return [m.body for m in stack.twilio.messages if m.to == number]


@pytest.mark.e2e
async def test_stop_stops_the_next_sms_only_and_start_brings_it_back(stack):
    web = stack.start_web()
    stack.start_worker()
    url = f"{web.url}/webhooks/twilio/sms"
    en, es, alone = phone(101), phone(102), phone(103)
    await stack.import_registrations([
        registration("R-EN", "O-IN", sms=en, email="en.victim@example.org"),
        registration("R-ES", "O-IN", sms=es, email="es.victim@example.org", language="es"),
        registration("R-ALONE", "O-ALONE", sms=alone),
    ])
    # The web process reads the registrations from Kafka; HELP answers in Spanish once it has them.
    await eventually(lambda: _help_in(stack, url, es, "es"), 60, "the web to know R-ES")

    reply = await stack.twilio.send_incoming(url, en, "Stop")
    assert (reply.status, reply.messages) == (200, [reply_text("en", "stopped")])
    (change,) = [c for c in await consent_changes(stack) if c.registration_id == "R-EN"]
    assert (change.channel.value, change.contact_index, change.opted_out) == ("sms", 0, True)
    assert (change.reason, change.actor) == ("STOP", Actor.INBOUND_SMS)

    await stack.publish_events([json.dumps(event("RELEASED", "O-IN"))])
    assert await asyncio.to_thread(stack.smtp.wait_for, 2, 60)  # email still goes to both
    await eventually(lambda: sms_to(stack, es), 60, "the SMS to the Spanish registrant")
    await stack.wait_caught_up(stack.topics.notices_urgent)
    await asyncio.sleep(1)
    assert sms_to(stack, en) == []
    assert sorted(rcpt for m in stack.smtp.messages for rcpt in m.rcpt_tos) == [
        "en.victim@example.org", "es.victim@example.org"]

    reply = await stack.twilio.send_incoming(url, en, "start")
    assert (reply.status, reply.messages) == (200, [reply_text("en", "started")])
    await stack.publish_events([json.dumps(event("ESCAPED", "O-IN"))])
    await eventually(lambda: sms_to(stack, en), 60, "the SMS after START")
    assert len(sms_to(stack, es)) == 2

    # A registration an opt-out leaves with nothing to reach it by is flagged for operators, by id.
    reply = await stack.twilio.send_incoming(url, alone, "UNSUBSCRIBE")
    assert reply.messages == [reply_text("en", "stopped")]
    assert "registration R-ALONE has no usable channel left" in web.tail(10**6)
    assert "registration R-EN has no usable channel" not in web.tail(10**6)


def _help_in(stack, url: str, number: str, language: str) -> bool:
    reply = asyncio.run(stack.twilio.send_incoming(url, number, "HELP"))
    return reply.messages == [reply_text(language, "help")]


@pytest.mark.e2e
async def test_help_codes_and_other_text_reveal_nothing_and_forgeries_are_refused(stack, portal):  # noqa: F811
    webs = [stack.start_web(), stack.start_web()]  # side by side, each with its own views
    urls = [f"{w.url}/webhooks/twilio/sms" for w in webs]
    en, es, pending = phone(201), phone(202), phone(203)
    unverified = {"registration_id": "R-PEND", "offender_id": "O-H", "language": "es",
                  "contacts": [{"channel": "sms", "address": pending, "verified": False}]}
    await stack.import_registrations([registration("R-H-EN", "O-H", sms=en),
                                      registration("R-H-ES", "O-H", sms=es, language="es"), json.dumps(unverified)])
    for url in urls:
        await eventually(lambda: _help_in(stack, url, es, "es"), 60, "each web to know R-H-ES")
    url = urls[1]

    # HELP and other text: a registered and an unregistered number get the same status and shape
    # (the registration's language aside), and no text is ever repeated back.
    secret = "my new address is 12 Quillfeather Lane"
    for body, kind in (("help", "help"), ("Info.", "help"), (secret, "other"), ("hello?", "other")):
        known, unknown = (await stack.twilio.send_incoming(url, en, body),
                          await stack.twilio.send_incoming(url, UNREGISTERED, body))
        assert (known.status, known.content_type, known.body) == (unknown.status, unknown.content_type, unknown.body)
        assert (known.status, known.content_type, known.messages) == (200, "application/xml", [reply_text("en", kind)])
        spanish = await stack.twilio.send_incoming(url, es, body)
        assert (spanish.status, spanish.messages) == (200, [reply_text("es", kind)])
    for reply in (known, unknown, spanish):
        assert "Quillfeather" not in reply.body and "hello" not in reply.body

    # A code texted back verifies the pending phone; a wrong one and one from a stranger get the same answer.
    reg = await eventually(lambda: portal.views.registration("R-PEND"), 30, "this process to know R-PEND")
    assert await send_code(portal, reg, "198.51.100.9") is Sent.SENT
    (code_sms,) = sms_to(stack, pending)
    code = re.search(r"\b(\d{6})\b", code_sms).group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for number, text in ((pending, wrong), (UNREGISTERED, code)):
        reply = await stack.twilio.send_incoming(url, number, text)
        language = "es" if number == pending else "en"
        assert (reply.status, reply.messages) == (200, [reply_text(language, "wrong_code")])
    reply = await stack.twilio.send_incoming(url, pending, f" {code[:3]} {code[3:]} ")
    assert (reply.status, reply.messages) == (200, [reply_text("es", "confirmed")])

    def verified_by_reply() -> bool:
        stored = portal.views.registration("R-PEND")
        return stored is not None and stored.contacts[0].verified and stored.contacts[0].verified_by is Actor.INBOUND_SMS

    await eventually(verified_by_reply, 30, "the phone to be verified by the reply")
    assert portal.views.registration("R-PEND").changed_by is Actor.INBOUND_SMS

    # Forged and unsigned requests are refused, and change nothing.
    before = await consent_changes(stack)
    for signature, signed in (("forged", True), (None, False)):
        reply = await stack.twilio.send_incoming(url, en, "STOP", signature=signature, signed=signed)
        assert reply.status == 403 and reply.messages == []
    other_token = stack.twilio._signer.compute_signature(url + "x", {"From": en, "Body": "STOP"})
    assert (await stack.twilio.send_incoming(url, en, "STOP", signature=other_token)).status == 403
    assert await consent_changes(stack) == before

    # Neither the numbers nor the texts reach the web processes' logs.
    for w in webs:
        log = w.tail(10**7)
        assert log, "the web process wrote no log"
        for needle in (en, es, pending, UNREGISTERED, en[2:], "Quillfeather", code, wrong, "hello?"):
            assert needle not in log, needle

