"""Pure logic: sealing, registration sealing, matching, retry plans, ledger merging."""

import datetime as dt
import json
import uuid

import pytest
from support import EXAMPLES

from savin.domain.delivery import (
    Decision,
    decide,
    forgotten,
    is_due,
    ledger_entry,
    merge_status,
    plan_retry,
    retry_delay,
)
from savin.domain.matching import is_repeat, notice_id, notices_for
from savin.schemas import DeliveryStatus, Registration, parse_event
from savin.sealing import Sealer, SealError, check_pin, new_key, seal_registration
from savin.settings import DataKeys

NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc)


def test_seal_round_trip_and_tamper(sealer):
    sealed = sealer.seal("+15735550101", purpose="contact")
    assert "5735550101" not in sealed and sealed.startswith("v1.k1.")
    assert sealer.open(sealed, purpose="contact") == "+15735550101"
    with pytest.raises(SealError):
        sealer.open(sealed, purpose="name")  # bound to its purpose
    with pytest.raises(SealError):
        sealer.open(sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1], purpose="contact")


def test_key_rotation_opens_old_values():
    old_key, new = new_key(), new_key()
    old = Sealer(DataKeys.parse(f"k1:{old_key}"))
    sealed = old.seal("alice@example.org", purpose="contact")
    rotated = Sealer(DataKeys.parse(f"k2:{new},k1:{old_key}"))
    assert rotated.open(sealed, purpose="contact") == "alice@example.org"
    assert rotated.key_id(rotated.seal("x", purpose="contact")) == "k2"
    with pytest.raises(SealError, match="no data key with id 'k1'"):
        Sealer(DataKeys.parse(f"k2:{new}")).open(sealed, purpose="contact")


def registrations(sealer):
    lines = (EXAMPLES / "registrations.jsonl").read_text().splitlines()
    return [seal_registration(Registration.model_validate_json(l), sealer, NOW) for l in lines]


def test_sealed_registration_holds_no_personal_data(sealer):
    regs = registrations(sealer)
    text = json.dumps([r.model_dump(mode="json") for r in regs])
    for secret in ("+15735550101", "alice@example.org", "Alice Example", "Beatriz", "4821"):
        assert secret not in text
    assert check_pin("4821", regs[0].pin_hash) and not check_pin("0000", regs[0].pin_hash)


def event(event_type: str):
    return parse_event((EXAMPLES / "events" / f"{event_type}.json").read_text())


def test_matching_fans_out_per_verified_contact(sealer):
    regs = registrations(sealer)
    jobs = notices_for(event("RELEASED"), regs, NOW)
    # R-1001 and R-1002 are for MO-1048576 with sms + email each; R-1003 is another offender.
    assert sorted((j.registration_id, j.channel.value) for j in jobs) == [
        ("R-1001", "email"), ("R-1001", "sms"), ("R-1002", "email"), ("R-1002", "sms")]
    assert all(j.urgency.value == "urgent" for j in jobs)
    assert {j.language for j in jobs if j.registration_id == "R-1002"} == {"es"}


def test_matching_respects_status_event_types_and_verification(sealer):
    regs = registrations(sealer)
    cancelled = regs[0].model_copy(update={"status": "cancelled"})
    assert [j.registration_id for j in notices_for(event("RELEASED"), [cancelled, regs[1]], NOW)] == ["R-1002"] * 2
    hearings_only = regs[2].model_copy(update={"offender_id": "MO-1048576"})
    assert notices_for(event("RELEASED"), [hearings_only], NOW) == []
    assert len(notices_for(event("HEARING_SCHEDULED"), [hearings_only], NOW)) == 1
    unverified = regs[0].model_copy(update={"contacts": tuple(
        c.model_copy(update={"verified": False}) for c in regs[0].contacts)})
    assert notices_for(event("RELEASED"), [unverified], NOW) == []


def test_notice_ids_are_deterministic(sealer):
    ev = event("RELEASED")
    a = notices_for(ev, registrations(sealer), NOW)
    b = notices_for(ev, registrations(sealer), NOW)
    assert [j.notice_id for j in a] == [j.notice_id for j in b]
    assert len({j.notice_id for j in a}) == len(a)
    assert notice_id(ev.event_id, "R-1001", "sms") == uuid.uuid5(ev.event_id, "R-1001:sms")


