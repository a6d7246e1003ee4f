"""Reports for a period, read from the topics a run leaves: the deadline evidence of
every notice (:func:`deadline_report`) and the program statistics (:func:`statistics`).

A period is ``[start, end)``; a notice belongs to the period its job was made in
(``created_at``: when the match stage matched the event), so a report of a past
period only changes as late deliveries and acknowledgements of its notices come in.
The records come from (:func:`read_run`):

* ``notices.urgent`` and ``notices.routine``: the notice jobs (the first job of each
  notice id counts; a job a hold released carries the hold's id);
* ``held-notices``: the jobs a hold kept back (a rejected hold's never reach the
  notice topics);
* ``delivery-results``: each try, callback, cancellation and rejection;
* ``acknowledgements``: the earliest of each (registration, event);
* ``registrations``: every change of every registration (new, changed, cancelled);
* ``holds``: each hold's latest record;
* ``feed-status``: each source's status changes (its downtime, as
  :func:`savin.ops.feeds.change_as_status_change` reads them).

Ids, times and counts only: no address, name or message is read or written. The
calls of an escalation ladder are not notice jobs and are not rows of the evidence;
the acknowledgement they bring is.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from savin.domain import stats
from savin.domain.deadlines import NOT_OWED as NO_LONGER_OWED
from savin.domain.deadlines import Policy, Verdict, deadline_for, judge, reached
from savin.domain.feeds import downtime_hours
from savin.ops.feeds import change_as_status_change
from savin.ops.reading import end_offsets, read_topic
from savin.schemas import DeliveryResult, DeliveryStatus, NoticeJob, StoredRegistration
from savin.schemas.escalation import Acknowledgement
from savin.schemas.registration import RegistrationStatus
from savin.schemas.safety import FeedStatusChange, HeldNotice, Hold
from savin.settings import Settings
from savin.topics import Topics

__all__ = ["Period", "PeriodError", "parse_period", "Run", "read_run", "Evidence", "EVIDENCE_FIELDS",
           "deadline_report", "evidence_csv", "evidence_document", "Statistics", "statistics", "stats_csv",
           "duration_text", "NOT_OWED", "NO_DEADLINE", "Progress"]

#: A notice cancelled (its event retracted), rejected (an operator found its hold false) or
#: suppressed (the registrant opted out of the channel) and never reached: nothing was owed.
NOT_OWED = "not_owed"
#: The policy sets no deadline for the notice's event type.
NO_DEADLINE = "no_deadline"

#: Results that are a try at the provider.
_TRIES = {DeliveryStatus.ACCEPTED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.RETRYING,
          DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED}
_FINAL = {DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED,
          DeliveryStatus.CANCELLED, DeliveryStatus.REJECTED}
_RANK = {DeliveryStatus.HELD: 0, DeliveryStatus.RETRYING: 0, DeliveryStatus.ACCEPTED: 1, DeliveryStatus.SENT: 2}

#: (topic, records read, records in the topic): called as a long read goes on.
Progress = Callable[[str, int, int], None]


# ---- the period ----------------------------------------------------------------------


class PeriodError(ValueError):
    """A period that cannot be read: ``field`` is ``from`` or ``to``."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime

    def __contains__(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end

    def as_json(self) -> dict[str, str]:
        return {"from": _iso(self.start), "to": _iso(self.end)}


def _moment(text: str, field: str, end: bool) -> dt.datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            # A day as the end of a period includes that day.
            return dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), dt.UTC)
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(field, f"--{field}: {text[:40]!r} is not a date such as 2026-11-01 or a time such as "
                                 "2026-11-01T06:00:00-06:00") from None
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def parse_period(start: str, end: str) -> Period:
    """``--from`` and ``--to``: dates (YYYY-MM-DD, whole days in UTC, ``--to``'s day included)
    or ISO times (UTC unless they carry an offset; ``--to`` excluded)."""
    if not start or not start.strip():
        raise PeriodError("from", "--from: give the first day of the period, such as 2026-11-01")
    if not end or not end.strip():
        raise PeriodError("to", "--to: give the last day of the period, such as 2026-11-30")
    period = Period(_moment(start, "from", False), _moment(end, "to", True))
    if period.end <= period.start:
        raise PeriodError("to", "--to must be after --from")
    return period


