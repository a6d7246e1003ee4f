"""A real SMTP server (aiosmtpd) for the demo, the tests and the benchmark.

It behaves like a strict submission server: STARTTLS with a self-signed
certificate is required before anything else, AUTH (PLAIN or LOGIN) is
required before MAIL, and every accepted message is recorded, parsed and as
the bytes that arrived, as a :class:`CaughtMail`. Faults are injected by recipient address (answered at
RCPT time) or for a while for every transaction (:meth:`SmtpCatcher.outage`).

The server runs in its own thread (aiosmtpd's ``Controller``), so it serves a
client on any event loop, including the caller's. It never logs addresses or
message content.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hmac
import ipaddress
import logging
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from savin.dev.broker import free_port
from savin.dev.testing.recording import Recorder

__all__ = ["SmtpCatcher", "CaughtMail", "self_signed_context"]


@dataclass(frozen=True)
class CaughtMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    at: float
    #: The message exactly as the client sent it (after the DATA dot-unstuffing).
    raw: bytes = b""


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1 and localhost.

    The certificate and key are written to ``directory`` as ``smtp.crt`` and ``smtp.key``;
    a client that wants to verify the server can trust ``smtp.crt``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def _reply(code: int) -> str:
    """The full reply line for a fault ``code``, with an enhanced status code."""
    known = {
        421: "421 4.3.2 Service not available, closing transmission channel",
        450: "450 4.2.1 Mailbox temporarily unavailable",
        451: "451 4.3.0 Try again later",
        452: "452 4.3.1 Insufficient system storage",
        550: "550 5.1.1 Mailbox unavailable",
        552: "552 5.3.4 Message too big",
        553: "553 5.1.3 Mailbox name not allowed",
        554: "554 5.7.1 Transaction failed",
    }
    if code in known:
        return known[code]
    if not 400 <= code < 600:
        raise ValueError(f"a fault must be a 4xx or 5xx reply code, not {code}")
    return f"{code} {code // 100}.0.0 Transaction failed"


class SmtpCatcher(Recorder[CaughtMail]):
    """An SMTP server on ``host:port`` (a free port when 0) that records what it accepts."""

    #: Recipients that always fail, with the reply code given at RCPT time.
    FAULT_ADDRESSES: dict[str, int] = {
        "tempfail@example.org": 451,
        "bounce@example.org": 550,
    }

    def __init__(self, username: str, password: str, host: str = "127.0.0.1", port: int = 0):
        super().__init__("faults", "logins")
        self.username, self.password = username, password
        self.host = host
        self.port = port or free_port()
        #: Recipient address (any case) -> reply code; starts as a copy of FAULT_ADDRESSES.
        self.fail_addresses: dict[str, int] = dict(self.FAULT_ADDRESSES)
        self._switch = threading.Lock()
        self._outage_until = 0.0
        self._outage_code = 451
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._tls: ssl.SSLContext | None = None
        self._controller: Controller | None = None

    # ---- what happened ------------------------------------------------------------

    @property
    def faults(self) -> list[int]:
        """The reply code of every refused transaction or recipient, in order."""
        return self._copy("faults")

    @property
    def logins(self) -> int:
        """How many sessions authenticated (one per client connection that got that far)."""
        return len(self._copy("logins"))

    @property
    def cert_path(self) -> Path:
        """The server's self-signed certificate (PEM), for clients that verify it."""
        if self._tmp is None:
            raise RuntimeError("start() the server first")
        return Path(self._tmp.name) / "smtp.crt"

    def reset(self) -> None:
        """Forget what was received and end any fault switched on at run time."""
        super().reset()
        self.end_outage()
        self.fail_addresses.clear()
        self.fail_addresses.update(self.FAULT_ADDRESSES)

    # ---- switches -------------------------------------------------------------------

    def outage(self, seconds: float, code: int = 451) -> None:
        """Refuse every transaction (at MAIL) with ``code`` (a 4xx, e.g. 421 or 451) for ``seconds``."""
        if not 400 <= code < 500:
            raise ValueError(f"an outage answers with a 4xx reply code, not {code}")
        with self._switch:
            self._outage_code = code
            self._outage_until = time.monotonic() + seconds

    def end_outage(self) -> None:
        with self._switch:
            self._outage_until = 0.0

    def _outage_now(self) -> int | None:
        with self._switch:
            return self._outage_code if time.monotonic() < self._outage_until else None

    def _address_fault(self, address: str) -> int | None:
        code = self.fail_addresses.get(address)
        if code is None:
            lowered = address.lower()
            code = next((c for a, c in list(self.fail_addresses.items()) if a.lower() == lowered), None)
        return code

    # ---- aiosmtpd hooks (run on the server's thread) ------------------------------

    def _fault(self, code: int) -> str:
        self._note("faults", code)
        return _reply(code)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        code = self._outage_now()
        if code is not None:
            return self._fault(code)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        code = self._address_fault(address)
        if code is not None:
            return self._fault(code)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._record(CaughtMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), message, time.time(), raw))
        return "250 2.0.0 Message accepted"

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: object) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and hmac.compare_digest(auth_data.login, self.username.encode())
              and hmac.compare_digest(auth_data.password, self.password.encode()))
        if ok:
            self._note("logins", time.time())
        # handled=False: aiosmtpd answers 235 on success and 535 5.7.8 on failure.
        return AuthResult(success=ok, handled=False)

    # ---- lifecycle ------------------------------------------------------------------

    def start(self, ready_timeout: float = 10.0) -> "SmtpCatcher":
        """Listen on ``host:port``; returns once the server answers. Restartable after :meth:`stop`."""
        if self._controller is not None:
            raise RuntimeError("the SMTP server is already running")
        # aiosmtpd logs every command line (addresses included) at INFO and the
        # AUTH user at WARNING; only its errors are worth hearing.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="savin-smtp-")
            self._tls = self_signed_context(Path(self._tmp.name))
        controller = Controller(
            self, hostname=self.host, port=self.port,
            # The name in the banner and EHLO. Without it aiosmtpd calls socket.getfqdn()
            # for every connection, which can stall on a host without working DNS and
            # make start() miss its readiness deadline.
            server_hostname="localhost",
            # The readiness check opens a plain connection and reads the 220 banner;
            # the banner comes before STARTTLS, so it works with require_starttls.
            # (ssl_context would mean implicit TLS on connect, and the check would
            # then wrap its socket in TLS; STARTTLS is tls_context.) The default
            # 1 s deadline is too short on a machine busy with a broker and workers.
            ready_timeout=ready_timeout,
            tls_context=self._tls, require_starttls=True,
            authenticator=self._authenticate, auth_required=True, auth_require_tls=True,
            decode_data=False,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection; :meth:`start` again on the same port."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def close(self) -> None:
        """Stop and remove the certificate files."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp, self._tls = None, None

    def __enter__(self) -> "SmtpCatcher":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
