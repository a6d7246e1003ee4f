"""Sealing of victims' personal data (AES-256-GCM with a key id for rotation),
and turning a submitted registration into its sealed, storable form.

A sealed value is the text ``v1.<key id>.<base64url(nonce || ciphertext)>``.
The key id and the purpose (``associated``) are bound in as associated data,
so a sealed email address cannot be passed off as a sealed name.

A contact's blind index is HMAC-SHA256 of its normalised address under the
index key (a key of its own, never the data key): the same address always
gives the same index, so a registration can be found by phone or email
without the address being readable anywhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os

from argon2 import PasswordHasher
from argon2 import exceptions as argon2_exceptions
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from savin.schemas import Registration, RegistrationStatus, SealedContact, StoredRegistration
from savin.schemas.consent import Actor
from savin.settings import DataKeys

__all__ = ["Sealer", "SealError", "new_key", "seal_registration", "hash_pin", "check_pin", "hash_password", "check_password",
           "normalise_address", "blind_index"]

_VERSION = "v1"


class SealError(ValueError):
    """A sealed value could not be opened (unknown key id, tampered, malformed)."""


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def normalise_address(address: str) -> str:
    """The form a blind index is computed over: an email address trimmed and
    lower-cased; a phone number as ``+`` and its E.164 digits (spaces, dashes,
    dots and brackets dropped)."""
    text = address.strip()
    if "@" in text:
        return text.lower()
    return "+" + "".join(ch for ch in text if ch.isdigit())


def blind_index(address: str, index_key: bytes) -> str:
    """HMAC-SHA256 of the normalised address under ``index_key``, base64url without padding."""
    mac = hmac.new(index_key, normalise_address(address).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


class Sealer:
    def __init__(self, keys: DataKeys, index_key: bytes | None = None):
        self._aead = {kid: AESGCM(raw) for kid, raw in keys.keys.items()}
        self._active = keys.active_id
        self._index_key = index_key

    def blind_index(self, address: str) -> str | None:
        """The address's blind index, or None when this sealer has no index key."""
        return blind_index(address, self._index_key) if self._index_key is not None else None

    def seal(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(12)
        ad = f"{_VERSION}.{self._active}.{purpose}".encode()
        ct = self._aead[self._active].encrypt(nonce, plaintext.encode(), ad)
        blob = base64.urlsafe_b64encode(nonce + ct).decode().rstrip("=")
        return f"{_VERSION}.{self._active}.{blob}"

    def open(self, sealed: str, purpose: str) -> str:
        try:
            version, kid, blob = sealed.split(".", 2)
        except ValueError:
            raise SealError("malformed sealed value") from None
        if version != _VERSION:
            raise SealError(f"unsupported sealed format {version!r}")
        aead = self._aead.get(kid)
        if aead is None:
            raise SealError(f"no data key with id {kid!r}")
        raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        try:
            pt = aead.decrypt(raw[:12], raw[12:], f"{version}.{kid}.{purpose}".encode())
        except InvalidTag:
            raise SealError(f"sealed value does not open with key {kid!r}") from None
        return pt.decode()

    def key_id(self, sealed: str) -> str:
        return sealed.split(".", 2)[1]


#: argon2id for new PINs (argon2-cffi's defaults: RFC 9106's second recommended set).
_ARGON2 = PasswordHasher()
#: The parameters of PINs hashed before argon2; they still verify.
_SCRYPT = dict(n=2**14, r=8, p=1, dklen=32)


def hash_pin(pin: str) -> str:
    return _ARGON2.hash(pin)


def hash_password(password: str) -> str:
    """An operator's password, as argon2id (the same parameters as PINs)."""
    return _ARGON2.hash(password)


def check_password(password: str, stored: str) -> bool:
    try:
        return _ARGON2.verify(stored, password)
    except (argon2_exceptions.VerificationError, argon2_exceptions.InvalidHashError):
        return False


def check_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches ``stored`` (argon2, or the older ``scrypt$salt$digest``); False when malformed."""
    if stored.startswith("$argon2"):
        try:
            return _ARGON2.verify(stored, pin)
        except (argon2_exceptions.VerificationError, argon2_exceptions.InvalidHashError):
            return False
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(pin.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT)
        return hmac.compare_digest(digest, base64.b64decode(digest_b64))
    except ValueError:
        return False


def seal_registration(reg: Registration, sealer: Sealer, now: dt.datetime,
                      changed_by: Actor = Actor.OPERATOR) -> StoredRegistration:
    """Seal the victim's name and addresses, index them, hash the PIN; nothing personal stays readable."""
    return StoredRegistration(
        registration_id=reg.registration_id,
        offender_id=reg.offender_id,
        name_sealed=sealer.seal(reg.name, purpose="name") if reg.name else None,
        contacts=tuple(
            SealedContact(
                channel=c.channel,
                address_sealed=sealer.seal(c.address, purpose="contact"),
                verified=c.verified,
                blind_index=sealer.blind_index(c.address),
                verified_by=changed_by if c.verified else None,
            )
            for c in reg.contacts
        ),
        language=reg.language,
        event_types=reg.event_types,
        pin_hash=hash_pin(reg.pin) if reg.pin else None,
        status=reg.status,
        timezone=reg.timezone,
        quiet_hours=reg.quiet_hours,
        updated_at=now,
        changed_by=changed_by,
        created_at=now,
        cancelled_at=now if reg.status is RegistrationStatus.CANCELLED else None,
    )