# ---- reading the topics --------------------------------------------------------------


@dataclass
class Run:
    """What the topics hold, by notice, registration, hold and source."""

    jobs: dict[uuid.UUID, NoticeJob] = field(default_factory=dict)
    #: notice id -> the hold that kept it back.
    held: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    results: dict[uuid.UUID, list[DeliveryResult]] = field(default_factory=dict)
    #: (registration id, event id) -> the earliest acknowledgement.
    acks: dict[tuple[str, uuid.UUID], Acknowledgement] = field(default_factory=dict)
    #: registration id -> its changes, oldest first.
    registrations: dict[str, list[StoredRegistration]] = field(default_factory=dict)
    holds: dict[uuid.UUID, Hold] = field(default_factory=dict)
    feed_changes: list[FeedStatusChange] = field(default_factory=list)
    #: Records that could not be read (a poison record; the worker dead-letters these).
    unreadable: int = 0

    def add_job(self, job: NoticeJob, hold_id: uuid.UUID | None = None) -> None:
        if job.notice_id not in self.jobs or job.created_at < self.jobs[job.notice_id].created_at:
            self.jobs[job.notice_id] = job
        if hold_id or job.hold_id:
            self.held[job.notice_id] = hold_id or job.hold_id  # type: ignore[assignment]

    def add_ack(self, ack: Acknowledgement) -> None:
        key = (ack.registration_id, ack.event_id)
        if key not in self.acks or ack.at < self.acks[key].at:
            self.acks[key] = ack

    def add_registration(self, reg: StoredRegistration) -> None:
        history = self.registrations.setdefault(reg.registration_id, [])
        if all(r.updated_at != reg.updated_at for r in history):  # the match stage may move a record
            history.append(reg)
            history.sort(key=lambda r: r.updated_at)


async def read_run(settings: Settings, progress: Progress | None = None) -> Run:
    """Read every topic a report needs, whole (no consumer group, nothing committed)."""
    t = Topics(settings)
    run = Run()

    def job(value: bytes) -> None:
        run.add_job(NoticeJob.model_validate_json(value))

    def held(value: bytes) -> None:
        h = HeldNotice.model_validate_json(value)
        run.add_job(h.job, h.hold_id)

    def result(value: bytes) -> None:
        r = DeliveryResult.model_validate_json(value)
        run.results.setdefault(r.notice_id, []).append(r)

    def hold(value: bytes) -> None:
        h = Hold.model_validate_json(value)
        run.holds[h.hold_id] = h

    readers: list[tuple[str, Callable[[bytes], None]]] = [
        (t.notices_urgent, job), (t.notices_routine, job), (t.held_notices, held), (t.delivery_results, result),
        (t.acknowledgements, lambda v: run.add_ack(Acknowledgement.model_validate_json(v))),
        (t.registrations, lambda v: run.add_registration(StoredRegistration.model_validate_json(v))),
        (t.holds, hold), (t.feed_status, lambda v: run.feed_changes.append(FeedStatusChange.model_validate_json(v))),
    ]
    for topic, read in readers:
        total = sum((await end_offsets(settings.kafka_bootstrap, topic)).values())
        n = 0
        async for record in read_topic(settings.kafka_bootstrap, topic):
            n += 1
            if record.value is not None:  # a tombstone
                try:
                    read(record.value)
                except (ValidationError, ValueError):
                    run.unreadable += 1
            if progress is not None and n % 500 == 0:
                progress(topic, n, total)
        if progress is not None:
            progress(topic, total, total)
    for results in run.results.values():
        results.sort(key=lambda r: r.at)
    return run


# ---- one notice's story ------------------------------------------------------------------


def _iso(at: dt.datetime | None) -> str | None:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if at is not None else None


