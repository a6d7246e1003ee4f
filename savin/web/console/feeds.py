"""The console's and the API's feeds: each source's freshness, as the feed watchdog judges it.

``/console/feeds`` (a viewer's page) and ``GET /api/v1/feeds`` show every
source: its state as the watchdog last recorded it (ok, stale, low; unknown
before its first verdict) and why, its newest event or heartbeat, and its
events in the last hour against its usual rate. Both read ``feed-counts`` and
``feed-status`` from the web's views (:class:`savin.ops.feeds.FeedView`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from savin.ops.feeds import FeedView
from savin.schemas.operators import Role
from savin.web.console.parts import Part

__all__ = ["FeedsPart", "FeedOut"]


class FeedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    source: str
    state: Literal["ok", "stale", "low", "unknown"] = Field(
        description="As the watchdog last recorded it; unknown before its first verdict.")
    reason: str | None = None
    since: datetime | None = Field(None, description="When the watchdog recorded the state.")
    last_event_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    last_seen_at: datetime | None = Field(None, description="The newest event or heartbeat: what the source's "
                                                            "data is as of.")
    events_last_hour: int = Field(description="Events (heartbeats not counted) in the last hour.")
    usual_per_hour: float | None = Field(None, description="The median of the last week's hourly counts; "
                                                           "null before a day of them.")
    silent_after: int = Field(description="Seconds of silence after which the source is stale.")


class FeedsPart(Part):
    def __init__(self, console, auth, pages):
        super().__init__(console, auth, pages)
        self.view = FeedView(console.topics, console.settings.feed_thresholds)
        self.page_router.add_api_route("/feeds", self.page, methods=["GET"], response_class=HTMLResponse,
                                       dependencies=[auth.page(Role.VIEWER)])
        self.api_router.add_api_route("/feeds", self.api, methods=["GET"], response_model=list[FeedOut],
                                      dependencies=[auth.api(Role.VIEWER)], summary="Feeds",
                                      description="Every source: its state as the feed watchdog last recorded "
                                                  "it and why, its newest event or heartbeat, and its events in "
                                                  "the last hour against its usual rate.")

    def attach(self, views) -> None:
        self.view.attach(views)

    async def page(self, request: Request, refresh: int = 0) -> HTMLResponse:
        now = datetime.now(UTC)
        return self.pages.render(request, "feeds.html.j2", feeds=self.view.feeds(now), now=now,
                                 refresh=refresh if 2 <= refresh <= 300 else 0)

    async def api(self) -> list[FeedOut]:
        return [FeedOut.model_validate(f) for f in self.view.feeds()]
