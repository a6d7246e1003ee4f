"""Turning a submitted registration into its sealed, storable form."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os

from savin.schemas import Registration, SealedContact, StoredRegistration
from savin.sealing import Sealer

__all__ = ["seal_registration", "hash_pin", "check_pin"]

_SCRYPT = dict(n=2**14, r=8, p=1, dklen=32)


def hash_pin(pin: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_pin(pin: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(pin.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def seal_registration(reg: Registration, sealer: Sealer, now: dt.datetime) -> StoredRegistration:
    """Seal the victim's name and addresses, hash the PIN; nothing personal stays readable."""
    return StoredRegistration(
        registration_id=reg.registration_id,
        offender_id=reg.offender_id,
        name_sealed=sealer.seal(reg.name, purpose="name"),
        contacts=tuple(
            SealedContact(
                channel=c.channel,
                address_sealed=sealer.seal(c.address, purpose="contact"),
                verified=c.verified,
            )
            for c in reg.contacts
        ),
        language=reg.language,
        event_types=reg.event_types,
        pin_hash=hash_pin(reg.pin) if reg.pin else None,
        status=reg.status,
        timezone=reg.timezone,
        updated_at=now,
    )
