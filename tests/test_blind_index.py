"""The blind index: the same address gives the same index however it is written,
under a key of its own; the address is never readable in a stored registration."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest

from savin.schemas import Registration
from savin.schemas.consent import Actor
from savin.sealing import Sealer, blind_index, new_key, normalise_address, seal_registration
from savin.settings import DataKeys, Settings

KEY = base64.b64decode(new_key())
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("written, normal", [
    ("+15735550101", "+15735550101"),
    (" +1 (573) 555-0101 ", "+15735550101"),
    ("+1.573.555.0101", "+15735550101"),
    ("Alice@Example.ORG", "alice@example.org"),
    ("  alice@example.org\n", "alice@example.org"),
])
def test_addresses_are_normalised_before_indexing(written, normal):
    assert normalise_address(written) == normal
    assert blind_index(written, KEY) == blind_index(normal, KEY)


def test_the_index_is_hmac_sha256_base64url_without_padding():
    expected = hmac.new(KEY, b"alice@example.org", hashlib.sha256).digest()
    index = blind_index("alice@example.org", KEY)
    assert "=" not in index and base64.urlsafe_b64decode(index + "=") == expected


def test_another_key_gives_another_index():
    assert blind_index("+15735550101", KEY) != blind_index("+15735550101", base64.b64decode(new_key()))


def test_a_sealed_registration_carries_the_index_and_who_verified():
    reg = Registration.model_validate_json(json.dumps({
        "registration_id": "R-1", "offender_id": "MO-1", "name": "Alice Example", "contacts": [
            {"channel": "sms", "address": "+15735550101", "verified": True},
            {"channel": "email", "address": "Alice@Example.org"}]}))
    stored = seal_registration(reg, Sealer(DataKeys.parse(new_key()), index_key=KEY), NOW)
    sms, email = stored.contacts
    assert sms.blind_index == blind_index("+15735550101", KEY) and sms.verified_by is Actor.OPERATOR
    assert email.blind_index == blind_index("alice@example.org", KEY) and email.verified_by is None
    assert stored.changed_by is Actor.OPERATOR
    text = stored.model_dump_json()
    assert "5735550101" not in text and "example.org" not in text.lower()


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_an_index_key_that_is_not_32_bytes_of_base64_is_refused(value):
    with pytest.raises(ValueError, match="index_key"):
        Settings(_env_file=None, index_key=value)


def test_an_index_key_is_read_as_32_bytes():
    key = new_key()
    assert Settings(_env_file=None, index_key=key).index_key_bytes == base64.b64decode(key)


def test_keys_new_index_prints_a_key_the_settings_accept():
    from support import savin

    out = savin(["keys", "new", "--index"], {})
    assert out.returncode == 0, out.stderr
    assert len(Settings(_env_file=None, index_key=out.stdout.strip()).index_key_bytes) == 32
