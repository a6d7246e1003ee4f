"""The console's and the API's reports: statutory deadline evidence and program statistics
for a period, read from the topics (:mod:`savin.ops.reports`) when asked.

* ``GET /console/reports?from=&to=`` (viewer): the statistics of a period (the last 30
  days by default), with links to download the deadline evidence as CSV or JSON;
* ``GET /console/reports/deadlines?from=&to=&format=csv|json`` (viewer): the evidence;
* ``GET /api/v1/stats`` and ``GET /api/v1/deadlines`` (viewer): the same as JSON.

The evidence lists registration ids, so each download is recorded on operator-audit
(``reports.deadlines``) with the period; the statistics carry no ids and are not.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Any, Literal

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from savin.domain.clock import utcnow
from savin.domain.deadlines import load_policy
from savin.ops.reports import (
    Evidence,
    Period,
    PeriodError,
    deadline_report,
    duration_text,
    evidence_csv,
    evidence_document,
    parse_period,
    read_run,
    statistics,
)
from savin.schemas.operators import Role
from savin.web.console.auth import principal
from savin.web.console.parts import Part
from savin.web.console.service import Problem
from savin.web.portal.pages import FieldError

__all__ = ["ReportsPart"]

V = Role.VIEWER
#: The console's period when none is asked for.
DEFAULT_DAYS = 30

Cell = int | str


class PeriodOut(BaseModel):
    from_: str = Field(..., alias="from", description="Start, included (ISO 8601, UTC).")
    to: str = Field(..., description="End, excluded (ISO 8601, UTC).")


class TableOut(BaseModel):
    by: list[str]
    across: str | None
    columns: list[str]
    rows: list[dict[str, Cell]] = Field(..., description="Counts 1 to 4 are '<5'; counts that would give one "
                                                         "away by subtraction are 'suppressed'.")
    totals: dict[str, Cell]


class DurationsOut(BaseModel):
    count: Cell
    median: float | None = Field(None, description="Seconds; none from fewer than 5 notices.")
    p95: float | None = None


class StatsOut(BaseModel):
    period: PeriodOut
    generated_at: str
    registrations: TableOut
    notices: TableOut
    delivery_times: dict[str, DurationsOut] = Field(..., description="Event to delivery receipt: all and per channel.")
    acknowledgements: TableOut
    acknowledgement_rates: dict[str, float | str | None]
    feed_downtime_hours: dict[str, float]
    holds: TableOut
    held_notices: TableOut


class EvidenceOut(BaseModel):
    notice_id: str
    event_id: str
    registration_id: str
    event_type: str
    channel: str
    event_at: str | None
    first_try_at: str | None
    delivered_at: str | None
    acknowledged_at: str | None
    deadline_at: str | None
    verdict: Literal["met", "missed", "pending", "not_owed", "no_deadline"]
    outcome: str
    unmeetable: bool
    hold_id: str | None
    corrects: str | None


class DeadlinesOut(BaseModel):
    period: PeriodOut
    generated_at: str
    policy: str
    notices: list[EvidenceOut]


def _default_period(now: dt.datetime) -> tuple[str, str]:
    today = now.date()
    return (today - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat(), today.isoformat()


def _stamp(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class ReportsPart(Part):
    def __init__(self, console, auth, pages):
        super().__init__(console, auth, pages)
        self.page_router.add_api_route("/reports", self.page, methods=["GET"], response_class=HTMLResponse,
                                       dependencies=[auth.page(V)])
        self.page_router.add_api_route("/reports/deadlines", self.download, methods=["GET"],
                                       dependencies=[auth.page(V)])
        self.api_router.add_api_route("/stats", self.api_stats, methods=["GET"], response_model=StatsOut,
                                      dependencies=[auth.api(V)], summary="Program statistics")
        self.api_router.add_api_route("/deadlines", self.api_deadlines, methods=["GET"], response_model=DeadlinesOut,
                                      dependencies=[auth.api(V)], summary="Deadline evidence")

    # ---- reading ----------------------------------------------------------------------

    async def _evidence(self, period: Period) -> tuple[list[Evidence], str, dt.datetime]:
        try:
            policy = load_policy(self.console.settings.deadline_policy)
        except ValueError as e:  # the worker refuses to start with it too
            raise Problem("policy", f"SAVIN_DEADLINE_POLICY: {e}", 500) from None
        now = utcnow()
        return deadline_report(await read_run(self.console.settings), period, policy, now), policy.name, now

    @staticmethod
    def _period(start: str, end: str) -> Period:
        try:
            return parse_period(start[:40], end[:40])
        except PeriodError as e:
            raise Problem(e.field, e.message.replace("--from", "From").replace("--to", "To")) from None

    async def _record(self, request: Request, period: Period, rows: int, via: str) -> None:
        await self.console.record(principal(request), "reports.deadlines", {},
                                  detail=f"{rows} notices from {_stamp(period.start)} to {_stamp(period.end)}",
                                  via=via)

    # ---- the page ---------------------------------------------------------------------

    async def page(self, request: Request, start: str = Query("", alias="from"),
                   end: str = Query("", alias="to")) -> HTMLResponse:
        default = _default_period(utcnow())
        form = {"from": (start or default[0]).strip()[:40], "to": (end or default[1]).strip()[:40]}
        try:
            period = self._period(form["from"], form["to"])
        except Problem as p:
            return self.pages.render(request, "reports.html.j2", 400, (FieldError(p.field, p.message),),
                                     form=form, figures=None, links={})
        figures = statistics(await read_run(self.console.settings), period, utcnow())
        query = urllib.parse.urlencode(form)
        links = {fmt: f"/console/reports/deadlines?{query}&format={fmt}" for fmt in ("csv", "json")}
        return self.pages.render(request, "reports.html.j2", form=form, figures=figures, links=links,
                                 api=f"/api/v1/stats?{query}", hours=_hours, seconds=duration_text,
                                 utc=lambda at: at.strftime("%Y-%m-%d %H:%M UTC"))

    async def download(self, request: Request, start: str = Query("", alias="from"),
                       end: str = Query("", alias="to"), format: str = "csv") -> Response:
        if format not in ("csv", "json"):
            format = "csv"
        try:
            period = self._period(start, end)
            rows, policy, now = await self._evidence(period)
        except Problem as p:
            return Response(p.message + "\n", p.status, media_type="text/plain; charset=utf-8")
        await self._record(request, period, len(rows), "console")
        name = f"savin-deadlines-{period.start.date()}-{(period.end - dt.timedelta(seconds=1)).date()}.{format}"
        if format == "json":
            body = json.dumps(evidence_document(period, now, policy, rows), indent=1) + "\n"
            media = "application/json"
        else:
            body, media = evidence_csv(rows), "text/csv; charset=utf-8"
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                         "Cache-Control": "no-store"})

    # ---- the API ------------------------------------------------------------------------

    async def api_stats(self, start: str = Query(..., alias="from", max_length=40,
                                                 description="First day (YYYY-MM-DD, UTC) or an ISO time."),
                        end: str = Query(..., alias="to", max_length=40,
                                         description="Last day, included (YYYY-MM-DD), or an ISO time, excluded.")
                        ) -> dict[str, Any]:
        """Program statistics for a period: cells under 5 suppressed, no personal data."""
        period = self._period(start, end)
        return statistics(await read_run(self.console.settings), period, utcnow()).as_json()

    async def api_deadlines(self, request: Request,
                            start: str = Query(..., alias="from", max_length=40,
                                               description="First day (YYYY-MM-DD, UTC) or an ISO time."),
                            end: str = Query(..., alias="to", max_length=40,
                                             description="Last day, included (YYYY-MM-DD), or an ISO time, "
                                                         "excluded.")) -> dict[str, Any]:
        """Per notice made in the period: event, first try, delivery, acknowledgement, deadline and verdict."""
        period = self._period(start, end)
        rows, policy, now = await self._evidence(period)
        await self._record(request, period, len(rows), "api")
        return evidence_document(period, now, policy, rows)


def _hours(value: float) -> str:
    return f"{value:.2f}"


