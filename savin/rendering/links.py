"""The links a notice email carries: stop email notices (one click, RFC 8058)
and manage the registration, both on ``savin web``.

An unsubscribe link names one contact slot by ids only, signed with the key
``savin web`` checks it with (derived from ``SAVIN_WEB_SECRET`` for "links",
as :attr:`savin.web.portal.context.Portal.link_key`), and expires after
:data:`UNSUBSCRIBE_TTL`, so a forwarded old email cannot act for ever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from savin.domain.clock import utcnow
from savin.domain.consent import Slot, unsubscribe_token

__all__ = ["EmailLinks", "LinkMaker", "UNSUBSCRIBE_TTL"]

#: How long an email's unsubscribe link works.
UNSUBSCRIBE_TTL = timedelta(days=60)


@dataclass(frozen=True)
class EmailLinks:
    """What an email's footer and its ``List-Unsubscribe`` header point at."""

    unsubscribe: str
    manage: str


class LinkMaker:
    """Per-message links for the channels that carry them (email); None for the others."""

    def __init__(self, base_url: str, key: bytes, *, ttl: timedelta = UNSUBSCRIBE_TTL,
                 clock: Callable[[], datetime] = utcnow):
        self.base_url = base_url.rstrip("/")
        self._key = key
        self._ttl = ttl
        self._clock = clock

    def for_contact(self, registration_id: str, channel: str, index: int) -> EmailLinks | None:
        if channel != "email":
            return None
        token = unsubscribe_token(self._key, Slot(registration_id, "email", index), self._clock() + self._ttl)
        return EmailLinks(unsubscribe=f"{self.base_url}/unsubscribe/{token}", manage=f"{self.base_url}/manage")
