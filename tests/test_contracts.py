"""The exported JSON Schemas and the models agree: every document one of them
refuses the other refuses too, and the valid examples pass both.

The schemas are checked as a producer would check them, with a JSON Schema
validator and format checks off, so only what the schema itself says counts.
"""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from pydantic import ValidationError
from support import EXAMPLES

from savin.schemas import EVENT_TYPES, Registration, parse_event
from savin.schemas.export import SCHEMA_BASE, export, published_schemas

SCHEMAS = published_schemas()
UNION = jsonschema.Draft202012Validator(SCHEMAS["custody-event.schema.json"])
PER_TYPE = {t: jsonschema.Draft202012Validator(SCHEMAS[f"events/{t}.schema.json"]) for t in EVENT_TYPES}
REGISTRATION = jsonschema.Draft202012Validator(SCHEMAS["registration.schema.json"])
MISSING = object()


def example(event_type: str) -> dict:
    return json.loads((EXAMPLES / "events" / f"{event_type}.json").read_text())


def changed(doc, path: str, value):
    """A copy of ``doc`` with the dotted ``path`` set to ``value`` (or removed, for MISSING)."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is MISSING:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def model_accepts_event(text: str) -> bool:
    try:
        parse_event(text)
    except ValidationError:
        return False
    return True


def event_verdicts(event_type: str, doc) -> dict[str, bool]:
    """Whether the union schema, the event type's own schema and the model accept ``doc``."""
    text = json.dumps(doc)
    value = json.loads(text)
    return {"union schema": UNION.is_valid(value), "type schema": PER_TYPE[event_type].is_valid(value),
            "model": model_accepts_event(text)}


def registration_verdicts(doc) -> dict[str, bool]:
    text = json.dumps(doc)
    try:
        Registration.model_validate_json(text)
        model = True
    except ValidationError:
        model = False
    return {"schema": REGISTRATION.is_valid(json.loads(text)), "model": model}


# ---- what both refuse ------------------------------------------------------------

BAD_TIMESTAMPS = {
    "epoch seconds as a string": "1763660000",
    "epoch seconds with a fraction": "1763660000.5",
    "epoch seconds as a number": 1763660000,
    "no offset": "2026-11-20T14:05:00",
    "space instead of T": "2026-11-20 14:05:00-06:00",
    "no seconds": "2026-11-20T14:05-06:00",
    "offset without a colon": "2026-11-20T14:05:00+0600",
    "a date only": "2026-11-20",
    "ISO 8601 basic form": "20261120T140500Z",
    "hour 24": "2026-11-20T24:00:00Z",
    "second 60": "2026-11-20T14:05:60Z",
    "30 February": "2026-02-30T14:05:00Z",
    "29 February in a common year": "2027-02-29T14:05:00Z",
    "a dot without digits": "2026-11-20T14:05:00.Z",
    "more than nanoseconds": "2026-11-20T14:05:00.1234567891Z",
    "offset hour 24": "2026-11-20T14:05:00+24:00",
    "year 0": "0000-11-20T14:05:00Z",
    "empty": "",
    "null": None,
}
TIMESTAMP_FIELDS = [("RELEASED", "occurred_at"), ("HEARING_SCHEDULED", "payload.starts_at"),
                    ("HEARING_RESCHEDULED", "payload.starts_at"),
                    ("EVENT_RETRACTED", "payload.retracted_occurred_at")]

BAD_DATES = {
    "no dashes": "20270315",
    "one-digit month and day": "2027-3-5",
    "a date-time": "2027-03-15T00:00:00Z",
    "29 February in a common year": "2027-02-29",
    "29 February 1900": "1900-02-29",
    "month 13": "2027-13-01",
    "31 April": "2027-04-31",
    "year 0": "0000-01-01",
    "day first": "15/03/2027",
    "epoch seconds": "1763660000",
    "a number": 20270315,
}

