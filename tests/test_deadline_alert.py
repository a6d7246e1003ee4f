"""The deliver stage's deadline alert: a notice still undelivered as its statutory
deadline approaches counts as at risk (and a warning names it, once), and as missed
once the deadline passes; a notice delivered in time counts as neither, and one first
met after its deadline counts as missed at once.

Real broker, the worker as its own process, the fake Twilio and the SMTP server; the
policy is a file the test writes, with a deadline a minute after the event."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from support import event, eventually, metric, phone
from test_corrections import jobs, publish, registration, result_of

from savin.schemas import DeliveryStatus

pytestmark = pytest.mark.e2e

POLICY = """
timezone = "UTC"

[rules.RELEASED]
kind = "after_event"
within = "1 minute"
warn = "1 minute"
basis = "savin"
source = "a test's policy"
"""


async def test_an_undelivered_notice_is_at_risk_before_its_deadline_and_missed_after(stack, tmp_path):
    policy = tmp_path / "deadlines.toml"
    policy.write_text(POLICY)
    limited = next(n for n, c in stack.twilio.fail_numbers.items() if c == 20429)  # rate limited: retried
    reg = registration(stack, "R-DEADLINE", ("sms", limited), ("email", "deadline@example.org"))
    worker = stack.start_worker(SAVIN_STAGES="deliver", SAVIN_DEADLINE_POLICY=str(policy),
                                SAVIN_LAG_INTERVAL="1", SAVIN_RETRY_DELAYS="600")

    def gauge() -> float:
        return metric(worker.metrics(), "savin_deadline_at_risk_notices")

    def missed() -> float:
        return metric(worker.metrics(), "savin_deadline_missed_total", event_type="RELEASED")

    # A notice first met after its deadline has missed it, however soon it is sent.
    late_reg = registration(stack, "R-DEADLINE-LATE", ("sms", phone(1501)))
    late_event = event("RELEASED", late_reg.offender_id,
                       occurred_at=(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).isoformat())
    (late,) = jobs(late_event, late_reg)
    await publish(stack, late)
    await result_of(stack, late.notice_id, DeliveryStatus.ACCEPTED, "the late notice sent")
    await eventually(lambda: missed() == 1, 30, "the late notice counted as missed")
    assert gauge() == 0

    # The event occurred 30 s ago: its notices are due 30 s from now, at risk from the start.
    occurred = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=30)
    due = occurred + dt.timedelta(minutes=1)
    released = event("RELEASED", reg.offender_id, occurred_at=occurred.isoformat())
    notices = {j.channel.value: j for j in jobs(released, reg)}
    await publish(stack, *notices.values())
    await result_of(stack, notices["email"].notice_id, DeliveryStatus.ACCEPTED, "the email taken by the server")
    await result_of(stack, notices["sms"].notice_id, DeliveryStatus.RETRYING, "the text waiting for a retry")

    # The text is at risk (the email, taken by the mail server, met its deadline).
    await eventually(lambda: gauge() == 1, 30, "the text counted at risk")
    assert dt.datetime.now(dt.timezone.utc) < due, "the alert came after the deadline"
    assert missed() == 1

    # Once the deadline has passed, it is missed and no longer at risk.
    await eventually(lambda: missed() == 2, 60, "the text counted as missed")
    assert dt.datetime.now(dt.timezone.utc) > due
    await eventually(lambda: gauge() == 0, 30, "the at-risk count back to none")

    sms_id, email_id = str(notices["sms"].notice_id), str(notices["email"].notice_id)

    def logged() -> str | None:  # the worker's log reaches its file a moment after a line is written
        text = worker.tail(200_000)
        return text if f"deadline at risk notice={sms_id}" in text else None

    log = await eventually(logged, 30, "the warning naming the notice at risk in the worker's log")
    assert log.count(f"deadline at risk notice={sms_id}") == 1
    assert log.count(f"deadline missed notice={late.notice_id}") == 1 and f"risk notice={late.notice_id}" not in log
    # (The text's own "missed" line came within a minute of the late notice's: the worker's
    # repeat filter holds it back and counts it in the next such line.)
    assert f"deadline at risk notice={email_id}" not in log and f"deadline missed notice={email_id}" not in log
    assert limited not in log and "deadline@example.org" not in log
    assert json.dumps(released["offender_name"])[1:-1] not in log
