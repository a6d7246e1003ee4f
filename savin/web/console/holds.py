"""The console's and the API's holds: holds on mass changes and offenders' blocks, listed,
approved, rejected and opened (:mod:`savin.ops.holds`).

``/console/holds`` lists them from the web's views (``holds`` is followed there);
a hold's page reads what it keeps back from ``held-notices``. Approving, rejecting
and blocking are an operator's actions: each names the operator on the hold's
record and leaves an ``operator-audit`` record.
"""

from __future__ import annotations

import uuid
from collections import Counter

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from savin.ops import holds as ops
from savin.schemas.operators import Role
from savin.schemas.safety import Hold
from savin.web.console.auth import principal
from savin.web.console.parts import Part
from savin.web.console.service import Problem
from savin.web.portal.pages import FieldError

__all__ = ["HoldsPart"]

V, O = Role.VIEWER, Role.OPERATOR
_HOLD = b"H:"  # + hold id -> Hold JSON (the views' copy of ``holds``)


class DecisionIn(BaseModel):
    why: str = Field(min_length=1, max_length=500, description="Why: kept with the decision and on the audit trail.")


class BlockIn(DecisionIn):
    offender_id: str = Field(min_length=1, max_length=64)


class HeldOut(BaseModel):
    hold: Hold
    notices: int = Field(description="Notices the hold keeps back (or released or rejected, once decided).")
    by_event_type: dict[str, int]
    by_channel: dict[str, int]


class DecisionOut(BaseModel):
    hold: Hold
    notices: int = Field(description="Notices released (approved) or recorded as rejected.")


