"""Confirming an urgent notice from its email: the link ``<base>/ack/<token>``.

``GET /ack/{token}`` shows the notice (its kind, the offender, when it was
sent, when the web's view of the escalations has it) and one button: mail
scanners follow links, so opening one changes nothing. ``POST`` (that button,
with its form token) puts an :class:`~savin.schemas.escalation.Acknowledgement`
with channel ``email`` on the acknowledgements topic, keyed by registration,
which the deliver stage reads to end the notice's escalation, and thanks the
registrant. A token names the registration and the event, signed, for 30 days
(:mod:`savin.rendering.links`); a forged, cut or expired one gets the page
every bad email link gets, with no detail. The pages are in the
registration's language unless the visitor chose one.

:func:`waiting` lists a registration's notices that wait for a confirmation,
as the manage overview shows them with their own buttons.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from savin.domain.clock import utcnow
from savin.rendering.filters import format_datetime
from savin.rendering.links import read_ack_token
from savin.rendering.renderer import OFFICE_PHONE
from savin.schemas.escalation import AckChannel, Acknowledgement, Escalation, EscalationState
from savin.web.portal.context import Portal
from savin.web.portal.i18n import strings
from savin.web.portal.pages import forbidden
from savin.web.portal.security import SESSION_COOKIE
from savin.web.portal.webhooks import in_language, link_expired, registration_language

__all__ = ["describe", "routes", "waiting"]

log = logging.getLogger("savin.web.acknowledge")

#: What the expired-link page offers instead (the words before "manage").
_INSTEAD = "ack_expired_manage_before"


def describe(portal: Portal, e: Escalation, language: str, timezone: str) -> dict:
    """A notice as a page names it: its kind, the offender, when it was sent (in ``timezone``)."""
    t = strings(language)
    offender = portal.views.offender(e.offender_id)
    return {"event_id": str(e.event_id), "kind": t.get(f"ack_kind_{e.event_type}", e.event_type),
            "offender": offender.offender_name if offender else None, "offender_id": e.offender_id,
            "sent": t["ack_sent"].replace("{when}", format_datetime(e.started_at, timezone, language, "long"))}


def waiting(portal: Portal, registration_id: str, language: str, timezone: str) -> list[dict]:
    """The registration's notices waiting for a confirmation, oldest first, as pages name them."""
    return [describe(portal, e, language, timezone)
            for e in portal.views.escalations(registration_id, open_only=True)]


def routes(portal: Portal) -> APIRouter:
    router = APIRouter()

    def read(token: str) -> tuple[str, str] | None:
        return read_ack_token(portal.link_key, token, utcnow())

    def theirs(request: Request, registration_id: str) -> Request:
        return in_language(request, registration_language(portal, registration_id))

    def page(request: Request, template: str, **context) -> HTMLResponse:
        return portal.pages.render(request, f"acknowledge/{template}.html.j2", office_phone=OFFICE_PHONE, **context)

    async def confirm_page(request: Request, token: str) -> Response:
        found = read(token)
        if found is None:
            return link_expired(portal, request, _INSTEAD)
        registration_id, event_id = found
        request = theirs(request, registration_id)
        e = portal.views.escalation(registration_id, event_id)
        if e is not None and e.state is EscalationState.ACKNOWLEDGED:
            return page(request, "done")
        notice = None
        if e is not None:
            reg = portal.views.registration(registration_id)
            notice = describe(portal, e, portal.pages.language_of(request),
                              reg.timezone if reg else portal.settings.portal_timezone)
        return page(request, "confirm", action=request.url.path, notice=notice)

    async def confirm(request: Request, token: str) -> Response:
        found = read(token)
        if found is None:
            return link_expired(portal, request, _INSTEAD)
        form = await request.form()
        csrf = form.get("csrf")
        if not isinstance(csrf, str) or not portal.pages.csrf.valid(request.cookies.get(SESSION_COOKIE), csrf):
            return forbidden()
        registration_id, event_id = found
        await portal.commands.acknowledge(Acknowledgement(registration_id=registration_id, event_id=event_id,
                                                          channel=AckChannel.EMAIL, at=utcnow()))
        log.info("notice acknowledged by the email link registration=%s event=%s", registration_id, event_id)
        return page(theirs(request, registration_id), "done")

    router.add_api_route("/ack/{token}", confirm_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/ack/{token}", confirm, methods=["POST"], response_class=HTMLResponse)
    return router
