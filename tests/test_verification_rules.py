"""Pure rules of proving contacts and guarding the portal: codes, their checks,
rate limits, PIN lockout, signed link tokens and sealed cookies."""

from __future__ import annotations

import datetime as dt

import pytest

from savin.domain import verification as rules
from savin.domain.links import derive_key, read_token, sign_token
from savin.schemas.consent import Attempts
from savin.web.portal.cookies import CookieBox

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)
KEY = b"k" * 32
MINUTE = dt.timedelta(minutes=1)


def sent(code: str = "123456", channel: str = "sms", blind_index: str = "bi-1"):
    return rules.new_verification(KEY, "R-1", channel, 0, blind_index, code, NOW)


def test_codes_are_six_digits_and_not_repeated():
    codes = {rules.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 190


def test_a_verification_keeps_a_keyed_hash_bound_to_its_slot_and_address():
    v = sent()
    assert "123456" not in v.model_dump_json()
    assert v.code_hash != rules.code_hash(KEY, "R-2:sms:0", "bi-1", "123456")
    assert v.code_hash != rules.code_hash(KEY, "R-1:sms:0", "bi-2", "123456")
    assert v.code_hash != rules.code_hash(b"x" * 32, "R-1:sms:0", "bi-1", "123456")
    assert v.expires_at == NOW + rules.CODE_TTL
    assert sent(channel="email").expires_at == NOW + rules.LINK_TTL


@pytest.mark.parametrize("code, blind_index, at, expected", [
    ("123456", "bi-1", NOW, rules.CodeCheck.OK),
    (" 123456 ", "bi-1", NOW, rules.CodeCheck.OK),
    ("654321", "bi-1", NOW, rules.CodeCheck.WRONG),
    ("123456", "bi-2", NOW, rules.CodeCheck.EXPIRED),  # the address changed since
    ("123456", "bi-1", NOW + rules.CODE_TTL, rules.CodeCheck.EXPIRED),
])
def test_check_code(code, blind_index, at, expected):
    verdict, record = rules.check_code(KEY, sent(), blind_index, code, at)
    assert verdict is expected
    if expected is rules.CodeCheck.OK:
        assert record.verified_at == at
        assert rules.check_code(KEY, record, blind_index, code, at)[0] is rules.CodeCheck.DONE


def test_the_fifth_wrong_code_ends_the_code():
    v = sent()
    verdicts = []
    for _ in range(6):
        verdict, record = rules.check_code(KEY, v, "bi-1", "000000", NOW)
        verdicts.append(verdict)
        v = record or v
    assert verdicts == [rules.CodeCheck.WRONG] * 4 + [rules.CodeCheck.EXPIRED] * 2
    assert rules.check_code(KEY, v, "bi-1", "123456", NOW)[0] is rules.CodeCheck.EXPIRED


def test_no_verification_is_an_expired_code():
    assert rules.check_code(KEY, None, "bi-1", "123456", NOW) == (rules.CodeCheck.EXPIRED, None)


def test_a_limit_counts_only_the_window_and_forgets_older_tries():
    limit = rules.Limit(3, dt.timedelta(hours=1))
    at: tuple = ()
    for i in range(3):
        assert limit.allows(at, NOW + i * MINUTE)
        at = limit.record(at, NOW + i * MINUTE)
    assert not limit.allows(at, NOW + 10 * MINUTE)
    later = NOW + dt.timedelta(hours=1) + MINUTE
    assert limit.allows(at, later)
    assert limit.record(at, later) == (NOW + 2 * MINUTE, later)


def test_a_new_code_for_the_same_address_keeps_its_send_times():
    first = sent()
    again = rules.new_verification(KEY, "R-1", "sms", 0, "bi-1", "222222", NOW + MINUTE, first)
    assert again.sent_at == (NOW, NOW + MINUTE) and again.failed_tries == 0
    other = rules.new_verification(KEY, "R-1", "sms", 0, "bi-9", "222222", NOW + MINUTE, first)
    assert other.sent_at == (NOW + MINUTE,)


def test_ten_wrong_pins_lock_for_thirty_minutes():
    a: Attempts | None = None
    for i in range(9):
        a = rules.after_wrong_pin(a, "R-1", NOW + i * MINUTE)
        assert not rules.pin_locked(a, NOW + i * MINUTE)
    a = rules.after_wrong_pin(a, "R-1", NOW + 9 * MINUTE)
    assert a.key == "pin:R-1" and rules.pin_locked(a, NOW + 10 * MINUTE)
    assert not rules.pin_locked(a, NOW + 9 * MINUTE + rules.PIN_LOCKOUT)
    # Nine wrong PINs spread beyond the window never lock.
    b = None
    for i in range(20):
        b = rules.after_wrong_pin(b, "R-2", NOW + i * 4 * MINUTE)
    assert not rules.pin_locked(b, NOW + 80 * MINUTE)


def test_a_token_is_bound_to_its_purpose_key_and_expiry():
    token = sign_token(KEY, "confirm-email", ("R-1", "0", "nonce"), NOW + MINUTE)
    assert read_token(KEY, "confirm-email", token, NOW) == ("R-1", "0", "nonce")
    assert read_token(KEY, "unsubscribe", token, NOW) is None
    assert read_token(b"x" * 32, "confirm-email", token, NOW) is None
    assert read_token(KEY, "confirm-email", token, NOW + MINUTE) is None
    body, mac = token.split(".")
    assert read_token(KEY, "confirm-email", f"{body}A.{mac}", NOW) is None
    for bad in ("", ".", "nodot", "a.b.c", "x" * 2000):
        assert read_token(KEY, "confirm-email", bad, NOW) is None
    with pytest.raises(ValueError):
        sign_token(KEY, "p", ("a|b",), NOW)
    assert derive_key("s", "links") != derive_key("s", "codes") != derive_key("t", "links")


def test_a_sealed_cookie_hides_its_data_and_refuses_changes_other_purposes_and_age():
    box = CookieBox("secret", "register-draft", dt.timedelta(hours=1))
    value = box.seal({"phone": "+15735550101"}, NOW)
    assert "5735550101" not in value
    assert box.open(value, NOW + MINUTE) == {"phone": "+15735550101"}
    assert box.open(value, NOW + dt.timedelta(hours=1)) is None
    assert CookieBox("secret", "manage-session", dt.timedelta(hours=1)).open(value, NOW) is None
    assert CookieBox("other", "register-draft", dt.timedelta(hours=1)).open(value, NOW) is None
    flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    for bad in (None, "", flipped, "!!!", "x" * 5000):
        assert box.open(bad, NOW) is None
