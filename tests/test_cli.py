"""The command line fails cleanly: a broker that does not answer is one line
naming SAVIN_KAFKA_BOOTSTRAP, input is checked before connecting, settings
errors say what is allowed in words, and tables never cut an id short."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import time
import uuid

import pytest
import typer.main
from support import EXAMPLES, records, savin

from savin.cli import app
from savin.dev.broker import free_port
from savin.schemas import Channel, DeliveryResult, DeliveryStatus
from savin.sealing import new_key
from savin.settings import DataKeys
from savin.topics import Topics, ensure_topics, producer

# ---- a broker that does not answer ---------------------------------------------------------

KAFKA_COMMANDS = {
    "publish": ["publish", str(EXAMPLES / "events" / "RELEASED.json")],
    "registrations import": ["registrations", "import", str(EXAMPLES / "registrations.jsonl")],
    "dead-letters list": ["dead-letters", "list"],
    "dead-letters replay": ["dead-letters", "replay", "--all"],
    "dead-letters replay --dry-run": ["dead-letters", "replay", "--all", "--dry-run"],
    "notices list": ["notices", "list"],
    "notices show": ["notices", "show", str(uuid.uuid4())],
    "worker": ["worker"],
    "web": ["web"],
}


def assert_one_clean_line(done, bootstrap: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert bootstrap in lines[0] and "SAVIN_KAFKA_BOOTSTRAP" in lines[0] and "savin broker start" in lines[0]


@pytest.mark.parametrize("command", list(KAFKA_COMMANDS))
def test_a_broker_nobody_runs_is_one_line_and_exit_1(command, data_key, tmp_path):
    bootstrap = f"127.0.0.1:{free_port()}"
    # A development run, so the worker gets as far as the broker (its provider defaults are allowed).
    env = {"SAVIN_KAFKA_BOOTSTRAP": bootstrap, "SAVIN_DATA_KEY": data_key, "SAVIN_INDEX_KEY": new_key(),
           "SAVIN_DATA_DIR": str(tmp_path), "SAVIN_DEVELOPMENT": "true"}
    assert_one_clean_line(savin(KAFKA_COMMANDS[command], env), bootstrap)


def test_a_worker_on_the_development_defaults_refuses_before_it_needs_a_broker(data_key, tmp_path):
    env = {"SAVIN_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "SAVIN_DATA_KEY": data_key,
           "SAVIN_DATA_DIR": str(tmp_path)}
    done = savin(["worker"], env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "SAVIN_TWILIO_ACCOUNT_SID" in line and "SAVIN_DEVELOPMENT=true" in line


def test_a_portal_on_the_development_secret_refuses_before_it_needs_a_broker(tmp_path):
    done = savin(["web"], {"SAVIN_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "SAVIN_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2, (done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    assert "SAVIN_WEB_SECRET" in line and "SAVIN_DEVELOPMENT=true" in line


@pytest.mark.parametrize("secret", ["", "short-secret"])
def test_a_portal_on_a_short_secret_refuses_before_it_needs_a_broker(tmp_path, secret):
    done = savin(["web"], {"SAVIN_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "SAVIN_DATA_DIR": str(tmp_path),
                           "SAVIN_WEB_SECRET": secret})
    assert done.returncode == 2, (done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    assert "SAVIN_WEB_SECRET must be at least 32 characters" in line and (not secret or secret not in line)


def test_a_broker_that_accepts_but_never_answers_times_out_quickly(data_key):
    # The kernel completes the TCP handshake; nothing ever reads the request.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        bootstrap = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        done = savin(["dead-letters", "list"], {"SAVIN_KAFKA_BOOTSTRAP": bootstrap, "SAVIN_DATA_KEY": data_key})
        elapsed = time.monotonic() - started
    assert_one_clean_line(done, bootstrap)
    assert elapsed < 20, f"took {elapsed:.0f} s"


def test_input_files_are_checked_before_connecting(data_key, tmp_path):
    env = {"SAVIN_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "SAVIN_DATA_KEY": data_key}
    for args in (["publish", "missing.jsonl"], ["registrations", "import", "missing.jsonl"]):
        done = savin(args, env)
        assert done.returncode == 1 and done.stderr.strip() == "error: missing.jsonl: no such file"
    done = savin(["publish", str(tmp_path)], env)
    assert done.returncode == 1 and "is a directory" in done.stderr and "SAVIN_KAFKA_BOOTSTRAP" not in done.stderr
    # A file with nothing valid in it is reported in full without a broker.
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_type": "RELEASED"}\n{broken\n')
    done = savin(["publish", str(bad)], env)
    assert done.returncode == 1 and f"{bad}:1:" in done.stderr and f"{bad}:2:" in done.stderr
    assert "published 0, rejected 2" in done.stdout and "SAVIN_KAFKA_BOOTSTRAP" not in done.stderr


# ---- help, version, choices --------------------------------------------------------------------


def command_paths(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    yield prefix
    for name, cmd in getattr(group, "commands", {}).items():
        yield from command_paths(cmd, (*prefix, name))


def test_dash_h_is_help_everywhere():
    paths = list(command_paths())
    assert ("dead-letters", "replay") in paths and ("notices", "list") in paths
    for path in paths:
        done = savin([*path, "-h"])
        assert done.returncode == 0, (path, done.stderr)
        assert "Usage" in done.stdout and "--help" in done.stdout, path


def test_version():
    from savin import __version__

    done = savin(["--version"])
    assert done.returncode == 0 and done.stdout.strip() == f"savin {__version__}"


def test_status_is_a_choice_listed_in_help():
    helptext = savin(["notices", "list", "--help"], {"COLUMNS": "200"}).stdout
    for status in DeliveryStatus:
        assert status.value in helptext
    done = savin(["notices", "list", "--status", "faild"], {"SAVIN_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"})
    assert done.returncode == 2 and "faild" in done.stderr and "failed" in done.stderr


# ---- errors in words -------------------------------------------------------------------------


@pytest.mark.parametrize("name,value,words", [
    ("SAVIN_NAMESPACE", "victims notices", "letters, digits, '.', '_' or '-'"),
    ("SAVIN_NAMESPACE", "x" * 201, "1 to 200 letters, digits"),
    ("SAVIN_STORE", "disk", "rocksdb or memory"),
    ("SAVIN_LOG_LEVEL", "loud", "debug, info, warning or error"),
    ("SAVIN_WORKER_ID", "pod/1", "1 to 64 letters, digits, '.', '_' or '-'"),
    ("SAVIN_PARTITIONS", "0", "a whole number from 1 to 256"),
    ("SAVIN_REPLICATION_FACTOR", "none", "a whole number at least 1"),
    ("SAVIN_SMTP_STARTTLS", "maybe", "true or false"),
    ("SAVIN_KAFKA_BOOTSTRAP", "localhost", "host:port"),
])
def test_settings_errors_say_what_is_allowed_in_words(name, value, words):
    done = savin(["dead-letters", "list"], {name: value})
    assert done.returncode == 2, done.stderr
    assert f"{name}: must be" in done.stderr and words in done.stderr
    assert "pattern" not in done.stderr and "^" not in done.stderr and value not in done.stderr


def test_a_validation_message_keeps_its_brackets(kafka_bootstrap, namespace, tmp_path):
    doc = json.loads((EXAMPLES / "events" / "RESTITUTION_PAYMENT.json").read_text())
    doc["payload"]["currency"] = "usd"
    src = tmp_path / "events.jsonl"
    src.write_text(json.dumps(doc) + "\n")
    done = savin(["publish", str(src)], {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace})
    assert done.returncode == 1
    assert "RESTITUTION_PAYMENT.payload.currency: String should match pattern '^[A-Z]{3}$'" in done.stderr


def test_keys_new_checks_the_key_id():
    for bad in ("my-key", "1k", "a,b", "a:b", " k1", ""):
        done = savin(["keys", "new", "--key-id", bad])
        assert done.returncode == 2 and "--key-id" in done.stderr and done.stdout == "", bad
    done = savin(["keys", "new", "--key-id", "k_2026"])
    assert done.returncode == 0
    assert list(DataKeys.parse(done.stdout.strip()).keys) == ["k_2026"]


# ---- topics get the configured replication factor ----------------------------------------------


def test_every_command_creates_topics_with_the_configured_replication_factor(kafka_bootstrap, namespace, data_key):
    # The test broker is a single node: two replicas cannot be placed, and saying
    # so proves the setting reached topic creation.
    env = {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace, "SAVIN_DATA_KEY": data_key,
           "SAVIN_INDEX_KEY": new_key(), "SAVIN_REPLICATION_FACTOR": "2"}
    for args in (["publish", str(EXAMPLES / "events" / "RELEASED.json")],
                 ["registrations", "import", str(EXAMPLES / "registrations.jsonl")]):
        done = savin(args, env)
        assert done.returncode == 1, done.stdout
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "SAVIN_REPLICATION_FACTOR" in lines[0] and "2 replica" in lines[0], done.stderr
        assert "Traceback" not in done.stderr
    assert records(kafka_bootstrap, f"{namespace}.custody-events") == []

    env["SAVIN_REPLICATION_FACTOR"] = "1"
    done = savin(["publish", str(EXAMPLES / "events" / "RELEASED.json")], env)
    assert done.returncode == 0 and "published 1, rejected 0" in done.stdout


# ---- listings: ids whole, --json everywhere ------------------------------------------------------


def test_notice_listings_keep_ids_whole_and_speak_json(kafka_bootstrap, namespace):
    from savin.settings import load_settings

    s = load_settings(_env_file=None, kafka_bootstrap=kafka_bootstrap, namespace=namespace)
    topics = Topics(s)
    notice = uuid.uuid4()
    registration = "R-" + "7" * 62  # the longest registration id there is
    now = dt.datetime.now(dt.timezone.utc)
    results = [
        DeliveryResult(notice_id=notice, registration_id=registration, event_id=uuid.uuid4(), event_type="RELEASED",
                       channel=Channel.SMS, status=DeliveryStatus.RETRYING, attempt=0, provider="twilio",
                       error_code="20429", error="Too many requests", at=now),
        DeliveryResult(notice_id=notice, registration_id=registration, status=DeliveryStatus.FAILED, attempt=1,
                       provider="twilio", provider_ref="SM" + "a" * 32, error_code="21211", error="Invalid 'To'",
                       at=now + dt.timedelta(seconds=30)),
    ]

    async def post():
        await ensure_topics(kafka_bootstrap, topics.specs())
        prod = producer(kafka_bootstrap)
        await prod.start()
        try:
            for r in results:
                await prod.send_and_wait(topics.delivery_results, r.model_dump_json().encode(), key=registration.encode())
        finally:
            await prod.stop()

    asyncio.run(post())
    env = {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace}

    table = savin(["notices", "list"], env)
    assert table.returncode == 0, table.stderr
    assert str(notice) in table.stdout and registration in table.stdout
    rows = [json.loads(line) for line in savin(["notices", "list", "--status", "failed", "--json"], env).stdout.splitlines()]
    assert [(r["notice_id"], r["registration_id"], r["status"], r["attempts"]) for r in rows] == [
        (str(notice), registration, "failed", 2)]
    assert savin(["notices", "list", "--status", "delivered", "--json"], env).stdout == ""

    shown = savin(["notices", "show", str(notice)], env)
    assert shown.returncode == 0 and "SM" + "a" * 32 in shown.stdout and str(notice) in shown.stdout
    lines = savin(["notices", "show", str(notice), "--json"], env).stdout.splitlines()
    assert [DeliveryResult.model_validate_json(line) for line in lines] == results
