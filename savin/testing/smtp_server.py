"""A real SMTP server (aiosmtpd) for the demo and the tests: STARTTLS with a
self-signed certificate, AUTH required, mail recorded, faults by recipient.

It never logs addresses or message content.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import logging
import ssl
import tempfile
import time
import warnings
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from savin.broker import free_port
from savin.testing.recording import Recorder

__all__ = ["SmtpCatcher", "CaughtMail", "self_signed_context"]

# aiosmtpd logs every command (addresses included) and warns about its own use
# of a deprecated attribute on every AUTH; this server keeps quiet.
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class CaughtMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    at: float


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1 and localhost."""
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
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class SmtpCatcher(Recorder[CaughtMail]):
    #: Recipients that always fail, with the SMTP reply code.
    FAULT_ADDRESSES: dict[str, int] = {
        "tempfail@example.org": 451,
        "bounce@example.org": 550,
    }
    REPLIES = {
        421: "421 4.3.2 Service not available, closing transmission channel",
        451: "451 4.3.0 Try again later",
        550: "550 5.1.1 Mailbox unavailable",
        552: "552 5.3.4 Message too big",
    }

    def __init__(self, username: str, password: str, host: str = "127.0.0.1", port: int = 0):
        self.username, self.password = username, password
        self.host = host
        self.port = port or free_port()
        self.fail_addresses: dict[str, int] = dict(self.FAULT_ADDRESSES)
        self.outage_until = 0.0
        self.outage_code = 451
        super().__init__("faults")
        self._tmp = tempfile.TemporaryDirectory(prefix="savin-smtp-")
        self._tls = self_signed_context(Path(self._tmp.name))
        self._controller: Controller | None = None

    @property
    def faults(self) -> list[int]:
        return self._copy("faults")

    def outage(self, seconds: float, code: int = 451) -> None:
        """Refuse every transaction with ``code`` (a 4xx) for ``seconds``."""
        self.outage_code = code
        self.outage_until = time.monotonic() + seconds

    # ---- aiosmtpd hooks ---------------------------------------------------------------------

    def _fault(self, code: int) -> str:
        self._note("faults", code)
        return self.REPLIES[code]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if time.monotonic() < self.outage_until:
            return self._fault(self.outage_code)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.fail_addresses.get(address.lower())
        if code is not None:
            return self._fault(code)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        self._record(CaughtMail(envelope.mail_from, tuple(envelope.rcpt_tos), message, time.time()))
        return "250 2.0.0 Message accepted"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.username and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False)

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "SmtpCatcher":
        self._controller = Controller(
            self, hostname=self.host, port=self.port, server_hostname="localhost",
            tls_context=self._tls, require_starttls=True,
            authenticator=self._authenticate, auth_required=True, auth_require_tls=True,
            decode_data=False,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __del__(self) -> None:
        self._tmp.cleanup()
