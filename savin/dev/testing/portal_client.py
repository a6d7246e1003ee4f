"""A registrant without a browser: posts the portal's own forms over HTTP, with
their cookies and form tokens, the way a browser without JavaScript does.

The demo registers a victim with it; tests that are about what the portal
records (not how its pages look) use it too. Every page it reads must answer
200 or the redirect the form promises; anything else is an error naming the
page and its status.
"""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

from savin.web.portal.register import GROUPS

__all__ = ["PortalClient", "PortalError"]

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_REGISTRATION_ID = re.compile(r'id="registration-id">([^<]+)<')


class PortalError(RuntimeError):
    """A portal page answered with something other than what a registrant expects."""


class PortalClient:
    def __init__(self, base_url: str, language: str = "en", timeout: float = 15.0):
        self.base_url = base_url.rstrip("/")
        self.language = language
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self._token: str | None = None

    def get(self, path: str) -> str:
        return self._open(path, None)

    def post(self, path: str, fields: dict[str, str | list[str]]) -> str:
        """Post a form on ``path`` (its token added, read from the last page) and follow the redirect."""
        if self._token is None:
            self.get(f"/?lang={self.language}")
        data = urllib.parse.urlencode({**fields, "csrf": self._token}, doseq=True).encode()
        return self._open(path, data)

    def _open(self, path: str, data: bytes | None) -> str:
        url = path if path.startswith("http") else self.base_url + path
        try:
            with self._opener.open(urllib.request.Request(url, data=data), timeout=self.timeout) as r:
                body = r.read().decode()
        except urllib.error.HTTPError as e:
            raise PortalError(f"{'POST' if data else 'GET'} {urllib.parse.urlsplit(url).path} answered {e.code}") \
                from None
        if token := _CSRF.search(body):
            self._token = token.group(1)
        return body

    def register(self, offender_id: str, *, phone: str = "", email: str = "", language: str | None = None,
                 groups: list[str] | None = None, timezone: str = "America/Chicago", name: str = "",
                 pin: str) -> str:
        """Answer every question of the registration and submit it; the new registration's id."""
        self.get(f"/offenders/{offender_id}?lang={self.language}")
        self.post(f"/register/{offender_id}", {})
        self.post("/register/phone", {"phone": phone})
        self.post("/register/email", {"email": email})
        self.post("/register/language", {"language": language or self.language})
        self.post("/register/notices", {"notices": groups or list(GROUPS)})
        self.post("/register/timezone", {"timezone": timezone})
        self.post("/register/name", {"name": name})
        self.post("/register/pin", {"pin": pin, "pin_again": pin})
        done = self.post("/register/check", {})
        found = _REGISTRATION_ID.search(done)
        if found is None:
            raise PortalError("the registration was not confirmed with an id")
        return found.group(1).strip()

    def confirm_code(self, code: str) -> None:
        """Type the phone's code on the code page."""
        self.post("/verify/phone", {"code": code})

    def confirm_link(self, link: str) -> None:
        """Open an email's confirmation link and press its button."""
        path = urllib.parse.urlsplit(link).path
        self.get(path)
        self.post(path, {})
