"""The escalation ladder and acknowledgement codes, as pure rules."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from savin.domain.escalation import ACK_ALPHABET, CallResult, Ladder, ack_code, next_call

T0 = dt.datetime(2026, 12, 3, 3, 0, tzinfo=dt.timezone.utc)
MIN = dt.timedelta(minutes=1)
LADDER = Ladder()


@pytest.mark.parametrize("last_call_at, result, due", [
    (None, None, T0 + 5 * MIN),
    (T0 + 5 * MIN, CallResult.UNANSWERED, T0 + 35 * MIN),
    (T0 + 5 * MIN, CallResult.MACHINE, T0 + 35 * MIN),
    (T0 + 5 * MIN, CallResult.ANSWERED, T0 + 125 * MIN),
    (T0 + 5 * MIN, CallResult.CONFIRMED, None),
    (T0 + 23 * 60 * MIN + 30 * MIN, CallResult.UNANSWERED, None),  # the next would be past 24 h
    (T0 + 23 * 60 * MIN + 29 * MIN, CallResult.UNANSWERED, T0 + 23 * 60 * MIN + 59 * MIN),
])
def test_next_call(last_call_at, result, due):
    assert next_call(LADDER, T0, last_call_at, result) == due


def test_an_unanswered_ladder_calls_at_most_48_times_in_a_day():
    calls, at, result = [], None, None
    while (due := next_call(LADDER, T0, at, result)) is not None:
        calls.append(due)
        at, result = due, CallResult.UNANSWERED
    assert calls[0] == T0 + 5 * MIN and calls[-1] < T0 + dt.timedelta(hours=24)
    assert len(calls) == 48


def test_an_ack_code_is_short_unambiguous_stable_and_differs_per_event_and_registration():
    event = str(uuid.uuid4())
    code = ack_code(event, "R-1")
    assert len(code) == 4 and set(code) <= set(ACK_ALPHABET)
    assert ack_code(event, "R-1") == code
    codes = {ack_code(str(uuid.uuid4()), "R-1") for _ in range(500)}
    assert len(codes) > 480
    assert not set(ACK_ALPHABET) & set("0O1IL5S2Z8B6G")
