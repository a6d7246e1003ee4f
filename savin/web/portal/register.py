"""Registering for notices on the portal, and proving the phone and email
address a registration gives.

From an offender's status page: a start page, then one question per page
(mobile phone, email address, language, which notices, time zone, name, a
PIN), "Check your answers", and a registration. Its contacts start
unverified: the phone gets a 6-digit code to type on ``/verify/phone``, the
email address a link to ``/verify/email/{token}``, whose page asks for a
button press before it confirms anything (mail scanners follow links).

The answers so far travel in a sealed cookie (``register-draft``, one hour),
so any ``savin web`` process can serve the next page and none holds state.
After the registration is saved its id travels the same way (``proving``,
a day) to the code page: it never appears in a URL next to contact data.
Answers are checked by :class:`~savin.schemas.registration.Registration`'s
own rules; an error names the field, never what was typed.

Nothing here looks a phone number or an email address up: registering one
that is registered already, or is over its code limit, goes exactly as
registering a new one does.

The manage pages send a registrant here to prove a changed phone by calling
:func:`remember_for_proving` on their response and redirecting to
``/verify/phone``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from savin.domain.clock import utcnow
from savin.domain.vocabulary import EVENT_TYPES
from savin.schemas import StoredRegistration
from savin.schemas.registration import Actor, Channel, Registration
from savin.sealing import seal_registration
from savin.web.portal import proving
from savin.web.portal.context import Portal
from savin.web.portal.cookies import CookieBox
from savin.web.portal.i18n import LANGUAGES, STRINGS, strings
from savin.web.portal.pages import FieldError, forbidden, redirect
from savin.web.portal.security import SESSION_COOKIE

__all__ = ["DEFAULT_TIMEZONE", "GROUPS", "QUESTIONS", "TIMEZONES", "event_types_of", "new_registration_id",
           "normalise_phone", "remember_for_proving", "routes"]

log = logging.getLogger("savin.web.register")

DRAFT_COOKIE = "savin_register"
PROVING_COOKIE = "savin_proving"
DRAFT_AGE = timedelta(hours=1)
PROVING_AGE = timedelta(hours=24)

DEFAULT_TIMEZONE = "America/Chicago"
#: The time zones offered, each with its words (``reg_tz_<zone>``).
TIMEZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
             "America/Anchorage", "Pacific/Honolulu", "America/Puerto_Rico", "Pacific/Guam", "Pacific/Pago_Pago")
#: The groups of notices a registrant chooses among, in the vocabulary's order; a group whose
#: every event type goes to everyone (corrections) is not a choice.
GROUPS = tuple(dict.fromkeys(k.group for k in EVENT_TYPES.values() if k.notifies and not k.always_sent))

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LONGEST = 1000  # the most of a typed value read or shown again; the rules refuse it anyway


def new_registration_id() -> str:
    """``R-`` and 10 Crockford base32 characters (50 random bits): short enough to read out
    and write down, too many to guess, and never an I, L, O or U to mistake."""
    return "R-" + "".join(secrets.choice(_CROCKFORD) for _ in range(10))


def normalise_phone(typed: str) -> str:
    """``(573) 555-0123`` -> ``+15735550123``: a US number of 10 digits (or 11 with its
    leading 1) gets ``+1``; one typed with ``+`` keeps its country code. Whatever else is
    returned compacted, for :class:`Registration`'s rules to refuse."""
    compact = re.sub(r"[\s().\-]", "", typed)
    if re.fullmatch(r"[0-9]{10}", compact):
        return "+1" + compact
    if re.fullmatch(r"1[0-9]{10}", compact):
        return "+" + compact
    return compact


def event_types_of(groups: list[str] | None) -> tuple[str, ...] | None:
    """The event types of the chosen groups; None (every type, new ones too) when all are chosen."""
    if groups is None or set(GROUPS) <= set(groups):
        return None
    return tuple(name for name, kind in EVENT_TYPES.items() if kind.group in groups and kind.notifies and not kind.always_sent)


# ---- the answers, checked by Registration's rules -------------------------------------------------

_FIELD_OF = {"event_types": "notices"}  # Registration's field -> the question asking it


def _document(answers: dict, registration_id: str) -> dict:
    contacts = [{"channel": channel, "address": answers[key]}
                for key, channel in (("phone", "sms"), ("email", "email")) if answers.get(key)]
    return {"registration_id": registration_id, "offender_id": answers["offender_id"], "name": answers.get("name"),
            "contacts": contacts, "language": answers.get("language", "en"),
            "event_types": event_types_of(answers.get("notices")),
            # No quiet hours of its own: the service's (SAVIN_QUIET_HOURS) apply until changed on Manage.
            "timezone": answers.get("timezone", DEFAULT_TIMEZONE), "pin": answers.get("pin")}


