"""Statutory deadlines: the policy file savin ships, loading errors that name
the file, the type and the field, each notice's deadline, and the verdict on
it. Plain functions; the only file read is the policy."""

from __future__ import annotations

import datetime as dt

import pytest

from savin.domain.deadlines import (
    Basis,
    Deadline,
    Kind,
    Verdict,
    deadline_for,
    judge,
    load_policy,
    parse_duration,
    parse_policy,
)
from savin.domain.vocabulary import EVENT_TYPES
from savin.schemas import payloads

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
MIN, HOUR, DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
POLICY = load_policy()


def test_the_shipped_policy_names_a_source_and_basis_for_every_rule():
    assert POLICY.rules, "the shipped policy has rules"
    for rule in POLICY.rules.values():
        assert rule.event_type in EVENT_TYPES
        assert rule.source and rule.basis in Basis
        assert rule.warn < rule.period


def test_the_shipped_policy_carries_the_statutes_and_its_own_figures():
    assert POLICY.rules["ESCAPED"].kind is Kind.AFTER_EVENT and POLICY.rules["ESCAPED"].period == HOUR
    assert "32.1(7)" in POLICY.rules["ESCAPED"].source
    assert POLICY.rules["HEARING_DECISION"].period == 5 * DAY
    assert "595.209.1(3)" in POLICY.rules["HEARING_DECISION"].source
    hearing = POLICY.rules["HEARING_SCHEDULED"]
    assert (hearing.kind, hearing.field, hearing.period) == (Kind.BEFORE, "starts_at", 30 * DAY)
    # Nothing in savin's vocabulary is a court's final disposition: every figure is savin's default.
    assert {r.basis for r in POLICY.rules.values()} == {Basis.SAVIN}
    assert "RESTITUTION_PAYMENT" not in POLICY.rules


def test_before_rules_name_a_time_their_payload_has():
    for rule in POLICY.rules.values():
        if rule.kind is Kind.BEFORE:
            model = getattr(payloads, EVENT_TYPES[rule.event_type].payload)
            assert rule.field in model.model_fields


@pytest.mark.parametrize(("text", "period"), [
    ("1 hour", HOUR), ("30 minutes", 30 * MIN), ("5 days", 5 * DAY), ("1 day", DAY), ("2hours", 2 * HOUR),
])
def test_durations(text, period):
    assert parse_duration(text) == period


