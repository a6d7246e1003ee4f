"""One registration as an operator sees it: contacts masked, its settings, and
every record of it still on the registrations topic, oldest first, with who
made each change and when. Names and addresses are never shown in full."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from savin.ops.reading import read_topic
from savin.schemas import Channel, StoredRegistration
from savin.schemas.consent import ConsentChange
from savin.sealing import Sealer, SealError

__all__ = ["RegistrationView", "registration_history", "consent_history", "describe", "what_changed", "mask_phone",
           "mask_email", "mask_name"]

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


async def _records_of(bootstrap: str, topic: str, registration_id: str, model) -> list:
    """(timestamp, partition, offset, record) of every ``model`` record keyed ``registration_id`` on ``topic``."""
    key = registration_id.encode()
    found = []
    async for r in read_topic(bootstrap, topic):
        if r.key != key or r.value is None:
            continue
        try:
            found.append((r.timestamp, r.partition, r.offset, model.model_validate_json(r.value)))
        except ValidationError:
            continue  # another kind of record under the same key
    return found


async def registration_history(bootstrap: str, topic: str, registration_id: str) -> list[StoredRegistration]:
    """Every record of ``registration_id`` still on ``topic``, oldest first."""
    found = await _records_of(bootstrap, topic, registration_id, StoredRegistration)
    found.sort(key=lambda f: (f[3].updated_at, f[0], f[1], f[2]))
    return [f[3] for f in found]


async def consent_history(bootstrap: str, topic: str, registration_id: str) -> list[ConsentChange]:
    """Every opt-out and opt-in of ``registration_id`` still on the consent ``topic``, oldest first."""
    found = await _records_of(bootstrap, topic, registration_id, ConsentChange)
    found.sort(key=lambda f: (f[3].at, f[1], f[2]))
    return [f[3] for f in found]


def _by_channel(reg: StoredRegistration) -> dict[str, list]:
    slots: dict[str, list] = {}
    for c in reg.contacts:
        slots.setdefault(c.channel.value, []).append(c)
    return slots


def what_changed(before: StoredRegistration | None, after: StoredRegistration,
                 opened: Callable[[str | None], str | None] = lambda sealed: sealed) -> str:
    """A few words on what one record changed from the one before it (ids and settings, never an address).

    ``opened`` opens a sealed name, so a name sealed again unchanged is not a change; a PIN
    hashed again is reported, since nothing tells whether it is the same PIN."""
    if before is None:
        return "registered"
    parts = []
    if before.status != after.status:
        parts.append(after.status.value)
    if before.language != after.language:
        parts.append(f"language {before.language} to {after.language}")
    if before.event_types != after.event_types:
        parts.append("notices wanted")
    if before.quiet_hours != after.quiet_hours:
        parts.append("quiet hours")
    if before.timezone != after.timezone:
        parts.append("time zone")
    if before.pin_hash != after.pin_hash:
        parts.append("PIN")
    if opened(before.name_sealed) != opened(after.name_sealed):
        parts.append("name")
    old, new = _by_channel(before), _by_channel(after)
    for channel in sorted(set(old) | set(new)):
        was, now = old.get(channel, []), new.get(channel, [])
        for i in range(max(len(was), len(now))):
            a, b = (was[i] if i < len(was) else None), (now[i] if i < len(now) else None)
            label = channel if max(len(was), len(now)) == 1 else f"{channel} {i + 1}"
            if a is None:
                parts.append(f"{label} added")
            elif b is None:
                parts.append(f"{label} removed")
            elif (a.blind_index != b.blind_index if a.blind_index and b.blind_index
                  else a.address_sealed != b.address_sealed):  # sealing twice gives two different texts
                parts.append(f"{label} changed")
            elif b.verified and not a.verified:
                parts.append(f"{label} verified")
    return ", ".join(parts) or "saved again"


@dataclass(frozen=True)
class RegistrationView:
    current: StoredRegistration
    history: list[StoredRegistration]
    name: str
    contacts: list[dict]
    consent: tuple[ConsentChange, ...] = ()
    #: Opens a sealed name (for telling changes apart), None when it does not open.
    opened: Callable[[str | None], str | None] = lambda sealed: sealed

    def as_dict(self) -> dict:
        c = self.current
        return {
            "registration_id": c.registration_id, "offender_id": c.offender_id, "name": self.name,
            "status": c.status.value, "language": c.language, "timezone": c.timezone,
            "event_types": list(c.event_types) if c.event_types is not None else None,
            "quiet_hours": ({"start": c.quiet_hours.start, "end": c.quiet_hours.end} if c.quiet_hours
                            else {"start": "21:00", "end": "08:00", "default": True}),
            "pin": c.pin_hash is not None, "contacts": self.contacts,
            "history": self.changes(),
        }

    def changes(self) -> list[dict]:
        """The registration's records and its consent changes, oldest first."""
        rows = [{"kind": "registration", "updated_at": h.updated_at.isoformat(), "changed_by": h.changed_by.value,
                 "status": h.status.value, "change": what_changed(self.history[i - 1] if i else None, h, self.opened)}
                for i, h in enumerate(self.history)]
        rows += [{"kind": "consent", "updated_at": c.at.isoformat(), "changed_by": c.actor.value,
                  "channel": c.channel.value, "opted_out": c.opted_out,
                  "change": f"{c.channel.value} {'stopped' if c.opted_out else 'started again'} ({c.reason})"}
                 for c in self.consent]
        rows.sort(key=lambda r: r["updated_at"])
        return rows


def _opened(sealer: Sealer, sealed: str, purpose: str) -> str | None:
    try:
        return sealer.open(sealed, purpose)
    except SealError:
        return None


def describe(history: list[StoredRegistration], sealer: Sealer,
             consent: list[ConsentChange] | tuple[ConsentChange, ...] = ()) -> RegistrationView:
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
    return RegistrationView(current, history, shown_name, contacts, tuple(consent),
                            lambda sealed: _opened(sealer, sealed, "name") if sealed else None)
