"""Consent: which contact slots a registrant has opted out of, and why.

A contact slot is the n-th contact of one channel of a registration. An opt-out
(a STOP reply, a provider's opt-out code) suppresses that slot until the
registrant opts in again; it never touches the other slots.
"""

from __future__ import annotations

__all__ = ["contact_key", "OPTED_OUT"]

#: The suppression reason recorded when a provider says "opted out" without a code.
OPTED_OUT = "opted-out"


def contact_key(registration_id: str, channel: str, index: int) -> str:
    """Stable name of one contact slot: the n-th contact of a channel."""
    return f"{registration_id}:{channel}:{index}"
