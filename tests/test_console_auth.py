"""Who may use the operator console and API (`savin web` as its own process on
the real broker, accounts made with `savin operators`): every operator route,
found by walking the application's routes, is refused without a session or
token, with a role below the one it needs, with a missing or forged form
token, with a revoked token and with a signed-out session; a new route that
forgot its role fails here. Sign-in locks after wrong passwords and says the
same for an unknown name; every action and refusal is on operator-audit."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount
from support import savin

from savin.dev.testing.console_client import ConsoleClient, api_client
from savin.web.portal.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
#: The only console routes anyone may reach.
PUBLIC = {("GET", "/console/login"), ("POST", "/console/login")}


def operator_routes(settings) -> list[tuple[str, str]]:
    """(method, path) of every console and API route the web application serves."""
    def walk(routes, prefix: str = ""):
        for rc in iter_route_contexts(routes):
            if isinstance(rc.original_route, Mount) and hasattr(rc.original_route.app, "routes"):
                yield from walk(rc.original_route.app.routes, prefix + rc.original_route.path)
            elif rc.methods:
                yield from ((m, prefix + rc.path) for m in rc.methods)

    return sorted((m, p) for m, p in walk(create_app(settings).routes) if p.startswith(("/console", "/api")))


def needs(method: str, path: str) -> str:
    """The least role a route may be used with."""
    if re.match(r"^/(console|api/v1)/(operators|tokens)", path):
        return "admin"
    if method == "POST" and path != "/console/logout":
        return "operator"
    return "viewer"


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X-1", path)


def call(client, method: str, path: str, **kw):
    """One request; an API path is relative to the API client's base (/api/v1)."""
    path = concrete(path.removeprefix("/api/v1"))
    if method == "GET":
        return client.get(path)
    return client.post(path, **kw)


