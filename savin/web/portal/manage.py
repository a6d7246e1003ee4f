"""Managing a registration on the portal: sign in with the registration ID
and PIN, see the registration with its contacts masked and the urgent
notices waiting for a confirmation (each with a button that confirms it),
change one thing a page, prove a changed phone, cancel, sign out.

Signing in tells nothing about a registration: an unknown ID, a cancelled
registration, a wrong PIN and a registration locked after too many wrong
PINs (:data:`~savin.domain.verification.PIN_TRIES` in
:data:`~savin.domain.verification.PIN_LOCKOUT`, counted on the attempts
topic so every web process shares the count) all get the same page, with
the same status, after the same work: one argon2 check (against a fixed
dummy hash when there is no PIN to check) and one record written to the
attempts topic. A right PIN while locked is refused the same way.

A signed-in registrant holds a sealed cookie (``manage-session``, 15
minutes from the last page) with the registration ID and nothing else. Each
change is read against the registration as it is now, and saved as a new
record on the registrations topic saying the portal made it. A new phone or
email address starts unverified and gets its code or link; a slot its owner
stopped (STOP) starts again for the new address, which is sent nothing
but its proof until it is proved.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from savin.domain import verification as rules
from savin.domain.clock import utcnow
from savin.domain.vocabulary import EVENT_TYPES
from savin.ops.registrations import mask_email, mask_phone
from savin.rendering.renderer import OFFICE_PHONE
from savin.schemas import SealedContact, StoredRegistration
from savin.schemas.consent import Attempts, ConsentChange
from savin.schemas.escalation import AckChannel, Acknowledgement, EscalationState
from savin.schemas.registration import Actor, Channel, Contact, QuietHours, RegistrationStatus
from savin.sealing import SealError, check_pin, hash_pin
from savin.web.portal import acknowledge, proving
from savin.web.portal.context import Portal
from savin.web.portal.cookies import CookieBox
from savin.web.portal.i18n import LANGUAGES, STRINGS, strings
from savin.web.portal.pages import FieldError, forbidden, redirect
from savin.web.portal.register import GROUPS, TIMEZONES, event_types_of, normalise_phone
from savin.web.portal.security import SESSION_COOKIE

__all__ = ["HOME", "SESSION_AGE", "SESSION_COOKIE_NAME", "routes", "wanted_groups"]

log = logging.getLogger("savin.web.manage")

SESSION_COOKIE_NAME = "savin_manage"
SESSION_AGE = timedelta(minutes=15)
HOME = "/manage/registration"

#: Checked when there is no PIN to check, so a refusal costs the same whatever its reason.
_DUMMY_PIN_HASH = hash_pin(secrets.token_hex(8))
#: Written when a refusal has no wrong PIN to count, so every refusal waits on the same kind of write.
_DECOY_KEY = "pin-decoy:sign-in"
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PIN = re.compile(r"[0-9]{4,8}")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3])[:.]?([0-5][0-9])")
_LONGEST = 1000

#: What a banner on the overview may say after a change (``?saved=<key>``), and whether it is good news.
BANNERS = {
    "language": True, "notices": True, "quiet-hours": True, "timezone": True, "phone-confirmed": True,
    "phone-removed": True, "email-removed": True, "email": True, "link": True,
    "email-limited": False, "email-failed": False, "link-limited": False, "link-failed": False,
    "acknowledged": True,
}


def wanted_groups(event_types: tuple[str, ...] | None) -> dict[str, bool]:
    """The groups a registration gets notices of, each with whether it gets every type in it."""
    if event_types is None:
        return dict.fromkeys(GROUPS, True)
    wanted = {}
    for group in GROUPS:
        types = [name for name, kind in EVENT_TYPES.items() if kind.group == group and kind.notifies]
        chosen = [name for name in types if name in event_types]
        if chosen:
            wanted[group] = len(chosen) == len(types)
    return wanted


def _typed(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip()[:_LONGEST] if isinstance(value, str) else ""


def _clock(typed: str) -> str | None:
    """``9:00``, ``0900`` or ``21.30`` as ``HH:MM``; None when it is not a time of day."""
    m = _CLOCK.fullmatch(typed.replace(" ", ""))
    return f"{int(m.group(1)):02d}:{m.group(2)}" if m else None


def _slot(reg: StoredRegistration, channel: Channel) -> tuple[int, SealedContact] | None:
    """(position in reg.contacts, contact) of the registration's first contact of ``channel``:
    the slot the portal manages (slot index 0)."""
    return next(((i, c) for i, c in enumerate(reg.contacts) if c.channel is channel), None)


# ---- the settings asked one a page ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    #: The registration's fields to change, when the answer is taken.
    update: dict | None
    #: What the page shows again when it is not.
    shown: dict
    errors: tuple[tuple[str, str], ...] = ()  # (input id, word key)


def _read_language(form: FormData, reg: StoredRegistration) -> Answer:
    value = _typed(form, "language")
    if value not in LANGUAGES:
        return Answer(None, {"value": value}, (("language", "manage_language_missing"),))
    return Answer({"language": value}, {})


def _read_notices(form: FormData, reg: StoredRegistration) -> Answer:
    chosen = [g for g in form.getlist("notices") if isinstance(g, str) and g in GROUPS]
    if not chosen:
        return Answer(None, {"chosen": []}, (("notices", "manage_notices_missing"),))
    return Answer({"event_types": event_types_of(chosen)}, {})


def _read_quiet_hours(form: FormData, reg: StoredRegistration) -> Answer:
    typed = {"start": _typed(form, "start"), "end": _typed(form, "end")}
    start, end = _clock(typed["start"]), _clock(typed["end"])
    errors = tuple((field, f"manage_quiet_{field}_invalid") for field, value in (("start", start), ("end", end))
                   if value is None)
    if not errors and start == end:
        errors = (("end", "manage_quiet_same"),)
    if errors:
        return Answer(None, typed, errors)
    return Answer({"quiet_hours": QuietHours(start=start, end=end)}, {})


def _zones(reg: StoredRegistration) -> tuple[str, ...]:
    """The time zones offered: the portal's, and the registration's own when an import gave another."""
    return TIMEZONES if reg.timezone in TIMEZONES else (reg.timezone, *TIMEZONES)


def _read_timezone(form: FormData, reg: StoredRegistration) -> Answer:
    value = _typed(form, "timezone")
    if value not in _zones(reg):
        return Answer(None, {"value": value}, (("timezone", "manage_timezone_missing"),))
    return Answer({"timezone": value}, {})


@dataclass(frozen=True)
class Setting:
    #: The page's address (/manage/<key>), its template's name and its banner's key.
    key: str
    read: Callable[[FormData, StoredRegistration], Answer]
    #: What the page shows before it is answered.
    shown: Callable[[StoredRegistration], dict]


def _quiet_shown(reg: StoredRegistration) -> dict:
    q = reg.quiet_hours or QuietHours()
    return {"start": q.start, "end": q.end}


SETTINGS: tuple[Setting, ...] = (
    Setting("language", _read_language, lambda r: {"value": r.language}),
    Setting("notices", _read_notices, lambda r: {"chosen": list(wanted_groups(r.event_types))}),
    Setting("quiet-hours", _read_quiet_hours, _quiet_shown),
    Setting("timezone", _read_timezone, lambda r: {"value": r.timezone}),
)


# ---- the pages ------------------------------------------------------------------------------------


class Managing:
    def __init__(self, portal: Portal):
        self.portal = portal
        self.sessions = CookieBox(portal.settings.web_secret.get_secret_value(), "manage-session", SESSION_AGE)
        # One PIN check at a time per registration in this process, so no wrong PIN goes uncounted.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        r = self.router = APIRouter()
        html = {"response_class": HTMLResponse}
        r.add_api_route("/manage", self.sign_in_page, methods=["GET"], **html)
        r.add_api_route("/manage", self.sign_in, methods=["POST"], **html)
        r.add_api_route("/manage/sign-out", self.sign_out, methods=["POST"], **html)
        r.add_api_route("/manage/signed-out", self.signed_out, methods=["GET"], **html)
        r.add_api_route("/manage/cancelled", self.cancelled, methods=["GET"], **html)
        pages: list[tuple[str, str, Callable]] = [
            (HOME, "GET", self.overview),
            ("/manage/verify-phone", "GET", self.code_page),
            ("/manage/verify-phone", "POST", self.take_code),
            ("/manage/verify-phone/new", "POST", self.new_code),
            ("/manage/email/new-link", "POST", self.new_link),
            ("/manage/acknowledge", "POST", self.acknowledge),
            ("/manage/cancel", "GET", self.cancel_page),
            ("/manage/cancel", "POST", self.cancel),
        ]
        for s in SETTINGS:
            pages += [(f"/manage/{s.key}", "GET", self._asker(s)), (f"/manage/{s.key}", "POST", self._taker(s))]
        for channel, name in _PAGE.items():
            pages += [(f"/manage/{name}", "GET", self._contact_page(channel)),
                      (f"/manage/{name}", "POST", self._contact_taker(channel)),
                      (f"/manage/{name}/remove", "GET", self._remove_page(channel)),
                      (f"/manage/{name}/remove", "POST", self._remover(channel))]
        for path, method, handler in pages:
            r.add_api_route(path, self._signed(handler, method == "POST"), methods=[method], **html)

    # ---- helpers ----------------------------------------------------------------------------------

    def t(self, request: Request) -> dict[str, str]:
        return strings(self.portal.pages.language_of(request))

    async def form(self, request: Request) -> FormData | None:
        """The posted form, or None when its CSRF token is not this browser's."""
        form = await request.form()
        token = form.get("csrf")
        valid = isinstance(token, str) and self.portal.pages.csrf.valid(request.cookies.get(SESSION_COOKIE), token)
        return form if valid else None

    def _signed(self, handler: Callable, post: bool):
        """A signed-in registrant's page: ``handler(request, reg, form)``, with the form's
        token checked first (403) and the session next (to sign in again when it has ended)."""

        async def endpoint(request: Request) -> Response:
            form = None
            if post and (form := await self.form(request)) is None:
                return forbidden()
            reg = self.signed_in(request)
            if reg is None:
                return self.end(redirect("/manage"))
            return await handler(request, reg, form)

        return endpoint

    def signed_in(self, request: Request) -> StoredRegistration | None:
        """The signed-in registration as it is now; None when signed out, expired or cancelled."""
        session = self.sessions.open(request.cookies.get(SESSION_COOKIE_NAME), utcnow())
        rid = session.get("rid") if session else None
        reg = self.portal.views.registration(rid) if isinstance(rid, str) else None
        return reg if reg is not None and reg.status is RegistrationStatus.ACTIVE else None

    def keep(self, response: Response, reg: StoredRegistration) -> Response:
        """The session again, for another 15 minutes from now."""
        response.set_cookie(SESSION_COOKIE_NAME, self.sessions.seal({"rid": reg.registration_id}, utcnow()),
                            max_age=int(SESSION_AGE.total_seconds()), path="/manage", httponly=True,
                            samesite="strict", secure=self.portal.pages.secure_cookies)
        return response

    def home(self, reg: StoredRegistration, saved: str | None = None) -> Response:
        return self.keep(redirect(f"{HOME}?saved={saved}" if saved else HOME), reg)

    def end(self, response: Response) -> Response:
        response.delete_cookie(SESSION_COOKIE_NAME, path="/manage", httponly=True, samesite="strict",
                               secure=self.portal.pages.secure_cookies)
        return response

    def render(self, request: Request, template: str, status: int = 200, errors: tuple[tuple[str, str], ...] = (),
               **context) -> HTMLResponse:
        """A manage page, its errors given as (input id, word key)."""
        t = self.t(request)
        found = tuple(FieldError(field, t[word]) for field, word in errors)
        return self.portal.pages.render(request, f"manage/{template}.html.j2", status, found,
                                        caption=t["manage_caption"], **context)

    def page(self, request: Request, reg: StoredRegistration, template: str, status: int = 200,
             errors: tuple[tuple[str, str], ...] = (), **context) -> Response:
        """A page of a signed-in registrant."""
        return self.keep(self.render(request, template, status, errors, reg=reg, back=HOME, **context), reg)

    async def save(self, reg: StoredRegistration, update: dict, what: str) -> StoredRegistration:
        """A new record of the registration as it is now with ``update``, made by the portal."""
        current = self.portal.views.registration(reg.registration_id) or reg
        now = utcnow()
        if update.get("status") is RegistrationStatus.CANCELLED and current.status is not RegistrationStatus.CANCELLED:
            update = {**update, "cancelled_at": now}
        changed = current.model_copy(update={**update, "updated_at": now, "changed_by": Actor.PORTAL})
        await self.portal.commands.save_registration(changed)
        log.info("registration changed registration=%s what=%s", reg.registration_id, what)
        return self.portal.views.registration(reg.registration_id) or changed

    def masked(self, contact: SealedContact) -> str | None:
        try:
            address = self.portal.sealer.open(contact.address_sealed, "contact")
        except SealError:
            return None
        return mask_email(address) if contact.channel is Channel.EMAIL else mask_phone(address)

    async def prove(self, send, reg: StoredRegistration, request: Request) -> proving.Sent:
        """Send a code or link (``proving.send_code`` / ``send_link``) for the registration's new contact."""
        try:
            return await send(self.portal, reg, request.client.host if request.client else "")
        except (TimeoutError, KafkaError, OSError) as e:
            log.warning("proof for %s not sent: %s", reg.registration_id, type(e).__name__)
            return proving.Sent.FAILED

    # ---- signing in -------------------------------------------------------------------------------

    async def sign_in_page(self, request: Request) -> Response:
        if (reg := self.signed_in(request)) is not None:
            return self.home(reg)
        return self.render(request, "sign_in", typed_id="", office_phone=OFFICE_PHONE)

    async def sign_in(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return forbidden()
        rid, pin = _typed(form, "registration_id"), re.sub(r"\s", "", _typed(form, "pin"))
        missing = (() if rid else (("registration_id", "manage_id_missing"),)) + (
            (("pin", "manage_pin_missing"),) if not pin else
            (("pin", "manage_pin_format"),) if not _PIN.fullmatch(pin) else ())
        reg = None
        if not missing:
            try:
                reg = await self.check(rid, pin)
            except (TimeoutError, KafkaError, OSError) as e:
                # The count of wrong PINs could not be kept: refuse rather than allow an uncounted try.
                log.warning("sign-in not checked: %s", type(e).__name__)
        if reg is None:
            return self.render(request, "sign_in", 400, missing or (("registration_id", "manage_refused"),),
                               typed_id=rid[:64], office_phone=OFFICE_PHONE)
        log.info("signed in registration=%s", reg.registration_id)
        return self.home(reg)

    async def check(self, rid: str, pin: str) -> StoredRegistration | None:
        """The registration when ``pin`` is its PIN and signing in to it is allowed; every refusal
        costs one argon2 check and one write to the attempts topic, whatever its reason."""
        reg = None
        if _ID.fullmatch(rid):
            # Portal ids are upper case; one typed in lower case is still found.
            reg = self.portal.views.registration(rid) or self.portal.views.registration(rid.upper())
        usable = reg is not None and reg.status is RegistrationStatus.ACTIVE and reg.pin_hash is not None
        key = rules.pin_key(reg.registration_id) if usable else _DECOY_KEY
        lock = self._locks.setdefault(key, asyncio.Lock()) if usable else asyncio.Lock()
        async with lock:
            tries = self.portal.views.attempts(key) if usable else None
            right = await asyncio.to_thread(check_pin, pin, reg.pin_hash if usable else _DUMMY_PIN_HASH)
            now = utcnow()
            locked = rules.pin_locked(tries, now)
            if usable and right and not locked:
                if tries is not None and (tries.at or tries.locked_until):
                    await self.portal.commands.save_attempts(Attempts(key=key, at=()))
                return reg
            if usable and not right:
                counted = rules.after_wrong_pin(tries, reg.registration_id, now)
                await self.portal.commands.save_attempts(counted)
                if counted.locked_until is not None and not locked:
                    log.info("sign-in locked registration=%s until=%s", rid, counted.locked_until.isoformat())
            else:
                await self.portal.commands.save_attempts(Attempts(key=_DECOY_KEY, at=(now,)))
            return None

    async def sign_out(self, request: Request) -> Response:
        if await self.form(request) is None:
            return forbidden()
        return self.end(redirect("/manage/signed-out"))

    async def signed_out(self, request: Request) -> Response:
        return self.render(request, "signed_out")

    # ---- the overview -----------------------------------------------------------------------------

    async def overview(self, request: Request, reg: StoredRegistration, form: None) -> Response:
        saved = request.query_params.get("saved")
        rid = reg.registration_id
        counts: dict[Channel, int] = {}
        contacts = []
        for c in reg.contacts:
            index = counts.get(c.channel, 0)
            counts[c.channel] = index + 1
            state = ("stopped" if self.portal.views.opted_out(rid, c.channel.value, index)
                     else "confirmed" if c.verified else "pending")
            contacts.append({"channel": c.channel.value, "shown": self.masked(c), "state": state,
                             "managed": index == 0 and c.channel in _PAGE, "page": _PAGE.get(c.channel)})
        # The notice just confirmed stays open until the deliver stage has read the acknowledgement.
        confirmed = request.query_params.get("notice") if saved == "acknowledged" else None
        waiting = [n for n in acknowledge.waiting(self.portal, rid, self.portal.pages.language_of(request),
                                                  reg.timezone) if n["event_id"] != confirmed]
        return self.page(request, reg, "overview", contacts=contacts, waiting=waiting,
                         offender=self.portal.views.offender(reg.offender_id),
                         missing=[name for ch, name in _PAGE.items() if ch not in counts],
                         wanted=wanted_groups(reg.event_types), all_wanted=reg.event_types is None,
                         quiet=reg.quiet_hours or QuietHours(), names=STRINGS,
                         banner=saved if saved in BANNERS else None, good=BANNERS.get(saved or "", True))

    async def acknowledge(self, request: Request, reg: StoredRegistration, form: FormData) -> Response:
        """The button of a notice waiting for a confirmation: an acknowledgement by the portal."""
        event_id = _typed(form, "event_id")
        e = self.portal.views.escalation(reg.registration_id, event_id) if event_id else None
        if e is None or e.state is not EscalationState.OPEN:
            return self.home(reg)
        await self.portal.commands.acknowledge(Acknowledgement(registration_id=reg.registration_id,
                                                               event_id=e.event_id, channel=AckChannel.PORTAL,
                                                               at=utcnow()))
        log.info("notice acknowledged on the portal registration=%s event=%s", reg.registration_id, e.event_id)
        return self.keep(redirect(f"{HOME}?saved=acknowledged&notice={e.event_id}"), reg)

    # ---- one setting a page -----------------------------------------------------------------------

    def setting_page(self, request: Request, reg: StoredRegistration, s: Setting, shown: dict, status: int = 200,
                     errors: tuple[tuple[str, str], ...] = ()) -> Response:
        return self.page(request, reg, s.key.replace("-", "_"), status, errors, shown=shown,
                         action=f"/manage/{s.key}", groups=GROUPS, timezones=_zones(reg), languages=LANGUAGES,
                         names=STRINGS)

    def _asker(self, s: Setting):
        async def ask(request: Request, reg: StoredRegistration, form: None) -> Response:
            return self.setting_page(request, reg, s, s.shown(reg))

        return ask

    def _taker(self, s: Setting):
        async def take(request: Request, reg: StoredRegistration, form: FormData) -> Response:
            answer = s.read(form, reg)
            if answer.update is None:
                return self.setting_page(request, reg, s, answer.shown, 400, answer.errors)
            return self.home(await self.save(reg, answer.update, s.key), s.key)

        return take

    # ---- a new phone or email address ---------------------------------------------------------------

    def contact_form(self, request: Request, reg: StoredRegistration, channel: Channel, typed: str = "",
                     status: int = 200, errors: tuple[tuple[str, str], ...] = ()) -> Response:
        name = _PAGE[channel]
        return self.page(request, reg, name, status, errors, typed=typed, action=f"/manage/{name}")

    def _contact_page(self, channel: Channel):
        async def ask(request: Request, reg: StoredRegistration, form: None) -> Response:
            return self.contact_form(request, reg, channel)

        return ask

    def _contact_taker(self, channel: Channel):
        async def take(request: Request, reg: StoredRegistration, form: FormData) -> Response:
            name = _PAGE[channel]
            typed = _typed(form, name)
            address = normalise_phone(typed) if channel is Channel.SMS else typed
            if not typed or not _valid(channel, address):
                word = f"manage_{name}_{'invalid' if typed else 'missing'}"
                return self.contact_form(request, reg, channel, typed, 400, ((name, word),))
            reg = await self.replace_contact(reg, channel, address)
            if channel is Channel.SMS:
                sent = await self.prove(proving.send_code, reg, request)
                return self.keep(redirect("/manage/verify-phone" + _SENT_QUERY[sent]), reg)
            sent = await self.prove(proving.send_link, reg, request)
            return self.home(reg, "email" + _SENT_SUFFIX[sent])

        return take

    async def replace_contact(self, reg: StoredRegistration, channel: Channel, address: str) -> StoredRegistration:
        """The registration with ``address`` in the channel's slot, unverified; a slot that was
        stopped starts again for the new address (which gets nothing but its proof until proved)."""
        current = self.portal.views.registration(reg.registration_id) or reg
        new = SealedContact(channel=channel, address_sealed=self.portal.sealer.seal(address, "contact"),
                            verified=False, blind_index=self.portal.sealer.blind_index(address))
        contacts = list(current.contacts)
        found = _slot(current, channel)
        if found is None:
            contacts.append(new)
        else:
            contacts[found[0]] = new
        # A slot keeps its STOP after its contact is removed: a new contact in it starts it again.
        stopped = self.portal.views.opted_out(reg.registration_id, channel.value, 0)
        reg = await self.save(current, {"contacts": tuple(contacts)}, f"{channel.value} changed")
        if stopped:
            await self.portal.commands.record_consent(ConsentChange(
                registration_id=reg.registration_id, channel=channel, contact_index=0, opted_out=False,
                reason="new contact", actor=Actor.PORTAL, at=utcnow()))
            log.info("%s started again for a new contact registration=%s", channel.value, reg.registration_id)
        return reg

    # ---- removing a contact -------------------------------------------------------------------------

    def remove_form(self, request: Request, reg: StoredRegistration, channel: Channel, status: int = 200,
                    errors: tuple[tuple[str, str], ...] = ()) -> Response:
        found = _slot(reg, channel)
        return self.page(request, reg, "remove", status, errors, name=_PAGE[channel],
                         shown=self.masked(found[1]) if found else None, action=f"/manage/{_PAGE[channel]}/remove")

    def _remove_page(self, channel: Channel):
        async def ask(request: Request, reg: StoredRegistration, form: None) -> Response:
            if _slot(reg, channel) is None:
                return self.home(reg)
            return self.remove_form(request, reg, channel)

        return ask

    def _remover(self, channel: Channel):
        async def take(request: Request, reg: StoredRegistration, form: FormData) -> Response:
            found = _slot(reg, channel)
            if found is None:
                return self.home(reg)
            if len(reg.contacts) == 1:
                return self.remove_form(request, reg, channel, 400, (("remove", "manage_remove_only"),))
            contacts = tuple(c for i, c in enumerate(reg.contacts) if i != found[0])
            reg = await self.save(reg, {"contacts": contacts}, f"{channel.value} removed")
            return self.home(reg, f"{_PAGE[channel]}-removed")

        return take

    # ---- proving a changed phone, asking for a new email link -------------------------------------

    def code_form(self, request: Request, reg: StoredRegistration, status: int = 200,
                  errors: tuple[tuple[str, str], ...] = ()) -> Response:
        sent = request.query_params.get("sent")
        return self.page(request, reg, "verify_phone", status, errors, shown=self.masked(_slot(reg, Channel.SMS)[1]),
                         sent=sent if sent in ("new", "limited", "failed") else None)

    @staticmethod
    def unproved(reg: StoredRegistration, channel: Channel) -> bool:
        found = _slot(reg, channel)
        return found is not None and not found[1].verified

    async def code_page(self, request: Request, reg: StoredRegistration, form: None) -> Response:
        if not self.unproved(reg, Channel.SMS):
            return self.home(reg)
        return self.code_form(request, reg)

    async def take_code(self, request: Request, reg: StoredRegistration, form: FormData) -> Response:
        if not self.unproved(reg, Channel.SMS):
            return self.home(reg)
        code = re.sub(r"[\s-]", "", _typed(form, "code"))
        if not re.fullmatch(r"[0-9]{6}", code):
            return self.code_form(request, reg, 400, (("code", "manage_code_format"),))
        verdict = await proving.check_code(self.portal, reg, code)
        if verdict in (proving.CodeCheck.OK, proving.CodeCheck.DONE):
            return self.home(reg, "phone-confirmed")
        word = "manage_code_wrong" if verdict is proving.CodeCheck.WRONG else "manage_code_expired"
        return self.code_form(request, reg, 400, (("code", word),))

    async def new_code(self, request: Request, reg: StoredRegistration, form: FormData) -> Response:
        if not self.unproved(reg, Channel.SMS):
            return self.home(reg)
        sent = await self.prove(proving.send_code, reg, request)
        return self.keep(redirect("/manage/verify-phone" + (_SENT_QUERY[sent] or "?sent=new")), reg)

    async def new_link(self, request: Request, reg: StoredRegistration, form: FormData) -> Response:
        if not self.unproved(reg, Channel.EMAIL):
            return self.home(reg)
        sent = await self.prove(proving.send_link, reg, request)
        return self.home(reg, "link" + _SENT_SUFFIX[sent])

    # ---- cancelling --------------------------------------------------------------------------------

    async def cancel_page(self, request: Request, reg: StoredRegistration, form: None) -> Response:
        return self.page(request, reg, "cancel", offender=self.portal.views.offender(reg.offender_id))

    async def cancel(self, request: Request, reg: StoredRegistration, form: FormData) -> Response:
        await self.save(reg, {"status": RegistrationStatus.CANCELLED}, "cancelled")
        return self.end(redirect("/manage/cancelled"))

    async def cancelled(self, request: Request) -> Response:
        return self.render(request, "cancelled")


#: The page (and form field) of each channel the portal manages.
_PAGE = {Channel.SMS: "phone", Channel.EMAIL: "email"}
#: Where the code page is told how a send went (nothing said when it went).
_SENT_QUERY = {proving.Sent.SENT: "", proving.Sent.LIMITED: "?sent=limited", proving.Sent.FAILED: "?sent=failed"}
_SENT_SUFFIX = {proving.Sent.SENT: "", proving.Sent.LIMITED: "-limited", proving.Sent.FAILED: "-failed"}


def _valid(channel: Channel, address: str) -> bool:
    """Whether a registration's rules take ``address`` for ``channel``."""
    try:
        Contact(channel=channel, address=address)
    except ValidationError:
        return False
    return True


def routes(portal: Portal) -> APIRouter:
    return Managing(portal).router
