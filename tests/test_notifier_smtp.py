"""The email notifier (savin.notifiers.smtp_email) against the local SMTP server:
a real aiosmtpd server with STARTTLS and AUTH, real aiosmtplib sessions, a real
Sealer. Checks the message and its headers as they arrive, the failure map, the
login check, the session pool and privacy."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import json
import logging
import socket
import uuid
from dataclasses import dataclass

import pytest
from support import EXAMPLES, SMTP_PASSWORD, SMTP_USER, closing

from savin.dev.broker import free_port
from savin.dev.testing.smtp_server import SmtpCatcher
from savin.domain.vocabulary import NOTICE_KINDS
from savin.notifiers.base import ConfigurationFault, Outbound, PermanentFailure, TemporaryFailure
from savin.notifiers.smtp_email import SmtpEmail
from savin.rendering import EmailLinks, Renderer
from savin.schemas import parse_event
from savin.sealing import Sealer

USER, PASSWORD = SMTP_USER, SMTP_PASSWORD
FROM = "Victim Notification <notices@doc.mo.example>"
ADDRESS = "victim.person@example.org"


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str
    unsubscribe: str | None = None


MAIL = Mail("Release notice: John Q. Doe (MO-1)", "John Q. Doe was released on 2024-05-01.",
            "<p>John Q. Doe was <b>released</b> on 2024-05-01.</p>")
LINKS = EmailLinks(unsubscribe="https://notify.example.gov/unsubscribe/" + "T0KEN" * 30 + ".s1g",
                   manage="https://notify.example.gov/manage")


@pytest.fixture
async def notifier(catcher, sealer):
    async with closing(email_notifier(catcher, sealer)) as n:
        await n.start()
        yield n


def email_notifier(catcher: SmtpCatcher, sealer: Sealer, **overrides) -> SmtpEmail:
    options = dict(host="127.0.0.1", port=catcher.port, username=USER, password=PASSWORD, starttls=True,
                   verify_tls=False, timeout=5.0, from_address=FROM)
    return SmtpEmail(sealer, **{**options, **overrides})


def outbound(sealer: Sealer, address: str = ADDRESS, content: Mail = MAIL) -> Outbound:
    notice = str(uuid.uuid4())
    return Outbound(notice, "R-1", sealer.seal(address, purpose="contact"), content,
                    {"notice_id": notice, "registration_id": "R-1"})


def assert_private(error: BaseException, *secrets: str) -> None:
    """Neither the failure nor anything chained to it mentions a secret."""
    seen: BaseException | None = error
    while seen is not None:
        for secret in secrets:
            assert secret.lower() not in str(seen).lower()
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


async def test_the_email_has_both_parts_and_ids_in_headers(notifier, catcher, sealer, caplog):
    caplog.set_level(logging.DEBUG)
    message = outbound(sealer)
    receipt = await notifier.send(message)
    assert catcher.wait_for(1, timeout=5)
    (caught,) = catcher.messages
    mail = caught.message
    assert caught.mail_from == "notices@doc.mo.example" and caught.rcpt_tos == (ADDRESS,)
    assert mail["From"] == FROM and mail["To"] == ADDRESS
    assert mail["Subject"] == MAIL.subject
    assert email.utils.parsedate_to_datetime(mail["Date"]).tzinfo is not None
    assert mail["Message-ID"] == f"<{message.notice_id}@doc.mo.example>"
    assert mail["X-Savin-Notice-Id"] == message.notice_id
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["List-Unsubscribe"] is None  # a message without a link (a confirmation) offers none
    assert mail.get_content_type() == "multipart/alternative"
    assert mail.get_body(("plain",)).get_content().strip() == MAIL.text
    assert mail.get_body(("html",)).get_content().strip() == MAIL.html
    assert receipt.provider == "smtp" and receipt.provider_ref == mail["Message-ID"]
    assert message.notice_id in caplog.text  # logged by id ...
    for secret in (ADDRESS, MAIL.subject, MAIL.text, "John Q. Doe"):  # ... and nothing else
        assert secret not in caplog.text


async def test_a_notice_offers_one_click_unsubscribe(notifier, catcher, sealer):
    """RFC 8058: the link in List-Unsubscribe, one line however long (RFC 2369: no whitespace
    inside the brackets; an RFC 2047 encoded URL is unreadable to mail clients), and List-Unsubscribe-Post."""
    await notifier.send(outbound(sealer, content=Mail(MAIL.subject, MAIL.text, MAIL.html, LINKS.unsubscribe)))
    assert catcher.wait_for(1, timeout=5)
    (caught,) = catcher.messages
    assert caught.message["List-Unsubscribe"] == f"<{LINKS.unsubscribe}>"
    assert caught.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"\r\nList-Unsubscribe: <{LINKS.unsubscribe}>\r\n".encode() in caught.raw


async def test_4xx_is_temporary_5xx_permanent_and_the_session_survives(notifier, catcher, sealer, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TemporaryFailure) as e:
        await notifier.send(outbound(sealer, "tempfail@example.org"))
    assert e.value.code == "451"
    assert_private(e.value, "tempfail@", MAIL.subject)
    with pytest.raises(PermanentFailure) as e:
        await notifier.send(outbound(sealer, "bounce@example.org"))
    assert e.value.code == "550" and not e.value.suppress
    assert_private(e.value, "bounce@", MAIL.subject)
    await notifier.send(outbound(sealer))
    assert catcher.faults == [451, 550] and len(catcher.messages) == 1
    assert catcher.logins == 1  # one session carried all three transactions
    assert "tempfail@" not in caplog.text and "bounce@" not in caplog.text


async def test_a_421_outage_is_temporary_and_the_next_send_reconnects(notifier, catcher, sealer):
    await notifier.send(outbound(sealer))
    catcher.outage(60, code=421)
    with pytest.raises(TemporaryFailure) as e:
        await notifier.send(outbound(sealer))
    assert e.value.code == "421"
    catcher.end_outage()
    await notifier.send(outbound(sealer))
    assert len(catcher.messages) == 2 and catcher.logins == 2  # 421 closed the first session


async def test_wrong_password_is_a_configuration_fault_and_the_notice_is_kept(catcher, sealer, caplog):
    caplog.set_level(logging.DEBUG)
    async with closing(email_notifier(catcher, sealer, password="not-the-password")) as notifier:
        with pytest.raises(ConfigurationFault) as e:
            await notifier.send(outbound(sealer))
        assert (e.value.code, e.value.temporary, e.value.fields) == ("535", True, ("username", "password"))
        assert notifier.config_fault is e.value
    assert_private(e.value, ADDRESS, "not-the-password")
    assert catcher.messages == [] and catcher.logins == 0
    assert "not-the-password" not in caplog.text


async def test_the_check_logs_in_and_the_session_serves_the_first_send(notifier, catcher, sealer):
    await notifier.check()
    assert catcher.logins == 1 and notifier.config_fault is None
    await notifier.send(outbound(sealer))
    assert catcher.logins == 1 and len(catcher.messages) == 1


async def test_the_check_refuses_a_wrong_password_until_it_is_right(catcher, sealer):
    async with closing(email_notifier(catcher, sealer)) as notifier:
        catcher.password = "rotated"
        with pytest.raises(ConfigurationFault) as e:
            await notifier.check()
        assert e.value.code == "535" and notifier.config_fault is not None
        catcher.password = PASSWORD
        await notifier.check()
        assert notifier.config_fault is None


async def test_the_check_of_a_server_that_is_down_is_temporary(catcher, sealer):
    async with closing(email_notifier(catcher, sealer, port=free_port())) as notifier:
        with pytest.raises(TemporaryFailure) as e:
            await notifier.check()
    assert e.value.code == "connection"


async def test_a_server_that_is_down_is_temporary(catcher, sealer):
    async with closing(email_notifier(catcher, sealer, port=free_port())) as notifier:
        with pytest.raises(TemporaryFailure) as e:
            await notifier.send(outbound(sealer))
    assert e.value.code == "connection"
    assert_private(e.value, ADDRESS)


async def test_a_server_that_never_answers_times_out_as_temporary(catcher, sealer):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never speaks
        async with closing(email_notifier(catcher, sealer, port=silent.getsockname()[1], timeout=0.3)) as notifier:
            with pytest.raises(TemporaryFailure) as e:
                await notifier.send(outbound(sealer))
    assert e.value.code == "connection"


async def test_tls_is_verified_unless_switched_off(catcher, sealer):
    async with closing(email_notifier(catcher, sealer, verify_tls=True)) as untrusted, \
            closing(email_notifier(catcher, sealer, verify_tls=True, ca_file=str(catcher.cert_path))) as trusted:
        with pytest.raises(TemporaryFailure) as e:  # self-signed: a configuration fault
            await untrusted.send(outbound(sealer))
        assert e.value.code == "connection"
        await trusted.send(outbound(sealer))
    assert len(catcher.messages) == 1


async def test_unusable_addresses_are_permanent(notifier, catcher, sealer):
    for address in ("no-at-sign", "a@example.org, b@example.org", "a@example.org\r\nBcc: c@example.org"):
        with pytest.raises(PermanentFailure) as e:
            await notifier.send(outbound(sealer, address))
        assert e.value.code == "address"
        assert_private(e.value, "example.org")
    assert catcher.messages == [] and catcher.faults == []


async def test_content_that_cannot_be_a_header_is_permanent(notifier, catcher, sealer):
    broken = Mail("Release notice\r\nBcc: someone@example.net", MAIL.text, MAIL.html)
    with pytest.raises(PermanentFailure) as e:
        await notifier.send(outbound(sealer, content=broken))
    assert e.value.code == "message"
    assert_private(e.value, "someone@", ADDRESS)
    assert catcher.messages == []


async def test_concurrent_sends_share_the_pool(catcher, sealer):
    async with closing(email_notifier(catcher, sealer, pool_size=4)) as notifier:
        messages = [outbound(sealer, f"v{i}@example.org") for i in range(20)]
        receipts = await asyncio.gather(*(notifier.send(m) for m in messages))
        assert catcher.wait_for(20, timeout=5)
        assert {r.provider_ref for r in receipts} == {f"<{m.notice_id}@doc.mo.example>" for m in messages}
        assert sorted(m.rcpt_tos[0] for m in catcher.messages) == sorted(f"v{i}@example.org" for i in range(20))
        assert 1 <= catcher.logins <= 4
        await asyncio.gather(*(notifier.send(outbound(sealer)) for _ in range(8)))
        assert catcher.logins <= 4  # reused, not reopened


async def test_sessions_dropped_by_a_server_restart_are_replaced(notifier, catcher, sealer):
    await asyncio.gather(*(notifier.send(outbound(sealer, f"v{i}@example.org")) for i in range(3)))
    logins = catcher.logins
    catcher.stop()  # closes every pooled session from the server's side
    catcher.start()  # same port
    receipt = await notifier.send(outbound(sealer))
    assert receipt.provider_ref
    assert catcher.wait_for(4, timeout=5)
    assert catcher.messages[-1].rcpt_tos == (ADDRESS,)
    assert len(catcher.messages) == 4  # no duplicate from the retry
    assert catcher.logins == logins + 1


async def test_idle_sessions_are_not_reused_after_max_idle(catcher, sealer):
    async with closing(email_notifier(catcher, sealer, max_idle=0.5)) as notifier:
        await notifier.send(outbound(sealer))
        await notifier.send(outbound(sealer))
        assert catcher.logins == 1
        await asyncio.sleep(0.6)
        await notifier.send(outbound(sealer))
        assert catcher.logins == 2


async def test_close_ends_the_sessions_and_the_notifier_still_works_after(notifier, catcher, sealer):
    await notifier.send(outbound(sealer))
    await notifier.close()
    await notifier.send(outbound(sealer))
    assert len(catcher.messages) == 2 and catcher.logins == 2


async def test_without_starttls_the_server_refuses_and_it_is_temporary(catcher, sealer):
    async with closing(email_notifier(catcher, sealer, starttls=False)) as notifier:
        with pytest.raises(TemporaryFailure) as e:
            await notifier.send(outbound(sealer))
    # This server offers AUTH only after STARTTLS: a session fault, not the notice's.
    assert e.value.code == "session"
    assert_private(e.value, ADDRESS)
    assert catcher.messages == []


# ---- headers as every client reads them -----------------------------------------------------

#: Long names full of accents: the Subject folds, often right beside an accented word.
NAMES = [
    "José Ángel Núñez",
    "María José Ñúñez de Ávila y Ibáñez-Peñalver",
    "Íñigo Ángel Güemes Óscar Úrsula Álvarez de Toledo Muñoz",
]
SPANISH_FROM = "Oficina de Notificación a Víctimas del Departamento de Corrección de Misuri"


def header_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


async def test_spanish_subjects_and_sender_arrive_as_written_for_every_event_type(catcher, sealer):
    renderer = Renderer()
    sent: dict[str, str] = {}
    address = f"{SPANISH_FROM} <avisos@doc.mo.example>"
    async with closing(email_notifier(catcher, sealer, from_address=address)) as notifier:
        for event_type in NOTICE_KINDS:
            for name in NAMES:
                doc = json.loads((EXAMPLES / "events" / f"{event_type}.json").read_text())
                doc["offender_name"] = name
                body = parse_event(json.dumps(doc)).model_dump(mode="json")
                content = renderer.render(body, "email", "es", "America/Chicago", links=LINKS)
                assert name in content.subject
                message = outbound(sealer, content=content)
                await notifier.send(message)
                sent[message.notice_id] = content.subject
    assert catcher.wait_for(len(sent), timeout=10)
    folded = 0
    for caught in catcher.messages:
        parsed = email.message_from_bytes(caught.raw, policy=email.policy.default)
        assert parsed["Subject"] == sent[parsed["X-Savin-Notice-Id"]]
        (sender,) = parsed["From"].addresses
        assert (sender.display_name, sender.addr_spec) == (SPANISH_FROM, "avisos@doc.mo.example")
        # RFC 2369 forbids whitespace inside List-Unsubscribe's <URL>, so that one line may be longer.
        lines = [line for line in header_lines(caught.raw) if not line.startswith(b"List-Unsubscribe: <")]
        assert all(len(line) <= 78 and line.isascii() for line in lines)
        start = next(i for i, line in enumerate(lines) if line.startswith(b"Subject:"))
        folded += lines[start + 1].startswith(b" ")
    assert folded > len(sent) // 2  # most subjects are long enough to fold


async def test_ascii_subjects_are_left_as_they_are(notifier, catcher, sealer):
    await notifier.send(outbound(sealer))
    assert catcher.wait_for(1, timeout=5)
    assert f"Subject: {MAIL.subject}".encode() in header_lines(catcher.messages[0].raw)
