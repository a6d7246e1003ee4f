"""`savin publish` and `savin registrations import` against the real broker:
bad lines are reported by number, good lines still go out, nothing leaves unsealed."""

import json
import os
import subprocess
import sys

from support import EXAMPLES, records, savin

from savin.sealing import new_key
from savin.topics import partition_for


def test_publish_reports_bad_lines_and_publishes_good_ones(kafka_bootstrap, namespace, tmp_path):
    good = (EXAMPLES / "events" / "RELEASED.json").read_text().replace("\n", " ")
    wrong_type = json.loads(good) | {"offender_name": 7}
    lines = [good, "", "{broken json", json.dumps(wrong_type), (EXAMPLES / "events" / "ESCAPED.json").read_text().replace("\n", " ")]
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(lines) + "\n")
    env = {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace}
    out = savin(["publish", str(src)], env)
    assert out.returncode == 1
    assert f"{src}:3:" in out.stderr and "Invalid JSON" in out.stderr
    assert f"{src}:4:" in out.stderr and "RELEASED.offender_name" in out.stderr
    assert "published 2, rejected 2" in out.stdout
    got = records(kafka_bootstrap, f"{namespace}.custody-events")
    assert sorted(json.loads(r.value)["event_type"] for r in got) == ["ESCAPED", "RELEASED"]
    assert all(r.key == b"MO-1048576" for r in got)

    # stdin works too
    out = savin(["publish", "-"], env, stdin=good + "\n")
    assert out.returncode == 0 and "published 1, rejected 0" in out.stdout


def test_registrations_import_seals_and_copartitions(kafka_bootstrap, namespace, data_key, tmp_path):
    src = tmp_path / "regs.jsonl"
    bad = json.dumps({"registration_id": "R-9", "offender_id": "MO-9", "name": "Zed",
                      "contacts": [{"channel": "sms", "address": "555-1234", "verified": True}]})
    src.write_text((EXAMPLES / "registrations.jsonl").read_text() + bad + "\n")
    env = {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace, "SAVIN_DATA_KEY": data_key,
           "SAVIN_INDEX_KEY": new_key()}
    out = savin(["registrations", "import", str(src)], env)
    assert out.returncode == 1
    assert f"{src}:4:" in out.stderr and "contacts.0" in out.stderr and "555-1234" not in out.stderr
    assert "published 3, rejected 1" in out.stdout
    got = records(kafka_bootstrap, f"{namespace}.registrations")
    assert len(got) == 3
    raw = b"".join(r.value for r in got)
    for secret in (b"+15735550101", b"alice@example.org", b"Alice Example", b"Beatriz", b"4821"):
        assert secret not in raw
    for r in got:
        doc = json.loads(r.value)
        assert all(c["blind_index"] for c in doc["contacts"]), "every contact indexed"
        assert r.key == doc["registration_id"].encode()
        assert r.partition == partition_for(doc["offender_id"].encode(), 4)


def test_import_without_a_data_key_says_how_to_make_one(kafka_bootstrap, namespace):
    env = {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace}
    env_no_key = {k: v for k, v in os.environ.items() if k != "SAVIN_DATA_KEY"} | env
    out = subprocess.run([sys.executable, "-m", "savin.cli", "registrations", "import",
                          str(EXAMPLES / "registrations.jsonl")], capture_output=True, text=True, env=env_no_key)
    assert out.returncode == 2 and "SAVIN_DATA_KEY is not set" in out.stderr and "savin keys new" in out.stderr


def test_import_without_an_index_key_names_it(kafka_bootstrap, namespace, data_key):
    env = {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace, "SAVIN_DATA_KEY": data_key}
    env_no_key = {k: v for k, v in os.environ.items() if k != "SAVIN_INDEX_KEY"} | env
    out = subprocess.run([sys.executable, "-m", "savin.cli", "registrations", "import",
                          str(EXAMPLES / "registrations.jsonl")], capture_output=True, text=True, env=env_no_key)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "SAVIN_INDEX_KEY is not set" in out.stderr and "savin keys new --index" in out.stderr
    assert records(kafka_bootstrap, f"{namespace}.registrations") == []


def test_publish_takes_one_pretty_printed_document(kafka_bootstrap, namespace):
    env = {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace}
    out = savin(["publish", str(EXAMPLES / "events" / "RELEASED.json")], env)
    assert out.returncode == 0, out.stderr
    assert "published 1, rejected 0" in out.stdout and out.stderr == ""
    (got,) = records(kafka_bootstrap, f"{namespace}.custody-events")
    assert json.loads(got.value) == json.loads((EXAMPLES / "events" / "RELEASED.json").read_text())
    assert got.key == b"MO-1048576"

    out = savin(["publish", "-"], env, stdin=(EXAMPLES / "events" / "ESCAPED.json").read_text())
    assert out.returncode == 0 and "published 1, rejected 0" in out.stdout


def test_publish_takes_a_json_array_and_names_the_line_of_a_bad_item(kafka_bootstrap, namespace, tmp_path):
    docs = [json.loads((EXAMPLES / "events" / f"{t}.json").read_text()) for t in ("RELEASED", "TRANSFERRED", "DECEASED")]
    del docs[1]["payload"]["to_facility"]
    text = json.dumps(docs, indent=2)
    bad_line = text.splitlines().index("  {", text.splitlines().index("  {") + 1) + 1
    src = tmp_path / "events.json"
    src.write_text(text + "\n")
    env = {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace}
    out = savin(["publish", str(src)], env)
    assert out.returncode == 1
    assert f"{src}:{bad_line}: TRANSFERRED.payload.to_facility: Field required" in out.stderr
    assert "published 2, rejected 1" in out.stdout
    got = records(kafka_bootstrap, f"{namespace}.custody-events")
    assert sorted(json.loads(r.value)["event_type"] for r in got) == ["DECEASED", "RELEASED"]

    # A document that is meant to be one but is broken is one error at its line, not one per line.
    src.write_text(text.replace('"DECEASED",', '"DECEASED"') + "\n")
    out = savin(["publish", str(src)], env)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1 and "Invalid JSON" in out.stderr


def test_registrations_import_takes_a_json_array(kafka_bootstrap, namespace, data_key, tmp_path):
    regs = [json.loads(line) for line in (EXAMPLES / "registrations.jsonl").read_text().splitlines()]
    src = tmp_path / "regs.json"
    src.write_text(json.dumps(regs, indent=4))
    env = {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace, "SAVIN_DATA_KEY": data_key,
           "SAVIN_INDEX_KEY": new_key()}
    out = savin(["registrations", "import", str(src)], env)
    assert out.returncode == 0, out.stderr
    assert "published 3, rejected 0" in out.stdout
    assert len(records(kafka_bootstrap, f"{namespace}.registrations")) == 3
