"""Email over SMTP (aiosmtplib): STARTTLS, AUTH, a plain-text part and an HTML
alternative, sent over a small pool of authenticated connections.

Opening a session costs about seven round trips and a TLS handshake (connect,
EHLO, STARTTLS, the handshake, EHLO, AUTH); a send on an open session costs
four (MAIL, RCPT, DATA, the content). The pool keeps up to ``pool_size`` sessions open and hands each
send one of them, opening sessions lazily and dropping those the server has
closed.

SMTP failures are mapped here, and only here, to savin's failures:

* while opening a session (connect, TLS, EHLO, AUTH): always temporary. The
  fault lies with the server or with savin's configuration, not with the
  notice, and every notice would fail the same way until someone fixes it;
  failing them permanently would lose them.
* in a transaction (MAIL, RCPT, DATA): 4xx temporary, 5xx permanent.
* a lost connection or a timeout: temporary.

Exception texts from aiosmtplib and the server's reply texts can contain the
recipient's address, so savin's failures carry only the reply code and ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import email.utils
import functools
import socket
import ssl
import time
from collections import deque
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage

import aiosmtplib

from savin.notifiers.base import (
    DeliveryError,
    Notifier,
    Outbound,
    PermanentFailure,
    TemporaryFailure,
)
from savin.sealing import Sealer

__all__ = ["SmtpEmail", "classify"]


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, except that it builds each header class once.

    ``HeaderRegistry`` creates a new class with ``type()`` on every lookup, dozens
    of times per message; building them once halves the time :meth:`SmtpEmail.build` takes.
    """

    @functools.lru_cache(maxsize=128)
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


#: email.policy.SMTP (CRLF line ends, strict header checks) with the faster registry.
POLICY = email.policy.SMTP.clone(header_factory=_HeaderClasses())


