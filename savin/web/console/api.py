"""The operator API, under ``/api/v1``: the console's questions and actions
as JSON, for machines, with bearer tokens (``savin operators token create``)
and the same roles. ``GET /api/v1/openapi.json`` describes it (OpenAPI 3.1).

Errors are ``{"error": "...", "field": "..."}`` with 400 (a field is wrong),
401 (no valid token), 403 (the token's scope does not allow it), 404 and 409.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from savin import __version__
from savin.domain.lag import Status
from savin.ops import dead_letters as dl
from savin.schemas.escalation import RegistrationFlag
from savin.schemas.operators import OperatorAction, Role
from savin.web.console.auth import Auth, Refused, principal
from savin.web.console.service import Console, Problem

__all__ = ["create_api"]

V, O, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Error(Out):
    error: str
    field: str | None = None


class PartitionLagOut(Out):
    topic: str
    partition: int
    committed: int | None = None
    end: int | None = None
    lag: int
    seconds: float | None = None
    status: Literal["OK", "WARN", "STOP", "STALL", "REWIND"]
    why: str | None = None


class StageLagOut(Out):
    stage: str
    group: str
    status: Literal["OK", "WARN", "STOP", "STALL", "REWIND"]
    lag: int
    records_per_second: float | None = None
    partitions: list[PartitionLagOut]


class LagOut(Out):
    looked_at: datetime | None
    stages: list[StageLagOut]


class OverviewOut(LagOut):
    notices_last_hour: dict[str, int]
    notices_last_day: dict[str, int]
    failures_last_hour: int
    dead_letters: int
    dead_letters_not_replayed: int
    open_flags: int
    holds_open: int = Field(0, description="Holds waiting for an operator's decision.")
    feeds_down: list[str] = Field([], description="Sources the feed watchdog last found stale or low.")


class NoticeOut(Out):
    notice_id: str
    event_id: str | None = None
    event_type: str | None = None
    urgency: str | None = None
    registration_id: str
    offender_id: str | None = None
    channel: str | None = None
    contact_index: int | None = None
    created_at: datetime | None = None
    status: str | None = None
    last_at: datetime | None = None
    attempts: int = 0


class TimelineEntryOut(Out):
    at: datetime
    kind: str
    title: str
    status: str | None = None
    detail: str | None = None


class TimelineOut(Out):
    notice: NoticeOut
    entries: list[TimelineEntryOut]


class DeadLetterOut(Out):
    dead_letter_id: str
    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    at: datetime | None = None
    value_size: int = 0
    replayed_at: datetime | None = None
    replayed_to: str | None = None
    replayable: bool


class DeadLetterDetailOut(DeadLetterOut):
    payload_redacted: str
    refusal: str | None = None


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(default_factory=list, max_length=1000,
                           description="Dead letter ids; or leave empty and give a filter with all=true.")
    reason: str | None = Field(None, max_length=100)
    topic: str | None = Field(None, max_length=200)
    since: str | None = Field(None, max_length=40, description="2h, 30m, 7d, or an ISO date or time.")
    all: bool = Field(False, description="Replay every dead letter the filter selects.")


class ReplayOut(Out):
    sent: list[str]
    already_replayed: list[str]
    refused: dict[str, str]


class FlagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flag: str = Field(..., max_length=300, description="The flag's key, as the registration lists it.")


class FlagOut(Out):
    key: str
    flag: RegistrationFlag


class RegistrationOut(Out):
    registration: dict
    flags: list[FlagOut]
    notices: list[NoticeOut]


class AccountOut(Out):
    name: str
    role: Role
    disabled: bool
    created_at: datetime
    changed_at: datetime
    changed_by: str


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., max_length=40)
    role: Role
    password: str | None = Field(None, max_length=200, description="Left out: one is made and returned once.")


class AccountCreatedOut(Out):
    account: AccountOut
    password: str | None = Field(None, description="The password made for the account (shown only now).")


class AccountChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    disabled: bool | None = None


class TokenOut(Out):
    token_id: str
    owner: str
    scope: Role
    label: str
    created_at: datetime
    revoked_at: datetime | None = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str = Field(..., max_length=40)
    scope: Role
    label: str = Field("", max_length=80, pattern=r"^[^\x00-\x1f]*$")


class TokenCreatedOut(Out):
    token: TokenOut
    secret: str = Field(..., description="The whole token, for the Authorization header (shown only now).")


class OperatorsOut(Out):
    accounts: list[AccountOut]
    tokens: list[TokenOut]


def _lag(console: Console) -> LagOut:
    stages = []
    for stage, group in console.lag.groups.items():
        stages.append(StageLagOut(
            stage=stage, group=group.group, status=Status(group.status).name,
            lag=sum(p.lag for p in group.partitions),
            records_per_second=console.lag.throughput.get(stage),
            partitions=[PartitionLagOut(topic=p.topic, partition=p.partition, committed=p.committed, end=p.end,
                                        lag=p.lag, seconds=p.seconds, status=Status(p.status).name,
                                        why=p.reason)
                        for p in group.partitions]))
    return LagOut(looked_at=console.lag.looked_at, stages=stages)


def _letter(e: dl.Entry) -> dict:
    s = e.summary()
    return {**s, "dead_letter_id": e.id, "replayed_at": e.replay.at if e.replay else None}


def _report(r: dl.ReplayReport) -> ReplayOut:
    return ReplayOut(sent=[e.id for e in r.sent], already_replayed=[e.id for e in r.already],
                     refused={e.id: why for e, why in r.refused})


def create_api(console: Console, auth: Auth, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The API app: its own routes, and ``routers`` (the console parts')."""
    api = FastAPI(title="savin operator API", version=__version__, openapi_url=None, docs_url=None, redoc_url=None,
                  description=__doc__, responses={400: {"model": Error}, 401: {"model": Error}, 403: {"model": Error}})

    @api.exception_handler(Refused)
    async def refused(request: Request, e: Refused):
        if e.status == 403 and e.principal is not None:
            await console.record(e.principal, "access.refused", {"route": [request.url.path]}, outcome="refused",
                                 detail=e.reason, via="api")
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else {}
        return JSONResponse({"error": e.reason}, status_code=e.status, headers=headers)

    @api.exception_handler(Problem)
    async def problem(request: Request, p: Problem):
        return JSONResponse({"error": p.message, "field": p.field}, status_code=p.status)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or None
        return JSONResponse({"error": first.get("msg", "invalid request"), "field": where}, status_code=400)

    @api.get("/openapi.json", dependencies=[auth.api(V)], include_in_schema=False)
    async def openapi():
        return JSONResponse(describe(api))

    @api.get("/overview", response_model=OverviewOut, dependencies=[auth.api(V)])
    async def overview():
        """Lag and status of every stage's partitions, notices by status, failures, dead letters, flags."""
        o = await console.overview()
        return OverviewOut(**_lag(console).model_dump(), notices_last_hour=o.last_hour, notices_last_day=o.last_day,
                           failures_last_hour=o.failures_hour, dead_letters=o.dead_letters,
                           dead_letters_not_replayed=o.dead_letters_waiting, open_flags=o.open_flags,
                           holds_open=o.holds_open, feeds_down=o.feeds_down)

    @api.get("/lag", response_model=LagOut, dependencies=[auth.api(V)])
    async def lag():
        """Each stage group's lag in records and seconds, and its status by Burrow's rules."""
        return _lag(console)

    @api.get("/notices", response_model=list[NoticeOut], dependencies=[auth.api(V)])
    async def notices(q: str = ""):
        """Notices by notice, event, registration or offender id."""
        query = q.strip()
        if not query or len(query) > 100:
            raise Problem("q", "Give a notice, event, registration or offender id (at most 100 characters).")
        return [NoticeOut.model_validate(n) for n in console.trail.search(query)]

    @api.get("/notices/{notice_id}", response_model=TimelineOut, responses={404: {"model": Error}},
             dependencies=[auth.api(V)])
    async def notice(notice_id: str):
        """A notice's timeline: event, match, each try, callbacks, acknowledgement."""
        t = console.trail.timeline(notice_id) if len(notice_id) <= 64 else None
        if t is None:
            raise Problem("notice_id", "No notice has that id.", 404)
        return TimelineOut.model_validate(t)

    @api.get("/dead-letters", response_model=list[DeadLetterOut], dependencies=[auth.api(V)])
    async def dead_letters(reason: str = "", topic: str = "", since: str = ""):
        """Dead letters, newest first, optionally by part of the reason, source topic and age."""
        entries = await console.dead_letters(console.selection(None, reason[:100], topic[:200], since[:40]))
        return [_letter(e) for e in entries]

    @api.get("/dead-letters/{dead_letter_id}", response_model=DeadLetterDetailOut, responses={404: {"model": Error}},
             dependencies=[auth.api(V)])
    async def dead_letter(dead_letter_id: str):
        """One dead letter, with its payload (personal data redacted)."""
        found = await console.dead_letter(dead_letter_id[:64])
        if found is None:
            raise Problem("dead_letter_id", "No dead letter has that id.", 404)
        return {**_letter(found[0]), "payload_redacted": found[1], "refusal": found[0].refusal}

    @api.post("/dead-letters/replay", response_model=ReplayOut, dependencies=[auth.api(O)])
    async def replay(body: ReplayIn, request: Request):
        """Send dead letters back to their source partition; a letter replayed before is not sent again."""
        if body.ids:
            selection = console.selection(body.ids)
        elif body.all:
            selection = console.selection(None, body.reason, body.topic, body.since)
        else:
            raise Problem("ids", "Give the ids to replay, or a filter with all=true.")
        return _report(await console.replay(principal(request), selection))

    @api.get("/registrations/{registration_id}", response_model=RegistrationOut,
             responses={404: {"model": Error}}, dependencies=[auth.api(V)])
    async def registration(registration_id: str, request: Request):
        """A registration with its contacts masked, its history, open flags and notices."""
        view = await console.registration(principal(request), registration_id)
        if view is None:
            raise Problem("registration_id", "No registration has that id.", 404)
        return RegistrationOut(registration=view.as_dict(),
                               flags=[FlagOut(key=f.key, flag=f) for f in console.trail.flags(registration_id)],
                               notices=[NoticeOut.model_validate(n) for n in console.trail.search(registration_id)])

    @api.post("/registrations/{registration_id}/flags/clear", response_model=FlagOut,
              responses={404: {"model": Error}}, dependencies=[auth.api(O)])
    async def clear_flag(registration_id: str, body: FlagIn, request: Request):
        """Clear a registration's flag once it has been dealt with."""
        f = await console.clear_flag(principal(request), registration_id[:64], body.flag)
        return FlagOut(key=f.key, flag=f)

    @api.get("/audit", response_model=list[OperatorAction], dependencies=[auth.api(V)])
    async def audit(actor: str = "", action: str = "", id: str = "", limit: int = Query(200, ge=1, le=1000)):
        """Operator actions, newest first."""
        return console.actions(limit, actor=actor or None, action=action or None, id_value=id or None)

    @api.get("/operators", response_model=OperatorsOut, dependencies=[auth.api(A)])
    async def operators():
        """Every account and token (never a password hash or token secret)."""
        d = console.directory
        return OperatorsOut(accounts=[AccountOut.model_validate(a) for a in d.accounts()],
                            tokens=[TokenOut.model_validate(t) for t in d.tokens()])

    @api.post("/operators", response_model=AccountCreatedOut, status_code=201,
              responses={409: {"model": Error}}, dependencies=[auth.api(A)])
    async def add_operator(body: AccountIn, request: Request):
        """Add an account."""
        account, made = await console.add_account(principal(request), body.name, body.role, body.password)
        return AccountCreatedOut(account=AccountOut.model_validate(account), password=made)

    @api.post("/operators/{name}", response_model=AccountOut, responses={404: {"model": Error}},
              dependencies=[auth.api(A)])
    async def change_operator(name: str, body: AccountChangeIn, request: Request):
        """Change an account's role, or disable or enable it (disabling ends its sessions and tokens)."""
        if body.role is None and body.disabled is None:
            raise Problem("role", "Give a role or disabled.")
        return AccountOut.model_validate(await console.change_account(principal(request), name, role=body.role,
                                                                      disabled=body.disabled))

    @api.post("/tokens", response_model=TokenCreatedOut, status_code=201, dependencies=[auth.api(A)])
    async def create_token(body: TokenIn, request: Request):
        """Make a token for an account; its secret is in this answer only."""
        token, whole = await console.create_token(principal(request), body.owner, body.scope, body.label)
        return TokenCreatedOut(token=TokenOut.model_validate(token), secret=whole)

    @api.post("/tokens/{token_id}/revoke", response_model=TokenOut, responses={404: {"model": Error}},
              dependencies=[auth.api(A)])
    async def revoke_token(token_id: str, request: Request):
        """Revoke a token: it stops working at once, on every web process."""
        return TokenOut.model_validate(await console.revoke_token(principal(request), token_id[:20]))

    for router in routers:
        api.include_router(router)
    return api


def describe(api: FastAPI) -> dict:
    """The API's OpenAPI document."""
    return get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes,
                       servers=[{"url": "/api/v1"}])


def document() -> dict:
    """The API's OpenAPI document, as ``savin web`` serves it (docs/operator-api.json)."""
    from savin.settings import Settings
    from savin.topics import Topics
    from savin.web.console.app import ConsoleApp

    settings = Settings(development=True)
    return describe(ConsoleApp(settings, Topics(settings), None, None).api)  # type: ignore[arg-type]


if __name__ == "__main__":
    import json
    import sys

    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
