"""The operator console and API inside ``savin web``: :func:`install` adds
the console's pages under ``/console`` and the API under ``/api/v1`` to the
web application; :meth:`ConsoleApp.attach` gives them the process's views
when it starts (the accounts, the audit trail's index), and :meth:`run`
keeps the lag watch looking.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI, Request

from savin.sealing import Sealer
from savin.settings import Settings
from savin.topics import Topics
from savin.web.console.accounts import Directory
from savin.web.console.api import create_api
from savin.web.console.auth import Auth, Refused
from savin.web.console.feeds import FeedsPart
from savin.web.console.holds import HoldsPart
from savin.web.console.lagwatch import LagWatch
from savin.web.console.pages import ConsolePages
from savin.web.console.reports import ReportsPart
from savin.web.console.service import Console
from savin.web.console.trail import Trail
from savin.web.portal.commands import Commands
from savin.web.portal.security import Csrf
from savin.web.portal.views import Views

__all__ = ["ConsoleApp", "install"]


class ConsoleApp:
    def __init__(self, settings: Settings, topics: Topics, commands: Commands, sealer: Sealer):
        self.settings = settings
        self.topics = topics
        self.lag = LagWatch(settings)
        self.console = Console(settings, topics, None, commands, sealer, None, None, self.lag)  # type: ignore[arg-type]
        self.auth = Auth(settings, None)  # type: ignore[arg-type]
        self.pages = ConsolePages(self.console, self.auth, Csrf(settings.web_secret.get_secret_value()),
                                  settings.portal_timezone)
        self.parts = [part(self.console, self.auth, self.pages) for part in (HoldsPart, FeedsPart, ReportsPart)]
        self.api = create_api(self.console, self.auth, [p.api_router for p in self.parts])
        self._task: asyncio.Task | None = None

    def attach(self, views: Views) -> None:
        """Follow the operators, audit and audit-trail topics in ``views`` (before they run)."""
        directory = Directory(views, self.topics)
        self.console.views = views
        self.console.directory = self.auth.directory = directory
        self.console.trail = Trail(views, self.topics)
        for part in self.parts:
            part.attach(views)

    def start(self) -> None:
        self._task = asyncio.create_task(self.lag.run(), name="savin-console-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def install(app: FastAPI, settings: Settings, topics: Topics, commands: Commands, sealer: Sealer) -> ConsoleApp:
    parts = ConsoleApp(settings, topics, commands, sealer)
    app.include_router(parts.pages.router)
    for part in parts.parts:
        app.include_router(part.page_router)
    app.mount("/api/v1", parts.api)

    @app.exception_handler(Refused)
    async def refused(request: Request, e: Refused):
        if e.status == 403 and e.principal is not None:
            await parts.console.record(e.principal, "access.refused", {"route": [request.url.path]},
                                       outcome="refused", detail=e.reason)
        return parts.pages.refused(request, e)

    return parts