@pytest.mark.parametrize("text", ["", "0 days", "1 fortnight", "1.5 hours", "-1 day", "an hour"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="is not a duration such as '1 hour' or '5 days'"):
        parse_duration(text)


ESCAPED_RULE = '[rules.ESCAPED]\nkind = "after_event"\nwithin = "1 hour"\nbasis = "savin"\nsource = "s"\n'
BAD_POLICIES = [
    ("rules = [", "p.toml: not valid TOML: "),
    ('zone = "UTC"', "p.toml: zone: not a setting of the policy (timezone, rules)"),
    ('timezone = "Mars/Olympus"', "p.toml: timezone: 'Mars/Olympus' is not a time zone"),
    (ESCAPED_RULE.replace("ESCAPED", "FLED"), "p.toml: FLED: not an event type"),
    ('[rules]\nESCAPED = "1 hour"', "p.toml: ESCAPED: must be a table"),
    (ESCAPED_RULE.replace('kind = "after_event"\n', ""), "p.toml: ESCAPED: kind: missing"),
    (ESCAPED_RULE.replace("after_event", "asap"), "p.toml: ESCAPED: kind: 'asap' is not one of after_event, before"),
    (ESCAPED_RULE.replace('within = "1 hour"\n', ""), "p.toml: ESCAPED: within: missing"),
    (ESCAPED_RULE.replace('"1 hour"', '"soon"'), "p.toml: ESCAPED: within: 'soon' is not a duration"),
    (ESCAPED_RULE.replace('"1 hour"', "1"), "p.toml: ESCAPED: within: must be text"),
    (ESCAPED_RULE + 'warn = "1 week"\n', "p.toml: ESCAPED: warn: '1 week' is not a duration"),
    (ESCAPED_RULE.replace('"savin"', '"custom"'), "p.toml: ESCAPED: basis: 'custom' is not one of statute, savin"),
    (ESCAPED_RULE.replace('source = "s"\n', ""), "p.toml: ESCAPED: source: missing"),
    (ESCAPED_RULE.replace('"s"', '"  "'), "p.toml: ESCAPED: source: must be text"),
    (ESCAPED_RULE + 'within_hours = 1\n', "p.toml: ESCAPED: within_hours: not a field of a after_event rule"),
    (ESCAPED_RULE + 'field = "starts_at"\n', "p.toml: ESCAPED: field: not a field of a after_event rule"),
    ('[rules.HEARING_SCHEDULED]\nkind = "before"\nat_least = "30 days"\nbasis = "savin"\nsource = "s"\n',
     "p.toml: HEARING_SCHEDULED: field: missing"),
    ('[rules.HEARING_SCHEDULED]\nkind = "before"\nfield = "begins"\nat_least = "30 days"\nbasis = "savin"\n'
     'source = "s"\n', "p.toml: HEARING_SCHEDULED: field: HEARING_SCHEDULED's payload has no 'begins'"),
    ('[rules.HEARING_SCHEDULED]\nkind = "before"\nfield = "starts_at"\nwithin = "30 days"\nbasis = "savin"\n'
     'source = "s"\n', "p.toml: HEARING_SCHEDULED: within: not a field of a before rule"),
]


@pytest.mark.parametrize(("text", "error"), BAD_POLICIES, ids=[e for _, e in BAD_POLICIES])
def test_loading_errors_name_the_file_the_type_and_the_field(text, error):
    with pytest.raises(ValueError) as e:
        parse_policy(text, "p.toml")
    assert str(e.value).startswith(error)


def test_a_file_that_cannot_be_read_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.toml: cannot be read"):
        load_policy(tmp_path / "missing.toml")
    (tmp_path / "own.toml").write_text(ESCAPED_RULE + 'warn = "10 minutes"\nnote = "n"\n')
    own = load_policy(tmp_path / "own.toml")
    assert own.name.endswith("own.toml") and str(own.timezone) == "UTC"
    assert own.rules["ESCAPED"].warn == 10 * MIN and own.rules["ESCAPED"].note == "n"


def hearing(starts_at):
    return payloads.Hearing(hearing_id="h-1", starts_at=starts_at, location="Jefferson City",
                            how_to_attend="By video link")


DEADLINES = [
    ("escape within an hour", "ESCAPED", None, T0 + HOUR),
    ("release within an hour", "RELEASED", None, T0 + HOUR),
    ("a decision within five days", "HEARING_DECISION", {"hearing_id": "h-1", "decision": "denied"}, T0 + 5 * DAY),
    ("a hearing 30 days before it starts", "HEARING_SCHEDULED", hearing(T0 + 45 * DAY), T0 + 15 * DAY),
    ("a hearing from JSON", "HEARING_SCHEDULED", {"starts_at": "2026-04-16T14:00:00Z"}, T0 + 15 * DAY),
    ("a hearing in another offset", "HEARING_RESCHEDULED", {"starts_at": "2026-04-16T09:00:00-05:00"}, T0 + 15 * DAY),
    # A date alone begins at midnight in the policy's time zone (America/Chicago: UTC-5 in summer).
    ("a release date, Missouri time", "RELEASE_SCHEDULED", {"projected_release_date": "2026-06-10"},
     dt.datetime(2026, 6, 3, 5, 0, tzinfo=UTC)),
    ("a release date as a date", "RELEASE_SCHEDULED", payloads.ReleaseScheduled(
        projected_release_date=dt.date(2026, 12, 10), facility="Algoa"), dt.datetime(2026, 12, 3, 6, 0, tzinfo=UTC)),
]


@pytest.mark.parametrize(("case", "event_type", "payload", "due"), DEADLINES, ids=[c[0] for c in DEADLINES])
def test_deadline_for(case, event_type, payload, due):
    d = deadline_for(POLICY, event_type, T0, payload)
    assert d is not None and d.due == due and d.due.tzinfo == UTC
    assert d.rule is POLICY.rules[event_type] and d.occurred_at == T0


def test_no_rule_no_deadline():
    assert deadline_for(POLICY, "RESTITUTION_PAYMENT", T0, {"amount": "10.00"}) is None


def test_a_hearing_scheduled_too_close_is_unmeetable():
    d = deadline_for(POLICY, "HEARING_RESCHEDULED", T0, hearing(T0 + 10 * DAY))
    assert d.due == T0 - 20 * DAY and d.unmeetable
    assert not deadline_for(POLICY, "HEARING_SCHEDULED", T0, hearing(T0 + 31 * DAY)).unmeetable


@pytest.mark.parametrize(("event_type", "occurred_at", "payload", "error"), [
    ("ESCAPED", T0.replace(tzinfo=None), None, "occurred_at must be timezone-aware"),
    ("HEARING_SCHEDULED", T0, {"starts_at": "2026-04-16T14:00:00"},
     "HEARING_SCHEDULED payload starts_at must be timezone-aware"),
    ("HEARING_SCHEDULED", T0, {"hearing_id": "h-1"},
     "HEARING_SCHEDULED: the payload has no time 'starts_at' for its deadline"),
    ("HEARING_SCHEDULED", T0, None, "HEARING_SCHEDULED: the payload has no time 'starts_at'"),
])
def test_bad_deadline_inputs(event_type, occurred_at, payload, error):
    with pytest.raises(ValueError, match=error):
        deadline_for(POLICY, event_type, occurred_at, payload)


ESCAPE = deadline_for(POLICY, "ESCAPED", T0)  # due T0 + 1 h, warned from T0 + 45 min
# (delivered, acknowledged, now), as minutes after the escape; None: not yet.
VERDICTS = [
    ("delivered in time", 12, None, 13, Verdict.MET),
    ("delivered at the deadline", 60, None, 90, Verdict.MET),
    ("delivered late", 61, None, 61, Verdict.MISSED),
    ("acknowledged before any delivery receipt", None, 20, 30, Verdict.MET),
    ("acknowledged in time, receipt late", 70, 50, 80, Verdict.MET),
    ("delivered in time, acknowledged late", 30, 200, 300, Verdict.MET),
    ("acknowledged late only", None, 75, 80, Verdict.MISSED),
    ("nothing yet", None, None, 10, Verdict.PENDING),
    ("nothing, margin begins", None, None, 45, Verdict.DUE_SOON),
    ("nothing, at the deadline", None, None, 60, Verdict.DUE_SOON),
    ("nothing, deadline passed", None, None, 61, Verdict.MISSED),
]


@pytest.mark.parametrize(("case", "delivered", "acknowledged", "now", "verdict"), VERDICTS,
                         ids=[c[0] for c in VERDICTS])
def test_judge(case, delivered, acknowledged, now, verdict):
    def at(minutes):
        return None if minutes is None else T0 + minutes * MIN

    assert judge(ESCAPE, at(delivered), at(acknowledged), at(now)) is verdict


def test_warn_margin_per_rule():
    decision = deadline_for(POLICY, "HEARING_DECISION", T0, None)
    assert decision.warn_from == T0 + 5 * DAY - POLICY.rules["HEARING_DECISION"].warn
    assert judge(decision, None, None, decision.warn_from - MIN) is Verdict.PENDING
    assert judge(decision, None, None, decision.warn_from) is Verdict.DUE_SOON


def test_a_deadline_is_plain_data():
    d = Deadline("ESCAPED", T0, T0 + HOUR, POLICY.rules["ESCAPED"])
    assert d == ESCAPE and hash(d) == hash(ESCAPE)
