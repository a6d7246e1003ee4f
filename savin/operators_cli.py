"""``savin operators``: the console's accounts and the API's tokens, from the
command line (the first admin account is made here). Each change is written
to ``operators`` and recorded on ``operator-audit`` as done by ``cli``.
Passwords are read from a prompt or from standard input, never from an
argument (arguments show in the process list and the shell's history).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Optional

import typer

from savin.domain.operators import generate_password, name_problem, password_problem
from savin.schemas.operators import Role

__all__ = ["operators_app"]

CONTEXT = {"help_option_names": ["-h", "--help"]}
operators_app = typer.Typer(help="Operator accounts for the console, and API tokens.", no_args_is_help=True,
                            context_settings=CONTEXT, pretty_exceptions_enable=False)
token_app = typer.Typer(help="API tokens for machines (bearer tokens for /api/v1).", no_args_is_help=True,
                        context_settings=CONTEXT, pretty_exceptions_enable=False)
operators_app.add_typer(token_app, name="token")

RoleOption = typer.Option(..., "--role", help="viewer (reads), operator (also replays, approves, changes "
                                              "registrations) or admin (also manages accounts).")
PasswordStdin = typer.Option(False, "--password-stdin", help="Read the password from standard input's first line.")


# The command line's helpers (savin.cli imports this module, so they are looked up when a command runs).
def fail(message: str, code: int = 1) -> typer.Exit:
    from savin.cli import fail

    return fail(message, code)


def say(message: str) -> None:
    from savin.cli import say

    say(message)


def settings():
    from savin.cli import settings

    return settings()


def kafka(s, work):
    from savin.cli import kafka

    return kafka(s, work)


def show_table(title, columns, rows) -> None:
    from savin.cli import show_table

    show_table(title, columns, rows)


def _role(text: str, option: str = "--role") -> Role:
    try:
        return Role(text)
    except ValueError:
        raise fail(f"{option} must be viewer, operator or admin, not {text!r}", 2) from None


def _password(from_stdin: bool) -> tuple[str, bool]:
    """``(password, made here)``: from stdin, a prompt (a terminal), or made up and shown once."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        return generate_password(), True
    if problem := password_problem(password):
        raise fail(f"the password {problem}", 2)
    return password, False


def _write(s, records) -> None:
    from savin.ops.operators import write_records

    kafka(s, lambda: write_records(s, records))


def _roster(s):
    from savin.ops.operators import read_roster

    return kafka(s, lambda: read_roster(s))


def _audit(what: str, ids: dict, detail: str | None = None):
    from savin.ops.operators import action

    return action("cli", what, datetime.now(UTC), ids, detail=detail, via="cli")


@operators_app.command("add")
def add(name: str = typer.Argument(..., help="The account name: lower-case letters, digits, '.', '_' or '-'."),
        role: str = RoleOption, password_stdin: bool = PasswordStdin):
    """Add an account. Without --password-stdin the password is asked for (or, with no terminal, made and shown)."""
    from savin.ops.operators import new_account

    if problem := name_problem(name):
        raise fail(f"NAME {problem}", 2)
    r = _role(role)
    s = settings()
    if name in _roster(s).accounts:
        raise fail(f"an account named {name} exists already (savin operators role/password/enable change it)")
    password, made = _password(password_stdin)
    _write(s, [new_account(name, r, password, datetime.now(UTC), "cli"), _audit("account.add", {"operator": [name]},
                                                                                f"role {r.value}")])
    say(f"added {name} ({r.value})")
    if made:
        say(f"password (shown only now): {password}")


def _change(name: str, what: str, **change) -> None:
    from savin.ops.operators import changed_account

    s = settings()
    account = _roster(s).accounts.get(name)
    if account is None:
        raise fail(f"no account is named {name} (savin operators list shows them)")
    changed = changed_account(account, datetime.now(UTC), "cli", **change)
    detail = f"role {changed.role.value}" if "role" in change else None
    _write(s, [changed, _audit(what, {"operator": [name]}, detail)])


@operators_app.command("role")
def set_role(name: str, role: str = typer.Argument(..., help="viewer, operator or admin.")):
    """Change an account's role."""
    _change(name, "account.role", role=_role(role, "ROLE"))
    say(f"{name} is now {role}")


@operators_app.command("password")
def set_password(name: str, password_stdin: bool = PasswordStdin):
    """Set a new password (the account's sessions end)."""
    password, made = _password(password_stdin)
    _change(name, "account.password", password=password)
    say(f"new password set for {name}; its sessions have ended")
    if made:
        say(f"password (shown only now): {password}")


