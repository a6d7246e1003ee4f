"""Sealed cookies: state the browser carries between pages, which only this
deployment can read or make.

A registration in progress (its answers, contact addresses included) and a
signed-in registrant's session live in the browser, not in any process, so
any ``savin web`` process can serve the next page and none holds state Kafka
cannot rebuild. Each cookie is AES-256-GCM under a key derived from
``SAVIN_WEB_SECRET`` for its purpose, with its expiry inside the sealed
part: it can be neither read nor altered, and an old one stops working.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from savin.domain.links import derive_key

__all__ = ["CookieBox"]


class CookieBox:
    """Seals and opens one kind of cookie (``purpose``) for ``max_age``."""

    def __init__(self, secret: str, purpose: str, max_age: timedelta):
        self.purpose = purpose
        self.max_age = max_age
        self._aead = AESGCM(derive_key(secret, f"cookie:{purpose}"))

    def seal(self, data: dict, now: datetime) -> str:
        body = json.dumps({"d": data, "exp": int((now + self.max_age).timestamp())}, separators=(",", ":"))
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, body.encode(), self.purpose.encode())
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def open(self, value: str | None, now: datetime) -> dict | None:
        """The data, or None when the cookie is missing, forged, altered or expired."""
        if not value or len(value) > 4000:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            body = json.loads(self._aead.decrypt(raw[:12], raw[12:], self.purpose.encode()))
        except (ValueError, InvalidTag):
            return None
        if not isinstance(body, dict) or body.get("exp", 0) <= now.timestamp() or not isinstance(body.get("d"), dict):
            return None
        return body["d"]
