"""Signed, expiring tokens for links sent to a registrant (an email's
unsubscribe and confirm links).

A token names ids only, never an address. Its HMAC-SHA256 covers a purpose
as well as the fields, so a token made for one link cannot be used as
another; its expiry bounds how long a forwarded email can act.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

__all__ = ["derive_key", "read_token", "sign_token"]

_SEPARATOR = "|"


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose from a deployment secret (``SAVIN_WEB_SECRET``)."""
    return hmac.new(secret.encode(), f"savin-link-key\0{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, body: str) -> str:
    return _b64(hmac.new(key, f"{purpose}\0{body}".encode(), hashlib.sha256).digest())


def sign_token(key: bytes, purpose: str, fields: tuple[str, ...], expires_at: datetime) -> str:
    """``body.mac``: the fields and the expiry, base64url, and their MAC for ``purpose``."""
    if any(_SEPARATOR in f for f in fields):
        raise ValueError(f"a token field may not hold {_SEPARATOR!r}")
    body = _b64(_SEPARATOR.join((*fields, str(int(expires_at.timestamp())))).encode())
    return f"{body}.{_mac(key, purpose, body)}"


def read_token(key: bytes, purpose: str, token: str, now: datetime) -> tuple[str, ...] | None:
    """The fields of a token made for ``purpose``, or None when it is forged, malformed or expired."""
    body, _, mac = token.partition(".")
    if not mac or len(token) > 1000 or not hmac.compare_digest(mac, _mac(key, purpose, body)):
        return None
    try:
        *fields, expires = _unb64(body).decode().split(_SEPARATOR)
        if int(expires) <= now.timestamp():
            return None
    except ValueError:
        return None
    return tuple(fields)