@operators_app.command("disable")
def disable(name: str):
    """Disable an account: its sessions and tokens stop working at once."""
    _change(name, "account.disable", disabled=True)
    say(f"{name} is disabled")


@operators_app.command("enable")
def enable(name: str):
    """Enable a disabled account again."""
    _change(name, "account.enable", disabled=False)
    say(f"{name} is enabled")


@operators_app.command("list")
def list_accounts(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")):
    """Every account and token (never a password hash or a token's secret)."""
    roster = _roster(settings())
    if as_json:
        for a in roster.accounts.values():
            print(json.dumps({"kind": "account", "name": a.name, "role": a.role.value, "disabled": a.disabled,
                              "changed_at": a.changed_at.isoformat()}))
        for t in roster.tokens.values():
            print(json.dumps({"kind": "token", "token_id": t.token_id, "owner": t.owner, "scope": t.scope.value,
                              "label": t.label, "revoked": t.revoked_at is not None}))
        return
    show_table(f"{len(roster.accounts)} accounts", [("name", True), ("role", False), ("state", False),
                                                    ("changed", False)],
               [[a.name, a.role.value, "disabled" if a.disabled else "active",
                 f"{a.changed_at.isoformat(timespec='seconds')} by {a.changed_by}"]
                for a in sorted(roster.accounts.values(), key=lambda a: a.name)])
    if roster.tokens:
        show_table(f"{len(roster.tokens)} tokens", [("token", True), ("for", True), ("scope", False),
                                                    ("label", False), ("state", False)],
                   [[t.token_id, t.owner, t.scope.value, t.label,
                     f"revoked {t.revoked_at.isoformat(timespec='seconds')}" if t.revoked_at else "active"]
                    for t in roster.tokens.values()])


@token_app.command("create")
def token_create(name: str = typer.Argument(..., help="The account the token acts for."),
                 scope: str = typer.Option("viewer", "--scope", help="viewer, operator or admin (at most the "
                                                                      "account's role)."),
                 label: str = typer.Option("", "--label", help="What the token is for, e.g. a machine's name.")):
    """Make a token; it is printed once, and only its SHA-256 is kept."""
    from savin.ops.operators import issue_token

    r = _role(scope, "--scope")
    if len(label) > 80 or not label.isprintable():
        raise fail("--label must be at most 80 printable characters", 2)
    s = settings()
    account = _roster(s).accounts.get(name)
    if account is None or account.disabled:
        raise fail(f"no enabled account is named {name}")
    if not account.role.allows(r):
        raise fail(f"a token cannot do more than its account: {name} is a {account.role.value}", 2)
    token, whole = issue_token(name, r, datetime.now(UTC), label)
    _write(s, [token, _audit("token.create", {"token": [token.token_id], "operator": [name]}, f"scope {r.value}")])
    say(f"token {token.token_id} for {name} ({r.value}); use it as 'Authorization: Bearer <token>':")
    say(whole)


@token_app.command("revoke")
def token_revoke(token_id: str = typer.Argument(..., help="The token's id (T...).")):
    """Revoke a token: it stops working at once, on every web process."""
    from savin.ops.operators import revoked_token

    s = settings()
    token = _roster(s).tokens.get(token_id)
    if token is None:
        raise fail(f"no token has the id {token_id}")
    _write(s, [revoked_token(token, datetime.now(UTC)), _audit("token.revoke", {"token": [token_id]})])
    say(f"token {token_id} revoked")


@operators_app.command("audit")
def audit(limit: int = typer.Option(50, "--limit", min=1, help="The latest this many actions."),
          as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
          actor: Optional[str] = typer.Option(None, help="Only this actor (operator:NAME, token:ID, cli).")):
    """What operators and tokens did, oldest of the latest first."""
    from savin.ops.operators import audit_trail

    s = settings()
    rows = [a for a in kafka(s, lambda: audit_trail(s)) if actor is None or a.actor == actor][-limit:]
    if as_json:
        for a in rows:
            print(a.model_dump_json())
        return
    show_table(f"{len(rows)} operator actions", [("at", False), ("who", True), ("action", False), ("ids", False),
                                                 ("outcome", False)],
               [[a.at.isoformat(timespec="seconds"), a.actor, f"{a.action} ({a.via})",
                 "; ".join(f"{k}: {', '.join(v)}" for k, v in a.ids.items()),
                 a.outcome + (f": {a.detail}" if a.detail else "")] for a in rows])