def test_retry_plan_walks_the_tiers_then_gives_up(sealer):
    job = notices_for(event("RELEASED"), registrations(sealer), NOW)[0]
    delays = (30.0, 300.0, 3600.0)
    seen = []
    for _ in range(5):
        plan = plan_retry(job, delays, max_attempts=6, now=NOW)
        seen.append((plan.tier, (plan.job.not_before - NOW).total_seconds()))
        job = plan.job
    assert seen == [(0, 30), (1, 300), (2, 3600), (2, 3600), (2, 3600)]
    assert plan_retry(job, delays, max_attempts=6, now=NOW) is None
    assert retry_delay(10, delays) == 3600


@pytest.mark.parametrize("current, incoming, expected", [
    (None, DeliveryStatus.ACCEPTED, DeliveryStatus.ACCEPTED),
    (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT, DeliveryStatus.SENT),
    (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERED),
    (DeliveryStatus.ACCEPTED, DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERED),
    (DeliveryStatus.DELIVERED, DeliveryStatus.SENT, None),  # late, out of order
    (DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED, None),  # final stays final
    (DeliveryStatus.UNDELIVERED, DeliveryStatus.DELIVERED, None),
    (DeliveryStatus.SENT, DeliveryStatus.ACCEPTED, None),
    (DeliveryStatus.SENT, DeliveryStatus.SENT, None),
])
def test_ledger_never_moves_backwards_or_off_a_final_state(current, incoming, expected):
    assert merge_status(current, incoming) == expected


# ---- delivery and matching decisions, table-driven ------------------------------

S = DeliveryStatus
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize("ledger, opted_out, in_batch, expected", [
    (None, False, False, Decision.SEND),
    (S.RETRYING, False, False, Decision.SEND),
    (S.ACCEPTED, False, False, Decision.SKIP),
    (S.DELIVERED, True, False, Decision.SKIP),
    (S.FAILED, False, False, Decision.SKIP),
    (None, True, False, Decision.SUPPRESS),
    (None, False, True, Decision.SKIP),
])
def test_decide(ledger, opted_out, in_batch, expected):
    assert decide(ledger, opted_out, in_batch) is expected


@pytest.mark.parametrize("current, incoming, expected", [
    (None, S.ACCEPTED, "accepted"),
    ({"status": "accepted", "provider_ref": "SM1", "at": NOW.isoformat()}, S.DELIVERED, "delivered"),
    ({"status": "delivered", "provider_ref": "SM1", "at": NOW.isoformat()}, S.SENT, None),
    ({"status": "sent", "provider_ref": "SM1", "at": NOW.isoformat()}, S.ACCEPTED, None),
])
def test_ledger_entry_moves_forward_only_and_keeps_the_reference(current, incoming, expected):
    entry = ledger_entry(current, incoming, None, NOW)
    assert (entry["status"] if entry else None) == expected
    if entry and current:
        assert entry["provider_ref"] == "SM1"


@pytest.mark.parametrize("status, age_days, forgotten_", [
    ("delivered", 91, True), ("failed", 91, True), ("suppressed", 91, True),
    ("delivered", 89, False), ("accepted", 400, False), ("retrying", 400, False),
])
def test_final_ledger_entries_are_forgotten_after_the_retention(status, age_days, forgotten_):
    entry = {"status": status, "at": (NOW - age_days * DAY).isoformat()}
    assert forgotten(entry, NOW, 90) is forgotten_


@pytest.mark.parametrize("first_seen, repeat", [(None, False), (NOW - DAY, True), (NOW - 31 * DAY, False)])
def test_a_repeat_is_an_event_first_seen_within_the_window(first_seen, repeat):
    assert is_repeat(first_seen, NOW, 30) is repeat


def test_a_retried_notice_is_due_at_its_not_before(sealer):
    job = notices_for(event("RELEASED"), registrations(sealer), NOW)[0]
    assert is_due(job, NOW)
    later = job.model_copy(update={"not_before": NOW + DAY})
    assert not is_due(later, NOW) and is_due(later, NOW + DAY)


def test_pins_hash_with_argon2_and_old_scrypt_hashes_still_verify():
    import base64
    import hashlib
    import os

    from savin.sealing import hash_pin

    stored = hash_pin("4821")
    assert stored.startswith("$argon2id$") and "4821" not in stored
    assert check_pin("4821", stored) and not check_pin("4822", stored)
    salt = os.urandom(16)
    digest = hashlib.scrypt(b"4821", salt=salt, n=2**14, r=8, p=1, dklen=32)
    old = f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert check_pin("4821", old) and not check_pin("0000", old)
    for malformed in ("", "scrypt$", "$argon2id$nonsense", "md5$x$y", "scrypt$!!$??"):
        assert not check_pin("4821", malformed)