BAD_AMOUNTS = {
    "three decimals": "250.005",
    "three decimals as a number": 250.005,
    "1e13 as a string": "1e13",
    "1e13 as a number": 1e13,
    "an exponent": "1e3",
    "a trillion": "1000000000000",
    "a trillion with cents": "1000000000000.00",
    "negative": "-5",
    "a plus sign": "+5",
    "a leading space": " 5",
    "a trailing space": "5 ",
    "a leading zero": "05",
    "no integer part": ".5",
    "no decimals after the dot": "5.",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "a thousands separator": "1,000.00",
    "an integer number": 250,
    "a number with cents": 250.5,
    "empty": "",
    "null": None,
}

EVENT_REJECTIONS: dict[str, tuple[str, str, object]] = {
    **{f"timestamp {where}: {what}": (t, where, v)
       for t, where in TIMESTAMP_FIELDS for what, v in BAD_TIMESTAMPS.items()},
    **{f"date: {what}": ("RELEASE_SCHEDULED", "payload.projected_release_date", v) for what, v in BAD_DATES.items()},
    **{f"amount {field}: {what}": (t, f"payload.{field}", v) for t in ("RESTITUTION_ORDERED", "RESTITUTION_PAYMENT")
       for field in ("amount", "balance") for what, v in BAD_AMOUNTS.items()},
    # unknown fields
    "unknown envelope field": ("RELEASED", "priority", "high"),
    "unknown payload field": ("RELEASED", "payload.cell", "B-12"),
    "a payload where none is defined": ("DECEASED", "payload.cause", "x"),
    # wrong types
    "offender_name a number": ("RELEASED", "offender_name", 7),
    "facility a number": ("ESCAPED", "payload.facility", 42),
    "payload a list": ("ESCAPED", "payload", []),
    "payload a string": ("ESCAPED", "payload", "Farmington"),
    "payload null": ("DECEASED", "payload", None),
    "schema_version a string": ("RELEASED", "schema_version", "1"),
    "schema_version true": ("RELEASED", "schema_version", True),
    "event_id a number": ("RELEASED", "event_id", 5),
    "offender_id a number": ("RELEASED", "offender_id", 1048576),
    "source null": ("RELEASED", "source", None),
    "release_type a number": ("RELEASED", "payload.release_type", 1),
    "cancellation reason a number": ("HEARING_CANCELLED", "payload.reason", 5),
    "retracted_event_id a number": ("EVENT_RETRACTED", "payload.retracted_event_id", 5),
    # values outside an enumeration
    "release_type unknown": ("RELEASED", "payload.release_type", "vacation"),
    "release_type in capitals": ("RELEASED", "payload.release_type", "PAROLE"),
    "decision unknown": ("HEARING_DECISION", "payload.decision", "maybe"),
    "event_type unknown": ("RELEASED", "event_type", "TELEPORTED"),
    "event_type in lower case": ("RELEASED", "event_type", "released"),
    "a retraction of a retraction": ("EVENT_RETRACTED", "payload.retracted_event_type", "EVENT_RETRACTED"),
    "currency in lower case": ("RESTITUTION_PAYMENT", "payload.currency", "usd"),
    "currency of two letters": ("RESTITUTION_PAYMENT", "payload.currency", "US"),
    "schema_version 2": ("RELEASED", "schema_version", 2),
    # missing fields
    "event_id missing": ("RELEASED", "event_id", MISSING),
    "event_type missing": ("RELEASED", "event_type", MISSING),
    "offender_id missing": ("ESCAPED", "offender_id", MISSING),
    "occurred_at missing": ("RELEASED", "occurred_at", MISSING),
    "source missing": ("RELEASED", "source", MISSING),
    "payload missing": ("RELEASED", "payload", MISSING),
    "payload field missing": ("TRANSFERRED", "payload.to_facility", MISSING),
    "retracted_event_type missing": ("EVENT_RETRACTED", "payload.retracted_event_type", MISSING),
    # ids
    "offender_id with a space": ("RELEASED", "offender_id", "MO 1048576"),
    "offender_id with a slash": ("RELEASED", "offender_id", "MO/1048576"),
    "offender_id with an accent": ("RELEASED", "offender_id", "MO-10485é"),
    "offender_id empty": ("RELEASED", "offender_id", ""),
    "offender_id of 65 characters": ("RELEASED", "offender_id", "M" * 65),
    "event_id not a UUID": ("RELEASED", "event_id", "not-a-uuid"),
    "event_id without hyphens": ("RELEASED", "event_id", "fbf20f4ab2c551958a2a6775ccad2743"),
    "event_id in braces": ("RELEASED", "event_id", "{fbf20f4a-b2c5-5195-8a2a-6775ccad2743}"),
    "event_id as a URN": ("RELEASED", "event_id", "urn:uuid:fbf20f4a-b2c5-5195-8a2a-6775ccad2743"),
    "event_id one digit short": ("RELEASED", "event_id", "fbf20f4a-b2c5-5195-8a2a-6775ccad274"),
    "retracted_event_id without hyphens": ("EVENT_RETRACTED", "payload.retracted_event_id",
                                           "3d9b2f4e5c1a4b7e9f006a1b2c3d4e5f"),
    # lengths
    "offender_name empty": ("RELEASED", "offender_name", ""),
    "offender_name of 201 characters": ("RELEASED", "offender_name", "x" * 201),
    "facility empty": ("ESCAPED", "payload.facility", ""),
    "how_to_attend of 501 characters": ("HEARING_SCHEDULED", "payload.how_to_attend", "x" * 501),
}


