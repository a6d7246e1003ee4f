"""Proving that a contact is its owner's (double opt-in): a 6-digit code by
SMS, a signed link by email, and what a right answer changes.

A contact is sent nothing but its code or link until it is proved; the
match stage sends notices only to verified contacts. Codes and links are
limited per phone or address (3 an hour, on the ``attempts`` topic, shared
by every web process) and per client address (``SAVIN_CLIENT_CODE_SENDS``
an hour, default 10, in this process's memory, kept as a hash). A right code verifies the contact with a new
record on the registrations topic naming who proved it: the portal (code
typed on a page), an SMS reply (code texted back) or the email link.

Rules live in :mod:`savin.domain.verification`; this module does the I/O.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import jinja2

from savin.domain import verification as rules
from savin.domain.clock import utcnow
from savin.domain.links import read_token, sign_token
from savin.rendering.email import RenderedEmail
from savin.rendering.renderer import OFFICE_PHONE
from savin.schemas import SealedContact, StoredRegistration
from savin.schemas.consent import Attempts
from savin.schemas.registration import Actor, Channel
from savin.web.portal.context import Portal

__all__ = ["Sent", "check_code", "check_reply_code", "confirm_link", "send_code", "send_link", "usable_channels"]

log = logging.getLogger("savin.web.proving")

CodeCheck = rules.CodeCheck

_CONFIRM = "confirm-email"

_env = jinja2.Environment(loader=jinja2.PackageLoader("savin", "templates/web/messages"),
                          undefined=jinja2.StrictUndefined, autoescape=jinja2.select_autoescape(["html"]),
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
_html_env = _env.overlay(autoescape=True)


class Sent(enum.Enum):
    SENT = "sent"
    LIMITED = "limited"  # too many asked for this contact or from this client; nothing sent
    FAILED = "failed"  # no such contact, or the provider refused it


@dataclass(frozen=True)
class _Text:
    """An SMS body as the SMS notifier reads it."""

    text: str


# ---- which contact --------------------------------------------------------------------------


def _slot(reg: StoredRegistration, channel: Channel, index: int = 0) -> tuple[int, SealedContact] | None:
    """(position in reg.contacts, contact) of the ``index``-th contact of ``channel``."""
    seen = 0
    for position, c in enumerate(reg.contacts):
        if c.channel is channel:
            if seen == index:
                return position, c
            seen += 1
    return None


def _language(reg: StoredRegistration) -> str:
    return reg.language if reg.language in ("en", "es") else "en"


def usable_channels(portal: Portal, reg: StoredRegistration) -> list[str]:
    """The channels with a verified contact that has not opted out."""
    usable: list[str] = []
    counts: dict[Channel, int] = defaultdict(int)
    for c in reg.contacts:
        index = counts[c.channel]
        counts[c.channel] += 1
        if c.verified and not portal.views.opted_out(reg.registration_id, c.channel.value, index):
            if c.channel.value not in usable:
                usable.append(c.channel.value)
    return usable


async def _mark_verified(portal: Portal, reg: StoredRegistration, channel: Channel, index: int, actor: Actor) -> None:
    current = portal.views.registration(reg.registration_id) or reg
    found = _slot(current, channel, index)
    if found is None:
        return
    position, contact = found
    contacts = list(current.contacts)
    contacts[position] = contact.model_copy(update={"verified": True, "verified_by": actor})
    await portal.commands.save_registration(current.model_copy(update={
        "contacts": tuple(contacts), "updated_at": utcnow(), "changed_by": actor}))
    log.info("contact verified registration=%s channel=%s by=%s", reg.registration_id, channel.value, actor.value)


# ---- limits -------------------------------------------------------------------------------------

_clients: dict[str, tuple[datetime, ...]] = {}
_lock = asyncio.Lock()


def _client_key(client: str) -> str:
    return hashlib.sha256(f"savin-client\0{client}".encode()).hexdigest()[:32]


async def _take(portal: Portal, contact: SealedContact, client: str, now: datetime) -> bool:
    """Count one send for this contact and client; False when either is over its limit."""
    async with _lock:
        ck = _client_key(client)
        per_client = rules.Limit(portal.settings.client_code_sends, timedelta(hours=1))
        if not per_client.allows(_clients.get(ck, ()), now):
            return False
        key = rules.code_sends_key(contact.blind_index or "none")
        before = portal.views.attempts(key)
        at = before.at if before is not None else ()
        if not rules.CODE_SENDS.allows(at, now):
            return False
        _clients[ck] = per_client.record(_clients.get(ck, ()), now)
        if len(_clients) > 100_000:  # forget the oldest clients rather than grow without bound
            for stale in list(_clients)[:50_000]:
                del _clients[stale]
        await portal.commands.save_attempts(Attempts(key=key, at=rules.CODE_SENDS.record(at, now)))
        return True


async def _allowed(portal: Portal, reg: StoredRegistration, channel: Channel,
                   client: str) -> tuple[SealedContact, datetime] | tuple[None, Sent]:
    """The contact to send a code or link to and the time, or (None, why not)."""
    found = _slot(reg, channel)
    if found is None or found[1].blind_index is None:
        return None, Sent.FAILED
    now = utcnow()
    if not await _take(portal, found[1], client, now):
        log.info("%s proof not sent registration=%s: over the limit", channel.value, reg.registration_id)
        return None, Sent.LIMITED
    return found[1], now


# ---- codes by SMS -------------------------------------------------------------------------------


async def send_code(portal: Portal, reg: StoredRegistration, client: str) -> Sent:
    """Text a new code to the registration's phone (its first SMS contact)."""
    contact, now = await _allowed(portal, reg, Channel.SMS, client)
    if contact is None:
        return now
    code = rules.new_code()
    previous = portal.views.verification(reg.registration_id, "sms", 0)
    await portal.commands.save_verification(rules.new_verification(
        portal.code_key, reg.registration_id, "sms", 0, contact.blind_index, code, now, previous))
    text = _env.get_template(f"{_language(reg)}/code.sms.j2").render(code=code).strip()
    ok = await portal.commands.send("sms", reg.registration_id, contact.address_sealed, _Text(text),
                                    ref=f"verify-{reg.registration_id}-sms-{secrets.token_hex(4)}")
    return Sent.SENT if ok else Sent.FAILED


