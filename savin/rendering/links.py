"""The links a notice email carries: stop email notices (one click, RFC 8058),
manage the registration and, on a notice that waits for an acknowledgement,
confirm it was received; all on ``savin web``.

A link names ids only, signed with the key ``savin web`` checks it with
(derived from ``SAVIN_WEB_SECRET`` for "links", as
:attr:`savin.web.portal.context.Portal.link_key`), and expires, so a
forwarded old email cannot act for ever: an unsubscribe link names one
contact slot and works for :data:`UNSUBSCRIBE_TTL`; a confirm link names the
registration and the event and works for :data:`ACK_TTL`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from savin.domain.clock import utcnow
from savin.domain.consent import Slot, unsubscribe_token
from savin.domain.links import read_token, sign_token

__all__ = ["ACK_TTL", "EmailLinks", "LinkMaker", "UNSUBSCRIBE_TTL", "ack_token", "read_ack_token"]

#: How long an email's unsubscribe link works.
UNSUBSCRIBE_TTL = timedelta(days=60)
#: How long an email's link to confirm a notice works.
ACK_TTL = timedelta(days=30)

_ACK = "ack"


def ack_token(key: bytes, registration_id: str, event_id: str, expires_at: datetime) -> str:
    """A signed, expiring reference to one event's notices of one registration (ids only)."""
    return sign_token(key, _ACK, (registration_id, event_id), expires_at)


def read_ack_token(key: bytes, token: str, now: datetime) -> tuple[str, str] | None:
    """(registration id, event id) of a confirm link, or None when it is forged, malformed or expired."""
    fields = read_token(key, _ACK, token, now)
    if fields is None or len(fields) != 2 or not all(fields):
        return None
    return fields[0], fields[1]


@dataclass(frozen=True)
class EmailLinks:
    """What an email's footer and its ``List-Unsubscribe`` header point at."""

    unsubscribe: str
    manage: str
    #: Confirms the notice was received (None: the notice waits for no acknowledgement).
    acknowledge: str | None = None


class LinkMaker:
    """Per-message links for the channels that carry them (email); None for the others."""

    def __init__(self, base_url: str, key: bytes, *, ttl: timedelta = UNSUBSCRIBE_TTL,
                 ack_ttl: timedelta = ACK_TTL, clock: Callable[[], datetime] = utcnow):
        self.base_url = base_url.rstrip("/")
        self._key = key
        self._ttl = ttl
        self._ack_ttl = ack_ttl
        self._clock = clock

    def for_contact(self, registration_id: str, channel: str, index: int,
                    acknowledge: str | None = None) -> EmailLinks | None:
        """An email's links; with ``acknowledge`` (an event id) a link that confirms its notice."""
        if channel != "email":
            return None
        now = self._clock()
        token = unsubscribe_token(self._key, Slot(registration_id, "email", index), now + self._ttl)
        confirm = (f"{self.base_url}/ack/{ack_token(self._key, registration_id, acknowledge, now + self._ack_ttl)}"
                   if acknowledge else None)
        return EmailLinks(unsubscribe=f"{self.base_url}/unsubscribe/{token}", manage=f"{self.base_url}/manage",
                          acknowledge=confirm)
