"""The operator accounts, tokens, ended sessions and audit trail each web
process keeps in its views (:class:`Directory`), from ``operators`` and
``operator-audit``."""

from __future__ import annotations

from savin.ops.operators import parse_operator_record
from savin.schemas.operators import ApiToken, OperatorAccount, OperatorAction, SessionEnded
from savin.topics import Topics
from savin.web.portal.views import Views

__all__ = ["Directory"]

_OPERATORS = b"op/"  # + the operators key -> its record
_AUDIT = b"au/"  # + newest-first time + action id -> OperatorAction JSON
_FAR = 10**14  # milliseconds; newest-first keys count down from here


class Directory:
    def __init__(self, views: Views, topics: Topics):
        self.views = views
        views.follow(topics.operators, self._apply_operator)
        views.follow(topics.operator_audit, self._apply_audit)

    def _apply_operator(self, puts: dict, key: bytes, value: bytes | None) -> None:
        parse_operator_record(key, value)  # an unreadable record is skipped (and counted) by the views
        puts[_OPERATORS + key] = value

    def _apply_audit(self, puts: dict, key: bytes, value: bytes | None) -> None:
        if value is None:
            return
        a = OperatorAction.model_validate_json(value)
        newest_first = _FAR - int(a.at.timestamp() * 1000)
        puts[_AUDIT + f"{newest_first:015d}/{a.action_id}".encode()] = value

    def _get(self, key: str, model):
        raw = self.views.store.get(_OPERATORS + key.encode())
        return model.model_validate_json(raw) if raw else None

    def account(self, name: str) -> OperatorAccount | None:
        return self._get(f"account:{name}", OperatorAccount) if len(name) <= 40 else None

    def accounts(self) -> list[OperatorAccount]:
        return [OperatorAccount.model_validate_json(v) for _, v in self.views.store.scan(_OPERATORS + b"account:")]

    def token(self, token_id: str) -> ApiToken | None:
        return self._get(f"token:{token_id}", ApiToken) if len(token_id) <= 20 else None

    def tokens(self) -> list[ApiToken]:
        return sorted((ApiToken.model_validate_json(v) for _, v in self.views.store.scan(_OPERATORS + b"token:")),
                      key=lambda t: t.created_at)

    def session_ended(self, session_id: str) -> bool:
        return self._get(f"session:{session_id}", SessionEnded) is not None

    def actions(self, limit: int = 200, *, actor: str | None = None, id_value: str | None = None,
                action: str | None = None) -> list[OperatorAction]:
        """The newest ``limit`` actions, optionally by one actor, one action, or touching one id."""
        out = []
        for _, v in self.views.store.scan(_AUDIT):
            a = OperatorAction.model_validate_json(v)
            if actor and a.actor != actor:
                continue
            if action and a.action != action:
                continue
            if id_value and not any(id_value in ids for ids in a.ids.values()):
                continue
            out.append(a)
            if len(out) >= limit:
                break
        return out
