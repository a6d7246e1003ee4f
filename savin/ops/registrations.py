"""One registration as an operator sees it: contacts masked, its settings, and
every record of it still on the registrations topic, oldest first, with who
made each change and when. Names and addresses are never shown in full."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from savin.ops.reading import read_topic
from savin.schemas import Channel, StoredRegistration
from savin.sealing import Sealer, SealError

__all__ = ["RegistrationView", "registration_history", "describe", "mask_phone", "mask_email", "mask_name"]

MASK = "•"


def mask_phone(number: str) -> str:
    """``+15735550101`` -> ``+1•••••••0101``: the first digit and the last four, with a
    fixed run of dots between, so the mask does not tell the number's length."""
    if len(number) <= 6:
        return MASK * 7
    return number[:2] + MASK * 7 + number[-4:]


def mask_email(address: str) -> str:
    """``alice@example.org`` -> ``a•••@example.org``."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}{MASK * 3}@{domain}" if local else MASK * 3


def mask_name(name: str) -> str:
    """``Alice Example`` -> ``A•••``."""
    return f"{name[:1]}{MASK * 3}"


async def registration_history(bootstrap: str, topic: str, registration_id: str) -> list[StoredRegistration]:
    """Every record of ``registration_id`` still on ``topic``, oldest first."""
    key = registration_id.encode()
    found = []
    async for r in read_topic(bootstrap, topic):
        if r.key != key or r.value is None:
            continue
        try:
            found.append((r.timestamp, r.partition, r.offset, StoredRegistration.model_validate_json(r.value)))
        except ValidationError:
            continue  # another kind of record under the same key
    found.sort(key=lambda f: (f[3].updated_at, f[0], f[1], f[2]))
    return [f[3] for f in found]


@dataclass(frozen=True)
class RegistrationView:
    current: StoredRegistration
    history: list[StoredRegistration]
    name: str
    contacts: list[dict]

    def as_dict(self) -> dict:
        c = self.current
        return {
            "registration_id": c.registration_id, "offender_id": c.offender_id, "name": self.name,
            "status": c.status.value, "language": c.language, "timezone": c.timezone,
            "event_types": list(c.event_types) if c.event_types is not None else None,
            "pin": c.pin_hash is not None, "contacts": self.contacts,
            "history": [{"updated_at": h.updated_at.isoformat(), "changed_by": h.changed_by.value,
                         "status": h.status.value} for h in self.history],
        }


def _opened(sealer: Sealer, sealed: str, purpose: str) -> str | None:
    try:
        return sealer.open(sealed, purpose)
    except SealError:
        return None


def describe(history: list[StoredRegistration], sealer: Sealer) -> RegistrationView:
    """The latest record of a registration with its name and contacts masked."""
    current = history[-1]
    name = _opened(sealer, current.name_sealed, "name") if current.name_sealed else None
    contacts = []
    for c in current.contacts:
        address = _opened(sealer, c.address_sealed, "contact")
        if address is None:
            shown = f"(sealed with key {sealer.key_id(c.address_sealed)})"
        else:
            shown = mask_email(address) if c.channel is Channel.EMAIL else mask_phone(address)
        contacts.append({"channel": c.channel.value, "address": shown, "verified": c.verified,
                         "verified_by": c.verified_by.value if c.verified_by else None})
    if current.name_sealed is None:
        shown_name = "(none given)"
    elif name is None:
        shown_name = f"(sealed with key {sealer.key_id(current.name_sealed)})"
    else:
        shown_name = mask_name(name)
    return RegistrationView(current, history, shown_name, contacts)
