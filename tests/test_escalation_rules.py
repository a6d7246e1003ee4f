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


# ---- one ladder's state, step by step --------------------------------------------------------


def open_ladder(only_calls: bool = False):
    from savin.domain.escalation import ladder_opened
    from savin.schemas.escalation import Escalation, EscalationState

    esc = Escalation(registration_id="R-1", event_id=uuid.uuid4(), event_type="ESCAPED", offender_id="O-1",
                     state=EscalationState.OPEN, code="ACDE", started_at=T0, updated_at=T0)
    return ladder_opened(esc, LADDER, T0, only_calls)


def test_a_ladder_calls_after_the_first_wait_or_at_once_when_there_is_nothing_but_calls():
    assert open_ladder().next_call_at == T0 + 5 * MIN
    assert open_ladder(only_calls=True).next_call_at == T0


def test_a_round_of_calls_plans_the_next_as_unanswered_until_a_result_says_otherwise():
    from savin.domain.escalation import call_ended, call_placed

    placed = call_placed(open_ladder(), LADDER, T0 + 5 * MIN)
    assert (placed.calls, placed.last_call_at, placed.next_call_at) == (1, T0 + 5 * MIN, T0 + 35 * MIN)
    answered = call_ended(placed, LADDER, CallResult.ANSWERED, T0 + 6 * MIN)
    assert answered.next_call_at == T0 + 125 * MIN and answered.last_result is CallResult.ANSWERED
    # The better result of a round counts: a second number nobody answered changes nothing.
    assert call_ended(answered, LADDER, CallResult.UNANSWERED, T0 + 7 * MIN).next_call_at == T0 + 125 * MIN
    assert call_ended(placed, LADDER, CallResult.CONFIRMED, T0 + 6 * MIN).next_call_at is None


def test_a_text_lost_for_good_brings_the_first_call_forward_and_nothing_else():
    from savin.domain.escalation import call_placed, channel_lost

    assert channel_lost(open_ladder(), T0 + MIN).next_call_at == T0 + MIN
    placed = call_placed(open_ladder(), LADDER, T0 + 5 * MIN)
    assert channel_lost(placed, T0 + 6 * MIN) == placed  # a call has already been made


def test_timers_come_due_in_order_and_the_pending_changes_count():
    from savin.streams.checkpoint import Pending
    from savin.streams.store import MemoryStore
    from savin.streams.timers import due_of, due_timers, timer_key

    store = MemoryStore()
    later, soon, now = timer_key(T0 + 2 * MIN, "c", "b"), timer_key(T0 + MIN, "c", "a"), T0 + 90 * dt.timedelta(seconds=1)
    store.write({later: b"2", soon: b"1", timer_key(T0 - MIN, "g", "z"): b"0"})
    assert due_of(soon) == T0 + MIN
    assert [v for _, v in due_timers(store, None, now, 10)] == [b"0", b"1"]
    pending = Pending(store)
    pending.delete(soon)
    pending.put(timer_key(T0, "q", "x"), b"new")
    assert [v for _, v in due_timers(store, pending, now, 10)] == [b"0", b"new"]
    assert [v for _, v in due_timers(store, pending, T0 + 3 * MIN, 1)] == [b"0"]
