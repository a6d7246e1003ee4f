"""The rules of operator accounts: roles, passwords, the token format, what a
token may do, the sign-in lockout and the session cookie's checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from savin.domain.operators import (
    after_failed_login,
    login_key,
    login_locked,
    name_problem,
    new_token,
    parse_token,
    password_problem,
    token_matches,
    token_role,
)
from savin.ops.operators import changed_account, issue_token, new_account, revoked_token
from savin.schemas.consent import Attempts
from savin.schemas.operators import Role
from savin.sealing import check_password

NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("role,needed,allowed", [
    (Role.VIEWER, Role.VIEWER, True), (Role.VIEWER, Role.OPERATOR, False), (Role.VIEWER, Role.ADMIN, False),
    (Role.OPERATOR, Role.VIEWER, True), (Role.OPERATOR, Role.OPERATOR, True), (Role.OPERATOR, Role.ADMIN, False),
    (Role.ADMIN, Role.VIEWER, True), (Role.ADMIN, Role.OPERATOR, True), (Role.ADMIN, Role.ADMIN, True),
])
def test_each_role_may_do_what_the_ones_below_it_may(role, needed, allowed):
    assert role.allows(needed) is allowed


@pytest.mark.parametrize("password,problem", [
    ("short", "at least 12"), ("x" * 201, "at most 200"), (" leading space ok?", "space"),
    ("tab\tinside password", "control"), ("correct horse battery", None), ("ñandú-contraseña-larga", None),
])
def test_password_rules(password, problem):
    found = password_problem(password)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize("name,ok", [("ada", True), ("ops.night-1", True), ("a", False), ("Ada", False),
                                     ("1ada", False), ("ada lovelace", False), ("x" * 41, False)])
def test_account_names(name, ok):
    assert (name_problem(name) is None) is ok


def test_a_token_reads_back_and_only_its_secret_matches():
    token_id, secret, whole = new_token()
    assert whole == f"savin_{token_id}_{secret}" and parse_token(whole) == (token_id, secret)
    assert parse_token(whole[:-1]) is None and parse_token("Bearer " + whole) is None and parse_token("") is None
    record, handed = issue_token("ada", Role.OPERATOR, NOW)
    tid, sec = parse_token(handed)
    assert tid == record.token_id and token_matches(record, sec) and not token_matches(record, sec[:-1] + "A")
    assert sec not in record.model_dump_json()  # only its SHA-256 is kept


def test_a_token_does_no_more_than_its_owner():
    admin = new_account("ada", Role.ADMIN, "a long enough password", NOW, "cli")
    token, _ = issue_token("ada", Role.ADMIN, NOW)
    assert token_role(token, admin) is Role.ADMIN
    demoted = changed_account(admin, NOW, "cli", role=Role.VIEWER)
    assert token_role(token, demoted) is Role.VIEWER
    assert token_role(token, changed_account(admin, NOW, "cli", disabled=True)) is None
    assert token_role(token, None) is None
    assert token_role(revoked_token(token, NOW), admin) is None


def test_a_new_password_or_disabling_ends_sessions_a_role_change_does_not():
    a = new_account("ada", Role.ADMIN, "a long enough password", NOW, "cli")
    assert check_password("a long enough password", a.password_hash) and a.password_hash.startswith("$argon2id$")
    assert changed_account(a, NOW, "cli", password="another long password").generation == a.generation + 1
    assert changed_account(a, NOW, "cli", disabled=True).generation == a.generation + 1
    assert changed_account(a, NOW, "cli", role=Role.VIEWER).generation == a.generation


def test_wrong_passwords_lock_a_name_for_a_while():
    lockout = timedelta(minutes=15)
    key = login_key("vera")
    a: Attempts | None = None
    for n in range(4):
        a = after_failed_login(a, key, NOW + timedelta(seconds=n), 5, lockout)
        assert not login_locked(a, NOW + timedelta(seconds=n))
    a = after_failed_login(a, key, NOW + timedelta(seconds=5), 5, lockout)
    assert login_locked(a, NOW + timedelta(minutes=14)) and not login_locked(a, NOW + timedelta(minutes=16))
    # Tries older than the lockout's span do not count.
    old = after_failed_login(None, key, NOW - timedelta(hours=1), 2, lockout)
    assert not login_locked(after_failed_login(old, key, NOW, 2, lockout), NOW)


def test_any_text_typed_as_a_name_gives_a_valid_attempts_key():
    for typed in ("vera", "Vera Smith", "ñ@x", "a" * 300):
        Attempts(key=login_key(typed), at=())
    assert login_key("vera") == "login:vera" and "Smith" not in login_key("Vera Smith")
