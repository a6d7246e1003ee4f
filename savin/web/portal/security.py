"""What every portal response carries, and the form tokens of POST forms.

Headers: a strict Content-Security-Policy (only the portal's own files, no
inline script or style, no framing), ``nosniff``, no referrer.

CSRF: each browser gets a random session id in a cookie; a form's token is
the HMAC-SHA256 of that id under ``SAVIN_WEB_SECRET``. A POST is accepted
only with a token that matches its cookie, so another site can neither read
nor forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "SESSION_COOKIE", "Csrf", "SecurityHeaders"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'")

HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

SESSION_COOKIE = "savin_session"


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response, errors included."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)


class Csrf:
    def __init__(self, secret: str):
        self._key = hashlib.sha256(b"savin-csrf\0" + secret.encode()).digest()

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(24)

    def token(self, session: str) -> str:
        return hmac.new(self._key, session.encode(), hashlib.sha256).hexdigest()

    def valid(self, session: str | None, token: str | None) -> bool:
        if not session or not token:
            return False
        return hmac.compare_digest(self.token(session), token)