async def check_code(portal: Portal, reg: StoredRegistration, code: str) -> CodeCheck:
    """Check a code typed on the portal; a right one verifies the phone."""
    return await _check(portal, reg, code, Actor.PORTAL)


async def _check(portal: Portal, reg: StoredRegistration, code: str, actor: Actor) -> CodeCheck:
    found = _slot(reg, Channel.SMS)
    if found is None or found[1].blind_index is None:
        return CodeCheck.EXPIRED
    v = portal.views.verification(reg.registration_id, "sms", 0)
    verdict, record = rules.check_code(portal.code_key, v, found[1].blind_index, code, utcnow())
    if record is not None:
        await portal.commands.save_verification(record)
    if verdict is CodeCheck.OK:
        await _mark_verified(portal, reg, Channel.SMS, 0, actor)
    return verdict


async def check_reply_code(portal: Portal, blind_index: str, code: str) -> list[str]:
    """A code texted back: verify every pending phone of that number it is right for."""
    verified = []
    for reg in portal.views.registrations_with_index(blind_index):
        found = _slot(reg, Channel.SMS)
        if found is None or found[1].blind_index != blind_index or found[1].verified:
            continue
        if await _check(portal, reg, code, Actor.INBOUND_SMS) is CodeCheck.OK:
            verified.append(reg.registration_id)
    return verified


# ---- links by email -----------------------------------------------------------------------------


async def send_link(portal: Portal, reg: StoredRegistration, client: str) -> Sent:
    """Email a new confirmation link to the registration's first email contact."""
    contact, now = await _allowed(portal, reg, Channel.EMAIL, client)
    if contact is None:
        return now
    nonce = secrets.token_urlsafe(16)
    previous = portal.views.verification(reg.registration_id, "email", 0)
    v = rules.new_verification(portal.code_key, reg.registration_id, "email", 0, contact.blind_index, nonce, now,
                               previous)
    await portal.commands.save_verification(v)
    token = sign_token(portal.link_key, _CONFIRM, (reg.registration_id, "0", nonce), v.expires_at)
    context = {"link": portal.url(f"/verify/email/{token}"), "office_phone": OFFICE_PHONE}
    name = f"{_language(reg)}/link.email.j2"
    subject = _env.get_template(name).render(part="subject", **context)
    text = _env.get_template(name).render(part="text", **context)
    html = _html_env.get_template(name).render(part="html", **context)
    email = RenderedEmail(" ".join(subject.split()), text.strip() + "\n", html.strip() + "\n")
    ok = await portal.commands.send("email", reg.registration_id, contact.address_sealed, email,
                                    ref=f"verify-{reg.registration_id}-email-{secrets.token_hex(4)}")
    return Sent.SENT if ok else Sent.FAILED


async def confirm_link(portal: Portal, token: str) -> StoredRegistration | None:
    """The registration whose email the link proves (now verified), or None when the link is
    forged, expired, replaced by a newer one, or for an address since changed."""
    fields = read_token(portal.link_key, _CONFIRM, token, utcnow())
    if fields is None or len(fields) != 3 or not fields[1].isdigit():
        return None
    registration_id, index, nonce = fields[0], int(fields[1]), fields[2]
    reg = portal.views.registration(registration_id)
    found = _slot(reg, Channel.EMAIL, index) if reg is not None else None
    if reg is None or found is None or found[1].blind_index is None:
        return None
    v = portal.views.verification(registration_id, "email", index)
    verdict, record = rules.check_code(portal.code_key, v, found[1].blind_index, nonce, utcnow())
    if verdict is CodeCheck.DONE and v is not None:
        # Opened twice: the first open proved it; the second is told so, not refused.
        same = rules.code_hash(portal.code_key, f"{registration_id}:email:{index}", found[1].blind_index, nonce)
        return reg if same == v.code_hash else None
    if verdict is not CodeCheck.OK:
        if record is not None:
            await portal.commands.save_verification(record)
        return None
    await portal.commands.save_verification(record)
    await _mark_verified(portal, reg, Channel.EMAIL, index, Actor.EMAIL_LINK)
    return portal.views.registration(registration_id)
