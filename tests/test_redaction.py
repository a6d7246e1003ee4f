"""A dead letter's payload as an operator sees it: personal values out, ids and shape kept."""

from __future__ import annotations

import json

import pytest

from savin.domain.redaction import REDACTED, is_personal_key, mask_text, redact_payload

EVENT_ID = "0be0bc45-48c9-586c-9b74-5da8c9748b2a"


@pytest.mark.parametrize("key, personal", [
    ("name", True), ("first_name", True), ("lastName", True), ("offender_name", True), ("phone", True),
    ("email", True), ("address", True), ("address_sealed", True), ("content_sealed", True), ("pin", True),
    ("dob", True), ("date_of_birth", True), ("body", True), ("text", True), ("message", True),
    ("Contact-Phone", True),
    ("event_id", False), ("event_type", False), ("registration_id", False), ("offender_id", False),
    ("channel", False), ("occurred_at", False), ("namespace", False), ("facility", False), ("language", False),
    ("contact_index", False), ("spinner", False),
])
def test_which_keys_are_personal(key, personal):
    assert is_personal_key(key) is personal


@pytest.mark.parametrize("text, shown", [
    ("call +15735550123 now", "call [phone] now"),
    ("+44 20 7946 0958", "[phone]"),
    ("(573) 555-0123", "[phone]"),
    ("573-555-0123 or 573.555.0123", "[phone] or [phone]"),
    ("write to jo.doe+x@mail.example.org.", "write to [email]."),
    # Ids, times and counts stay as they are.
    (EVENT_ID, EVENT_ID),
    ("2026-11-20T14:05:00-06:00", "2026-11-20T14:05:00-06:00"),
    ("MO-1048576", "MO-1048576"),
    ("R-5735550123", "R-5735550123"),
    ("offset 1234 of 99", "offset 1234 of 99"),
    ("error 21211", "error 21211"),
])
def test_emails_and_phone_numbers_are_masked_in_any_text(text, shown):
    assert mask_text(text) == shown


def test_json_is_pretty_printed_with_personal_values_replaced():
    raw = json.dumps({
        "registration_id": "R-1", "offender_id": "MO-1", "name": "Annabel Quillfeather", "language": "en",
        "contacts": [{"channel": "sms", "address": "+15735550123", "verified": True},
                     {"channel": "email", "address": "annabel@example.org"}],
        "notes": "lives at 4 Elm St", "pin": 1234, "dob": None,
        "payload": {"facility": "Farmington", "comment": "call 573-555-0199", "ref": "see a@b.example"},
    }).encode()
    shown = redact_payload(raw)
    assert json.loads(shown) == {
        "registration_id": "R-1", "offender_id": "MO-1", "name": REDACTED, "language": "en",
        "contacts": [{"channel": "sms", "address": REDACTED, "verified": True},
                     {"channel": "email", "address": REDACTED}],
        "notes": REDACTED, "pin": REDACTED, "dob": None,
        "payload": {"facility": "Farmington", "comment": REDACTED, "ref": "see [email]"},
    }
    assert shown.startswith("{\n  ")
    for secret in ("Annabel", "5550123", "annabel@", "Elm", "1234", "5550199", "a@b"):
        assert secret not in shown


def test_a_whole_object_under_a_personal_key_is_replaced():
    shown = json.loads(redact_payload(b'{"address": {"street": "4 Elm", "city": "Rolla"}, "n": [1, "x"]}'))
    assert shown == {"address": REDACTED, "n": [1, "x"]}


@pytest.mark.parametrize("raw, shown", [
    (b"not json, call +15735550123", "not json, call [phone]"),
    (b"\xff\xfe bad bytes jo@example.org", "\\xff\\xfe bad bytes [email]"),
    (b"", ""),
    (b'"just a string with 573 555 0123"', '"just a string with [phone]"'),
    (b"[1, 2]", "[\n  1,\n  2\n]"),
])
def test_other_payloads_are_shown_as_text_with_the_masking(raw, shown):
    assert redact_payload(raw) == shown


def test_a_long_payload_is_truncated_with_a_note():
    raw = json.dumps({"items": [f"item {i}" for i in range(5000)]}).encode()
    shown = redact_payload(raw, limit=1000)
    head, note = shown.rsplit("\n", 1)
    assert len(head) == 1000
    assert note.startswith("… [truncated: 1,000 of ") and note.endswith(" characters shown]")
    assert len(redact_payload(raw)) <= 20_000 + 100
    assert redact_payload(b"short", limit=1000) == "short"