def _event_time(job: NoticeJob) -> dt.datetime | None:
    text = job.event.get("occurred_at")
    try:
        at = dt.datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def outcome(results: Iterable[DeliveryResult]) -> DeliveryStatus | None:
    """Where a notice ended up: a final status is never overwritten, others only move forward."""
    current: DeliveryStatus | None = None
    for r in results:
        if current in _FINAL or (current is not None and r.status not in _FINAL
                                 and _RANK[r.status] < _RANK[current]):
            continue
        current = r.status
    return current


@dataclass(frozen=True)
class Evidence:
    """One notice: when its event occurred, its first try, its delivery receipt, the
    registrant's acknowledgement of the event, its deadline and the verdict."""

    notice_id: str
    event_id: str
    registration_id: str
    event_type: str
    channel: str
    event_at: dt.datetime | None
    first_try_at: dt.datetime | None
    delivered_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    deadline_at: dt.datetime | None
    verdict: str
    #: The notice's last status (``pending``: nothing recorded yet; ``on_hold``: kept back by an open hold).
    outcome: str
    #: The deadline had passed when the event occurred: upstream's lateness, not savin's.
    unmeetable: bool
    hold_id: str | None
    corrects: str | None

    def record(self) -> dict[str, Any]:
        """Its fields as CSV and JSON give them (times in ISO 8601, UTC)."""
        return {f: (_iso(v) if isinstance(v, dt.datetime) else v) for f, v in self.__dict__.items()}


EVIDENCE_FIELDS = tuple(Evidence.__dataclass_fields__)


def _story(run: Run, job: NoticeJob, policy: Policy, now: dt.datetime) -> Evidence:
    results = run.results.get(job.notice_id, [])
    first_try = next((r.at for r in results if r.source == "attempt" and r.status in _TRIES), None)
    delivered = next((r.at for r in results if reached(r.status, job.channel.value)), None)
    ack = run.acks.get((job.registration_id, job.event_id))
    acknowledged = ack.at if ack is not None else None
    status = outcome(results)
    hold_id = run.held.get(job.notice_id)
    occurred = _event_time(job)
    deadline = None
    if occurred is not None:
        try:
            deadline = deadline_for(policy, job.event_type, occurred, job.event.get("payload"))
        except ValueError:
            deadline = None  # a payload without the time its rule needs: no deadline can be given
    if deadline is None:
        verdict = NO_DEADLINE
    elif delivered is None and acknowledged is None and status in NO_LONGER_OWED:
        verdict = NOT_OWED
    else:
        v = judge(deadline, delivered, acknowledged, now)
        verdict = (Verdict.PENDING if v is Verdict.DUE_SOON else v).value
    return Evidence(str(job.notice_id), str(job.event_id), job.registration_id, job.event_type, job.channel.value,
                    occurred, first_try, delivered, acknowledged, deadline.due if deadline else None, verdict,
                    _shown_outcome(run, job.notice_id, status),
                    bool(deadline and deadline.unmeetable), str(hold_id) if hold_id else None,
                    str(job.corrects) if job.corrects else None)


def _shown_outcome(run: Run, notice_id: uuid.UUID, status: DeliveryStatus | None) -> str:
    if status is not None:
        return status.value
    hold = run.holds.get(run.held[notice_id]) if notice_id in run.held else None
    return "on_hold" if hold is not None and hold.state.value == "open" else "pending"


def _in_period(run: Run, period: Period) -> list[NoticeJob]:
    return sorted((j for j in run.jobs.values() if j.created_at in period),
                  key=lambda j: (j.created_at, str(j.notice_id)))


def deadline_report(run: Run, period: Period, policy: Policy, now: dt.datetime) -> list[Evidence]:
    """The evidence of every notice made in ``period``, oldest first; verdicts as of ``now``."""
    return [_story(run, job, policy, now) for job in _in_period(run, period)]


