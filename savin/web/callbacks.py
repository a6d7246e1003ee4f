"""Twilio's status callbacks, served by ``savin web``: carry the request to
:class:`savin.notifiers.twilio_sms.StatusCallbacks`, publish what it accepts
on delivery-results (keyed by registration id), answer Twilio. The deliver
stage moves the ledger.

Each web process remembers the signatures it has honoured, so a replay is
refused by the process that saw the original. Behind a load balancer a
replay may reach another process and be published again; that is harmless,
since the ledger never overwrites a final status and a repeated status is
stale.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import JSONResponse

from savin import metrics
from savin.notifiers.twilio_sms import StatusCallbacks

__all__ = ["twilio_status_handler"]

log = logging.getLogger("savin.web.callbacks")

#: What a callback's verdict answers Twilio.
_HTTP_STATUS = {"forged": 403, "replayed": 409, "unknown-notice": 400}


def twilio_status_handler(
    callbacks: StatusCallbacks,
    publish: Callable[[bytes, bytes], Awaitable[object]],
) -> Callable[[Request], Awaitable[JSONResponse]]:
    """A POST handler; ``publish(key, value)`` returns once Kafka has the record."""

    async def handle(request: Request) -> JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        url = callbacks.signed_url(str(request.url), request.url.query)
        verdict = callbacks.read(url, form, request.query_params, request.headers.get("X-Twilio-Signature", ""))
        if verdict.result is None:
            metrics.CALLBACKS.labels(outcome=verdict.outcome).inc()
            if verdict.outcome in _HTTP_STATUS:
                return JSONResponse({"error": verdict.reason}, status_code=_HTTP_STATUS[verdict.outcome])
            return JSONResponse({"recorded": False})
        result = verdict.result
        try:
            await publish(result.registration_id.encode(), result.model_dump_json().encode())
        except Exception as e:  # noqa: BLE001 - Twilio is told to try again rather than lose it
            log.warning("status callback for notice %s not recorded: %s", result.notice_id, type(e).__name__)
            return JSONResponse({"error": "not recorded, try again"}, status_code=503)
        metrics.CALLBACKS.labels(outcome="accepted").inc()
        return JSONResponse({"recorded": True})

    return handle
