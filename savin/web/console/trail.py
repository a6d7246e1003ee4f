"""An index of the audit trail, kept in the web process's view store, so the
console finds a notice and tells its story without reading whole topics.

The :class:`~savin.web.portal.views.Views` follow four more topics for it:

* ``notices.urgent`` and ``notices.routine``: each notice job's ids, type,
  urgency, channel, contact index and times (never its sealed address, its
  acknowledgement code nor the event's text);
* ``delivery-results``: every try and callback of each notice, in the order
  written (a notice's results share its registration's partition), and the
  notice's status by the ledger's rules (:func:`savin.domain.delivery.merge_status`);
* ``acknowledgements``: who confirmed each (registration, event), how and when;
* ``registration-flags``: the flags still open (a tombstone clears one).

Everything lives in the store, written in the same batch as the offsets the
views have read, so a restarted web process carries on where it stopped:

=====================================  ==========================================
``tn/`` notice id                      the notice's summary (JSON)
``tr/`` notice id ``\\0`` sequence      its n-th result (a DeliveryResult, error text masked)
``tx/`` any id ``\\0`` notice id         the notices of an event, registration or offender id
``tm/`` ``YYYYMMDDHHMM``, ``th/`` hour   notices by current status, counted in the minute
                                       (and hour) of their latest result
``ta/`` registration ``\\0`` event        its acknowledgements (JSON list)
``tf/`` registration ``\\0`` flag key     an open flag; ``tk/`` flag key: its registration
``to/`` registration ``\\0`` event        the offender of an event's notices
=====================================  ==========================================

The calls of an escalation ladder are made by the deliver stage, with no job on
the notice topics: their results give their registration and event, and the
offender is the one the event's first notices named.

:meth:`Trail.status_counts` reads at most 60 minute buckets and one bucket per
hour after them; a search reads one id's index entries and their notices.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from savin.domain.delivery import merge_status
from savin.domain.redaction import mask_text
from savin.schemas import DeliveryResult, DeliveryStatus, NoticeJob
from savin.schemas.escalation import Acknowledgement, EscalationState, RegistrationFlag
from savin.streams.store import Store
from savin.topics import Topics
from savin.web.portal.views import Views

__all__ = ["Trail", "NoticeSummary", "TimelineEntry", "Timeline"]

_NOTICE = b"tn/"  # + notice id -> summary JSON
_RESULT = b"tr/"  # + notice id + \0 + 6-digit sequence -> DeliveryResult JSON
_BY_ID = b"tx/"  # + event, registration or offender id + \0 + notice id -> b""
_MINUTE = b"tm/"  # + YYYYMMDDHHMM (UTC) -> {status: notices}
_HOUR = b"th/"  # + YYYYMMDDHH (UTC) -> {status: notices}
_ACK = b"ta/"  # + registration id + \0 + event id -> [acknowledgement, ...]
_FLAG = b"tf/"  # + registration id + \0 + flag key -> RegistrationFlag JSON
_FLAG_OWNER = b"tk/"  # + flag key -> registration id
_OFFENDER = b"to/"  # + registration id + \0 + event id -> offender id (for the notices no job names)
_AWAITING = b"tw/"  # + registration id + \0 + event id + \0 + notice id -> b"": its offender not known yet

#: Results that are not a try at sending.
_NOT_TRIES = frozenset({DeliveryStatus.SUPPRESSED, DeliveryStatus.HELD})


@dataclass(frozen=True)
class NoticeSummary:
    notice_id: str
    event_id: str | None
    event_type: str | None
    urgency: str | None
    registration_id: str
    offender_id: str | None
    channel: str | None
    contact_index: int | None
    #: When the match stage made it.
    created_at: datetime | None
    #: By savin.domain.delivery.merge_status over its results (None before the first).
    status: str | None
    #: When its latest result was written.
    last_at: datetime | None
    attempts: int
    #: When the event happened, as its producer said.
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "event" | "matched" | "attempt" | "callback" | "acknowledgement" | "escalation"
    title: str
    status: str | None = None
    detail: str | None = None  # provider ref, error code and text; never an address


@dataclass(frozen=True)
class Timeline:
    notice: NoticeSummary
    entries: list[TimelineEntry] = field(default_factory=list)  # oldest first


class Trail:
    """The audit trail's index; reading never scans more than one id's entries."""

    def __init__(self, views: Views, topics: Topics):
        self.views = views
        self.store: Store = views.store
        #: Keys of notices awaiting their offender, written since the store last held them.
        self._awaiting: dict[bytes, set[bytes]] = {}
        for topic in (topics.notices_urgent, topics.notices_routine):
            views.follow(topic, self._apply_notice)
        views.follow(topics.delivery_results, self._apply_result)
        views.follow(topics.acknowledgements, self._apply_acknowledgement)
        views.follow(topics.registration_flags, self._apply_flag)

    # ---- reading ---------------------------------------------------------------

    def notice(self, notice_id: str) -> NoticeSummary | None:
        raw = self.store.get(_NOTICE + _normal(notice_id).encode())
        return _summary(json.loads(raw)) if raw is not None else None

    def search(self, query: str, limit: int = 100) -> list[NoticeSummary]:
        """The notices of a notice, event, registration or offender id (exact), newest first."""
        q = _normal(query)
        if not q or "\0" in q:
            return []
        prefix = _BY_ID + q.encode() + b"\0"
        ids = {key[len(prefix):] for key, _ in self.store.scan(prefix)}
        ids.add(q.encode())
        found = [_summary(json.loads(raw)) for raw in self.store.get_many([_NOTICE + i for i in sorted(ids)])
                 if raw is not None]
        found.sort(key=lambda n: (n.created_at or n.last_at or _EPOCH, n.notice_id), reverse=True)
        return found[:limit]

    def results(self, notice_id: str) -> list[DeliveryResult]:
        """Every result of the notice, in the order written."""
        prefix = _RESULT + _normal(notice_id).encode() + b"\0"
        return [DeliveryResult.model_validate_json(raw) for _, raw in self.store.scan(prefix)]

    def acknowledgements(self, registration_id: str, event_id: str) -> list[Acknowledgement]:
        raw = self.store.get(_ack_key(registration_id, event_id))
        return [Acknowledgement.model_validate(a, strict=False) for a in json.loads(raw)] if raw is not None else []

    def timeline(self, notice_id: str) -> Timeline | None:
        n = self.notice(notice_id)
        if n is None:
            return None
        entries = []
        if n.occurred_at is not None:
            entries.append(TimelineEntry(n.occurred_at, "event", "Event occurred",
                                         detail=" ".join(filter(None, (n.event_type, n.urgency)))))
        if n.created_at is not None:
            how = f"by {n.channel}" + (f" (contact {n.contact_index + 1})" if n.contact_index is not None else "")
            entries.append(TimelineEntry(n.created_at, "matched", f"Matched to registration {n.registration_id}",
                                         detail=how))
        entries += [_result_entry(r) for r in self.results(n.notice_id)]
        if n.event_id is not None:
            for ack in self.acknowledgements(n.registration_id, n.event_id):
                through = " (through this notice)" if ack.notice_id is not None and str(ack.notice_id) == n.notice_id \
                    else ""
                entries.append(TimelineEntry(ack.at, "acknowledgement", f"Acknowledged by {ack.channel.value}",
                                             detail=f"for event {n.event_id}{through}"))
            esc = self.views.escalation(n.registration_id, n.event_id)
            if esc is not None:
                entries += _escalation_entries(esc)
        entries.sort(key=lambda e: e.at)  # stable: same-time entries keep the order above
        return Timeline(n, entries)

    def status_counts(self, since: datetime) -> dict[str, int]:
        """Notices by current status whose latest result is at or after ``since`` (to the
        minute: the whole of ``since``'s minute counts)."""
        since = since.astimezone(UTC).replace(second=0, microsecond=0)
        now = datetime.now(UTC)
        hour = since.replace(minute=0)
        minutes = [since + timedelta(minutes=m) for m in range(60 - since.minute)]
        hours = []
        h = hour + timedelta(hours=1)
        while h <= now + timedelta(hours=1):  # one hour ahead: a result stamped a little in the future
            hours.append(h)
            h += timedelta(hours=1)
        keys = [_minute_key(m) for m in minutes] + [_hour_key(h) for h in hours]
        counts: dict[str, int] = {}
        for raw in self.store.get_many(keys):
            for status, n in json.loads(raw).items() if raw is not None else ():
                counts[status] = counts.get(status, 0) + n
        return {s: n for s, n in sorted(counts.items()) if n}

    def flags(self, registration_id: str) -> list[RegistrationFlag]:
        """The registration's open flags, newest first."""
        return _newest_first(self.store.scan(_FLAG + registration_id.encode() + b"\0"))

    def open_flags(self, limit: int = 200) -> list[RegistrationFlag]:
        """Every open flag, newest first; at most ``limit``."""
        return _newest_first(self.store.scan(_FLAG))[:limit]

    # ---- applying records ------------------------------------------------------

    def _apply_notice(self, puts: dict, key: bytes, value: bytes | None) -> None:
        if value is None:
            return
        job = NoticeJob.model_validate_json(value)
        nid = str(job.notice_id)
        rec = _get_json(self.store, puts, _NOTICE + nid.encode()) or _blank(nid, job.registration_id)
        occurred = job.event.get("occurred_at")
        rec.update(event_id=str(job.event_id), event_type=job.event_type, urgency=job.urgency.value,
                   registration_id=job.registration_id, offender_id=job.offender_id, channel=job.channel.value,
                   contact_index=job.contact_index, occurred_at=occurred if isinstance(occurred, str) else None)
        rec["created_at"] = rec.get("created_at") or job.created_at.isoformat()
        puts[_NOTICE + nid.encode()] = json.dumps(rec).encode()
        puts[_offender_key(job.registration_id, str(job.event_id))] = job.offender_id.encode()
        self._index(puts, nid, job.event_id, job.registration_id, job.offender_id)
        self._resolve(puts, _offender_key(job.registration_id, str(job.event_id)), job.offender_id)

    def _resolve(self, puts: dict, offender_key: bytes, offender_id: str) -> None:
        """The offender of notices whose results came before any job of their (registration, event)
        (a call of a ladder, or a result read before its job): set now, and indexed."""
        prefix = _AWAITING + offender_key[len(_OFFENDER):] + b"\0"
        waiting = {k for k, _ in self.store.scan(prefix)} | self._awaiting.pop(prefix, set())
        for k in waiting:
            if puts.get(k, b"") is None:
                continue
            puts[k] = None
            other = k[len(prefix):].decode()
            rec = _get_json(self.store, puts, _NOTICE + other.encode())
            if rec is not None and rec.get("offender_id") is None:
                rec["offender_id"] = offender_id
                puts[_NOTICE + other.encode()] = json.dumps(rec).encode()
                self._index(puts, other, offender_id)

    def _apply_result(self, puts: dict, key: bytes, value: bytes | None) -> None:
        if value is None:
            return
        r = DeliveryResult.model_validate_json(value)
        nid = str(r.notice_id)
        rec = _get_json(self.store, puts, _NOTICE + nid.encode()) or _blank(nid, r.registration_id)
        for k, v in (("event_id", r.event_id and str(r.event_id)), ("event_type", r.event_type),
                     ("channel", r.channel and r.channel.value)):
            if rec.get(k) is None and v is not None:
                rec[k] = v
        if rec.get("offender_id") is None and r.event_id is not None:
            offender = _get(self.store, puts, _offender_key(r.registration_id, str(r.event_id)))
            rec["offender_id"] = offender.decode() if offender is not None else None
            if offender is None:
                prefix = _AWAITING + r.registration_id.encode() + b"\0" + str(r.event_id).encode() + b"\0"
                puts[prefix + nid.encode()] = b""
                self._awaiting.setdefault(prefix, set()).add(prefix + nid.encode())
        old_status = DeliveryStatus(rec["status"]) if rec.get("status") else None
        old_last = _time(rec.get("last_at"))
        status = merge_status(old_status, r.status) or old_status
        last = max(old_last, r.at) if old_last is not None else r.at
        if old_status is not None and old_last is not None:
            self._count(puts, old_last, old_status, -1)
        self._count(puts, last, status, +1)
        rec.update(status=status.value, last_at=last.isoformat(), results=rec.get("results", 0) + 1,
                   attempts=rec.get("attempts", 0) + (r.source == "attempt" and r.status not in _NOT_TRIES))
        kept = r.model_copy(update={"error": mask_text(r.error) if r.error else r.error})
        puts[_RESULT + nid.encode() + b"\0" + f"{rec['results']:06d}".encode()] = kept.model_dump_json().encode()
        puts[_NOTICE + nid.encode()] = json.dumps(rec).encode()
        self._index(puts, nid, r.event_id, r.registration_id, rec.get("offender_id"))

    def _apply_acknowledgement(self, puts: dict, key: bytes, value: bytes | None) -> None:
        if value is None:
            return
        ack = Acknowledgement.model_validate_json(value)
        store_key = _ack_key(ack.registration_id, str(ack.event_id))
        acks = _get_json(self.store, puts, store_key) or []
        acks.append(ack.model_dump(mode="json"))
        puts[store_key] = json.dumps(acks).encode()

    def _apply_flag(self, puts: dict, key: bytes, value: bytes | None) -> None:
        owner = _get(self.store, puts, _FLAG_OWNER + key)
        if owner is not None:
            puts[_FLAG + owner + b"\0" + key] = None
            puts[_FLAG_OWNER + key] = None
        if value is None:
            return
        flag = RegistrationFlag.model_validate_json(value)
        registration = flag.registration_id.encode()
        puts[_FLAG + registration + b"\0" + key] = value
        puts[_FLAG_OWNER + key] = registration

    def _index(self, puts: dict, notice_id: str, *ids) -> None:
        for i in ids:
            if i is not None:
                puts[_BY_ID + str(i).encode() + b"\0" + notice_id.encode()] = b""

    def _count(self, puts: dict, at: datetime, status: DeliveryStatus, n: int) -> None:
        for key in (_minute_key(at), _hour_key(at)):
            counts = _get_json(self.store, puts, key) or {}
            counts[status.value] = counts.get(status.value, 0) + n
            counts = {s: c for s, c in counts.items() if c}
            puts[key] = json.dumps(counts).encode() if counts else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _normal(query: str) -> str:
    """An id as it is stored: a uuid in its canonical form, anything else as given (trimmed)."""
    q = query.strip()
    try:
        return str(uuid.UUID(q))
    except ValueError:
        return q


def _get(store: Store, puts: dict, key: bytes) -> bytes | None:
    """The value as this batch leaves it: its own writes first."""
    return puts[key] if key in puts else store.get(key)


def _get_json(store: Store, puts: dict, key: bytes):
    raw = _get(store, puts, key)
    return json.loads(raw) if raw is not None else None


def _blank(notice_id: str, registration_id: str) -> dict:
    return {"notice_id": notice_id, "registration_id": registration_id}


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _minute_key(at: datetime) -> bytes:
    return _MINUTE + at.astimezone(UTC).strftime("%Y%m%d%H%M").encode()


def _hour_key(at: datetime) -> bytes:
    return _HOUR + at.astimezone(UTC).strftime("%Y%m%d%H").encode()


def _ack_key(registration_id: str, event_id: str) -> bytes:
    return _ACK + registration_id.encode() + b"\0" + _normal(event_id).encode()


def _offender_key(registration_id: str, event_id: str) -> bytes:
    return _OFFENDER + registration_id.encode() + b"\0" + event_id.encode()


def _summary(rec: dict) -> NoticeSummary:
    return NoticeSummary(
        notice_id=rec["notice_id"], event_id=rec.get("event_id"), event_type=rec.get("event_type"),
        urgency=rec.get("urgency"), registration_id=rec["registration_id"], offender_id=rec.get("offender_id"),
        channel=rec.get("channel"), contact_index=rec.get("contact_index"), created_at=_time(rec.get("created_at")),
        status=rec.get("status"), last_at=_time(rec.get("last_at")), attempts=rec.get("attempts", 0),
        occurred_at=_time(rec.get("occurred_at")))


def _newest_first(rows) -> list[RegistrationFlag]:
    return sorted((RegistrationFlag.model_validate_json(raw) for _, raw in rows), key=lambda f: f.at, reverse=True)


_TRY_WORDS = {
    DeliveryStatus.ACCEPTED: "accepted by {provider}",
    DeliveryStatus.RETRYING: "failed for now at {provider}, to be tried again",
    DeliveryStatus.FAILED: "failed at {provider}",
    DeliveryStatus.UNDELIVERED: "not delivered by {provider}",
    DeliveryStatus.SENT: "sent by {provider}",
    DeliveryStatus.DELIVERED: "delivered by {provider}",
}


def _result_entry(r: DeliveryResult) -> TimelineEntry:
    provider = r.provider or "the provider"
    if r.source == "callback":
        title = f"Callback from {provider}: {r.status.value}"
    elif r.status is DeliveryStatus.SUPPRESSED:
        title = "Not sent: the recipient opted out of this channel"
    elif r.status is DeliveryStatus.HELD:
        title = "Held for the registration's quiet hours"
    else:
        title = f"Try {r.attempt + 1}: " + _TRY_WORDS[r.status].format(provider=provider)
    detail = []
    if r.provider_ref:
        detail.append(f"ref {r.provider_ref}")
    if r.error_code or r.error:
        detail.append("error " + ": ".join(filter(None, (r.error_code, r.error))))
    if r.call_result is not None:
        detail.append(f"call {r.call_result.value}")
    if r.not_before is not None:
        detail.append(f"until {r.not_before.isoformat()}")
    return TimelineEntry(r.at, r.source, title, r.status.value, "; ".join(detail) or None)


def _escalation_entries(esc) -> list[TimelineEntry]:
    """The ladder's start and, once it ended, its end (never its code)."""
    calls = f"{esc.calls} call{'s' if esc.calls != 1 else ''} placed"
    if esc.state is EscalationState.OPEN:
        detail = calls + (f"; next call {esc.next_call_at.isoformat()}" if esc.next_call_at is not None else "")
        return [TimelineEntry(esc.started_at, "escalation", "Escalation open: waiting for an acknowledgement",
                              esc.state.value, detail)]
    if esc.state is EscalationState.ACKNOWLEDGED:
        by = esc.acknowledged_by.value if esc.acknowledged_by is not None else "someone"
        title = f"Escalation ended: acknowledged by {by}"
    elif esc.state is EscalationState.CANCELLED:
        title = "Escalation stopped: its event was retracted"
    else:
        title = "Escalation ended without an acknowledgement"
    return [TimelineEntry(esc.started_at, "escalation", "Escalation opened", EscalationState.OPEN.value),
            TimelineEntry(esc.updated_at, "escalation", title, esc.state.value, calls)]
