"""What the console's pages and the operator API both do: one method per
question or action, each action checked against the caller's role by its
route and recorded on ``operator-audit`` here, with who, what and which ids.

Pages and API handlers are thin: they parse a request, call one method here
and render or serialise what it returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from savin.domain.operators import (
    after_failed_login,
    generate_password,
    login_key,
    login_locked,
    name_problem,
    password_problem,
)
from savin.domain.redaction import redact_payload
from savin.ops import dead_letters as dl
from savin.ops.operators import action, changed_account, issue_token, new_account, record_of, revoked_token
from savin.ops.problems import Problem
from savin.ops.registrations import consent_history, describe, registration_history
from savin.schemas.consent import Attempts
from savin.schemas.escalation import RegistrationFlag
from savin.schemas.operators import ApiToken, OperatorAccount, OperatorAction, Role, SessionEnded
from savin.sealing import Sealer, check_password, hash_password
from savin.settings import Settings
from savin.topics import Topics, partition_for
from savin.web.console.accounts import Directory
from savin.web.console.auth import Principal
from savin.web.console.lagwatch import LagWatch
from savin.web.console.trail import Trail
from savin.web.portal.commands import Commands
from savin.web.portal.views import Views

__all__ = ["Console", "Problem", "SignIn", "Overview"]

log = logging.getLogger("savin.web.console")

#: Verified against when no account has the name typed, so a wrong name takes as long as a wrong password.
_NOBODY = hash_password("no account has this name")


@dataclass(frozen=True)
class SignIn:
    account: OperatorAccount | None
    locked: bool = False


@dataclass
class Overview:
    looked_at: datetime | None
    groups: dict  # stage -> GroupLag
    throughput: dict[str, float]
    last_hour: dict[str, int]
    last_day: dict[str, int]
    dead_letters: int
    dead_letters_waiting: int
    open_flags: int
    #: Holds waiting for an operator, and sources the feed watchdog last found stale or low.
    holds_open: int = 0
    feeds_down: list[str] = field(default_factory=list)
    failures_hour: int = field(init=False)

    def __post_init__(self) -> None:
        self.failures_hour = sum(self.last_hour.get(s, 0) for s in ("failed", "undelivered"))


class Console:
    def __init__(self, settings: Settings, topics: Topics, views: Views, commands: Commands, sealer: Sealer,
                 directory: Directory, trail: Trail, lag: LagWatch):
        self.settings = settings
        self.topics = topics
        self.views = views
        self.commands = commands
        self.sealer = sealer
        self.directory = directory
        self.trail = trail
        self.lag = lag

    # ---- the audit trail ----------------------------------------------------------

    async def record(self, who: Principal | str, what: str, ids: dict[str, list[str]] | None = None, *,
                     outcome: str = "done", detail: str | None = None, via: str | None = None) -> OperatorAction:
        actor = who.actor if isinstance(who, Principal) else who
        a = action(actor, what, datetime.now(UTC), ids, outcome=outcome, detail=detail,
                   via=via or (who.via if isinstance(who, Principal) else "console"))
        await self._write(a)
        log.info("operator action %s by %s: %s", a.action, a.actor, a.outcome)
        return a

    async def _write(self, r) -> None:
        attr, key, value = record_of(r)
        await self.commands.write(getattr(self.topics, attr), key, value, partition=0)

    def actions(self, limit: int = 200, **filters) -> list[OperatorAction]:
        return self.directory.actions(limit, **filters)

    # ---- signing in and out -------------------------------------------------------

    async def sign_in(self, name: str, password: str, via: str = "console") -> SignIn:
        now = datetime.now(UTC)
        key = login_key(name)
        attempts = self.views.attempts(key)
        account = self.directory.account(name) if not name_problem(name) else None
        if login_locked(attempts, now):
            await self.record("anonymous", "login-failed", {"operator": [name]} if account else {},
                              outcome="refused", detail="locked after too many wrong passwords", via=via)
            return SignIn(None, locked=True)
        good = check_password(password, account.password_hash if account else _NOBODY)
        if good and account is not None and not account.disabled:
            if attempts is not None and (attempts.at or attempts.locked_until):
                await self.commands.save_attempts(Attempts(key=key, at=()))
            return SignIn(account)
        after = after_failed_login(attempts, key, now, self.settings.console_login_tries,
                                   timedelta(minutes=self.settings.console_lockout_minutes))
        await self.commands.save_attempts(after)
        await self.record("anonymous", "login-failed", {"operator": [name]} if account else {}, outcome="refused",
                          detail="disabled account" if good and account else "wrong name or password", via=via)
        return SignIn(None, locked=after.locked_until is not None)

    async def sign_out(self, who: Principal, until: datetime) -> None:
        if who.session_id:
            await self._write(SessionEnded(session_id=who.session_id, until=until))
        await self.record(who, "logout")

    # ---- the overview -------------------------------------------------------------

    async def overview(self) -> Overview:
        now = datetime.now(UTC)
        letters = (await dl.dead_letter_entries(self.settings)).entries
        return Overview(self.lag.looked_at, dict(self.lag.groups), dict(self.lag.throughput),
                        self.trail.status_counts(now - timedelta(hours=1)),
                        self.trail.status_counts(now - timedelta(days=1)),
                        len(letters), sum(1 for e in letters if e.replay is None),
                        len(self.trail.open_flags()), self._holds_open(), self._feeds_down(now))

    def _holds_open(self) -> int:
        from savin.web.console.holds import stored_holds

        return sum(1 for h in stored_holds(self.views.store) if h.state.value == "open")

    def _feeds_down(self, now: datetime) -> list[str]:
        from savin.ops.feeds import stored_feeds

        return [f.source for f in stored_feeds(self.views.store, self.settings.feed_thresholds, now)
                if f.state in ("stale", "low")]

    # ---- dead letters ---------------------------------------------------------------

    @staticmethod
    def selection(ids: list[str] | None = None, reason: str | None = None, topic: str | None = None,
                  since: str | None = None) -> dl.Selection:
        when = None
        if since:
            try:
                when = dl.parse_when(since, datetime.now(UTC))
            except ValueError as e:
                raise Problem("since", str(e)) from None
        return dl.Selection(frozenset(i.strip() for i in ids or () if i.strip()), reason or None, topic or None, when)

    async def dead_letters(self, selection: dl.Selection) -> list[dl.Entry]:
        return list(reversed((await dl.dead_letter_entries(self.settings, selection)).entries))

    async def dead_letter(self, dead_letter_id: str) -> tuple[dl.Entry, str] | None:
        found = await self.dead_letters(dl.Selection(ids=frozenset({dead_letter_id})))
        return (found[0], redact_payload(found[0].value)) if found else None

    async def replay(self, who: Principal, selection: dl.Selection) -> dl.ReplayReport:
        report = await dl.replay_dead_letters(self.settings, selection)
        await self.record(who, "dead-letters.replay",
                          {"dead_letter": [e.id for e in report.sent],
                           **({"already_replayed": [e.id for e in report.already]} if report.already else {}),
                           **({"refused": [e.id for _, e in report.refused]} if report.refused else {})},
                          detail=f"{len(report.sent)} sent, {len(report.already)} already replayed, "
                                 f"{len(report.refused)} refused")
        return report

    # ---- registrations --------------------------------------------------------------

    async def registration(self, who: Principal, registration_id: str):
        """The registration with its contacts masked, its history, flags and notices; None if unknown."""
        if len(registration_id) > 64:
            return None
        history = await registration_history(self.settings.kafka_bootstrap, self.topics.registrations,
                                             registration_id)
        if not history:
            return None
        consent = await consent_history(self.settings.kafka_bootstrap, self.topics.consent, registration_id)
        await self.record(who, "registration.view", {"registration": [registration_id]})
        return describe(history, self.sealer, consent)

    async def clear_flag(self, who: Principal, registration_id: str, key: str) -> RegistrationFlag:
        flag = next((f for f in self.trail.flags(registration_id) if f.key == key), None)
        if flag is None:
            raise Problem("flag", "That flag is not open (it may have been cleared already).", 404)
        await self.commands.publish(self.topics.registration_flags, key.encode(), None,
                                    partition_for(registration_id.encode(), self.topics.partitions))
        await self.record(who, "flag.clear", {"registration": [registration_id], "flag": [key]})
        return flag

    # ---- accounts and tokens ----------------------------------------------------------

    async def add_account(self, who: Principal, name: str, role: Role, password: str | None) -> tuple[OperatorAccount, str | None]:
        """The new account and, when none was given, the password made for it (shown once)."""
        if problem := name_problem(name):
            raise Problem("name", f"The name {problem}.")
        if self.directory.account(name) is not None:
            raise Problem("name", "An account with that name exists already.", 409)
        made = None
        if not password:
            password = made = generate_password()
        elif problem := password_problem(password):
            raise Problem("password", f"The password {problem}.")
        account = new_account(name, role, password, datetime.now(UTC), who.actor)
        await self._write(account)
        await self.record(who, "account.add", {"operator": [name]}, detail=f"role {role.value}")
        return account, made

    async def change_account(self, who: Principal, name: str, *, role: Role | None = None,
                             disabled: bool | None = None) -> OperatorAccount:
        account = self.directory.account(name)
        if account is None:
            raise Problem("name", "No account has that name.", 404)
        if name == who.name and (disabled or (role is not None and role is not Role.ADMIN)):
            raise Problem("name", "You cannot disable your own account or take away your own admin role.", 409)
        changed = changed_account(account, datetime.now(UTC), who.actor, role=role, disabled=disabled)
        await self._write(changed)
        what = "account.disable" if disabled else "account.enable" if disabled is False else "account.role"
        await self.record(who, what, {"operator": [name]},
                          detail=f"role {changed.role.value}" if role is not None else None)
        return changed

    async def create_token(self, who: Principal, owner: str, scope: Role, label: str = "") -> tuple[ApiToken, str]:
        account = self.directory.account(owner)
        if account is None or account.disabled:
            raise Problem("owner", "No enabled account has that name.", 404)
        if not account.role.allows(scope):
            raise Problem("scope", f"A token cannot do more than its owner: {owner} is a {account.role.value}.")
        token, whole = issue_token(owner, scope, datetime.now(UTC), label)
        await self._write(token)
        await self.record(who, "token.create", {"token": [token.token_id], "operator": [owner]},
                          detail=f"scope {scope.value}")
        return token, whole

    async def revoke_token(self, who: Principal, token_id: str) -> ApiToken:
        token = self.directory.token(token_id)
        if token is None:
            raise Problem("token", "No token has that id.", 404)
        revoked = revoked_token(token, datetime.now(UTC))
        await self._write(revoked)
        await self.record(who, "token.revoke", {"token": [token_id], "operator": [token.owner]})
        return revoked
