"""Consent and verification records: who opted a contact out or in, and the
codes and links that prove a contact is its owner's."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from savin.schemas.base import Strict, Timestamp
from savin.schemas.registration import Actor, Channel

__all__ = ["Actor", "Attempts", "ConsentChange", "Verification"]

RegistrationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class ConsentChange(Strict):
    """An opt-out (``opted_out=True``) or opt-in of one contact slot; on ``<ns>.consent``."""

    registration_id: RegistrationId
    channel: Channel
    contact_index: Annotated[int, Field(ge=0)] = 0
    opted_out: bool
    #: Why, in a word: ``STOP``, ``START``, ``unsubscribe``, a provider code.
    reason: Annotated[str, Field(min_length=1, max_length=40)]
    actor: Actor
    at: Timestamp
    kind: Literal["consent"] = "consent"


class Verification(Strict):
    """A code (SMS) or link (email) sent to prove one contact slot, and the tries at
    it; on ``<ns>.verifications`` (compacted, keyed by the slot). Holds a keyed
    hash of the code, never the code; a link's ``code_hash`` is the hash of its nonce."""

    registration_id: RegistrationId
    channel: Channel
    contact_index: Annotated[int, Field(ge=0)] = 0
    #: The blind index of the address being proved: a changed contact voids the proof.
    blind_index: Annotated[str, Field(min_length=1, max_length=100)]
    code_hash: Annotated[str, Field(min_length=1, max_length=200)]
    sent_at: tuple[Timestamp, ...]
    expires_at: Timestamp
    failed_tries: Annotated[int, Field(ge=0)] = 0
    verified_at: Timestamp | None = None
    kind: Literal["verification"] = "verification"


AttemptsKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z-]+:[A-Za-z0-9._:=-]+$")]


class Attempts(Strict):
    """Recent tries at something rate-limited, shared by every ``savin web`` process;
    on ``<ns>.attempts`` (compacted, keyed by ``key``).

    Keys name ids, never an address: ``code-sends:<blind index>`` (codes sent
    to one phone), ``pin:<registration id>`` (wrong PINs)."""

    key: AttemptsKey
    at: tuple[Timestamp, ...]
    locked_until: Timestamp | None = None
    kind: Literal["attempts"] = "attempts"
