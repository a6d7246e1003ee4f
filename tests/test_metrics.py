"""The delivery metrics a real worker exports: what each provider said of each
notice (at the send and in status callbacks) by its error code, the backlogs
of retries, open ladders and held notices, the publish-to-accepted latency,
and the build's version. Label values are ids and codes, never personal data."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from support import event, eventually, metric, phone, registration

from savin import __version__, metrics
from savin.dev.testing.fake_twilio import FakeTwilio
from savin.streams.store import MemoryStore
from savin.streams.timers import count_timers, timer_key


def _number(table: dict[str, int], code: int) -> str:
    return next(n for n, c in table.items() if c == code)


def test_a_code_label_is_a_code_or_nothing_a_provider_wrote():
    assert metrics.code_label(None) == metrics.code_label("") == "none"
    assert metrics.code_label("21211") == "21211" and metrics.code_label("5.1.1") == "5.1.1"
    assert metrics.code_label("unknown user jane@example.org") == "other"
    assert metrics.code_label("9" * 40) == "other"


def test_timers_are_counted_by_kind_from_their_keys():
    now = dt.datetime.now(dt.timezone.utc)
    stores = [MemoryStore(), MemoryStore()]
    stores[0].write({timer_key(now, "g", "R-1|E-1"): b"", timer_key(now, "q", "N-1"): b"{}", b"l:N-1": b"{}"})
    stores[1].write({timer_key(now + dt.timedelta(hours=1), "g", "R-2|E-1"): b""})
    assert count_timers(stores) == {"g": 2, "q": 1}


@pytest.mark.e2e
async def test_a_worker_counts_outcomes_by_provider_code_and_reports_backlogs_and_latency(stack):
    accepted, undelivered = phone(11), _number(FakeTwilio.CALLBACK_OUTCOMES, 30003)
    failing, limited = _number(FakeTwilio.FAULT_NUMBERS, 21211), _number(FakeTwilio.FAULT_NUMBERS, 20429)
    now = dt.datetime.now(dt.timezone.utc)
    quiet = {"start": (now - dt.timedelta(hours=1)).strftime("%H:%M"),
             "end": (now + dt.timedelta(hours=2)).strftime("%H:%M")}
    stack.start_web()
    worker = stack.start_worker(SAVIN_LAG_INTERVAL="1", SAVIN_RETRY_DELAYS="600",
                                SAVIN_ESCALATION_CALL_SMS_PHONE="false")
    report = await stack.import_registrations([
        registration("R-M-OK", "O-M", sms=accepted), registration("R-M-UND", "O-M", sms=undelivered),
        registration("R-M-BAD", "O-M", sms=failing), registration("R-M-RETRY", "O-M", sms=limited),
        registration("R-M-QUIET", "O-Q", sms=phone(12), timezone="UTC", quiet_hours=quiet)])
    assert report.errors == []
    await stack.wait_caught_up(stack.topics.registrations)
    await stack.publish_events([json.dumps(event("RELEASED", "O-M")), json.dumps(event("HEARING_SCHEDULED", "O-Q"))])

    def results(**labels: str) -> float:
        return metric(worker.metrics(), "savin_provider_results_total", channel="sms", provider="twilio", **labels)

    await eventually(lambda: results(status="undelivered", code="30003") >= 1, 60, "the undelivered callback")
    await eventually(lambda: results(status="delivered", code="none") >= 1, 30, "the delivered callback")
    assert results(status="accepted", code="none") == 2
    assert results(status="failed", code="21211") == 1
    assert results(status="retrying", code="20429") == 1

    def backlog() -> tuple[float, float, float]:
        text = worker.metrics()
        return (metric(text, "savin_retry_backlog_notices", tier="notice-retries.0"),
                metric(text, "savin_escalation_backlog_ladders"), metric(text, "savin_held_backlog_notices"))

    # One notice waits to be retried; every ladder of the urgent event stays open; one routine notice is held.
    await eventually(lambda: backlog() == (1, 4, 1), 30, "the backlogs")

    text = worker.metrics()
    assert metric(text, "savin_publish_to_accepted_seconds_count", urgency="urgent", channel="sms") == 2
    assert 0 < metric(text, "savin_publish_to_accepted_seconds_sum", urgency="urgent", channel="sms") < 60
    assert metric(text, "savin_build_info", version=__version__) == 1
    for number in (accepted, undelivered, failing, limited):
        assert number not in text
