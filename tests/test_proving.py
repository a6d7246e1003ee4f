"""Proving contacts (double opt-in) on a real broker, in one process: codes by
SMS through the fake Twilio, links by email through the SMTP server, the
limits shared through the attempts topic, and what a right answer records."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from savin.domain.clock import utcnow
from savin.schemas import Registration
from savin.schemas.registration import Actor
from savin.sealing import Sealer, seal_registration
from savin.streams.store import MemoryStore
from savin.topics import ensure_topics
from savin.web.portal.app import create_app
from savin.web.portal.proving import CodeCheck, Sent, check_code, check_reply_code, confirm_link, send_code, send_link
from savin.web.portal.views import Views

pytestmark = pytest.mark.e2e


@pytest.fixture
async def portal(stack):
    s = stack.settings()
    await ensure_topics(s.kafka_bootstrap, stack.topics.specs(), s.replication_factor)
    t = stack.topics
    views = Views(s.kafka_bootstrap, t.offender_status, t.registrations, MemoryStore(),
                  verifications_topic=t.verifications, attempts_topic=t.attempts, consent_topic=t.consent)
    app = create_app(s, views)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(views.ready.wait(), 60)
        yield app.state.portal


async def register(portal, registration_id: str, phone: str = "+15735550101", mail: str = "ana@example.org"):
    reg = Registration.model_validate_json(json.dumps({
        "registration_id": registration_id, "offender_id": "MO-1", "language": "es",
        "contacts": [{"channel": "sms", "address": phone}, {"channel": "email", "address": mail}]}))
    stored = seal_registration(reg, portal.sealer, utcnow(), changed_by=Actor.PORTAL)
    await portal.commands.save_registration(stored)
    return stored


def codes_sent(stack) -> list[str]:
    return [re.search(r"\b(\d{6})\b", m.body).group(1) for m in stack.twilio.messages]


async def test_a_code_verifies_the_phone_and_a_wrong_one_counts(stack, portal):
    reg = await register(portal, "R-P1")
    assert await send_code(portal, reg, "198.51.100.7") is Sent.SENT
    (code,) = codes_sent(stack)
    (sms,) = stack.twilio.messages
    assert sms.body.startswith("Su código de notificación a víctimas es") and sms.status_callback is None
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert await check_code(portal, reg, wrong) is CodeCheck.WRONG
    assert portal.views.verification("R-P1", "sms", 0).failed_tries == 1
    assert await check_code(portal, reg, code) is CodeCheck.OK
    now = portal.views.registration("R-P1")
    assert [(c.channel.value, c.verified, c.verified_by) for c in now.contacts] == [
        ("sms", True, Actor.PORTAL), ("email", False, None)]
    assert now.changed_by is Actor.PORTAL
    assert await check_code(portal, reg, code) is CodeCheck.DONE


async def test_five_wrong_codes_kill_the_code(stack, portal):
    reg = await register(portal, "R-P2")
    await send_code(portal, reg, "198.51.100.8")
    (code,) = codes_sent(stack)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    verdicts = [await check_code(portal, reg, wrong) for _ in range(5)]
    assert verdicts == [CodeCheck.WRONG] * 4 + [CodeCheck.EXPIRED]
    assert await check_code(portal, reg, code) is CodeCheck.EXPIRED


async def test_one_phone_gets_at_most_three_codes_an_hour_whoever_asks(stack, portal):
    # Twenty requests from different registrations and clients, for one number.
    regs = [await register(portal, f"R-L{i}", mail=f"l{i}@example.org") for i in range(4)]
    verdicts = [await send_code(portal, regs[i % 4], f"203.0.113.{i}") for i in range(20)]
    assert verdicts.count(Sent.SENT) == 3 and len(stack.twilio.messages) == 3
    assert set(verdicts[3:]) == {Sent.LIMITED}
    # Another number is not held back by the first one's limit.
    other = await register(portal, "R-L9", phone="+15735550199", mail="l9@example.org")
    assert await send_code(portal, other, "203.0.113.99") is Sent.SENT


async def test_a_texted_back_code_verifies_every_pending_registration_of_that_number(stack, portal):
    reg = await register(portal, "R-P3")
    await send_code(portal, reg, "198.51.100.9")
    (code,) = codes_sent(stack)
    index = reg.contacts[0].blind_index
    assert await check_reply_code(portal, index, "000000" if code != "000000" else "111111") == []
    assert await check_reply_code(portal, index, code) == ["R-P3"]
    assert portal.views.registration("R-P3").contacts[0].verified_by is Actor.INBOUND_SMS


async def test_an_email_link_verifies_once_and_not_after_the_address_changes(stack, portal):
    reg = await register(portal, "R-P4")
    assert await send_link(portal, reg, "198.51.100.10") is Sent.SENT
    (mail,) = stack.smtp.messages
    text = mail.message.get_body(("plain",)).get_content()
    assert "24 horas" in text and "Para confirmar" in text
    link = re.search(r"http://[^\s\"<>]+/verify/email/([A-Za-z0-9_.=-]+)", text)
    assert link, text
    token = link.group(1)
    assert await confirm_link(portal, token + "x") is None
    confirmed = await confirm_link(portal, token)
    assert confirmed is not None and confirmed.contacts[1].verified_by is Actor.EMAIL_LINK
    assert await confirm_link(portal, token) is not None  # opened again: still the same proof

    # A new address voids the old link.
    reg2 = await register(portal, "R-P5", mail="first@example.org")
    await send_link(portal, reg2, "198.51.100.11")
    token2 = re.search(r"/verify/email/([A-Za-z0-9_.=-]+)", 
                       stack.smtp.messages[-1].message.get_body(("plain",)).get_content()).group(1)
    sealer: Sealer = portal.sealer
    changed = reg2.contacts[1].model_copy(update={"address_sealed": sealer.seal("second@example.org", "contact"),
                                                  "blind_index": sealer.blind_index("second@example.org")})
    await portal.commands.save_registration(reg2.model_copy(update={"contacts": (reg2.contacts[0], changed)}))
    assert await confirm_link(portal, token2) is None
