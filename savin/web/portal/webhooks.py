"""What providers and email links call on ``savin web``:

* ``POST /callbacks/twilio/status``: Twilio's status callbacks
  (:mod:`savin.web.callbacks`), published on delivery-results;
* ``POST /webhooks/twilio/sms``: an SMS sent to savin's number. STOP (and the
  other opt-out words) stops text messages to that number for every
  registration holding it, START brings them back: records on the consent
  topic, which the deliver stage applies to SMS only. HELP and INFO are told
  what the service is and how to reach the Office of Victim Services; six
  digits are a verification code; the code an urgent notice printed (any
  case, spaces ignored), or "1" while exactly one notice waits, acknowledges
  that notice (an Acknowledgement on the acknowledgements topic, for each
  registration holding the number, verified, for texts or calls); anything
  else gets a short help text, never an echo;
* ``GET /unsubscribe/{token}``: an email's unsubscribe link opened in a
  browser, a page with one button; ``POST`` (that button, or a mail client's
  RFC 8058 one-click unsubscribe) stops email to that contact. The signed
  token is the authority, so the POST needs no form token.

The SMS replies never reveal whether a number is registered: the same kind of
reply, in the same shape and with the same status, whether it is or not (in
English when the number has no registration, else in the registration's
language); a wrong acknowledgement code, or one with nothing waiting, is
"anything else". Neither the number nor the text is ever logged; ids are.

A registration that an opt-out leaves with no usable channel (no verified
contact that is not opted out) is flagged for operators: a warning naming
its id, and ``savin_registrations_unreachable_total``.
"""

from __future__ import annotations

import logging
import urllib.parse

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from savin import metrics
from savin.domain.clock import utcnow
from savin.domain.consent import Reply, read_reply, read_unsubscribe_token
from savin.notifiers.twilio_sms import IncomingMessage, IncomingMessages, StatusCallbacks
from savin.rendering.renderer import OFFICE_PHONE
from savin.schemas import StoredRegistration
from savin.schemas.consent import ConsentChange
from savin.schemas.escalation import AckChannel, Acknowledgement, Escalation, EscalationState
from savin.schemas.registration import Actor, Channel
from savin.web.callbacks import twilio_status_handler
from savin.web.portal import proving
from savin.web.portal.context import Portal
from savin.web.portal.i18n import DEFAULT, LANGUAGES
from savin.web.portal.pages import LANGUAGE_COOKIE

__all__ = ["acknowledged_by", "in_language", "link_expired", "registration_language", "reply_text", "routes",
           "sms_reply"]

log = logging.getLogger("savin.web.webhooks")

_replies = jinja2.Environment(loader=jinja2.PackageLoader("savin", "templates/web/replies"),
                              undefined=jinja2.StrictUndefined, autoescape=False,
                              trim_blocks=True, lstrip_blocks=True)

_TWIML = "application/xml"


def routes(portal: Portal) -> APIRouter:
    router = APIRouter()
    auth_token = portal.settings.twilio_auth_token.get_secret_value()

    async def publish_result(key: bytes, value: bytes) -> None:
        await portal.commands.publish(portal.topics.delivery_results, key, value)

    callbacks = StatusCallbacks(auth_token, portal.settings.twilio_status_callback)
    router.add_api_route("/callbacks/twilio/status", twilio_status_handler(callbacks, publish_result),
                         methods=["POST"], include_in_schema=False)

    incoming = IncomingMessages(auth_token)

    async def inbound_sms(request: Request) -> Response:
        message = incoming.read(_signed_url(portal, request), await request.form(),
                                request.headers.get("X-Twilio-Signature", ""))
        if message is None:
            return Response("invalid X-Twilio-Signature\n", status_code=403, media_type="text/plain")
        return Response(incoming.reply(await sms_reply(portal, message)), media_type=_TWIML)

    router.add_api_route("/webhooks/twilio/sms", inbound_sms, methods=["POST"], include_in_schema=False)

    async def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
        slot = _email_slot(portal, token)
        if slot is None:
            return link_expired(portal, request, _UNSUBSCRIBE_INSTEAD)
        return portal.pages.render(in_language(request, registration_language(portal, slot[0])),
                                   "replies/unsubscribe.html.j2", action=request.url.path, office_phone=OFFICE_PHONE)

    async def unsubscribe(request: Request, token: str) -> HTMLResponse:
        slot = _email_slot(portal, token)
        if slot is None:
            return link_expired(portal, request, _UNSUBSCRIBE_INSTEAD)
        registration_id, index = slot
        await portal.commands.record_consent(ConsentChange(
            registration_id=registration_id, channel=Channel.EMAIL, contact_index=index, opted_out=True,
            reason="unsubscribe", actor=Actor.EMAIL_LINK, at=utcnow()))
        log.info("email opted out registration=%s contact=%s by the unsubscribe link", registration_id, index)
        _flag_if_unreachable(portal, registration_id)
        return portal.pages.render(in_language(request, registration_language(portal, registration_id)),
                                   "replies/unsubscribed.html.j2", office_phone=OFFICE_PHONE)

    router.add_api_route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/unsubscribe/{token}", unsubscribe, methods=["POST"], response_class=HTMLResponse)
    return router


# ---- SMS replies --------------------------------------------------------------------------------


