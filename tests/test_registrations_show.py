"""`savin registrations show` against the real broker: contacts masked, every change
oldest first with who and when, an unknown id one clean line."""

import json

from support import EXAMPLES, savin

from savin.sealing import new_key


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

    shown = savin(["registrations", "show", "R-1001"], env)
    assert shown.returncode == 0, shown.stderr
    assert "+1•••••••0101" in shown.stdout and "a•••@example.org" in shown.stdout
    assert "cancelled" in shown.stdout and "language es" in shown.stdout and "2 records" in shown.stdout
    for secret in ("5735550101", "alice@", "Alice Example", "Example", "4821"):
        assert secret not in shown.stdout + shown.stderr

    view = json.loads(savin(["registrations", "show", "R-1001", "--json"], env).stdout)
    assert view["status"] == "cancelled" and view["language"] == "es" and view["event_types"] is None
    assert [c["address"] for c in view["contacts"]] == ["+1•••••••0101", "a•••@example.org"]
    assert all(c["verified"] and c["verified_by"] == "operator" for c in view["contacts"])
    assert [h["status"] for h in view["history"]] == ["active", "cancelled"]
    assert all(h["changed_by"] == "operator" for h in view["history"])
    assert view["history"][0]["updated_at"] <= view["history"][1]["updated_at"]


def test_an_unknown_registration_is_one_line_and_exit_1(kafka_bootstrap, namespace, data_key):
    shown = savin(["registrations", "show", "R-NOBODY"], _env(kafka_bootstrap, namespace, data_key))
    assert shown.returncode == 1 and shown.stderr.strip().splitlines() == ["error: no registration R-NOBODY"]


def test_masks_keep_only_what_tells_contacts_apart():
    from savin.ops.registrations import mask_email, mask_name, mask_phone

    assert mask_phone("+15735550101") == "+1•••••••0101"
    assert mask_phone("+4420") == "•••••••"
    assert mask_email("alice@example.org") == "a•••@example.org"
    assert mask_name("Alice Example") == "A•••"
