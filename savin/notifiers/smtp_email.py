"""Email over SMTP (aiosmtplib): STARTTLS, AUTH, a plain-text part and an HTML
alternative, sent over a small pool of authenticated connections.

Opening a session costs about seven round trips and a TLS handshake (connect,
EHLO, STARTTLS, the handshake, EHLO, AUTH); a send on an open session costs
four (MAIL, RCPT, DATA, the content). The pool keeps up to ``pool_size`` sessions open and hands each
send one of them, opening sessions lazily and dropping those the server has
closed.

SMTP failures are mapped here, and only here, to savin's failures:

* AUTH refused with a 5xx reply (535: bad credentials): a configuration fault.
  The notice is kept for retry, and the notifier is marked as refused until a
  send or a check (:meth:`SmtpEmail.try_check`, a login) succeeds.
* anything else while opening a session (connect, TLS, EHLO, a 4xx AUTH reply):
  temporary. The fault lies with the server, not with the notice, and every
  notice would fail the same way until it recovers; failing them permanently
  would lose them.
* in a transaction (MAIL, RCPT, DATA): 4xx temporary, 5xx permanent.
* a lost connection or a timeout: temporary.

Exception texts from aiosmtplib and the server's reply texts can contain the
recipient's address, so savin's failures carry only the reply code and ids.

A Subject or From display name that is not plain ASCII is written as RFC 2047
encoded words by :func:`subject_header` and :func:`from_header`. Python's own
folding splits such a header into encoded words at spaces and leaves the space
*between* two words; RFC 2047 readers drop whitespace between adjacent encoded
words, so "José Ángel" would read as "JoséÁngel". In a Subject every space
travels inside an encoded word; a display name keeps real spaces between plain
and encoded words (:func:`phrase_words`). Either way a reader gets back the text
as written.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import email.utils
import functools
import socket
import ssl
import string
import time
from collections import deque
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage

import aiosmtplib

from savin.notifiers.base import (
    ConfigurationFault,
    DeliveryError,
    Notifier,
    Outbound,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from savin.sealing import Sealer

__all__ = ["SmtpEmail", "classify", "encoded_words", "phrase_words", "subject_header", "from_header"]

#: The constructor arguments a refused login points at.
CREDENTIALS = ("username", "password")


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


#: Characters an encoded word may carry as themselves, in any header (RFC 2047 section 5 (3)).
_Q_SAFE = frozenset(string.ascii_letters + string.digits + "!*+-/")
#: Characters a word of a display name may carry unquoted (RFC 5322 atext).
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_EW_OPEN, _EW_CLOSE = "=?utf-8?q?", "?="
#: RFC 2047: an encoded word is at most 75 characters; RFC 5322: lines at most 78.
_EW_MAX, _LINE_MAX = 75, 78


def _q(char: str) -> str:
    if char == " ":
        return "_"
    if char in _Q_SAFE:
        return char
    return "".join(f"={b:02X}" for b in char.encode("utf-8"))


def encoded_words(text: str, first_room: int = _EW_MAX) -> list[str]:
    """``text`` as RFC 2047 Q encoded words (UTF-8), each of whole characters.

    Spaces are encoded inside the words, so the whitespace a header puts between
    two words is only folding, which readers drop. The first word fits in
    ``first_room`` characters (what is left of the header's first line).
    """
    words: list[str] = []
    current = ""
    room = max(min(first_room, _EW_MAX), len(_EW_OPEN) + len(_EW_CLOSE) + 12)
    for char in text:
        piece = _q(char)
        if current and len(_EW_OPEN) + len(current) + len(piece) + len(_EW_CLOSE) > room:
            words.append(_EW_OPEN + current + _EW_CLOSE)
            current, room = "", _EW_MAX
        current += piece
    if current or not words:
        words.append(_EW_OPEN + current + _EW_CLOSE)
    return words


def phrase_words(text: str, first_room: int = _EW_MAX) -> list[str]:
    """A display name as the words of an RFC 5322 phrase: plain ASCII words as they
    are, each run of other words as encoded words with its spaces inside.

    Unlike in a Subject, Python's address parser keeps the whitespace between two
    adjacent encoded words of a phrase, where RFC 2047 readers drop it; encoding
    only the runs that need it keeps real spaces between words for both. (A run
    too long for one encoded word is split where RFC 2047 readers join it.)
    """
    if "  " in text or not text.isprintable():
        return encoded_words(text, first_room)
    tokens: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            tokens.extend(encoded_words(" ".join(run), first_room if not tokens else _EW_MAX))
            run.clear()

    for word in text.split(" "):
        if word and set(word) <= _ATEXT and not word.startswith("=?"):
            flush()
            tokens.append(word)
        else:
            run.append(word)
    flush()
    return tokens


class EncodedHeader(str):
    """A header value that writes itself from ready-made words, folded between them.

    The email policy hands a value with a ``name`` to the value's own ``fold``
    instead of refolding it, which keeps the policy's folder (the one that
    splits encoded words at spaces) away from it. As a string it is the text as
    written.
    """

    name: str

    def __new__(cls, name: str, shown: str, words: list[str]):
        if any(c in shown for c in "\r\n"):
            raise ValueError("header values may not contain line breaks")
        value = super().__new__(cls, shown)
        value.name = name
        value._words = words
        return value

    def fold(self, *, policy: email.policy.Policy) -> str:
        start = f"{self.name}:"
        lines, line = [], start
        for word in self._words:
            if line != start and len(line) + 1 + len(word) > _LINE_MAX:
                lines.append(line)
                line = ""
            line += " " + word
        lines.append(line)
        return policy.linesep.join(lines) + policy.linesep


def subject_header(subject: str) -> str:
    """The Subject as written, encoded when it is not plain ASCII."""
    if subject.isascii():
        return subject
    return EncodedHeader("Subject", subject, encoded_words(subject, _LINE_MAX - len("Subject: ")))


def from_header(from_address: str) -> str:
    """``Display Name <address>``, with a display name that is not plain ASCII encoded."""
    name, address = email.utils.parseaddr(from_address)
    if not name or name.isascii() or not address.isascii():
        return from_address  # the policy's own header handles these
    words = phrase_words(name, _LINE_MAX - len("From: ")) + [f"<{address}>"]
    return EncodedHeader("From", f"{name} <{address}>", words)


#: Reply codes servers give for too many connections or messages (421 closing, 451 local limit).
TOO_MANY = frozenset({421, 451})


def classify(code: int, notice_id: str) -> DeliveryError:
    """A reply code refusing a transaction, as a savin failure: 4xx temporary (421 and 451
    slow the sender down), else permanent."""
    text = f"smtp refused notice {notice_id}: reply {code}"
    if code in TOO_MANY:
        return RateLimited(text, str(code))
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
        self._sender = email.utils.parseaddr(from_address)[1]
        if "@" not in self._sender:
            raise ValueError("from_address needs an address with a domain")
        self._from = from_header(from_address)
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
        mail["Subject"] = subject_header(content.subject)
        mail["Date"] = email.utils.formatdate(usegmt=True)
        # Derived from the notice id, so a retried notice carries the same Message-ID.
        mail["Message-ID"] = f"<{message.notice_id}@{self._domain}>"
        mail["X-Savin-Notice-Id"] = message.notice_id
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        if unsubscribe := getattr(content, "unsubscribe", None):
            # RFC 8058 one-click: the mail client POSTs "List-Unsubscribe=One-Click" to the URL.
            # Written as one word, however long: RFC 2369 allows no whitespace inside the
            # brackets, and the policy would turn a long URL into RFC 2047 encoded words,
            # which no mail client reads as a URL.
            mail["List-Unsubscribe"] = EncodedHeader("List-Unsubscribe", f"<{unsubscribe}>", [f"<{unsubscribe}>"])
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
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
                smtp, reused = await self._checkout(f"notice {notice}")
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

    async def _checkout(self, about: str) -> tuple[aiosmtplib.SMTP, bool]:
        """An open, authenticated session, and whether it was reused from the pool.
        ``about`` says what the session is for in failures (an id, never an address)."""
        now = time.monotonic()
        while self._idle:
            smtp, since = self._idle.pop()
            if smtp.is_connected and now - since <= self._max_idle:
                return smtp, True
            smtp.close()
        return await self._connect(about), False

    def _checkin(self, smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected:
            self._idle.append((smtp, time.monotonic()))
        else:
            smtp.close()

    async def _connect(self, about: str) -> aiosmtplib.SMTP:
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
            # Wrong credentials stop all mail until an operator fixes them: the notices
            # wait and go out then, instead of being failed for good.
            if 500 <= e.code < 600:
                raise ConfigurationFault(f"smtp: the server refused savin's login (reply {e.code}) for {about}",
                                         str(e.code), fields=CREDENTIALS) from None
            raise TemporaryFailure(f"smtp: authentication failed for now (reply {e.code}) for {about}",
                                   str(e.code)) from None
        except aiosmtplib.SMTPResponseException as e:
            # The server refused the session (greeting, EHLO, STARTTLS), not this notice.
            raise TemporaryFailure(f"smtp: server refused the session (reply {e.code}) for {about}",
                                   str(e.code)) from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                OSError, asyncio.TimeoutError) as e:
            # Unreachable, dropped, timed out, or TLS failed (ssl.SSLError is an OSError).
            raise TemporaryFailure(f"smtp: no session for {about}: {type(e).__name__}",
                                   "connection") from None
        except aiosmtplib.SMTPException as e:
            # The server lacks something the configuration asks for (STARTTLS, AUTH).
            raise TemporaryFailure(f"smtp: no session for {about}: {type(e).__name__}",
                                   "session") from None
        return smtp

    async def try_check(self) -> None:
        """Open a session and log in; the session joins the pool for the first send."""
        smtp = await self._connect("the login check")
        self._checkin(smtp)

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