async def sms_reply(portal: Portal, message: IncomingMessage) -> str:
    """Act on an incoming SMS and word the answer."""
    index = portal.sealer.blind_index(message.sender) if message.sender.strip() else None
    regs = sorted(portal.views.registrations_with_index(index), key=lambda r: r.registration_id) if index else []
    language = next((r.language for r in regs if r.language in LANGUAGES), DEFAULT)
    kind = read_reply(message.body)
    if kind in (Reply.OPT_OUT, Reply.OPT_IN):
        opted_out = kind is Reply.OPT_OUT
        word = " ".join(message.body.split()).upper().rstrip(".!")
        changed = []
        for reg in regs:
            for n in _sms_slots(reg, index):
                await portal.commands.record_consent(ConsentChange(
                    registration_id=reg.registration_id, channel=Channel.SMS, contact_index=n, opted_out=opted_out,
                    reason=word, actor=Actor.INBOUND_SMS, at=utcnow()))
                changed.append(reg.registration_id)
        if changed:
            log.info("sms %s by reply for registrations %s", "opted out" if opted_out else "opted in",
                     ",".join(dict.fromkeys(changed)))
        if opted_out:
            for registration_id in dict.fromkeys(changed):
                _flag_if_unreachable(portal, registration_id)
        return reply_text(language, "stopped" if opted_out else "started")
    if kind is Reply.HELP:
        return reply_text(language, "help")
    if kind is Reply.CODE:
        code = "".join(message.body.split()).rstrip(".!")
        verified = await proving.check_reply_code(portal, index, code) if index else []
        return reply_text(language, "confirmed" if verified else "wrong_code")
    if index and await _acknowledge(portal, message.body, regs, index):
        return reply_text(language, "acknowledged")
    return reply_text(language, "other")


async def _acknowledge(portal: Portal, body: str, regs: list[StoredRegistration], index: str) -> bool:
    """Acknowledge the notices a reply names, of the registrations that hold the sender's number
    (verified, for texts or calls); whether it named any."""
    holders = [r for r in regs if any(c.blind_index == index and c.verified and c.channel in _REPLYING
                                      for c in r.contacts)]
    named = acknowledged_by(body, [e for r in holders
                                   for e in portal.views.escalations(r.registration_id, open_only=True)])
    for e in named:
        await portal.commands.acknowledge(Acknowledgement(registration_id=e.registration_id, event_id=e.event_id,
                                                          channel=AckChannel.SMS, at=utcnow()))
        log.info("notice acknowledged by reply registration=%s event=%s", e.registration_id, e.event_id)
    return bool(named)


#: The channels whose number a reply may come from: the texts, and the calls of a phone that can text.
_REPLYING = (Channel.SMS, Channel.VOICE)


def acknowledged_by(text: str, waiting: list[Escalation]) -> list[Escalation]:
    """The open escalations a reply acknowledges: each whose code it is (any case, spaces and a
    trailing full stop ignored), or the only one when it is "1"; none for anything else."""
    word = "".join(text.split()).upper().rstrip(".!")
    waiting = [e for e in waiting if e.state is EscalationState.OPEN]
    if word == "1":
        return waiting if len(waiting) == 1 else []
    return [e for e in waiting if word and e.code.upper() == word]


def reply_text(language: str, kind: str) -> str:
    """The SMS answer of ``kind`` (help, stopped, started, confirmed, wrong_code, acknowledged, other)
    in ``language``."""
    text = _replies.get_template(f"{language}/{kind}.sms.j2").render(office_phone=OFFICE_PHONE)
    return " ".join(text.split())


def _sms_slots(reg: StoredRegistration, index: str) -> list[int]:
    """The slot numbers (n-th SMS contact) of ``reg``'s SMS contacts with this blind index."""
    phones = [c for c in reg.contacts if c.channel is Channel.SMS]
    return [n for n, c in enumerate(phones) if c.blind_index == index]


def _signed_url(portal: Portal, request: Request) -> str:
    """The URL Twilio signed: the public one (SAVIN_PUBLIC_URL) behind a proxy, else the request's."""
    public = portal.settings.public_url
    if not public:
        return str(request.url)
    query = request.url.query
    return public.rstrip("/") + request.url.path + (f"?{query}" if query else "")


def _flag_if_unreachable(portal: Portal, registration_id: str) -> None:
    reg = portal.views.registration(registration_id)
    if reg is not None and not proving.usable_channels(portal, reg):
        metrics.UNREACHABLE.inc()
        log.warning("registration %s has no usable channel left: every verified contact has opted out",
                    registration_id)


# ---- unsubscribe pages --------------------------------------------------------------------------


def _email_slot(portal: Portal, token: str) -> tuple[str, int] | None:
    slot = read_unsubscribe_token(portal.link_key, token, utcnow())
    if slot is None or slot.channel != Channel.EMAIL.value:
        return None
    return slot.registration_id, slot.index


def registration_language(portal: Portal, registration_id: str) -> str:
    """The language of the pages a registration's email links open."""
    reg = portal.views.registration(registration_id)
    return reg.language if reg is not None and reg.language in LANGUAGES else DEFAULT


def in_language(request: Request, language: str) -> Request:
    """The request as if it asked for ``language`` (the registration's), unless the visitor
    chose a language with the switch. The page then remembers it, as ``?lang=`` does."""
    if request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE):
        return request
    query = urllib.parse.urlencode([*request.query_params.multi_items(), ("lang", language)])
    return Request({**request.scope, "query_string": query.encode()}, request.receive)


#: What the expired-link page of an unsubscribe link offers instead (the words before "manage").
_UNSUBSCRIBE_INSTEAD = "reply_link_expired_manage_before"


def link_expired(portal: Portal, request: Request, instead: str) -> HTMLResponse:
    """The page of an email link that is forged, cut short or past its time: no detail, and the manage
    pages instead, introduced by the words ``instead`` (a word key)."""
    return portal.pages.render(request, "replies/link_expired.html.j2", 400, office_phone=OFFICE_PHONE,
                               instead=instead)
