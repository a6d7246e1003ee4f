"""An operator without a browser: signs in to the console and posts its forms
over HTTP with the session cookie and each form's token, as a browser without
JavaScript does; and calls the API with a bearer token.

Redirects are not followed, so a test sees the console send a request
without a session to the sign-in page.
"""

from __future__ import annotations

import re

import httpx

__all__ = ["ConsoleClient", "api_client"]

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


class ConsoleClient:
    def __init__(self, base_url: str, timeout: float = 30.0):
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, follow_redirects=False)
        self.token: str | None = None  # the last page's form token

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params) -> httpx.Response:
        r = self.http.get(path, params=params or None)
        self._remember(r)
        return r

    def post(self, path: str, fields: dict | None = None, *, csrf: str | None | bool = True) -> httpx.Response:
        """Post a form; ``csrf=True`` adds the last page's token, a string sends that one, None none."""
        data = dict(fields or {})
        if csrf is True:
            data["csrf"] = self.token or ""
        elif isinstance(csrf, str):
            data["csrf"] = csrf
        r = self.http.post(path, data=data)
        self._remember(r)
        return r

    def _remember(self, r: httpx.Response) -> None:
        if "text/html" in r.headers.get("content-type", "") and (m := _CSRF.search(r.text)):
            self.token = m.group(1)

    def sign_in(self, name: str, password: str) -> httpx.Response:
        self.get("/console/login")
        r = self.post("/console/login", {"name": name, "password": password, "next": "/console"})
        if r.status_code == 303:
            self.get("/console/audit")  # a page with the session's form token
        return r

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get("savin_console")


def api_client(base_url: str, token: str | None, timeout: float = 30.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", headers=headers, timeout=timeout)
