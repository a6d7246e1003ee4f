"""The operator console's pages, under ``/console``: server-rendered, no
script; every page needs a signed-in operator and every form its token
(:mod:`savin.web.console.auth`). Each handler parses its request, calls one
:class:`~savin.web.console.service.Console` method and renders the answer.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from savin.domain.lag import Status
from savin.schemas.operators import Role
from savin.web.console.auth import COOKIE_PATH, SESSION_COOKIE, Auth, Principal, Refused, principal
from savin.web.console.service import Console, Problem
from savin.web.portal.pages import FieldError, environment
from savin.web.portal.security import SESSION_COOKIE as FORM_COOKIE
from savin.web.portal.security import Csrf

__all__ = ["ConsolePages"]

V, O, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN
MAX_QUERY = 100
#: Notices a search lists, newest first.
SEARCH_LIMIT = 100


def _clean_next(target: str | None) -> str:
    if target and target.startswith("/console") and not target.startswith("//") and len(target) < 300:
        return target
    return "/console"


class ConsolePages:
    def __init__(self, console: Console, auth: Auth, login_csrf: Csrf, timezone: str):
        self.console = console
        self.auth = auth
        self.login_csrf = login_csrf
        self.zone = ZoneInfo(timezone)
        self.env = environment()
        self.router = r = APIRouter(prefix="/console", include_in_schema=False)
        r.add_api_route("/login", self.login_form, methods=["GET"], response_class=HTMLResponse)
        r.add_api_route("/login", self.login, methods=["POST"])
        # Every other route needs a role (the route test refuses any that does not).
        for path, endpoint, methods, role in (
            ("/logout", self.logout, ["POST"], V),
            ("", self.overview, ["GET"], V),
            ("/notices", self.notices, ["GET"], V),
            ("/notices/{notice_id}", self.notice, ["GET"], V),
            ("/dead-letters", self.dead_letters, ["GET"], V),
            ("/dead-letters/replay", self.replay, ["POST"], O),
            ("/dead-letters/{dead_letter_id}", self.dead_letter, ["GET"], V),
            ("/registrations", self.find_registration, ["GET"], V),
            ("/registrations/{registration_id}", self.registration, ["GET"], V),
            ("/registrations/{registration_id}/flags/clear", self.clear_flag, ["POST"], O),
            ("/audit", self.audit, ["GET"], V),
            ("/operators", self.operators, ["GET"], A),
            ("/operators", self.add_operator, ["POST"], A),
            ("/operators/{name}", self.change_operator, ["POST"], A),
            ("/tokens", self.create_token, ["POST"], A),
            ("/tokens/{token_id}/revoke", self.revoke_token, ["POST"], A),
        ):
            r.add_api_route(path, endpoint, methods=methods, dependencies=[auth.page(role)],
                            response_class=HTMLResponse)

    # ---- rendering ---------------------------------------------------------------

    def when(self, value: datetime | None) -> str:
        if value is None:
            return "–"
        local = value.astimezone(self.zone)
        return local.strftime("%Y-%m-%d %H:%M:%S ") + local.strftime("%Z")

    def render(self, request: Request, template: str, status_code: int = 200,
               errors: tuple[FieldError, ...] = (), **context) -> HTMLResponse:
        me: Principal | None = getattr(request.state, "principal", None) or self.auth.from_cookie(request)
        body = self.env.get_template(f"console/{template}").render(
            me=me, csrf_token=me.csrf if me else "", errors=errors, when=self.when, here=request.url.path,
            status_name=lambda s: Status(s).name, **context)
        response = HTMLResponse(body, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        return response

    def refused(self, request: Request, e: Refused) -> Response:
        if e.status == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse("/console/login?" + urllib.parse.urlencode({"next": target}), 303)
            response.headers["Cache-Control"] = "no-store"
            return response
        return self.render(request, "refused.html.j2", 403, reason=e.reason)

    # ---- signing in and out ------------------------------------------------------

    def _login_page(self, request: Request, status: int = 200, errors=(), name: str = "",
                    next: str = "/console") -> HTMLResponse:
        form_session = request.cookies.get(FORM_COOKIE) or Csrf.new_session()
        response = self.render(request, "login.html.j2", status, errors, name=name, next=_clean_next(next),
                               login_token=self.login_csrf.token(form_session))
        if request.cookies.get(FORM_COOKIE) != form_session:
            response.set_cookie(FORM_COOKIE, form_session, httponly=True, samesite="strict", secure=self.auth.secure)
        return response

    async def login_form(self, request: Request, next: str = "/console") -> HTMLResponse:
        if self.auth.from_cookie(request) is not None:
            return RedirectResponse(_clean_next(next), 303)
        return self._login_page(request, next=next)

    async def login(self, request: Request, name: str = Form(""), password: str = Form(""),
                    next: str = Form("/console"), csrf: str = Form("")) -> Response:
        if not self.login_csrf.valid(request.cookies.get(FORM_COOKIE), csrf):
            return self._login_page(request, 403, (FieldError("name", "The form had expired. Try again."),),
                                    name=name[:40], next=next)
        name = name.strip().lower()[:80]
        errors = tuple(FieldError(f, m) for f, m, empty in (("name", "Enter your account name", not name),
                                                            ("password", "Enter your password", not password))
                       if empty)
        if errors:
            return self._login_page(request, 400, errors, name=name, next=next)
        signed = await self.console.sign_in(name, password[:400])
        if signed.account is None:
            message = ("Too many wrong passwords: this account is locked for a while. Try again later."
                       if signed.locked else "The account name or password is wrong.")
            return self._login_page(request, 401, (FieldError("name", message),), name=name, next=next)
        cookie, sid, expires = self.auth.new_session(signed.account, datetime.now(UTC))
        await self.console.record(Principal(f"operator:{signed.account.name}", signed.account.name,
                                            signed.account.role, "console", sid), "login")
        response = RedirectResponse(_clean_next(next), 303)
        response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="strict", secure=self.auth.secure,
                            path=COOKIE_PATH, max_age=int((expires - datetime.now(UTC)).total_seconds()))
        return response

    async def logout(self, request: Request) -> Response:
        await self.console.sign_out(principal(request), datetime.now(UTC) + self.auth.lifetime)
        response = RedirectResponse("/console/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    # ---- reading -----------------------------------------------------------------

    async def overview(self, request: Request, refresh: int = 0) -> HTMLResponse:
        return self.render(request, "overview.html.j2", view=await self.console.overview(),
                           refresh=refresh if 2 <= refresh <= 300 else 0)

    async def notices(self, request: Request, q: str = "") -> HTMLResponse:
        query = q.strip()[:MAX_QUERY]
        found = self.console.trail.search(query, limit=SEARCH_LIMIT) if query else []
        return self.render(request, "notices.html.j2", query=query, found=found, limit=SEARCH_LIMIT)

    async def notice(self, request: Request, notice_id: str) -> HTMLResponse:
        timeline = self.console.trail.timeline(notice_id) if len(notice_id) <= 64 else None
        if timeline is None:
            return self.render(request, "missing.html.j2", 404, what="notice", ident=notice_id[:64])
        return self.render(request, "notice.html.j2", timeline=timeline)

    async def dead_letters(self, request: Request, reason: str = "", topic: str = "", since: str = "") -> HTMLResponse:
        filters = {"reason": reason.strip()[:100], "topic": topic.strip()[:200], "since": since.strip()[:40]}
        try:
            entries = await self.console.dead_letters(self.console.selection(**filters))
        except Problem as p:
            return self.render(request, "dead_letters.html.j2", 400, (FieldError(p.field, p.message),),
                               filters=filters, entries=[])
        return self.render(request, "dead_letters.html.j2", filters=filters, entries=entries)

    async def dead_letter(self, request: Request, dead_letter_id: str) -> HTMLResponse:
        found = await self.console.dead_letter(dead_letter_id[:64])
        if found is None:
            return self.render(request, "missing.html.j2", 404, what="dead letter", ident=dead_letter_id[:64])
        entry, payload = found
        return self.render(request, "dead_letter.html.j2", entry=entry, payload=payload)

    async def find_registration(self, request: Request, id: str = "") -> Response:
        rid = id.strip()
        if not rid:
            return self.render(request, "find_registration.html.j2", ident="")
        return RedirectResponse(f"/console/registrations/{urllib.parse.quote(rid[:64], safe='')}", 303)

    async def registration(self, request: Request, registration_id: str) -> HTMLResponse:
        return await self._registration_page(request, registration_id)

    async def _registration_page(self, request: Request, registration_id: str, errors=()) -> HTMLResponse:
        me = principal(request)
        view = await self.console.registration(me, registration_id)
        if view is None:
            return self.render(request, "missing.html.j2", 404, what="registration", ident=registration_id[:64])
        return self.render(request, "registration.html.j2", reg=view, data=view.as_dict(),
                           flags=self.console.trail.flags(registration_id),
                           notices=self.console.trail.search(registration_id),
                           escalations=self.console.views.escalations(registration_id),
                           may_change=me.role.allows(O), errors=errors)

    async def audit(self, request: Request, actor: str = "", action: str = "", id: str = "") -> HTMLResponse:
        filters = {"actor": actor.strip()[:80], "action": action.strip()[:60], "id": id.strip()[:64]}
        rows = self.console.actions(200, actor=filters["actor"] or None, action=filters["action"] or None,
                                    id_value=filters["id"] or None)
        return self.render(request, "audit.html.j2", filters=filters, rows=rows)

    async def operators(self, request: Request) -> HTMLResponse:
        return self._operators_page(request)

    def _operators_page(self, request: Request, errors=(), made: dict | None = None, status: int = 200,
                        form: dict | None = None) -> HTMLResponse:
        d = self.console.directory
        return self.render(request, "operators.html.j2", status, errors,
                           accounts=sorted(d.accounts(), key=lambda a: a.name), tokens=d.tokens(),
                           roles=[r.value for r in Role], made=made, form=form or {})

    # ---- actions -----------------------------------------------------------------

    async def replay(self, request: Request, ids: list[str] = Form([]), reason: str = Form(""),
                     topic: str = Form(""), since: str = Form(""), scope: str = Form("ids")) -> HTMLResponse:
        me = principal(request)
        try:
            if scope == "filter":
                selection = self.console.selection(None, reason.strip()[:100], topic.strip()[:200], since.strip()[:40])
            elif ids:
                selection = self.console.selection(ids[:1000])
            else:
                raise Problem("ids", "Choose the dead letters to replay.")
        except Problem as p:
            return self.render(request, "replayed.html.j2", 400, (FieldError(p.field, p.message),), report=None)
        report = await self.console.replay(me, selection)
        return self.render(request, "replayed.html.j2", report=report)

    async def clear_flag(self, request: Request, registration_id: str, flag: str = Form("")) -> Response:
        try:
            await self.console.clear_flag(principal(request), registration_id[:64], flag[:300])
        except Problem as p:
            return await self._registration_page(request, registration_id, (FieldError("flags", p.message),))
        return RedirectResponse(f"/console/registrations/{urllib.parse.quote(registration_id, safe='')}", 303)

    async def add_operator(self, request: Request, name: str = Form(""), role: str = Form("viewer"),
                           password: str = Form("")) -> HTMLResponse:
        form = {"name": name.strip().lower()[:80], "role": role}
        try:
            account, made = await self.console.add_account(principal(request), form["name"], _role(role), password)
        except Problem as p:
            return self._operators_page(request, (FieldError(f"new-{p.field}", p.message),), status=p.status,
                                        form=form)
        return self._operators_page(request, made={"what": "account", "name": account.name, "secret": made})

    async def change_operator(self, request: Request, name: str, change: str = Form(""),
                              role: str = Form("")) -> HTMLResponse:
        try:
            if change == "disable":
                await self.console.change_account(principal(request), name, disabled=True)
            elif change == "enable":
                await self.console.change_account(principal(request), name, disabled=False)
            elif change == "role":
                await self.console.change_account(principal(request), name, role=_role(role))
            else:
                raise Problem("change", "Choose a change.")
        except Problem as p:
            return self._operators_page(request, (FieldError("accounts", p.message),), status=p.status)
        return self._operators_page(request)

    async def create_token(self, request: Request, owner: str = Form(""), scope: str = Form("viewer"),
                           label: str = Form("")) -> HTMLResponse:
        clean = "".join(c for c in label.strip() if c.isprintable())[:80]
        try:
            token, whole = await self.console.create_token(principal(request), owner.strip()[:40], _role(scope), clean)
        except Problem as p:
            return self._operators_page(request, (FieldError(f"token-{p.field}", p.message),), status=p.status)
        return self._operators_page(request, made={"what": "token", "name": token.token_id, "secret": whole})

    async def revoke_token(self, request: Request, token_id: str) -> HTMLResponse:
        try:
            await self.console.revoke_token(principal(request), token_id[:20])
        except Problem as p:
            return self._operators_page(request, (FieldError("tokens", p.message),), status=p.status)
        return self._operators_page(request)


def _role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise Problem("role", "Choose viewer, operator or admin.") from None
