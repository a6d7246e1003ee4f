"""The portal's pages: the offender status search (a start page, results, an
offender's status) and the language switch. Server-rendered, no script.

Pages carry offender ids in their URLs, never what was typed into the search
beyond its own results page, and never a victim's name or address.

An offender's page says how fresh its data is: "data from this source as of"
the newest event or heartbeat savin has from the source (from the feed
watchdog's counts, :mod:`savin.ops.feeds`), and that it may be out of date
while the watchdog judges the source stale.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import jinja2
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from savin.domain.feeds import Thresholds
from savin.ops.feeds import Feed, stored_feeds
from savin.rendering.filters import format_date, format_datetime
from savin.schemas.status import OffenderStatus
from savin.web.portal.i18n import DEFAULT, LANGUAGES, strings
from savin.web.portal.security import SESSION_COOKIE, Csrf

__all__ = ["FORM_EXPIRED", "LANGUAGE_COOKIE", "MAX_QUERY", "FieldError", "Pages", "environment", "forbidden",
           "redirect"]

LANGUAGE_COOKIE = "savin_lang"
MAX_QUERY = 100
RESULTS = 5


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("savin", "templates/web"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


#: The answer to a form posted without a valid token (a stale page, or another site).
FORM_EXPIRED = "The form has expired. Go back, reload the page and try again.\n"


def redirect(path: str) -> RedirectResponse:
    """See other: where a form post goes next (never cached, since it follows a choice)."""
    response = RedirectResponse(path, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def forbidden() -> Response:
    return Response(FORM_EXPIRED, status_code=403, media_type="text/plain")


@dataclass(frozen=True)
class FieldError:
    field: str  # the id of the input it is about
    message: str


class Pages:
    def __init__(self, csrf: Csrf, timezone: str, public_url: str | None = None, secure_cookies: bool = False):
        self.csrf = csrf
        self.timezone = timezone
        self.public_url = public_url.rstrip("/") if public_url else None
        self.secure_cookies = secure_cookies
        self.views = None  # set when the app starts
        self.env = environment()
        self.router = APIRouter()
        r = self.router
        r.add_api_route("/", self.start, methods=["GET"], response_class=HTMLResponse)
        r.add_api_route("/search", self.search, methods=["GET"], response_class=HTMLResponse)
        r.add_api_route("/offenders/{offender_id}", self.offender, methods=["GET"], response_class=HTMLResponse)
        r.add_api_route("/language", self.language, methods=["POST"])

    # ---- rendering ---------------------------------------------------------------

    def language_of(self, request: Request) -> str:
        lang = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE) or DEFAULT
        return lang if lang in LANGUAGES else DEFAULT

    def render(self, request: Request, template: str, status_code: int = 200, errors: tuple[FieldError, ...] = (),
               **context) -> HTMLResponse:
        lang = self.language_of(request)
        session = request.cookies.get(SESSION_COOKIE) or Csrf.new_session()
        t = strings(lang)
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body = self.env.get_template(template).render(
            t=t, lang=lang, errors=errors, csrf_token=self.csrf.token(session), here=_without_lang(here),
            canonical=f"{self.public_url}{request.url.path}" if self.public_url else None,
            status_label=lambda s: t[f"status.{s.status.value}"],
            day=lambda d: format_date(d, lang, "long"),
            when=lambda w: format_datetime(w, self.timezone, lang, "long"),
            **context)
        response = HTMLResponse(body, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        if request.cookies.get(SESSION_COOKIE) != session:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", secure=self.secure_cookies)
        if request.query_params.get("lang") == lang and request.cookies.get(LANGUAGE_COOKIE) != lang:
            self._remember(response, lang)
        return response

    def _remember(self, response: Response, lang: str) -> None:
        response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax",
                            secure=self.secure_cookies)

    # ---- pages ---------------------------------------------------------------------

    async def start(self, request: Request) -> HTMLResponse:
        return self.render(request, "start.html.j2", query="")

    async def search(self, request: Request, q: str = "") -> HTMLResponse:
        query = q.strip()
        t = strings(self.language_of(request))
        if not query:
            return self.render(request, "start.html.j2", 400, (FieldError("q", t["search_empty"]),), query="")
        if len(query) > MAX_QUERY:
            return self.render(request, "start.html.j2", 400, (FieldError("q", t["search_too_long"]),),
                               query=query[:MAX_QUERY])
        return self.render(request, "results.html.j2", query=query, results=self.find(query))

    def find(self, query: str) -> list[OffenderStatus]:
        found: list[OffenderStatus] = []
        for candidate in dict.fromkeys((query, query.upper())):
            if (exact := self.views.offender(candidate)) is not None:
                found.append(exact)
                break
        for s in self.views.find_offenders(query, limit=RESULTS):
            if all(s.offender_id != f.offender_id for f in found):
                found.append(s)
        return found[:RESULTS]

    async def offender(self, request: Request, offender_id: str) -> HTMLResponse:
        status = self.views.offender(offender_id) if len(offender_id) <= 64 else None
        if status is None:
            return self.render(request, "not_found.html.j2", 404)
        return self.render(request, "offender.html.j2", offender=status, feeds=self.feeds_of(status))

    def feeds_of(self, status: OffenderStatus) -> list[Feed]:
        """The source the offender's status came from, with the time its data is as of; every
        source savin hears from when the status does not name its own."""
        known = [f for f in stored_feeds(self.views.store, Thresholds({})) if f.last_seen_at is not None]
        source = getattr(status, "source", None)
        return [f for f in known if f.source == source] if source else known

    async def language(self, request: Request, lang: str = Form(""), next: str = Form("/"),
                       csrf: str = Form("")) -> Response:
        if not self.csrf.valid(request.cookies.get(SESSION_COOKIE), csrf):
            return forbidden()
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        if lang in LANGUAGES:
            self._remember(response, lang)
        return response


def _without_lang(path: str) -> str:
    """The page's own address without a ``lang`` parameter (the switch sets it)."""
    parts = urllib.parse.urlsplit(path)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    return urllib.parse.urlunsplit(("", "", parts.path, urllib.parse.urlencode(query), ""))
