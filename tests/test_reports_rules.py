"""The report's rules without a broker: the period's forms and errors, where a notice ends
up, the verdicts at their edges (due soon is still pending, an unmeetable deadline, no
rule, a payload without its time) and registrations counted once per kind of change."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from savin.domain.deadlines import load_policy
from savin.ops.reports import (
    NO_DEADLINE,
    NOT_OWED,
    PeriodError,
    Run,
    deadline_report,
    outcome,
    parse_period,
    statistics,
)
from savin.schemas import DeliveryResult, DeliveryStatus, NoticeJob, StoredRegistration
from savin.schemas.events import Urgency
from savin.schemas.registration import Channel, RegistrationStatus, SealedContact

UTC = dt.UTC
POLICY = load_policy()


@pytest.mark.parametrize("start, end, want", [
    ("2026-11-01", "2026-11-30", ("2026-11-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00")),
    ("2026-11-01", "2026-11-01", ("2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00")),
    ("2026-11-01T06:00:00-06:00", "2026-11-02T06:00:00-06:00",
     ("2026-11-01T12:00:00+00:00", "2026-11-02T12:00:00+00:00")),
    ("2026-11-01T06:00", " 2026-11-01T07:30 ", ("2026-11-01T06:00:00+00:00", "2026-11-01T07:30:00+00:00")),
])
def test_a_period_from_days_or_times(start, end, want):
    p = parse_period(start, end)
    assert (p.start.isoformat(), p.end.isoformat()) == want


@pytest.mark.parametrize("start, end, field, message", [
    ("2026-11-31", "2026-12-01", "from", "--from: '2026-11-31' is not a date such as 2026-11-01"),
    ("2026-11-01", "yesterday", "to", "--to: 'yesterday' is not a date"),
    ("", "2026-11-01", "from", "--from: give the first day"),
    ("2026-11-01", " ", "to", "--to: give the last day"),
    ("2026-11-02", "2026-11-01", "to", "--to must be after --from"),
    ("2026-11-01T10:00", "2026-11-01T10:00", "to", "--to must be after --from"),
])
def test_a_period_it_cannot_read_names_the_option(start, end, field, message):
    with pytest.raises(PeriodError) as e:
        parse_period(start, end)
    assert e.value.field == field and message in e.value.message


def at(minutes: float) -> dt.datetime:
    return dt.datetime(2026, 11, 2, 10, tzinfo=UTC) + dt.timedelta(minutes=minutes)


def result(job: NoticeJob, status: str, minutes: float, source: str = "attempt") -> DeliveryResult:
    return DeliveryResult(notice_id=job.notice_id, registration_id=job.registration_id, event_id=job.event_id,
                          status=DeliveryStatus(status), source=source, at=at(minutes))


def job(event_type: str = "RELEASED", occurred: dt.datetime | None = None, payload: dict | None = None) -> NoticeJob:
    occurred = occurred or at(0)
    return NoticeJob(notice_id=uuid.uuid4(), event_id=uuid.uuid4(), event_type=event_type, urgency=Urgency.URGENT,
                     registration_id="R-1", offender_id="O-1", channel=Channel.SMS, address_sealed="k1:x",
                     language="en", timezone="America/Chicago",
                     event={"occurred_at": occurred.isoformat(), "payload": payload or {}}, created_at=at(1))


@pytest.mark.parametrize("statuses, want", [
    ([], None),
    (["held", "accepted", "sent", "delivered"], "delivered"),
    (["accepted", "delivered", "sent"], "delivered"),  # a late callback changes nothing
    (["held", "cancelled"], "cancelled"),  # a retraction while it waited for quiet hours to end
    (["retrying", "cancelled", "accepted"], "cancelled"),
    (["accepted", "retrying"], "accepted"),  # never backwards
    (["rejected"], "rejected"),
])
def test_where_a_notice_ends_up(statuses, want):
    j = job()
    got = outcome([result(j, s, n) for n, s in enumerate(statuses)])
    assert (got.value if got else None) == want


def verdict(j: NoticeJob, results: list[DeliveryResult], now: dt.datetime) -> tuple[str, str, bool]:
    run = Run()
    run.add_job(j)
    run.results[j.notice_id] = results
    row, = deadline_report(run, parse_period("2026-11-01", "2026-11-30"), POLICY, now)
    return row.verdict, row.outcome, row.unmeetable


def test_verdicts_at_their_edges():
    released = job()
    # An hour is allowed; a quarter of it before the end is "due soon", which the report calls pending.
    assert verdict(released, [], at(50)) == ("pending", "pending", False)
    assert verdict(released, [result(released, "accepted", 2)], at(61)) == ("missed", "accepted", False)
    assert verdict(released, [result(released, "delivered", 60, "callback")], at(500))[0] == "met"
    assert verdict(released, [result(released, "cancelled", 2)], at(500)) == (NOT_OWED, "cancelled", False)
    assert verdict(released, [result(released, "suppressed", 2)], at(500))[0] == NOT_OWED
    assert verdict(released, [result(released, "failed", 2)], at(500))[0] == "missed"
    # Restitution has no rule in the policy.
    assert verdict(job("RESTITUTION_PAYMENT"), [], at(500))[0] == NO_DEADLINE
    # A hearing set for 10 days ahead cannot be told 30 days before it: missed, and unmeetable.
    hearing = job("HEARING_RESCHEDULED", payload={"starts_at": (at(0) + dt.timedelta(days=10)).isoformat()})
    assert verdict(hearing, [result(hearing, "delivered", 5, "callback")], at(500)) == ("missed", "delivered", True)
    # A payload without the time its rule needs gives no deadline rather than a wrong one.
    assert verdict(job("HEARING_SCHEDULED"), [], at(500))[0] == NO_DEADLINE


def registration(rid: str, day: int, status: str = "active", channels=("sms",)) -> StoredRegistration:
    return StoredRegistration(registration_id=rid, offender_id="O-1", language="en", event_types=None, pin_hash=None,
                              status=RegistrationStatus(status), timezone="America/Chicago",
                              updated_at=dt.datetime(2026, 11, day, tzinfo=UTC),
                              contacts=tuple(SealedContact(channel=Channel(c), address_sealed="k1:x", verified=True)
                                             for c in channels))


def test_registrations_count_once_per_kind_of_change():
    run, B = Run(), ("sms", "sms", "email")  # two phones and an email: counted once per channel
    for reg in (registration("A", 2), registration("A", 3), registration("A", 4), registration("A", 5, "cancelled"),
                registration("A", 5, "cancelled"),  # the same record again (moved by the match stage)
                registration("B", 1, channels=B), registration("B", 10, "cancelled", B),
                registration("B", 11, "cancelled", B)):  # a change to a cancelled one is a change
        run.add_registration(reg)
    figures = statistics(run, parse_period("2026-11-02", "2026-11-30"), at(0))
    counts = figures.registrations.counts
    assert counts == {(("new", "en"), "sms"): 1, (("changed", "en"), "sms"): 2, (("changed", "en"), "email"): 1,
                      (("cancelled", "en"), "sms"): 2, (("cancelled", "en"), "email"): 1}
