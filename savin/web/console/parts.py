"""What a part of the console adds: its pages (under ``/console``), its API routes
(under ``/api/v1``) and the topics it follows in the web's view store. The safety
checks' parts (holds, feeds, reports) are each one of these."""

from __future__ import annotations

from fastapi import APIRouter

from savin.web.console.auth import Auth
from savin.web.console.pages import ConsolePages
from savin.web.console.service import Console
from savin.web.portal.views import Views

__all__ = ["Part"]


class Part:
    """A console part. Every route of :attr:`page_router` needs ``auth.page(role)`` and every
    route of :attr:`api_router` ``auth.api(role)`` (the route test refuses any that does not)."""

    def __init__(self, console: Console, auth: Auth, pages: ConsolePages):
        self.console = console
        self.auth = auth
        self.pages = pages
        self.page_router = APIRouter(prefix="/console", include_in_schema=False)
        self.api_router = APIRouter()

    def attach(self, views: Views) -> None:
        """Follow this part's topics in ``views`` (called before the views start)."""