class HoldsPart(Part):
    def __init__(self, console, auth, pages):
        super().__init__(console, auth, pages)
        for path, endpoint, methods, role in (
            ("/holds", self.list_page, ["GET"], V),
            ("/holds/block", self.block_page, ["POST"], O),
            ("/holds/{hold_id}", self.hold_page, ["GET"], V),
            ("/holds/{hold_id}/approve", self.approve_page, ["POST"], O),
            ("/holds/{hold_id}/reject", self.reject_page, ["POST"], O),
        ):
            self.page_router.add_api_route(path, endpoint, methods=methods, response_class=HTMLResponse,
                                           dependencies=[auth.page(role)])
        api = self.api_router
        api.add_api_route("/holds", self.list_api, methods=["GET"], response_model=list[Hold],
                          dependencies=[auth.api(V)], summary="Holds",
                          description="Every hold, newest first: mass holds the match stage opened and "
                                      "offenders' blocks, open or decided.")
        api.add_api_route("/holds/block", self.block_api, methods=["POST"], response_model=Hold, status_code=201,
                          dependencies=[auth.api(O)], summary="Block an offender's notices",
                          description="Hold every notice about one offender until the block is approved "
                                      "(they go out) or rejected (they do not).")
        api.add_api_route("/holds/{hold_id}", self.hold_api, methods=["GET"], response_model=HeldOut,
                          dependencies=[auth.api(V)], summary="A hold and what it keeps back")
        api.add_api_route("/holds/{hold_id}/approve", self.approve_api, methods=["POST"], response_model=DecisionOut,
                          dependencies=[auth.api(O)], summary="Approve a hold",
                          description="Everything held goes out, urgent first, then in event order.")
        api.add_api_route("/holds/{hold_id}/reject", self.reject_api, methods=["POST"], response_model=DecisionOut,
                          dependencies=[auth.api(O)], summary="Reject a hold",
                          description="Nothing held goes out; each held notice is recorded as rejected, with "
                                      "who and why.")

    def attach(self, views) -> None:
        self.views = views
        views.follow(self.console.topics.holds, _apply_hold)

    # ---- reading -------------------------------------------------------------------

    def holds(self) -> list[Hold]:
        return stored_holds(self.views.store)

    def hold(self, hold_id: str) -> Hold:
        try:
            key = str(uuid.UUID(hold_id))
        except ValueError:
            raise Problem("hold_id", "That is not a hold id.", 404) from None
        raw = self.views.store.get(_HOLD + key.encode())
        if raw is None:
            raise Problem("hold_id", "No hold has that id.", 404)
        return Hold.model_validate_json(raw)

    async def held(self, hold: Hold) -> HeldOut:
        held = await ops.held_notices(self.console.settings, hold.hold_id)
        return HeldOut(hold=hold, notices=len(held), by_event_type=dict(Counter(h.job.event_type for h in held)),
                       by_channel=dict(Counter(h.job.channel.value for h in held)))

    # ---- acting --------------------------------------------------------------------

    async def decide(self, request: Request, hold_id: str, approve: bool, why: str) -> ops.Decision:
        me = principal(request)
        verb = "approve" if approve else "reject"
        try:
            self.hold(hold_id)
            decision = await ops.decide(self.console.settings, hold_id, approve, me.name, why[:500])
        except Problem as p:
            await self.console.record(me, f"hold.{verb}", {"hold": [hold_id[:64]]}, outcome="refused",
                                      detail=p.message)
            raise
        await self.console.record(me, f"hold.{verb}", {"hold": [str(decision.hold.hold_id)]},
                                  detail=f"{decision.notices} notices: {why[:200]}")
        await self._seen(decision.hold)
        return decision

    async def block(self, request: Request, offender_id: str, why: str) -> Hold:
        me = principal(request)
        hold = await ops.block(self.console.settings, offender_id[:64], me.name, why[:500])
        await self.console.record(me, "hold.block", {"hold": [str(hold.hold_id)], "offender": [hold.offender_id]},
                                  detail=why[:200])
        await self._seen(hold)
        return hold

    async def _seen(self, hold: Hold) -> None:
        """Wait until the views hold the hold's new state, so the next page shows it."""
        from savin.ops.reading import wait_until

        async def current() -> bool:
            raw = self.views.store.get(_HOLD + str(hold.hold_id).encode())
            return raw is not None and Hold.model_validate_json(raw).state is hold.state

        await wait_until(current, 15, what="the hold's new state in the views")

    # ---- pages ---------------------------------------------------------------------

    async def list_page(self, request: Request) -> HTMLResponse:
        return self._list(request)

    def _list(self, request: Request, errors=(), status: int = 200, form: dict | None = None) -> HTMLResponse:
        return self.pages.render(request, "holds.html.j2", status, errors, holds=self.holds(),
                                 may_act=principal(request).role.allows(O), form=form or {})

    async def hold_page(self, request: Request, hold_id: str) -> HTMLResponse:
        return await self._hold(request, hold_id)

    async def _hold(self, request: Request, hold_id: str, errors=(), status: int = 200) -> HTMLResponse:
        try:
            hold = self.hold(hold_id)
        except Problem:
            return self.pages.render(request, "missing.html.j2", 404, what="hold", ident=hold_id[:64])
        return self.pages.render(request, "hold.html.j2", status, errors, held=await self.held(hold),
                                 may_act=principal(request).role.allows(O))

    async def approve_page(self, request: Request, hold_id: str, why: str = Form("")) -> Response:
        return await self._decide_page(request, hold_id, True, why)

    async def reject_page(self, request: Request, hold_id: str, why: str = Form("")) -> Response:
        return await self._decide_page(request, hold_id, False, why)

    async def _decide_page(self, request: Request, hold_id: str, approve: bool, why: str) -> Response:
        try:
            await self.decide(request, hold_id, approve, why)
        except Problem as p:
            if p.status == 404:
                return self.pages.render(request, "missing.html.j2", 404, what="hold", ident=hold_id[:64])
            return await self._hold(request, hold_id, (FieldError(p.field, p.message),), p.status)
        return RedirectResponse(f"/console/holds/{hold_id}", 303)

    async def block_page(self, request: Request, offender_id: str = Form(""), why: str = Form("")) -> Response:
        try:
            hold = await self.block(request, offender_id, why)
        except Problem as p:
            return self._list(request, (FieldError(p.field, p.message),), p.status,
                              {"offender_id": offender_id[:64], "why": why[:500]})
        return RedirectResponse(f"/console/holds/{hold.hold_id}", 303)

    # ---- API -----------------------------------------------------------------------

    async def list_api(self) -> list[Hold]:
        return self.holds()

    async def hold_api(self, hold_id: str) -> HeldOut:
        return await self.held(self.hold(hold_id))

    async def approve_api(self, hold_id: str, body: DecisionIn, request: Request) -> DecisionOut:
        d = await self.decide(request, hold_id, True, body.why)
        return DecisionOut(hold=d.hold, notices=d.notices)

    async def reject_api(self, hold_id: str, body: DecisionIn, request: Request) -> DecisionOut:
        d = await self.decide(request, hold_id, False, body.why)
        return DecisionOut(hold=d.hold, notices=d.notices)

    async def block_api(self, body: BlockIn, request: Request) -> Hold:
        return await self.block(request, body.offender_id, body.why)


def stored_holds(store) -> list[Hold]:
    """Every hold in a view store that follows ``holds``: open first, then newest first."""
    rows = [Hold.model_validate_json(v) for _, v in store.scan(_HOLD) if v is not None]
    return sorted(rows, key=lambda h: (h.state.value != "open", -h.opened_at.timestamp()))


def _apply_hold(puts: dict, key: bytes, value: bytes | None) -> None:
    if value is None:
        return
    hold = Hold.model_validate_json(value)
    puts[_HOLD + str(hold.hold_id).encode()] = value
