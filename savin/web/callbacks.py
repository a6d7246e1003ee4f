"""Provider status callbacks: check the signature, turn the callback into a
DeliveryResult and publish it; the deliver stage moves the ledger."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import faust
from twilio.request_validator import RequestValidator

from savin import metrics
from savin.domain.clock import utcnow
from savin.schemas import DeliveryResult, DeliveryStatus

__all__ = ["twilio_status_view", "TWILIO_STATUSES"]

#: Twilio MessageStatus -> savin status; statuses not listed are not recorded.
TWILIO_STATUSES = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
}


class _SeenSignatures:
    """Signatures already honoured, so a replayed callback is refused (bounded LRU)."""

    def __init__(self, size: int = 100_000):
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, signature: str) -> bool:
        if signature in self._seen:
            return False
        self._seen[signature] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


def twilio_status_view(
    auth_token: str,
    public_url: str | None,
    publish: Callable[[bytes, bytes], Awaitable[object]],
) -> type[faust.web.View]:
    validator = RequestValidator(auth_token)
    seen = _SeenSignatures()

    class TwilioStatus(faust.web.View):
        async def post(self, request):
            params = {k: v for k, v in (await request.post()).items()}
            signature = request.headers.get("X-Twilio-Signature", "")
            # Twilio signs the URL it was given, so check against the public one.
            url = public_url or str(request.url).split("?")[0]
            if raw_query := request.rel_url.raw_query_string:
                url = f"{url}?{raw_query}"
            if not signature or not validator.validate(url, params, signature):
                metrics.CALLBACKS.labels(outcome="forged").inc()
                return self.json({"error": "invalid X-Twilio-Signature"}, status=403)
            if not seen.add(signature):
                metrics.CALLBACKS.labels(outcome="replayed").inc()
                return self.json({"error": "callback already received"}, status=409)
            status = TWILIO_STATUSES.get(params.get("MessageStatus", ""))
            try:
                notice_id = uuid.UUID(request.query["notice_id"])
                registration_id = request.query["registration_id"]
            except (KeyError, ValueError):
                metrics.CALLBACKS.labels(outcome="unknown-notice").inc()
                return self.json({"error": "notice_id and registration_id query parameters required"}, status=400)
            if status is None:
                metrics.CALLBACKS.labels(outcome="ignored").inc()
                return self.json({"recorded": False})
            result = DeliveryResult(
                notice_id=notice_id,
                registration_id=registration_id,
                status=status,
                source="callback",
                provider="twilio",
                provider_ref=params.get("MessageSid"),
                error_code=params.get("ErrorCode") or None,
                at=utcnow(),
            )
            await publish(registration_id.encode(), result.model_dump_json().encode())
            metrics.CALLBACKS.labels(outcome="accepted").inc()
            return self.json({"recorded": True})

    return TwilioStatus