def classify(code: int, notice_id: str) -> DeliveryError:
    """A reply code refusing a transaction, as a savin failure: 4xx temporary, else permanent."""
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
        *,
        pool_size: int = 8,
        max_idle: float = 60.0,
        ca_file: str | None = None,
        local_hostname: str | None = None,
    ):
        """``max_idle``: a session idle longer than this is closed rather than reused (servers
        drop idle sessions after a while). ``ca_file``: trust this CA (PEM) instead of the
        system's. ``local_hostname``: the name sent in EHLO (default: this host's FQDN)."""
        super().__init__(sealer)
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._host, self._port = host, port
        self._username, self._password = username, password
        self._starttls = starttls
        self._timeout = timeout
        self._from = from_address
        self._sender = email.utils.parseaddr(from_address)[1]
        if "@" not in self._sender:
            raise ValueError("from_address needs an address with a domain")
        self._domain = self._sender.rpartition("@")[2]
        self._max_idle = max_idle
        self._local_hostname = local_hostname
        self._tls = ssl.create_default_context(cafile=ca_file)
        if not verify_tls:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        self._pool_size = pool_size
        self._slots: asyncio.Semaphore | None = None
        #: Open sessions nobody is using, with the time each was returned; most recent last.
        self._idle: deque[tuple[aiosmtplib.SMTP, float]] = deque()

    # ---- the message --------------------------------------------------------------

    def build(self, address: str, message: Outbound) -> EmailMessage:
        """The email for ``message`` to ``address``: headers, a text part and an HTML alternative."""
        content = message.content
        mail = EmailMessage(policy=POLICY)
        mail["From"] = self._from
        mail["To"] = address
        mail["Subject"] = content.subject
        mail["Date"] = email.utils.formatdate(usegmt=True)
        # Derived from the notice id, so a retried notice carries the same Message-ID.
        mail["Message-ID"] = f"<{message.notice_id}@{self._domain}>"
        mail["X-Savin-Notice-Id"] = message.notice_id
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        mail.set_content(content.text)
        mail.add_alternative(content.html, subtype="html")
        return mail

    # ---- sending --------------------------------------------------------------------

    async def try_send(self, address: str, message: Outbound) -> str | None:
        notice = message.notice_id
        # One bare address, as registrations hold them; anything else would be read
        # differently by the header parser and the envelope.
        parsed = email.utils.parseaddr(address)[1]
        if not parsed or "@" not in parsed or parsed != address.strip():
            raise PermanentFailure(f"smtp: notice {notice} has no usable email address", "address")
        try:
            mail = self.build(parsed, message)
        except ValueError:
            # A header value with a line break or similar; the text would show the value.
            raise PermanentFailure(f"smtp: notice {notice} cannot be written as an email", "message") from None
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._pool_size)
        async with self._slots:
            # A session from the pool may have been closed by the server since its last
            # use (restart, idle timeout) without this side noticing yet; that shows as
            # a lost connection on MAIL. Then retry once on a new session; on a new
            # session a lost connection is a real failure. (The retry could repeat a mail
            # if the connection broke after the server had taken the DATA; the repeat
            # carries the same Message-ID.)
            while True:
                smtp, reused = await self._checkout(notice)
                try:
                    await smtp.send_message(mail, sender=self._sender, recipients=[parsed])
                except ConnectionError:  # SMTPServerDisconnected, or a reset from the socket
                    smtp.close()
                    if reused:
                        self._drop_idle()
                        continue
                    raise TemporaryFailure(f"smtp: connection lost sending notice {notice}", "connection") from None
                except (aiosmtplib.SMTPException, ValueError) as e:
                    # After a refusal aiosmtplib has already sent RSET, so the session is
                    # clean for the next mail; on 421 and on timeouts it has closed it.
                    self._checkin(smtp)
                    raise _transaction_failure(e, notice) from None
                except BaseException:
                    # Cancelled or broken mid-transaction: the session's state is unknown.
                    smtp.close()
                    raise
                self._checkin(smtp)
                return str(mail["Message-ID"])

    async def _checkout(self, notice: str) -> tuple[aiosmtplib.SMTP, bool]:
        """An open, authenticated session, and whether it was reused from the pool."""
        now = time.monotonic()
        while self._idle:
            smtp, since = self._idle.pop()
            if smtp.is_connected and now - since <= self._max_idle:
                return smtp, True
            smtp.close()
        return await self._connect(notice), False

    def _checkin(self, smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected:
            self._idle.append((smtp, time.monotonic()))
        else:
            smtp.close()

    async def _connect(self, notice: str) -> aiosmtplib.SMTP:
        if self._local_hostname is None:
            # aiosmtplib would look this up again for every connection.
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        smtp = aiosmtplib.SMTP(
            hostname=self._host, port=self._port, timeout=self._timeout, local_hostname=self._local_hostname,
            start_tls=self._starttls, tls_context=self._tls if self._starttls else None,
            username=self._username, password=self._password,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as e:
            # Wrong credentials stop all mail until an operator fixes them: temporary,
            # so the notices wait and go out then, instead of being failed for good.
            raise TemporaryFailure(f"smtp: authentication failed (reply {e.code}) for notice {notice}",
                                   str(e.code)) from None
        except aiosmtplib.SMTPResponseException as e:
            # The server refused the session (greeting, EHLO, STARTTLS), not this notice.
            raise TemporaryFailure(f"smtp: server refused the session (reply {e.code}) for notice {notice}",
                                   str(e.code)) from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                OSError, asyncio.TimeoutError) as e:
            # Unreachable, dropped, timed out, or TLS failed (ssl.SSLError is an OSError).
            raise TemporaryFailure(f"smtp: no session for notice {notice}: {type(e).__name__}",
                                   "connection") from None
        except aiosmtplib.SMTPException as e:
            # The server lacks something the configuration asks for (STARTTLS, AUTH).
            raise TemporaryFailure(f"smtp: no session for notice {notice}: {type(e).__name__}",
                                   "session") from None
        return smtp

    def _drop_idle(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()

    async def close(self) -> None:
        """Say QUIT on the idle sessions and close them. Sessions in use return to the pool."""
        idle = [smtp for smtp, _ in self._idle]
        self._idle.clear()

        async def quit(smtp: aiosmtplib.SMTP) -> None:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                await smtp.quit(timeout=min(self._timeout, 2.0))
            smtp.close()

        await asyncio.gather(*(quit(smtp) for smtp in idle))


def _transaction_failure(e: Exception, notice: str) -> DeliveryError:
    """A failure during MAIL/RCPT/DATA as a savin failure; never copies ``e``'s text."""
    if isinstance(e, aiosmtplib.SMTPRecipientsRefused):
        return classify(min(r.code for r in e.recipients), notice)
    if isinstance(e, aiosmtplib.SMTPResponseException):
        return classify(e.code, notice)
    if isinstance(e, (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected)):
        return TemporaryFailure(f"smtp: {type(e).__name__} sending notice {notice}", "connection")
    if isinstance(e, aiosmtplib.SMTPNotSupported):
        # The address needs SMTPUTF8 and the server does not offer it.
        return PermanentFailure(f"smtp: server cannot take the address of notice {notice}", "smtputf8")
    if isinstance(e, ValueError):
        return PermanentFailure(f"smtp: notice {notice} has no usable email address", "address")
    return TemporaryFailure(f"smtp: {type(e).__name__} sending notice {notice}", "smtp")