def evidence_csv(rows: Iterable[Evidence]) -> str:
    """The evidence as CSV: a header of :data:`EVIDENCE_FIELDS`, a row per notice (empty: none)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, EVIDENCE_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else str(v).lower() if isinstance(v, bool) else v)
                         for k, v in row.record().items()})
    return buffer.getvalue()


def evidence_document(period: Period, now: dt.datetime, policy: str, rows: Iterable[Evidence]) -> dict[str, Any]:
    """The evidence as JSON: the period, when it was made, the policy file and a record per notice."""
    return {"period": period.as_json(), "generated_at": _iso(now), "policy": policy,
            "notices": [r.record() for r in rows]}


# ---- the statistics -----------------------------------------------------------------------


@dataclass(frozen=True)
class Statistics:
    period: Period
    generated_at: dt.datetime
    #: Registrations by change (new, changed, cancelled) and language, across channel.
    registrations: stats.Table
    #: Notices by event type and channel, across outcome.
    notices: stats.Table
    #: Seconds from the event to the delivery receipt: ``all`` and per channel.
    delivery_times: dict[str, dict[str, Any]]
    #: (registration, event) pairs asked for an acknowledgement, by event type.
    acknowledgements: stats.Table
    #: Acknowledged / asked, by event type and ``total``.
    acknowledgement_rates: dict[str, float | str | None]
    #: Hours each source's feed was stale within the period.
    feed_downtime_hours: dict[str, float]
    #: Holds opened in the period by kind, across state (holds are not people: not suppressed).
    holds: stats.Table
    #: The notices those holds kept back, by hold kind, across what became of them.
    held_notices: stats.Table

    def as_json(self) -> dict[str, Any]:
        return {"period": self.period.as_json(), "generated_at": _iso(self.generated_at),
                "registrations": self.registrations.as_json(), "notices": self.notices.as_json(),
                "delivery_times": self.delivery_times, "acknowledgements": self.acknowledgements.as_json(),
                "acknowledgement_rates": self.acknowledgement_rates,
                "feed_downtime_hours": self.feed_downtime_hours,
                "holds": self.holds.as_json(threshold=1), "held_notices": self.held_notices.as_json()}

    def tables(self) -> list[tuple[str, stats.Table, int]]:
        """(name, table, threshold) of each count table."""
        return [("registrations", self.registrations, stats.SMALL), ("notices", self.notices, stats.SMALL),
                ("acknowledgements", self.acknowledgements, stats.SMALL), ("holds", self.holds, 1),
                ("held_notices", self.held_notices, stats.SMALL)]

    def long_rows(self) -> list[dict[str, Any]]:
        """Every figure as one (table, row, column, value) row: the CSV form."""
        rows: list[dict[str, Any]] = []
        for name, table, threshold in self.tables():
            for (key, column), value in table.shown(threshold).items():
                rows.append({"table": name, "row": "/".join(key), "column": column, "value": value})
        for channel, figures in self.delivery_times.items():
            for measure, value in figures.items():
                rows.append({"table": "delivery_times", "row": channel, "column": measure, "value": value})
        for event_type, value in self.acknowledgement_rates.items():
            rows.append({"table": "acknowledgement_rates", "row": event_type, "column": "rate", "value": value})
        for source, hours in self.feed_downtime_hours.items():
            rows.append({"table": "feed_downtime_hours", "row": source, "column": "hours", "value": hours})
        return rows


def _registration_rows(run: Run, period: Period) -> list[dict[str, str]]:
    """One row per (registration, change, channel): a registration counts once per kind of change
    in the period, under each channel it has a contact on.

    New and cancelled go by the times every record carries (``created_at``, ``cancelled_at``), so
    they are counted after compaction has kept only a registration's newest record; records without
    them (written before they existed) go by the history read. A change is counted from the records
    still on the topic: one compacted away is not."""
    rows = []
    for history in run.registrations.values():
        kinds: dict[str, StoredRegistration] = {}
        created = next((r.created_at for r in history if r.created_at is not None), None)
        cancelled = next((r.cancelled_at for r in reversed(history) if r.cancelled_at is not None), None)
        if created is not None and created in period:
            kinds["new"] = history[0]
        if cancelled is not None and cancelled in period:
            kinds["cancelled"] = history[-1]
        for before, reg in zip([None, *history], history):
            if reg.updated_at not in period or reg.updated_at in (created, cancelled):
                continue
            if before is None and created is None:
                kinds.setdefault("new", reg)
            elif (cancelled is None and reg.status is RegistrationStatus.CANCELLED
                  and (before is None or before.status is not RegistrationStatus.CANCELLED)):
                kinds["cancelled"] = reg
            else:
                kinds["changed"] = reg
        for kind, reg in kinds.items():
            for channel in dict.fromkeys(c.channel.value for c in reg.contacts):
                rows.append({"change": kind, "language": reg.language, "channel": channel})
    return rows


def _shown_rate(part: int, whole: int, shown_part: Any, shown_whole: Any) -> float | str | None:
    r = stats.rate(part, whole)
    # A rate of a row whose counts were suppressed as complements would give them back.
    if isinstance(r, float) and not (isinstance(shown_part, int) and isinstance(shown_whole, int)):
        return stats.COMPLEMENT
    return r


def statistics(run: Run, period: Period, now: dt.datetime) -> Statistics:
    """The program statistics of ``period``, small cells suppressed (:mod:`savin.domain.stats`)."""
    jobs = _in_period(run, period)
    notice_rows = []
    times: dict[str, list[float]] = {"all": []}
    for job in jobs:
        results = run.results.get(job.notice_id, [])
        notice_rows.append({"event_type": job.event_type, "channel": job.channel.value,
                            "outcome": _shown_outcome(run, job.notice_id, outcome(results))})
        times.setdefault(job.channel.value, [])
        delivered = next((r.at for r in results if reached(r.status, job.channel.value)), None)
        occurred = _event_time(job)
        if delivered is not None and occurred is not None:
            seconds = max(0.0, (delivered - occurred).total_seconds())
            times["all"].append(seconds)
            times[job.channel.value].append(seconds)

    # Asked: a notice that carried an acknowledgement code was tried (a cancelled or rejected one never went out).
    asked: dict[tuple[str, uuid.UUID], str] = {}
    for job in jobs:
        if job.ack_code is not None and any(r.status in _TRIES for r in run.results.get(job.notice_id, ())):
            asked.setdefault((job.registration_id, job.event_id), job.event_type)
    ack_rows = [{"event_type": et, "answer": "acknowledged" if key in run.acks else "unacknowledged"}
                for key, et in asked.items()]
    acks = stats.count_table(ack_rows, ["event_type"], "answer", columns=("acknowledged", "unacknowledged"))
    shown = acks.shown()
    rates = {}
    for key in [*acks.row_keys, (stats.TOTAL,)]:
        rates[key[0]] = _shown_rate(acks.count(key, "acknowledged"), acks.count(key, stats.TOTAL),
                                    shown[(key, "acknowledged")], shown[(key, stats.TOTAL)])

    changes = [change_as_status_change(c) for c in run.feed_changes]
    sources = sorted({c.source for c in run.feed_changes})
    down = downtime_hours(changes, period.start.timestamp(), period.end.timestamp())

    holds = [h for h in run.holds.values() if h.opened_at in period]
    becomes = {"open": "waiting", "approved": "released", "rejected": "rejected"}
    held_rows = [{"kind": h.kind.value, "outcome": becomes[h.state.value]}
                 for hid in run.held.values() if (h := run.holds.get(hid)) is not None and h.opened_at in period]

    return Statistics(
        period, now,
        stats.count_table(_registration_rows(run, period), ["change", "language"], "channel"),
        stats.count_table(notice_rows, ["event_type", "channel"], "outcome"),
        {channel: stats.durations(values) for channel, values in times.items()},
        acks, rates,
        {s: round(down.get(s, 0.0), 4) for s in sources},
        stats.count_table([{"kind": h.kind.value, "state": h.state.value} for h in holds], ["kind"], "state"),
        stats.count_table(held_rows, ["kind"], "outcome"),
    )


def stats_csv(figures: Statistics) -> str:
    """The statistics as CSV, one (table, row, column, value) row per figure."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["table", "row", "column", "value"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({**r, "value": "" if r["value"] is None else r["value"]} for r in figures.long_rows())
    return buffer.getvalue()


def duration_text(seconds: float | None) -> str:
    """A duration for people: 45 s, 12 min 5 s, 3 h 20 min, 2 d 4 h."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 2 * 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 2 * 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"
