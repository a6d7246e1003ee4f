"""Consent: SMS reply keywords (plain function), and opt-outs and opt-ins
applied by the deliver stage (real broker, the worker as its own process)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from support import event, eventually, metric, phone, registration

from savin.domain.clock import utcnow
from savin.domain.consent import Reply, Slot, read_reply, read_unsubscribe_token, unsubscribe_token
from savin.schemas import Channel
from savin.schemas.consent import Actor, ConsentChange
from savin.topics import producer


@pytest.mark.parametrize("text, reply", [
    ("STOP", Reply.OPT_OUT), ("stop", Reply.OPT_OUT), ("  Stop. ", Reply.OPT_OUT), ("unsubscribe", Reply.OPT_OUT),
    ("STOPALL", Reply.OPT_OUT), ("cancel", Reply.OPT_OUT), ("End", Reply.OPT_OUT), ("quit", Reply.OPT_OUT),
    ("REVOKE", Reply.OPT_OUT), ("optout", Reply.OPT_OUT),
    ("START", Reply.OPT_IN), ("yes", Reply.OPT_IN), ("Unstop", Reply.OPT_IN),
    ("HELP", Reply.HELP), ("info", Reply.HELP),
    ("482913", Reply.CODE), ("482 913", Reply.CODE),
    ("please stop", Reply.OTHER), ("12345", Reply.OTHER), ("", Reply.OTHER), ("STOP NOW", Reply.OTHER),
])
def test_sms_replies_are_read_as_carriers_read_them(text, reply):
    assert read_reply(text) is reply


def test_an_unsubscribe_token_names_its_slot_until_it_expires_and_cannot_be_forged():
    now = utcnow()
    slot = Slot("R-1", "email", 1)
    token = unsubscribe_token(b"k" * 32, slot, now + timedelta(days=1))
    assert "@" not in token and "R-1" not in token
    assert read_unsubscribe_token(b"k" * 32, token, now) == slot
    assert read_unsubscribe_token(b"k" * 32, token, now + timedelta(days=2)) is None
    assert read_unsubscribe_token(b"x" * 32, token, now) is None
    body, _, mac = token.partition(".")
    forged = unsubscribe_token(b"x" * 32, Slot("R-2", "email", 1), now + timedelta(days=1)).partition(".")[0]
    assert read_unsubscribe_token(b"k" * 32, f"{forged}.{mac}", now) is None
    for bad in ["", ".", "abc", f"{body}.", "!!.??"]:
        assert read_unsubscribe_token(b"k" * 32, bad, now) is None


def change(opted_out: bool, channel: Channel = Channel.SMS) -> bytes:
    return ConsentChange(registration_id="R-1", channel=channel, contact_index=0, opted_out=opted_out,
                         reason="STOP" if opted_out else "START", actor=Actor.INBOUND_SMS,
                         at=utcnow()).model_dump_json().encode()


@pytest.mark.e2e
async def test_an_opt_out_stops_that_channel_only_and_an_opt_in_brings_it_back(stack):
    worker = stack.start_worker()
    report = await stack.import_registrations([registration("R-1", "O-1", sms=phone(1), email="r1@example.org")])
    assert report.errors == []
    prod = producer(stack.bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(stack.topics.consent, b"not a consent change", key=b"R-1")
        await prod.send_and_wait(stack.topics.consent, change(True), key=b"R-1")
        await stack.wait_caught_up(stack.topics.consent)
        assert metric(worker.metrics(), "savin_dead_letters_total", topic="consent") == 1
        await stack.publish_events([json.dumps(event("RELEASED", "O-1"))])
        await eventually(lambda: len(stack.smtp.messages) >= 1, 60, "the email notice")
        await stack.wait_caught_up(stack.topics.notices_urgent)
        assert stack.twilio.messages == [], "no SMS after the opt-out"
        assert metric(worker.metrics(), "savin_notices_total", channel="sms", status="suppressed") == 1

        await prod.send_and_wait(stack.topics.consent, change(False), key=b"R-1")
        await stack.wait_caught_up(stack.topics.consent)
        await stack.publish_events([json.dumps(event("ESCAPED", "O-1"))])
        await eventually(lambda: len(stack.twilio.messages) >= 1, 60, "the SMS after the opt-in")
        await eventually(lambda: len(stack.smtp.messages) >= 2, 60, "the second email")
    finally:
        await prod.stop()
    assert [m.to for m in stack.twilio.messages] == [phone(1)]
    assert metric(worker.metrics(), "savin_consent_changes_total", channel="sms") == 2