@pytest.mark.parametrize("case", list(EVENT_REJECTIONS))
def test_schema_and_model_both_refuse(case):
    event_type, path, value = EVENT_REJECTIONS[case]
    verdicts = event_verdicts(event_type, changed(example(event_type), path, value))
    assert verdicts == {"union schema": False, "type schema": False, "model": False}


@pytest.mark.parametrize("document", [[], [example("RELEASED")], "RELEASED", None, 5],
                         ids=["empty array", "array of an event", "string", "null", "number"])
def test_a_document_that_is_not_one_object_is_refused_by_both(document):
    assert event_verdicts("RELEASED", document) == {"union schema": False, "type schema": False, "model": False}


# ---- what both accept ------------------------------------------------------------------

GOOD_TIMESTAMPS = ["2026-11-20T14:05:00Z", "2026-11-20T14:05:00.5+05:30", "2026-11-20T14:05:00.123456789Z",
                   "2028-02-29T00:00:00-00:00", "2000-02-29T23:59:59+14:00", "2026-11-20t14:05:00z"]
GOOD_AMOUNTS = ["0", "0.5", "7", "250.10", "999999999999.99"]


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_example_is_accepted_by_both(event_type):
    assert event_verdicts(event_type, example(event_type)) == {"union schema": True, "type schema": True,
                                                               "model": True}


def test_demo_events_are_accepted_by_both():
    for line in (EXAMPLES / "demo-events.jsonl").read_text().splitlines():
        doc = json.loads(line)
        assert event_verdicts(doc["event_type"], doc) == {"union schema": True, "type schema": True,
                                                          "model": True}, line


@pytest.mark.parametrize("value", GOOD_TIMESTAMPS)
@pytest.mark.parametrize("event_type,path", TIMESTAMP_FIELDS)
def test_rfc3339_variants_are_accepted_by_both(event_type, path, value):
    verdicts = event_verdicts(event_type, changed(example(event_type), path, value))
    assert verdicts == {"union schema": True, "type schema": True, "model": True}


@pytest.mark.parametrize("value", GOOD_AMOUNTS)
def test_amounts_up_to_two_decimals_are_accepted_by_both(value):
    verdicts = event_verdicts("RESTITUTION_PAYMENT", changed(example("RESTITUTION_PAYMENT"), "payload.amount", value))
    assert verdicts == {"union schema": True, "type schema": True, "model": True}


@pytest.mark.parametrize("value", ["2028-02-29", "2000-02-29", "0001-01-01", "9999-12-31"])
def test_calendar_dates_are_accepted_by_both(value):
    doc = changed(example("RELEASE_SCHEDULED"), "payload.projected_release_date", value)
    assert event_verdicts("RELEASE_SCHEDULED", doc) == {"union schema": True, "type schema": True, "model": True}


