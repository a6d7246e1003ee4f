"""Event, registration and settings schemas: valid input passes, invalid input
is refused with an error that names the field."""

import json

import jsonschema
import pytest
from pydantic import ValidationError
from support import EXAMPLES

from savin.schemas import EVENT_TYPES, Registration, describe_errors, parse_event
from savin.schemas.export import export
from savin.settings import SettingsError, load_settings


def example(event_type: str) -> dict:
    return json.loads((EXAMPLES / "events" / f"{event_type}.json").read_text())


def error_of(raw) -> str:
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(raw) if not isinstance(raw, (bytes, str)) else raw)
    return describe_errors(info.value)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_has_a_valid_example(event_type):
    ev = parse_event(json.dumps(example(event_type)))
    assert ev.event_type == event_type
    assert ev.urgency is EVENT_TYPES[event_type].urgency


def test_urgent_events_are_escape_release_abscond_and_retraction():
    urgent = {t for t, s in EVENT_TYPES.items() if s.urgency.value == "urgent"}
    assert urgent == {"ESCAPED", "RELEASED", "ABSCONDED", "EVENT_RETRACTED"}


def test_wrong_type_names_the_field():
    raw = example("RELEASED")
    raw["payload"]["facility"] = 42
    assert "RELEASED.payload.facility: Input should be a valid string" in error_of(raw)


def test_missing_field_names_the_field():
    raw = example("TRANSFERRED")
    del raw["payload"]["to_facility"]
    assert "TRANSFERRED.payload.to_facility: Field required" in error_of(raw)


def test_missing_envelope_field_names_the_field():
    raw = example("ESCAPED")
    del raw["offender_id"]
    assert "ESCAPED.offender_id: Field required" in error_of(raw)


def test_naive_datetime_is_refused():
    raw = example("HEARING_SCHEDULED")
    raw["payload"]["starts_at"] = "2027-02-10T09:30:00"
    assert "HEARING_SCHEDULED.payload.starts_at: Input should have timezone info" in error_of(raw)
    raw = example("RELEASED")
    raw["occurred_at"] = "2026-11-20T14:05:00"
    assert "RELEASED.occurred_at: Input should have timezone info" in error_of(raw)


def test_unknown_event_type_names_event_type():
    raw = example("RELEASED")
    raw["event_type"] = "TELEPORTED"
    message = error_of(raw)
    assert message.startswith("event_type:") and "TELEPORTED" in message


def test_unknown_field_is_refused():
    raw = example("DECEASED")
    raw["payload"] = {"cause": "x"}
    assert "DECEASED.payload.cause: Extra inputs are not permitted" in error_of(raw)


def test_bad_enum_and_bad_money():
    raw = example("RELEASED")
    raw["payload"]["release_type"] = "vacation"
    assert "RELEASED.payload.release_type" in error_of(raw)
    raw = example("RESTITUTION_PAYMENT")
    raw["payload"]["amount"] = "-5"
    assert "RESTITUTION_PAYMENT.payload.amount" in error_of(raw)


def test_invalid_json_is_reported():
    assert "Invalid JSON" in error_of(b"{not json")


def test_events_are_frozen():
    ev = parse_event(json.dumps(example("RELEASED")))
    with pytest.raises(ValidationError):
        ev.offender_id = "other"


REG = {
    "registration_id": "R-1", "offender_id": "MO-1", "name": "A Person",
    "contacts": [{"channel": "sms", "address": "+15735550101", "verified": True}],
}


def reg_error(**changes) -> str:
    with pytest.raises(ValidationError) as info:
        Registration.model_validate_json(json.dumps({**REG, **changes}))
    return describe_errors(info.value)


def test_registration_validation_names_fields_without_echoing_personal_data():
    msg = reg_error(contacts=[{"channel": "email", "address": "+15735550101", "verified": True}])
    assert "contacts.0" in msg and "email address" in msg
    assert "+15735550101" not in msg
    assert "timezone" in reg_error(timezone="Mars/Olympus")
    assert "event_types" in reg_error(event_types=["NOPE"])
    assert "pin" in reg_error(pin="12")


def test_exported_schemas_validate_every_example(tmp_path):
    export(tmp_path)
    union = json.loads((tmp_path / "custody-event.schema.json").read_text())
    for event_type in EVENT_TYPES:
        doc = example(event_type)
        jsonschema.validate(doc, union)
        jsonschema.validate(doc, json.loads((tmp_path / "events" / f"{event_type}.schema.json").read_text()))
    reg_schema = json.loads((tmp_path / "registration.schema.json").read_text())
    for line in (EXAMPLES / "registrations.jsonl").read_text().splitlines():
        jsonschema.validate(json.loads(line), reg_schema)
    for line in (EXAMPLES / "demo-events.jsonl").read_text().splitlines():
        jsonschema.validate(json.loads(line), union)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example("RELEASED"), "event_type": "TELEPORTED"}, union)


def test_schema_export_cli_writes_one_file_per_model(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "savin.cli", "schema", "export", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")}
    assert {"custody-event.schema.json", "registration.schema.json", "notice-job.schema.json",
            "delivery-result.schema.json", "dead-letter.schema.json"} <= names
    assert {f"events/{t}.schema.json" for t in EVENT_TYPES} <= names


def test_settings_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("SAVIN_PARTITIONS", "zero")
    monkeypatch.setenv("SAVIN_DATA_KEY", "k1:not-base64!")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SAVIN_PARTITIONS" in str(info.value) and "SAVIN_DATA_KEY" in str(info.value)


def test_settings_retry_delays_parse(monkeypatch):
    monkeypatch.setenv("SAVIN_RETRY_DELAYS", "1,2.5,60")
    assert load_settings().retry_delays == (1.0, 2.5, 60.0)
    monkeypatch.setenv("SAVIN_RETRY_DELAYS", "1,-2")
    with pytest.raises(SettingsError, match="SAVIN_RETRY_DELAYS"):
        load_settings()


def test_epoch_seconds_and_unrounded_amounts_are_refused():
    raw = example("RELEASED")
    raw["occurred_at"] = "1763660000"
    assert "RELEASED.occurred_at: Input should be an RFC 3339 date-time with an offset" in error_of(raw)
    raw = example("RESTITUTION_PAYMENT")
    raw["payload"]["amount"] = "250.005"
    assert "RESTITUTION_PAYMENT.payload.amount: Input should be an amount as a string with at most two decimals" \
        in error_of(raw)
