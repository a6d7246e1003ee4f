"""Who is asking, and whether they may: console sessions, API tokens, roles
and form tokens.

* A console session is a signed cookie (``savin_console``: HttpOnly,
  SameSite=Strict, Secure behind https, path ``/console``) naming the account,
  a random session id and the account's generation, expiring after
  ``SAVIN_CONSOLE_SESSION_HOURS``. It is honoured while the account exists, is
  not disabled, has the same generation (a new password or disabling ends
  every session) and the session was not signed out (``SessionEnded`` on
  ``operators``). Any web process checks it: nothing lives in one process.
* Every console form carries a token, the HMAC of the session id, checked
  before the handler runs.
* The API takes ``Authorization: Bearer savin_<id>_<secret>`` tokens only (no
  cookies, so no cross-site request can use a browser's session).

Routes declare the role they need with :meth:`Auth.page` or :meth:`Auth.api`,
whose check leaves the caller in ``request.state.principal`` for the handler;
a request that lacks it is refused before its handler or its body's fields are
looked at: no session is sent to the sign-in page (console) or answered 401
(API), a session without the role or a form without a valid token 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from savin.domain.links import derive_key, read_token, sign_token
from savin.domain.operators import parse_token, token_matches, token_role
from savin.schemas.operators import OperatorAccount, Role
from savin.settings import Settings
from savin.web.console.accounts import Directory

__all__ = ["SESSION_COOKIE", "COOKIE_PATH", "Principal", "Refused", "Auth", "principal"]

SESSION_COOKIE = "savin_console"
COOKIE_PATH = "/console"
_PURPOSE = "console-session"


@dataclass(frozen=True)
class Principal:
    """The operator (or the token acting for one) behind a request."""

    actor: str  # operator:<name> or token:<token id>
    name: str  # the account
    role: Role
    via: str  # console or api
    session_id: str | None = None
    csrf: str | None = None  # the session's form token


class Refused(Exception):
    """A request without what its route needs. ``status`` 401: nobody signed in; 403: not allowed."""

    def __init__(self, status: int, reason: str, principal: Principal | None = None, needed: Role | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.principal = principal
        self.needed = needed


def principal(request: Request) -> Principal:
    """The caller a route's role check let through."""
    return request.state.principal


_bearer = HTTPBearer(auto_error=False, description="An API token: `savin operators token create NAME`.")


class Auth:
    def __init__(self, settings: Settings, directory: Directory):
        secret = settings.web_secret.get_secret_value()
        self._session_key = derive_key(secret, _PURPOSE)
        self._csrf_key = derive_key(secret, "console-forms")
        self.lifetime = timedelta(hours=settings.console_session_hours)
        self.secure = (settings.public_url or "").startswith("https:")
        self.directory = directory

    # ---- sessions ------------------------------------------------------------------

    def new_session(self, account: OperatorAccount, now: datetime) -> tuple[str, str, datetime]:
        """``(cookie value, session id, expiry)`` of a new sign-in."""
        sid = secrets.token_urlsafe(18)
        expires = now + self.lifetime
        return sign_token(self._session_key, _PURPOSE, (account.name, sid, str(account.generation)), expires), \
            sid, expires

    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, session_id: str | None, token: object) -> bool:
        return bool(session_id) and isinstance(token, str) and hmac.compare_digest(self.csrf_token(session_id), token)

    def from_cookie(self, request: Request, now: datetime | None = None) -> Principal | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        fields = read_token(self._session_key, _PURPOSE, raw, now or datetime.now(UTC))
        if fields is None or len(fields) != 3:
            return None
        name, sid, generation = fields
        account = self.directory.account(name)
        if account is None or account.disabled or str(account.generation) != generation:
            return None
        if self.directory.session_ended(sid):
            return None
        return Principal(f"operator:{name}", name, account.role, "console", sid, self.csrf_token(sid))

    def from_bearer(self, credentials: HTTPAuthorizationCredentials | None) -> Principal | None:
        parsed = parse_token(credentials.credentials) if credentials else None
        if parsed is None:
            return None
        token = self.directory.token(parsed[0])
        if token is None or not token_matches(token, parsed[1]):
            return None
        role = token_role(token, self.directory.account(token.owner))
        return None if role is None else Principal(f"token:{token.token_id}", token.owner, role, "api")

    # ---- what routes depend on -----------------------------------------------------

    def page(self, needed: Role):
        """A console route's dependency: the signed-in operator, with ``needed`` at least;
        a POST's form token checked."""

        async def signed_in(request: Request) -> Principal:
            p = self.from_cookie(request)
            if p is None:
                raise Refused(401, "Sign in first.")
            if not p.role.allows(needed):
                raise Refused(403, f"This needs the {needed.value} role.", p, needed)
            if request.method not in ("GET", "HEAD"):
                form = await request.form()
                if not self.csrf_valid(p.session_id, form.get("csrf")):
                    raise Refused(403, "The form had expired or did not come from this console: reload the page and try again.", p)
            request.state.principal = p
            return p

        return Depends(signed_in)

    def api(self, needed: Role):
        """An API route's dependency: the token's principal, with ``needed`` at least."""

        async def token(request: Request,
                        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
            p = self.from_bearer(credentials)
            if p is None:
                raise Refused(401, "A valid API token is needed (Authorization: Bearer savin_...).")
            if not p.role.allows(needed):
                raise Refused(403, f"This needs the {needed.value} scope.", p, needed)
            request.state.principal = p
            return p

        return Depends(token)
