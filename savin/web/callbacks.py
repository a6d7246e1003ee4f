"""The Twilio status-callback endpoint: carry the request to
:class:`savin.notifiers.twilio_sms.StatusCallbacks`, publish what it accepts,
answer Twilio. The deliver stage moves the ledger."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from savin import metrics
from savin.notifiers.twilio_sms import StatusCallbacks

__all__ = ["twilio_status_handler"]

log = logging.getLogger("savin.web.callbacks")

#: What a callback's verdict answers Twilio.
_HTTP_STATUS = {"forged": 403, "replayed": 409, "unknown-notice": 400}


def twilio_status_handler(
    callbacks: StatusCallbacks,
    publish: Callable[[bytes, bytes], Awaitable[object]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A POST handler; ``publish(key, value)`` returns once Kafka has the record."""

    async def handle(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        url = callbacks.signed_url(str(request.url), request.rel_url.raw_query_string)
        verdict = callbacks.read(url, form, request.query, request.headers.get("X-Twilio-Signature", ""))
        if verdict.result is None:
            metrics.CALLBACKS.labels(outcome=verdict.outcome).inc()
            if verdict.outcome in _HTTP_STATUS:
                return web.json_response({"error": verdict.reason}, status=_HTTP_STATUS[verdict.outcome])
            return web.json_response({"recorded": False})
        result = verdict.result
        try:
            await publish(result.registration_id.encode(), result.model_dump_json().encode())
        except Exception as e:  # noqa: BLE001 - Twilio is told to try again rather than lose it
            log.warning("status callback for notice %s not recorded: %s", result.notice_id, type(e).__name__)
            return web.json_response({"error": "not recorded, try again"}, status=503)
        metrics.CALLBACKS.labels(outcome="accepted").inc()
        return web.json_response({"recorded": True})

    return handle
