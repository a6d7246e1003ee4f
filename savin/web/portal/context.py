"""What every part of the portal works with, built once by the app.

A part (the registration pages, the manage pages, the webhooks) is a module
with ``routes(portal) -> APIRouter``; it reads ``portal.views``, writes
through ``portal.commands`` and renders through ``portal.pages``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from savin.domain.links import derive_key
from savin.sealing import Sealer
from savin.settings import Settings
from savin.topics import Topics
from savin.web.portal.commands import Commands
from savin.web.portal.pages import Pages
from savin.web.portal.views import Views

__all__ = ["Portal"]


@dataclass
class Portal:
    settings: Settings
    topics: Topics
    pages: Pages
    sealer: Sealer  # seals names and addresses, and computes blind indexes
    commands: Commands
    #: Keys derived from SAVIN_WEB_SECRET: for email links (confirm, unsubscribe), for code hashes.
    link_key: bytes = field(init=False)
    code_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        secret = self.settings.web_secret.get_secret_value()
        self.link_key = derive_key(secret, "links")
        self.code_key = derive_key(secret, "codes")

    @property
    def views(self) -> Views:
        return self.pages.views

    def url(self, path: str) -> str:
        """An absolute link to ``path`` for an SMS or email (SAVIN_PUBLIC_URL, else the portal's own address)."""
        base = self.settings.public_url or f"http://{self.settings.portal_host}:{self.settings.portal_port}"
        return base.rstrip("/") + path
