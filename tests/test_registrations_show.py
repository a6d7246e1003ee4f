"""`savin registrations show` against the real broker: contacts masked, every change
oldest first with who and when, an unknown id one clean line."""

import asyncio
import json

from support import EXAMPLES, savin

from savin.domain.clock import utcnow
from savin.schemas import Channel
from savin.schemas.consent import Actor, ConsentChange
from savin.sealing import new_key
from savin.topics import producer


def await_consent(bootstrap: str, namespace: str) -> None:
    """Put one STOP for R-1001 on the consent topic, as the web process does for an SMS reply."""
    async def put() -> None:
        prod = producer(bootstrap)
        await prod.start()
        try:
            change = ConsentChange(registration_id="R-1001", channel=Channel.SMS, opted_out=True, reason="STOP",
                                   actor=Actor.INBOUND_SMS, at=utcnow())
            await prod.send_and_wait(f"{namespace}.consent", change.model_dump_json().encode(), key=b"R-1001")
        finally:
            await prod.stop()

    asyncio.run(put())


def _env(kafka_bootstrap, namespace, data_key):
    return {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace, "SAVIN_DATA_KEY": data_key,
            "SAVIN_INDEX_KEY": new_key()}


def test_a_registration_is_shown_masked_with_its_history(kafka_bootstrap, namespace, data_key, tmp_path):
    env = _env(kafka_bootstrap, namespace, data_key)
    first = (EXAMPLES / "registrations.jsonl").read_text().splitlines()[0]
    cancelled = json.dumps(json.loads(first) | {"status": "cancelled", "language": "es"})
    for n, doc in enumerate([first, cancelled]):
        (tmp_path / f"{n}.jsonl").write_text(doc + "\n")
        assert savin(["registrations", "import", str(tmp_path / f"{n}.jsonl")], env).returncode == 0

    await_consent(kafka_bootstrap, namespace)
    shown = savin(["registrations", "show", "R-1001"], env)
    assert shown.returncode == 0, shown.stderr
    assert "+1•••••••0101" in shown.stdout and "a•••@example.org" in shown.stdout
    assert "cancelled" in shown.stdout and "language es" in shown.stdout and "3 records" in shown.stdout
    for secret in ("5735550101", "alice@", "Alice Example", "Example", "4821"):
        assert secret not in shown.stdout + shown.stderr

    view = json.loads(savin(["registrations", "show", "R-1001", "--json"], env).stdout)
    assert view["status"] == "cancelled" and view["language"] == "es" and view["event_types"] is None
    assert [c["address"] for c in view["contacts"]] == ["+1•••••••0101", "a•••@example.org"]
    assert all(c["verified"] and c["verified_by"] == "operator" for c in view["contacts"])
    records = [h for h in view["history"] if h["kind"] == "registration"]
    assert [h["status"] for h in records] == ["active", "cancelled"]
    assert [h["change"] for h in records] == ["registered", "cancelled, language en to es, PIN"]
    assert all(h["changed_by"] == "operator" for h in records)
    assert records[0]["updated_at"] <= records[1]["updated_at"]
    # The STOP texted in is part of the history, with who and which channel.
    (stop,) = [h for h in view["history"] if h["kind"] == "consent"]
    assert (stop["changed_by"], stop["channel"], stop["opted_out"], stop["change"]) == (
        "inbound_sms", "sms", True, "sms stopped (STOP)")
    assert "sms stopped (STOP)" in shown.stdout and "quiet hours 21:00 to 08:00 (default)" in shown.stdout


def test_an_unknown_registration_is_one_line_and_exit_1(kafka_bootstrap, namespace, data_key):
    shown = savin(["registrations", "show", "R-NOBODY"], _env(kafka_bootstrap, namespace, data_key))
    assert shown.returncode == 1 and shown.stderr.strip().splitlines() == ["error: no registration R-NOBODY"]


def test_masks_keep_only_what_tells_contacts_apart():
    from savin.ops.registrations import mask_email, mask_name, mask_phone

    assert mask_phone("+15735550101") == "+1•••••••0101"
    assert mask_phone("+4420") == "•••••••"
    assert mask_email("alice@example.org") == "a•••@example.org"
    assert mask_name("Alice Example") == "A•••"


def test_what_changed_names_settings_and_contacts_never_addresses():
    from savin.ops.registrations import what_changed
    from savin.schemas import Registration
    from savin.schemas.registration import QuietHours
    from savin.sealing import Sealer, seal_registration
    from savin.settings import DataKeys

    indexed = Sealer(DataKeys.parse(f"k1:{new_key()}"), index_key=b"i" * 32)
    doc = json.loads((EXAMPLES / "registrations.jsonl").read_text().splitlines()[0])
    for c in doc["contacts"]:
        c["verified"] = False
    first = seal_registration(Registration.model_validate_json(json.dumps(doc)), indexed, utcnow())
    assert what_changed(None, first) == "registered"
    sms, mail = first.contacts[0], first.contacts[1]
    verified = first.model_copy(update={"contacts": (sms.model_copy(update={"verified": True}), mail)})
    assert what_changed(first, verified) == "sms verified"
    moved = verified.model_copy(update={
        "language": "es", "quiet_hours": QuietHours(start="22:00", end="07:00"),
        "contacts": (sms, mail.model_copy(update={"address_sealed": indexed.seal("b@example.org", "contact"),
                                                  "blind_index": indexed.blind_index("b@example.org")}))})
    change = what_changed(verified, moved)
    assert change == "language en to es, quiet hours, email changed"
    assert "example.org" not in change
    assert what_changed(moved, moved) == "saved again"