def test_optional_envelope_fields_may_be_left_out_or_given():
    assert event_verdicts("RELEASED", changed(example("RELEASED"), "schema_version", MISSING))["model"]
    for doc in (changed(example("RELEASED"), "schema_version", MISSING), changed(example("COMMUTATION"), "payload",
                                                                                  MISSING),
                changed(example("HEARING_CANCELLED"), "payload.reason", None),
                changed(example("RELEASED"), "event_id", "FBF20F4A-B2C5-5195-8A2A-6775CCAD2743")):
        assert set(event_verdicts(doc["event_type"], doc).values()) == {True}, doc


def test_the_model_keeps_what_it_was_sent():
    doc = changed(example("RESTITUTION_PAYMENT"), "occurred_at", "2026-11-20T14:05:00.250-06:00")
    ev = parse_event(json.dumps(doc))
    assert str(ev.payload.amount) == "250.00" and ev.occurred_at.isoformat() == "2026-11-20T14:05:00.250000-06:00"
    # What savin writes back out (the notice job's copy of the event) passes the schema too.
    assert UNION.is_valid(ev.model_dump(mode="json"))


# ---- registrations ----------------------------------------------------------------------

REG = json.loads((EXAMPLES / "registrations.jsonl").read_text().splitlines()[0])

REGISTRATION_REJECTIONS = {
    "an sms address that is not E.164": ("contacts.0.address", "573-555-0101"),
    "an email address on an sms contact": ("contacts.0.address", "alice@example.org"),
    "a phone number on an email contact": ("contacts.1.address", "+15735550101"),
    "an email address without a domain": ("contacts.1.address", "alice@example"),
    "no contacts": ("contacts", []),
    "eleven contacts": ("contacts", [{"channel": "email", "address": f"a{i}@example.org"} for i in range(11)]),
    "a channel savin does not know": ("contacts.0.channel", "fax"),
    "verified as a string": ("contacts.0.verified", "yes"),
    "an unknown event type": ("event_types", ["RELEASED", "NOPE"]),
    "a PIN of two digits": ("pin", "12"),
    "a PIN as a number": ("pin", 4821),
    "a language in capitals": ("language", "EN"),
    "an unknown status": ("status", "paused"),
    "an unknown field": ("nickname", "Al"),
    "an unknown contact field": ("contacts.0.label", "home"),
    "an empty name (leave it out instead)": ("name", ""),
    "a missing offender_id": ("offender_id", MISSING),
    "a registration_id with a space": ("registration_id", "R 1001"),
    "a name of 201 characters": ("name", "x" * 201),
}


@pytest.mark.parametrize("case", list(REGISTRATION_REJECTIONS))
def test_registration_schema_and_model_both_refuse(case):
    path, value = REGISTRATION_REJECTIONS[case]
    assert registration_verdicts(changed(REG, path, value)) == {"schema": False, "model": False}


def test_example_registrations_are_accepted_by_both():
    for line in (EXAMPLES / "registrations.jsonl").read_text().splitlines():
        assert registration_verdicts(json.loads(line)) == {"schema": True, "model": True}, line
    cancelled = changed(changed(REG, "status", "cancelled"), "event_types", ["RELEASED", "ESCAPED"])
    assert registration_verdicts(cancelled) == {"schema": True, "model": True}


# ---- the files themselves ------------------------------------------------------------------


def test_every_schema_has_its_own_id_and_is_a_valid_schema(tmp_path):
    paths = export(tmp_path)
    ids = []
    for path in paths:
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"] == SCHEMA_BASE + path.relative_to(tmp_path).as_posix()
        ids.append(schema["$id"])
    assert len(ids) == len(set(ids)) == len(SCHEMAS)


def test_patterns_use_only_ascii_digits():
    # In Python's re (and so in Python JSON Schema validators) \d also matches
    # other scripts' digits, which savin would refuse.
    assert "\\d" not in json.dumps(SCHEMAS)
    doc = changed(example("RELEASED"), "occurred_at", "２０２６-11-20T14:05:00Z")
    assert event_verdicts("RELEASED", doc) == {"union schema": False, "type schema": False, "model": False}
