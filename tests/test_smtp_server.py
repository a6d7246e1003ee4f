"""The local SMTP server (savin.dev.testing.smtp_server) as a client sees it, over a
real socket with aiosmtplib: STARTTLS and AUTH required, mail recorded, faults
by recipient, outages, restarts."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import ssl
from email.message import EmailMessage

import aiosmtplib
import pytest
from support import SMTP_PASSWORD, SMTP_USER

from savin.dev.testing.smtp_server import SmtpCatcher

USER, PASSWORD = SMTP_USER, SMTP_PASSWORD
SENDER = "notices@doc.mo.example"
RECIPIENT = "victim.person@example.org"


def insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def client(catcher: SmtpCatcher, *, start_tls: bool = True, password: str | None = PASSWORD,
           tls_context: ssl.SSLContext | None = None) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=catcher.host, port=catcher.port, timeout=5, local_hostname="client.test",
        start_tls=start_tls, tls_context=(tls_context or insecure()) if start_tls else None,
        username=USER if password is not None else None, password=password,
    )


def mail(to: str = RECIPIENT, subject: str = "Release notice") -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = SENDER, to, subject
    m.set_content("The offender was released.")
    m.add_alternative("<p>The offender was released.</p>", subtype="html")
    return m


async def test_mail_is_refused_before_starttls(catcher):
    smtp = client(catcher, start_tls=False, password=None)
    await smtp.connect()
    try:
        response = await smtp.ehlo()
        assert "STARTTLS" in response.message.upper()
        assert "AUTH" not in response.message.upper()  # not offered in clear text
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as e:
            await smtp.mail(SENDER)
        assert e.value.code == 530
        with pytest.raises(aiosmtplib.SMTPException):
            await smtp.login(USER, PASSWORD)
    finally:
        smtp.close()
    assert catcher.messages == [] and catcher.logins == 0


async def test_auth_is_required_and_a_wrong_password_refused(catcher):
    smtp = client(catcher, password=None)  # STARTTLS, no AUTH
    await smtp.connect()
    try:
        assert smtp.get_transport_info("sslcontext") is not None
        await smtp.ehlo()
        assert {"plain", "login"} <= set(smtp.server_auth_methods)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as e:
            await smtp.mail(SENDER)
        assert e.value.code == 530
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as e:
            await smtp.auth_plain(USER, "wrong")
        assert e.value.code == 535
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as e:
            await smtp.auth_login(USER, "wrong")
        assert e.value.code == 535
        await smtp.auth_login(USER, PASSWORD)  # LOGIN works as well as PLAIN
    finally:
        smtp.close()
    assert catcher.logins == 1


async def test_the_certificate_verifies_for_127_0_0_1(catcher):
    verifying = ssl.create_default_context(cafile=str(catcher.cert_path))
    async with client(catcher, tls_context=verifying) as smtp:
        await smtp.noop()
    with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs do not know it
        await client(catcher, tls_context=ssl.create_default_context()).connect()


async def test_a_good_mail_is_recorded_with_both_parts(catcher, caplog):
    caplog.set_level(logging.DEBUG)
    async with client(catcher) as smtp:
        errors, _ = await smtp.send_message(mail())
    assert errors == {}
    assert catcher.wait_for(1, timeout=5)
    (caught,) = catcher.messages
    assert caught.mail_from == SENDER and caught.rcpt_tos == (RECIPIENT,)
    assert caught.message["Subject"] == "Release notice"
    assert caught.message.get_body(("plain",)).get_content().strip() == "The offender was released."
    assert caught.message.get_body(("html",)).get_content().strip() == "<p>The offender was released.</p>"
    assert caught.at > 0
    # The bytes as sent are kept too, for tests of what is on the wire.
    assert caught.raw.endswith(b"\r\n") and b"\r\nSubject: Release notice\r\n" in caught.raw
    assert email.message_from_bytes(caught.raw, policy=email.policy.default)["Subject"] == "Release notice"
    with pytest.raises(AttributeError):
        caught.at = 0  # frozen
    assert RECIPIENT not in caplog.text and "released" not in caplog.text


async def test_fault_addresses_are_refused_at_rcpt(catcher):
    catcher.fail_addresses["Full.Mailbox@Example.org"] = 452
    async with client(catcher) as smtp:
        for address, code in [("tempfail@example.org", 451), ("bounce@example.org", 550),
                              ("BOUNCE@example.org", 550), ("full.mailbox@example.org", 452)]:
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as e:
                await smtp.send_message(mail(address))
            assert [r.code for r in e.value.recipients] == [code]
        await smtp.send_message(mail())  # the session is still good
    assert catcher.faults == [451, 550, 550, 452]
    assert [m.rcpt_tos for m in catcher.messages] == [(RECIPIENT,)]
    assert set(SmtpCatcher.FAULT_ADDRESSES) == {"tempfail@example.org", "bounce@example.org"}


async def test_an_outage_refuses_every_transaction_then_ends(catcher):
    async with client(catcher) as smtp:
        catcher.outage(0.5, code=451)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as e:
            await smtp.send_message(mail())
        assert e.value.code == 451
        await asyncio.sleep(0.6)
        await smtp.send_message(mail())
    assert catcher.faults == [451] and len(catcher.messages) == 1


async def test_a_421_outage_and_end_outage(catcher):
    catcher.outage(60, code=421)
    smtp = client(catcher)
    await smtp.connect()
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as e:
        await smtp.send_message(mail())
    assert e.value.code == 421 and not smtp.is_connected  # 421 ends the session
    catcher.end_outage()
    async with client(catcher) as smtp:
        await smtp.send_message(mail())
    assert catcher.faults == [421] and len(catcher.messages) == 1
    with pytest.raises(ValueError):
        catcher.outage(1, code=550)


async def test_restart_on_the_same_port_and_reset(catcher):
    port = catcher.port
    async with client(catcher) as smtp:
        await smtp.send_message(mail())
    catcher.fail_addresses[RECIPIENT] = 550
    catcher.outage(60)
    catcher.stop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await client(catcher).connect()
    catcher.start()
    assert catcher.port == port and len(catcher.messages) == 1  # records survive a restart
    catcher.reset()  # ... and reset() forgets them and the run-time faults
    assert catcher.messages == [] and catcher.faults == [] and catcher.logins == 0
    assert catcher.fail_addresses == SmtpCatcher.FAULT_ADDRESSES
    async with client(catcher) as smtp:
        await smtp.send_message(mail())
    assert catcher.wait_for(1, timeout=5) and not catcher.wait_for(2, timeout=0.1)


async def test_many_concurrent_sessions(catcher):
    async def one(i: int) -> None:
        async with client(catcher) as smtp:
            await smtp.send_message(mail(f"v{i}@example.org"))

    await asyncio.gather(*(one(i) for i in range(20)))
    assert catcher.wait_for(20, timeout=5)
    assert sorted(m.rcpt_tos[0] for m in catcher.messages) == sorted(f"v{i}@example.org" for i in range(20))
    assert catcher.logins == 20