@pytest.fixture
def console(stack):
    web = stack.start_web(SAVIN_LAG_INTERVAL="1")
    env = stack.env()
    for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        done = savin(["operators", "add", name, "--role", role, "--password-stdin"], env=env, stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
    tokens = {}
    for name, scope in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        done = savin(["operators", "token", "create", name, "--scope", scope], env=env)
        assert done.returncode == 0, done.stderr
        tokens[scope] = done.stdout.strip().splitlines()[-1]
    return stack, web, tokens


def signed_in(url: str, name: str) -> ConsoleClient:
    c = ConsoleClient(url)
    r = c.sign_in(name, PASSWORD)
    assert r.status_code == 303, r.text
    return c


def test_every_operator_route_is_refused_without_what_it_needs(console):
    stack, web, tokens = console
    url = f"http://127.0.0.1:{stack.portal_port}"
    routes = operator_routes(stack.settings())
    assert len(routes) >= 30 and ("POST", "/api/v1/dead-letters/replay") in routes
    guarded = [r for r in routes if r not in PUBLIC]

    # No session, no token.
    anonymous = ConsoleClient(url)
    nobody = api_client(url, None)
    for method, path in guarded:
        if path.startswith("/api"):
            r = call(nobody, method, path, json={})
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
        else:
            r = call(anonymous, method, path, fields={})
            assert r.status_code == 303 and r.headers["location"].startswith("/console/login"), (method, path)

    # A role below the route's, with a valid form token.
    for name, role in (("vera", "viewer"), ("otto", "operator")):
        c = signed_in(url, name)
        api = api_client(url, tokens[role])
        for method, path in guarded:
            if ROLES.index(needs(method, path)) <= ROLES.index(role):
                continue
            if path.startswith("/api"):
                r = call(api, method, path, json={})
            else:
                c.get("/console")
                r = call(c, method, path, fields={})
            assert r.status_code == 403, (role, method, path, r.status_code)

    # A form without its token, or with a forged one, even from an admin.
    admin = signed_in(url, "ada")
    for method, path in guarded:
        if method != "POST" or path.startswith("/api"):
            continue
        for token in (None, "0" * 64, admin.token[:-1] + ("0" if admin.token[-1] != "0" else "1")):
            r = call(admin, method, path, fields={}, csrf=token)
            assert r.status_code == 403, (method, path, token)

    # A revoked token.
    token_id = tokens["admin"].split("_")[1]
    assert savin(["operators", "token", "revoke", token_id], env=stack.env()).returncode == 0
    revoked = api_client(url, tokens["admin"])

    def refused_everywhere() -> bool:
        return all(call(revoked, m, p, json={}).status_code == 401 for m, p in guarded if p.startswith("/api"))

    _wait(refused_everywhere, "the revoked token refused on every API route")
    # A forged token: a real id with another secret.
    forged = api_client(url, tokens["viewer"][:-4] + "AAAA")
    assert forged.get("/overview").status_code == 401


ROLES = ["viewer", "operator", "admin"]


def _wait(predicate, what: str, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.3)


def test_signing_in_and_out_locks_and_is_recorded(console):
    stack, web, tokens = console
    url = f"http://127.0.0.1:{stack.portal_port}"

    # A session that signed out is refused even if its cookie is sent again.
    c = signed_in(url, "otto")
    cookie = c.session_cookie
    assert c.get("/console").status_code == 200
    assert c.post("/console/logout").status_code == 303
    replayed = ConsoleClient(url)
    replayed.http.cookies.set("savin_console", cookie, path="/console")
    r = replayed.get("/console")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")

    # Wrong passwords: the same answer for an account that exists and one that does not.
    wrong = ConsoleClient(url)
    answers = set()
    for name in ("vera", "nobody-here"):
        wrong.get("/console/login")
        r = wrong.post("/console/login", {"name": name, "password": "not the password"})
        assert r.status_code == 401
        answers.add(re.search(r'class="error-summary__list">(.*?)</ul>', r.text, re.S).group(1))
    assert len(answers) == 1
    # Five wrong in a row lock the name: the right password is then refused too.
    for _ in range(4):
        wrong.get("/console/login")
        wrong.post("/console/login", {"name": "vera", "password": "still not it"})
    wrong.get("/console/login")
    r = wrong.post("/console/login", {"name": "vera", "password": PASSWORD})
    assert r.status_code == 401 and "locked" in r.text
    # Another account is not locked.
    assert ConsoleClient(url).sign_in("ada", PASSWORD).status_code == 303

    # A viewer refused an operator's action.
    ada = signed_in(url, "ada")
    viewer_api = api_client(url, tokens["viewer"])
    assert viewer_api.post("/dead-letters/replay", json={"ids": ["x"]}).status_code == 403

    admin_api = api_client(url, tokens["admin"])

    def audit() -> list[dict]:
        return admin_api.get("/audit", params={"limit": 500}).json()

    def recorded() -> bool:
        rows = audit()
        seen = {(a["actor"], a["action"], a["outcome"]) for a in rows}
        return {("operator:otto", "login", "done"), ("operator:otto", "logout", "done"),
                ("anonymous", "login-failed", "refused"), ("cli", "account.add", "done"),
                ("cli", "token.create", "done")} <= seen and any(
            a["action"] == "access.refused" and a["actor"].startswith("token:") for a in rows)

    _wait(recorded, "sign-ins, sign-outs, failures and refusals on operator-audit")
    rows = audit()
    failed = [a for a in rows if a["action"] == "login-failed"]
    # A failed sign-in names the account only when it exists.
    assert any(a["ids"] == {"operator": ["vera"]} for a in failed)
    assert not any("nobody-here" in json.dumps(a) for a in rows)
    assert all(PASSWORD not in json.dumps(a) for a in rows)
    # The console shows the trail too.
    page = ada.get("/console/audit", action="login-failed")
    assert page.status_code == 200 and "login-failed" in page.text and "operator:otto" not in page.text

    # `savin operators list` shows accounts and tokens, never a hash or secret.
    listed = savin(["operators", "list", "--json"], env=stack.env())
    assert listed.returncode == 0
    assert "argon2" not in listed.stdout and tokens["viewer"].split("_", 2)[2] not in listed.stdout
    kinds = [json.loads(line)["kind"] for line in listed.stdout.splitlines()]
    assert kinds.count("account") == 3 and kinds.count("token") == 3
