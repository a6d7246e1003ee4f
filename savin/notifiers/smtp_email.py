"""Email over SMTP (aiosmtplib): STARTTLS, AUTH, a plain-text part and an HTML
alternative, over a small pool of authenticated connections.

SMTP reply codes are mapped here, and only here, to savin's failures:
4xx temporary, 5xx permanent.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ssl
from email.message import EmailMessage

import aiosmtplib

from savin.notifiers.base import DeliveryError, Notifier, Outbound, PermanentFailure, TemporaryFailure
from savin.sealing import Sealer

__all__ = ["SmtpEmail", "classify"]


def classify(code: int, notice_id: str) -> DeliveryError:
    """An SMTP reply code as a savin failure. Never carries the address or the content."""
    text = f"smtp refused notice {notice_id}: reply {code}"
    return TemporaryFailure(text, str(code)) if 400 <= code < 500 else PermanentFailure(text, str(code))


class SmtpEmail(Notifier):
    provider = "smtp"
    channel = "email"

    def __init__(
        self,
        sealer: Sealer,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        verify_tls: bool = True,
        timeout: float = 10.0,
        from_address: str = "Victim Notification <notices@savin.invalid>",
        pool_size: int = 8,
    ):
        super().__init__(sealer)
        self._host, self._port = host, port
        self._username, self._password = username, password
        self._starttls = starttls
        self._timeout = timeout
        self._from = from_address
        self._domain = email.utils.parseaddr(from_address)[1].rpartition("@")[2] or "savin.invalid"
        self._tls = ssl.create_default_context()
        if not verify_tls:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(pool_size)

    def build(self, address: str, message: Outbound) -> EmailMessage:
        content = message.content
        mail = EmailMessage()
        mail["From"] = self._from
        mail["To"] = address
        mail["Subject"] = content.subject
        mail["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = f"<{message.notice_id}@{self._domain}>"
        mail["X-Savin-Notice-Id"] = message.notice_id
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(content.text)
        mail.add_alternative(content.html, subtype="html")
        return mail

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(hostname=self._host, port=self._port, timeout=self._timeout,
                               start_tls=self._starttls, tls_context=self._tls if self._starttls else None,
                               username=self._username, password=self._password)
        await smtp.connect()
        return smtp

    @contextlib.asynccontextmanager
    async def _connection(self):
        """A connected, authenticated client from the pool; discarded if the send broke it."""
        async with self._slots:
            smtp = self._idle.pop() if self._idle else await self._connect()
            healthy = False
            try:
                yield smtp
                healthy = True
            except aiosmtplib.SMTPResponseException:
                # The server refused this mail, not the session: reset and keep it.
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await smtp.rset()
                    healthy = True
                raise
            finally:
                if healthy and smtp.is_connected:
                    self._idle.append(smtp)
                else:
                    smtp.close()

    async def try_send(self, address: str, message: Outbound) -> str | None:
        mail = self.build(address, message)
        for attempt in (1, 2):
            try:
                async with self._connection() as smtp:
                    await smtp.send_message(mail)
                return mail["Message-ID"]
            except aiosmtplib.SMTPRecipientsRefused as e:
                raise classify(min(r.code for r in e.recipients), message.notice_id) from None
            except aiosmtplib.SMTPAuthenticationError as e:
                # Wrong credentials stop all mail until an operator fixes them: retry, don't fail the notice.
                raise TemporaryFailure(f"smtp authentication failed ({e.code}) for notice {message.notice_id}",
                                       str(e.code)) from None
            except aiosmtplib.SMTPServerDisconnected:
                if attempt == 1:
                    # The server closed pooled connections (restart, idle timeout): drop them
                    # all and try once more on a fresh one.
                    self._drop_idle()
                    continue
                raise TemporaryFailure(f"smtp server disconnected for notice {message.notice_id}",
                                       "connection") from None
            except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectTimeoutError,
                    aiosmtplib.SMTPReadTimeoutError, asyncio.TimeoutError, OSError) as e:
                raise TemporaryFailure(f"smtp unreachable for notice {message.notice_id}: {type(e).__name__}",
                                       "connection") from None
            except aiosmtplib.SMTPResponseException as e:
                raise classify(e.code, message.notice_id) from None
        return None  # not reached

    def _drop_idle(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def close(self) -> None:
        while self._idle:
            smtp = self._idle.pop()
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
