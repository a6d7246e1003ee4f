"""The SMS and email notifiers against real peers: the fake Twilio (through the
official twilio SDK) and a real SMTP server with STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import pytest

from savin.broker import free_port
from savin.notifiers.base import Outbound, PermanentFailure, TemporaryFailure
from savin.notifiers.smtp_email import SmtpEmail
from savin.notifiers.twilio_sms import TwilioSMS
from savin.sealing import Sealer, new_key
from savin.settings import DataKeys
from savin.testing.fake_twilio import FakeTwilio
from savin.testing.smtp_server import SmtpCatcher

SID, TOKEN = "AC" + "cd" * 16, "notifier-token"
NUMBER = "+15735550177"
BODY = "MO Victim Notification: test body 4711"


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


@pytest.fixture(scope="module")
def sealer() -> Sealer:
    return Sealer(DataKeys.parse(f"k1:{new_key()}"))


def outbound(sealer: Sealer, address: str, content) -> Outbound:
    notice = str(uuid.uuid4())
    return Outbound(notice, "R-1", sealer.seal(address, purpose="contact"), content,
                    {"notice_id": notice, "registration_id": "R-1"})


# ---- Twilio ----------------------------------------------------------------------------


@pytest.fixture
async def fake():
    f = await FakeTwilio(SID, TOKEN).start()
    f.callbacks_enabled = False
    try:
        yield f
    finally:
        await f.stop()


@pytest.fixture
async def sms(fake, sealer):
    n = TwilioSMS(sealer, SID, TOKEN, from_number="+15005550006", base_url=fake.base_url, timeout=2.0,
                  status_callback="http://127.0.0.1:6066/callbacks/twilio/status")
    await n.start()
    try:
        yield n
    finally:
        await n.close()


async def test_sms_goes_out_through_the_official_sdk(sms, fake, sealer, caplog):
    caplog.set_level(logging.DEBUG)
    message = outbound(sealer, NUMBER, Text(BODY))
    receipt = await sms.send(message)
    (m,) = fake.messages
    assert receipt.provider_ref == m.sid and receipt.provider == "twilio"
    assert (m.to, m.body, m.from_) == (NUMBER, BODY, "+15005550006")
    assert m.status_callback == (f"http://127.0.0.1:6066/callbacks/twilio/status"
                                 f"?notice_id={message.notice_id}&registration_id=R-1")
    assert fake.rejected == []
    assert NUMBER not in caplog.text and BODY not in caplog.text


async def test_a_messaging_service_sends_instead_of_a_number(fake, sealer):
    n = TwilioSMS(sealer, SID, TOKEN, messaging_service_sid="MG" + "1" * 32, base_url=fake.base_url)
    await n.start()
    try:
        await n.send(outbound(sealer, NUMBER, Text(BODY)))
    finally:
        await n.close()
    (m,) = fake.messages
    assert (m.from_, m.messaging_service_sid) == (None, "MG" + "1" * 32)


@pytest.mark.parametrize("code", [21211, 21408, 21612, 21614])
async def test_permanent_twilio_errors(sms, fake, sealer, code, caplog):
    caplog.set_level(logging.DEBUG)
    number = next(n for n, c in FakeTwilio.FAULT_NUMBERS.items() if c == code)
    with pytest.raises(PermanentFailure) as e:
        await sms.send(outbound(sealer, number, Text(BODY)))
    assert (e.value.code, e.value.suppress) == (str(code), False)
    assert number not in str(e.value) and number not in caplog.text


async def test_an_opted_out_recipient_is_permanent_and_suppresses(sms, sealer):
    with pytest.raises(PermanentFailure) as e:
        await sms.send(outbound(sealer, "+15005550004", Text(BODY)))
    assert (e.value.code, e.value.suppress) == ("21610", True)


@pytest.mark.parametrize("number,code", [("+15005550429", "20429"), ("+15005550500", "20500")])
async def test_rate_limits_and_server_errors_are_temporary(sms, sealer, number, code):
    with pytest.raises(TemporaryFailure) as e:
        await sms.send(outbound(sealer, number, Text(BODY)))
    assert e.value.code == code


async def test_an_outage_is_temporary(sms, fake, sealer):
    fake.outage(5, status=503)
    with pytest.raises(TemporaryFailure) as e:
        await sms.send(outbound(sealer, NUMBER, Text(BODY)))
    assert e.value.code == "20503"


async def test_a_slow_provider_times_out_as_temporary(sms, fake, sealer):
    fake.latency = 3.0
    with pytest.raises(TemporaryFailure) as e:
        await sms.send(outbound(sealer, NUMBER, Text(BODY)))
    assert e.value.code == "connection"


async def test_an_unreachable_provider_is_temporary(sealer):
    n = TwilioSMS(sealer, SID, TOKEN, from_number="+15005550006", base_url=f"http://127.0.0.1:{free_port()}")
    await n.start()
    try:
        with pytest.raises(TemporaryFailure):
            await n.send(outbound(sealer, NUMBER, Text(BODY)))
    finally:
        await n.close()


# ---- SMTP ---------------------------------------------------------------------------------

ADDRESS = "victim.person@example.org"
MAIL = Mail("Release notice: John Q. Doe (MO-1)", "John Q. Doe was released.", "<p>John Q. Doe was released.</p>")


@pytest.fixture
def catcher():
    c = SmtpCatcher("savin", "smtp-secret").start()
    try:
        yield c
    finally:
        c.stop()


def smtp(catcher: SmtpCatcher, sealer: Sealer, password: str = "smtp-secret", port: int | None = None) -> SmtpEmail:
    return SmtpEmail(sealer, "127.0.0.1", port or catcher.port, "savin", password, starttls=True,
                     verify_tls=False, timeout=5, from_address="Victim Notification <notices@doc.mo.example>")


async def test_email_goes_out_over_starttls_with_text_and_html(catcher, sealer, caplog):
    caplog.set_level(logging.DEBUG)
    notifier = smtp(catcher, sealer)
    message = outbound(sealer, ADDRESS, MAIL)
    try:
        receipt = await notifier.send(message)
    finally:
        await notifier.close()
    (caught,) = catcher.messages
    mail = caught.message
    assert caught.rcpt_tos == (ADDRESS,)
    assert str(mail["Subject"]) == MAIL.subject
    assert mail["Message-ID"] == receipt.provider_ref == f"<{message.notice_id}@doc.mo.example>"
    assert mail["X-Savin-Notice-Id"] == message.notice_id
    assert mail.get_body(("plain",)).get_content().strip() == MAIL.text
    assert mail.get_body(("html",)).get_content().strip() == MAIL.html
    assert ADDRESS not in caplog.text and MAIL.text not in caplog.text


async def test_smtp_4xx_is_temporary_and_5xx_permanent(catcher, sealer):
    notifier = smtp(catcher, sealer)
    try:
        with pytest.raises(TemporaryFailure) as e:
            await notifier.send(outbound(sealer, "tempfail@example.org", MAIL))
        assert e.value.code == "451" and "tempfail" not in str(e.value)
        with pytest.raises(PermanentFailure) as e:
            await notifier.send(outbound(sealer, "bounce@example.org", MAIL))
        assert e.value.code == "550"
        await notifier.send(outbound(sealer, ADDRESS, MAIL))  # the pooled connection is still good
    finally:
        await notifier.close()
    assert len(catcher.messages) == 1 and catcher.faults == [451, 550]


async def test_wrong_credentials_and_a_down_server_are_temporary(catcher, sealer):
    for notifier in (smtp(catcher, sealer, password="wrong"), smtp(catcher, sealer, port=free_port())):
        try:
            with pytest.raises(TemporaryFailure):
                await notifier.send(outbound(sealer, ADDRESS, MAIL))
        finally:
            await notifier.close()
    assert catcher.messages == []


async def test_concurrent_sends_share_a_pool_and_survive_a_server_restart(catcher, sealer):
    notifier = smtp(catcher, sealer)
    try:
        await asyncio.gather(*(notifier.send(outbound(sealer, f"v{i}@example.org", MAIL)) for i in range(20)))
        assert len(catcher.messages) == 20
        catcher.stop()  # pooled connections are now dead
        catcher.start()
        await notifier.send(outbound(sealer, ADDRESS, MAIL))
    finally:
        await notifier.close()
    assert sorted(m.rcpt_tos[0] for m in catcher.messages)[-1] == ADDRESS