def build(answers: dict, registration_id: str = "R-CHECK") -> tuple[Registration | None, set[str]]:
    """The registration the answers make, or the questions whose answers its rules refuse
    (``contacts``: neither a phone nor an email address)."""
    doc = _document(answers, registration_id)
    try:
        return Registration.model_validate_json(json.dumps(doc)), set()
    except ValidationError as e:
        channels = [c["channel"] for c in doc["contacts"]]
        refused = set()
        for error in e.errors():
            where = error["loc"]
            if where[0] == "contacts" and len(where) > 1 and isinstance(where[1], int):
                refused.add("phone" if channels[where[1]] == "sms" else "email")
            elif where[0] == "contacts" and channels:
                continue  # "too few contacts" once a given one is refused: that one is the error
            else:
                refused.add(_FIELD_OF.get(str(where[0]), str(where[0])))
        return None, refused


# ---- the questions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    value: object
    #: What the page shows again when the answer is refused.
    shown: dict = field(default_factory=dict)
    #: (the id of the input it is about, the word key of its message), when refused.
    error: tuple[str, str] | None = None


def _typed(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip()[:_LONGEST] if isinstance(value, str) else ""


def _refuses(answers: dict, key: str, value: object) -> bool:
    return key in build({**answers, key: value})[1]


def _read_phone(form: FormData, answers: dict) -> Answer:
    typed = _typed(form, "phone")
    shown = {"value": typed}
    if not typed:
        no_email = "email" in answers and not answers["email"]
        return Answer(None, shown, ("phone", "reg_phone_needed") if no_email else None)
    value = normalise_phone(typed)
    return Answer(value, shown, ("phone", "reg_phone_invalid") if _refuses(answers, "phone", value) else None)


def _read_email(form: FormData, answers: dict) -> Answer:
    typed = _typed(form, "email")
    shown = {"value": typed}
    if not typed:
        return Answer(None, shown, None if answers.get("phone") else ("email", "reg_email_needed"))
    return Answer(typed, shown, ("email", "reg_email_invalid") if _refuses(answers, "email", typed) else None)


def _read_language(form: FormData, answers: dict) -> Answer:
    value = _typed(form, "language")
    refused = value not in LANGUAGES or _refuses(answers, "language", value)
    return Answer(value, {"value": value}, ("language", "reg_language_invalid") if refused else None)


def _read_notices(form: FormData, answers: dict) -> Answer:
    chosen = [g for g in form.getlist("notices") if isinstance(g, str)]
    value = None if set(GROUPS) <= set(chosen) else [g for g in GROUPS if g in chosen]
    refused = not chosen or not set(chosen) <= set(GROUPS) or _refuses(answers, "notices", value)
    return Answer(value, {"chosen": chosen}, ("notices", "reg_notices_none") if refused else None)


def _read_timezone(form: FormData, answers: dict) -> Answer:
    value = _typed(form, "timezone")
    refused = value not in TIMEZONES or _refuses(answers, "timezone", value)
    return Answer(value, {"value": value}, ("timezone", "reg_timezone_invalid") if refused else None)


def _read_name(form: FormData, answers: dict) -> Answer:
    typed = _typed(form, "name")
    value = typed or None
    return Answer(value, {"value": typed}, ("name", "reg_name_too_long") if _refuses(answers, "name", value) else None)


def _read_pin(form: FormData, answers: dict) -> Answer:
    pin, again = _typed(form, "pin"), _typed(form, "pin_again")
    if not pin or _refuses(answers, "pin", pin):
        return Answer(None, {}, ("pin", "reg_pin_invalid"))  # a PIN is never shown again
    if again != pin:
        return Answer(None, {}, ("pin_again", "reg_pin_mismatch"))
    return Answer(pin)


@dataclass(frozen=True)
class Question:
    #: The page's address (/register/<key>), its answer's key in the draft and its template's name.
    key: str
    read: Callable[[FormData, dict], Answer]
    #: What the page shows before it is answered, from the draft and the page's language.
    shown: Callable[[dict, str], dict]


QUESTIONS: tuple[Question, ...] = (
    Question("phone", _read_phone, lambda a, lang: {"value": a.get("phone") or ""}),
    Question("email", _read_email, lambda a, lang: {"value": a.get("email") or ""}),
    Question("language", _read_language, lambda a, lang: {"value": a.get("language") or lang}),
    Question("notices", _read_notices,
             lambda a, lang: {"chosen": list(GROUPS) if a.get("notices") is None else a["notices"]}),
    Question("timezone", _read_timezone, lambda a, lang: {"value": a.get("timezone") or DEFAULT_TIMEZONE}),
    Question("name", _read_name, lambda a, lang: {"value": a.get("name") or ""}),
    Question("pin", _read_pin, lambda a, lang: {}),
)
_BY_KEY = {q.key: q for q in QUESTIONS}


def _unanswered(answers: dict) -> Question | None:
    return next((q for q in QUESTIONS if q.key not in answers), None)


# ---- cookies ------------------------------------------------------------------------------------


def _proving_box(portal: Portal) -> CookieBox:
    return CookieBox(portal.settings.web_secret.get_secret_value(), "proving", PROVING_AGE)


def _set(portal: Portal, response: Response, name: str, value: str, max_age: timedelta) -> None:
    response.set_cookie(name, value, max_age=int(max_age.total_seconds()), httponly=True, samesite="strict",
                        secure=portal.pages.secure_cookies)


def remember_for_proving(portal: Portal, response: Response, reg: StoredRegistration,
                         back: str = "/register/done") -> None:
    """Let ``/verify/phone`` know, for a day, which registration this browser proves a phone for;
    ``back`` is where its back link goes (a path on the portal)."""
    data = {"rid": reg.registration_id, "offender_id": reg.offender_id, "back": back,
            "sms": any(c.channel is Channel.SMS for c in reg.contacts),
            "email": any(c.channel is Channel.EMAIL for c in reg.contacts)}
    _set(portal, response, PROVING_COOKIE, _proving_box(portal).seal(data, utcnow()), PROVING_AGE)


# ---- the pages ------------------------------------------------------------------------------------


class Registering:
    def __init__(self, portal: Portal):
        self.portal = portal
        self.drafts = CookieBox(portal.settings.web_secret.get_secret_value(), "register-draft", DRAFT_AGE)
        self.proofs = _proving_box(portal)
        r = self.router = APIRouter()
        html = {"response_class": HTMLResponse}
        r.add_api_route("/register/check", self.check, methods=["GET"], **html)
        r.add_api_route("/register/check", self.submit, methods=["POST"], **html)
        r.add_api_route("/register/done", self.done, methods=["GET"], **html)
        for q in QUESTIONS:
            r.add_api_route(f"/register/{q.key}", self._asker(q), methods=["GET"], **html)
            r.add_api_route(f"/register/{q.key}", self._taker(q), methods=["POST"], **html)
        # After the questions' own addresses, so none of those is taken for an offender id.
        r.add_api_route("/register/{offender_id}", self.start, methods=["GET"], **html)
        r.add_api_route("/register/{offender_id}", self.begin, methods=["POST"], **html)
        r.add_api_route("/verify/phone", self.code_page, methods=["GET"], **html)
        r.add_api_route("/verify/phone", self.take_code, methods=["POST"], **html)
        r.add_api_route("/verify/phone/new", self.new_code, methods=["POST"], **html)
        r.add_api_route("/verify/phone/done", self.phone_done, methods=["GET"], **html)
        r.add_api_route("/verify/email/{token}", self.link_page, methods=["GET"], **html)
        r.add_api_route("/verify/email/{token}", self.take_link, methods=["POST"], **html)

    # ---- helpers --------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, errors: tuple[FieldError, ...] = (),
               **context) -> HTMLResponse:
        return self.portal.pages.render(request, template, status, errors, **context)

    async def form(self, request: Request) -> FormData | None:
        """The posted form, or None when its CSRF token is not this browser's."""
        form = await request.form()
        token = form.get("csrf")
        valid = isinstance(token, str) and self.portal.pages.csrf.valid(request.cookies.get(SESSION_COOKIE), token)
        return form if valid else None

    def answers(self, request: Request) -> dict | None:
        answers = self.drafts.open(request.cookies.get(DRAFT_COOKIE), utcnow())
        return answers if answers is not None and isinstance(answers.get("offender_id"), str) else None

    def keep(self, response: Response, answers: dict) -> Response:
        _set(self.portal, response, DRAFT_COOKIE, self.drafts.seal(answers, utcnow()), DRAFT_AGE)
        return response

    def proof(self, request: Request) -> dict | None:
        found = self.proofs.open(request.cookies.get(PROVING_COOKIE), utcnow())
        return found if found is not None and isinstance(found.get("rid"), str) else None

    def expired(self, request: Request) -> HTMLResponse:
        return self.render(request, "register/expired.html.j2", 400)

    def caption(self, answers: dict) -> str:
        status = self.portal.views.offender(answers["offender_id"])
        return status.offender_name if status is not None else answers["offender_id"]

    def question_page(self, request: Request, q: Question, answers: dict, shown: dict, change: bool,
                      status: int = 200, errors: tuple[FieldError, ...] = ()) -> HTMLResponse:
        at = QUESTIONS.index(q)
        back = ("/register/check" if change else
                f"/register/{QUESTIONS[at - 1].key}" if at else f"/register/{answers['offender_id']}")
        return self.render(request, f"register/{q.key}.html.j2", status, errors, shown=shown, back=back,
                           change=change, action=f"/register/{q.key}", caption=self.caption(answers),
                           groups=GROUPS, timezones=TIMEZONES, languages=LANGUAGES, names=STRINGS)

    # ---- start ----------------------------------------------------------------------------------

    async def start(self, request: Request, offender_id: str) -> HTMLResponse:
        status = self.portal.views.offender(offender_id) if len(offender_id) <= 64 else None
        if status is None:
            return self.render(request, "not_found.html.j2", 404)
        return self.render(request, "register/start.html.j2", offender=status)

    async def begin(self, request: Request, offender_id: str) -> Response:
        if await self.form(request) is None:
            return forbidden()
        if len(offender_id) > 64 or self.portal.views.offender(offender_id) is None:
            return self.render(request, "not_found.html.j2", 404)
        return self.keep(redirect(f"/register/{QUESTIONS[0].key}"), {"offender_id": offender_id})

    # ---- one question a page --------------------------------------------------------------------

    def _asker(self, q: Question):
        async def ask(request: Request) -> HTMLResponse:
            answers = self.answers(request)
            if answers is None:
                return self.expired(request)
            shown = q.shown(answers, self.portal.pages.language_of(request))
            return self.question_page(request, q, answers, shown, change=request.query_params.get("change") == "1")

        return ask

    def _taker(self, q: Question):
        async def take(request: Request) -> Response:
            form = await self.form(request)
            if form is None:
                return forbidden()
            answers = self.answers(request)
            if answers is None:
                return self.expired(request)
            answer = q.read(form, answers)
            change = form.get("change") == "1"
            if answer.error is not None:
                where, word = answer.error
                t = strings(self.portal.pages.language_of(request))
                return self.question_page(request, q, answers, answer.shown, change, 400, (FieldError(where, t[word]),))
            answers[q.key] = answer.value
            later = QUESTIONS[QUESTIONS.index(q) + 1:]
            target = "check" if change or not later else later[0].key
            return self.keep(redirect(f"/register/{target}"), answers)

        return take

    # ---- check your answers, and submit -----------------------------------------------------------

    async def check(self, request: Request) -> Response:
        answers = self.answers(request)
        if answers is None:
            return self.expired(request)
        if (missing := _unanswered(answers)) is not None:
            return redirect(f"/register/{missing.key}")
        # The id is chosen now, so a second press of the button finds the first one's registration.
        answers.setdefault("rid", new_registration_id())
        response = self.render(request, "register/check.html.j2", answers=answers, groups=GROUPS,
                               offender=self.portal.views.offender(answers["offender_id"]),
                               caption=self.caption(answers), names=STRINGS, back=f"/register/{QUESTIONS[-1].key}")
        return self.keep(response, answers)

    async def submit(self, request: Request) -> Response:
        if await self.form(request) is None:
            return forbidden()
        answers = self.answers(request)
        if answers is None:
            return self.expired(request)
        if (missing := _unanswered(answers)) is not None or not isinstance(answers.get("rid"), str):
            return redirect(f"/register/{missing.key}" if missing else "/register/check")
        rid = answers["rid"]
        stored = self.portal.views.registration(rid)
        if stored is None:
            reg, refused = build(answers, rid)
            if reg is None:
                first = next(q for q in QUESTIONS if q.key in refused or (q.key == "email" and "contacts" in refused))
                return redirect(f"/register/{first.key}")
            stored = seal_registration(reg, self.portal.sealer, utcnow(), changed_by=Actor.PORTAL)
            try:
                await self.portal.commands.save_registration(stored)
            except (TimeoutError, KafkaError, OSError) as e:
                log.warning("registration %s not saved: %s", rid, type(e).__name__)
                return self.render(request, "register/problem.html.j2", 503)
            log.info("registration saved registration=%s", rid)
            await self.prove(request, stored)
        response = redirect("/register/done")
        response.delete_cookie(DRAFT_COOKIE)
        remember_for_proving(self.portal, response, stored)
        return response

    async def prove(self, request: Request, reg: StoredRegistration) -> None:
        """Send the phone's code and the email's link; whatever happens, the next page is the same."""
        client = request.client.host if request.client else ""
        for channel, send in ((Channel.SMS, proving.send_code), (Channel.EMAIL, proving.send_link)):
            if not any(c.channel is channel for c in reg.contacts):
                continue
            try:
                sent = await send(self.portal, reg, client)
            except (TimeoutError, KafkaError, OSError) as e:
                log.warning("%s proof for %s not sent: %s", channel.value, reg.registration_id, type(e).__name__)
                continue
            log.info("%s proof for %s: %s", channel.value, reg.registration_id, sent.value)

    async def done(self, request: Request) -> HTMLResponse:
        proof = self.proof(request)
        if proof is None:
            return self.expired(request)
        return self.render(request, "register/done.html.j2", proof=proof)

    # ---- proving the phone --------------------------------------------------------------------------

    def proving_for(self, request: Request) -> StoredRegistration | None:
        proof = self.proof(request)
        return self.portal.views.registration(proof["rid"]) if proof is not None else None

    def back_from_proving(self, request: Request) -> str:
        back = (self.proof(request) or {}).get("back")
        return back if isinstance(back, str) and back.startswith("/") and not back.startswith("//") else "/"

    def code_form(self, request: Request, status: int = 200, errors: tuple[FieldError, ...] = (),
                  sent: bool = False) -> HTMLResponse:
        return self.render(request, "verify/phone.html.j2", status, errors, sent=sent,
                           back=self.back_from_proving(request))

    def unknown(self, request: Request) -> HTMLResponse:
        return self.render(request, "verify/unknown.html.j2", 400)

    async def code_page(self, request: Request) -> HTMLResponse:
        reg = self.proving_for(request)
        if reg is None:
            return self.unknown(request)
        return self.code_form(request)

    async def take_code(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return forbidden()
        reg = self.proving_for(request)
        if reg is None:
            return self.unknown(request)
        t = strings(self.portal.pages.language_of(request))
        code = re.sub(r"[\s-]", "", _typed(form, "code"))
        if not re.fullmatch(r"[0-9]{6}", code):
            return self.code_form(request, 400, (FieldError("code", t["reg_code_format"]),))
        verdict = await proving.check_code(self.portal, reg, code)
        if verdict in (proving.CodeCheck.OK, proving.CodeCheck.DONE):
            return redirect("/verify/phone/done")
        word = "reg_code_wrong" if verdict is proving.CodeCheck.WRONG else "reg_code_expired"
        return self.code_form(request, 400, (FieldError("code", t[word]),))

    async def new_code(self, request: Request) -> HTMLResponse:
        if await self.form(request) is None:
            return forbidden()
        reg = self.proving_for(request)
        if reg is None:
            return self.unknown(request)
        client = request.client.host if request.client else ""
        try:
            await proving.send_code(self.portal, reg, client)
        except (TimeoutError, KafkaError, OSError) as e:
            log.warning("sms proof for %s not sent: %s", reg.registration_id, type(e).__name__)
        # The same answer whether it was sent, refused by a limit or failed.
        return self.code_form(request, sent=True)

    async def phone_done(self, request: Request) -> Response:
        reg = self.proving_for(request)
        if reg is None:
            return self.unknown(request)
        if not any(c.channel is Channel.SMS and c.verified for c in reg.contacts):
            return redirect("/verify/phone")
        return self.render(request, "verify/phone_done.html.j2", back=self.back_from_proving(request),
                           offender_id=reg.offender_id)

    # ---- proving the email address ------------------------------------------------------------------

    async def link_page(self, request: Request, token: str) -> HTMLResponse:
        # Nothing is confirmed on a GET: mail scanners open links.
        return self.render(request, "verify/email.html.j2", action=request.url.path)

    async def take_link(self, request: Request, token: str) -> HTMLResponse:
        if await self.form(request) is None:
            return forbidden()
        try:
            reg = await proving.confirm_link(self.portal, token)
        except (TimeoutError, KafkaError, OSError) as e:
            log.warning("email link not confirmed: %s", type(e).__name__)
            return self.render(request, "verify/problem.html.j2", 503, action=request.url.path)
        if reg is None:
            return self.render(request, "verify/email_expired.html.j2", 400)
        return self.render(request, "verify/email_done.html.j2")


def routes(portal: Portal) -> APIRouter:
    return Registering(portal).router
