"""Configuration faults are not retried in silence: the development provider
defaults and refused credentials stop a worker at start with one line naming the
settings (exit code 2); credentials refused while sending keep the notices for
retry, make ``/readyz`` name the provider, are logged once and counted, and
clear once the provider accepts again.

Real broker, the worker as its own process, the spec-validated fake Twilio and
the SMTP server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys

import pytest
from support import event, eventually, metric, phone, registration

from savin.bootstrap import StartupError, check_settings, development_defaults
from savin.dev.testing.stack import SMTP_PASSWORD, TWILIO_TOKEN
from savin.schemas import DeliveryStatus
from savin.sealing import new_key
from savin.settings import Settings
from savin.streams.worker import EXIT_CONFIG

pytestmark = pytest.mark.e2e

ACCOUNT_PATH = re.compile(r"^/2010-04-01/Accounts/AC[0-9a-f]{32}\.json$")


def settings(**values) -> Settings:
    return Settings(_env_file=None, data_key=f"k1:{new_key()}", **values)


def test_the_development_defaults_are_named_and_refused_outside_a_development_run():
    assert development_defaults(settings()) == [
        "SAVIN_TWILIO_ACCOUNT_SID", "SAVIN_TWILIO_AUTH_TOKEN", "SAVIN_TWILIO_FROM", "SAVIN_SMTP_HOST", "SAVIN_SMTP_PORT"]
    with pytest.raises(StartupError, match="SAVIN_DEVELOPMENT=true"):
        check_settings(settings())
    check_settings(settings(development=True))
    real = settings(twilio_account_sid="AC" + "7" * 32, twilio_auth_token="real", twilio_from="+15735550100",
                    smtp_host="smtp.example.org")
    assert development_defaults(real) == []
    check_settings(real)
    assert development_defaults(settings(twilio_auth_token="real", smtp_port=587)) == [
        "SAVIN_TWILIO_ACCOUNT_SID", "SAVIN_TWILIO_FROM"]
    assert development_defaults(settings(stages="match")) == []  # matching talks to no provider


def run_worker(env: dict[str, str], cwd, timeout: float = 90) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAVIN_")}
    return subprocess.run([sys.executable, "-m", "savin.cli", "worker"], env={**clean, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_a_worker_on_the_development_defaults_refuses_to_start(kafka_bootstrap, namespace, tmp_path):
    done = run_worker({"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace,
                       "SAVIN_DATA_KEY": f"k1:{new_key()}", "SAVIN_DATA_DIR": str(tmp_path / "w")}, tmp_path)
    assert done.returncode == EXIT_CONFIG
    line = one_line(done.stderr + done.stdout)
    for name in ("SAVIN_TWILIO_ACCOUNT_SID", "SAVIN_TWILIO_AUTH_TOKEN", "SAVIN_TWILIO_FROM", "SAVIN_SMTP_HOST",
                 "SAVIN_DEVELOPMENT=true"):
        assert name in line, line
    assert "savin-dev-token" not in line


def test_refused_twilio_credentials_stop_the_worker_at_start(stack, tmp_path):
    done = run_worker({**stack.env(), "SAVIN_TWILIO_AUTH_TOKEN": "not-the-token"}, tmp_path)
    assert done.returncode == EXIT_CONFIG
    line = one_line(done.stderr + done.stdout)
    assert "SAVIN_TWILIO_ACCOUNT_SID" in line and "SAVIN_TWILIO_AUTH_TOKEN" in line and "20003" in line, line
    assert "SMTP" not in line and "not-the-token" not in line
    # The account fetch reached the fake, passed Twilio's spec, and was refused for its credentials only.
    assert [(bool(ACCOUNT_PATH.match(path)), reason) for path, reason in stack.twilio.rejected] == [
        (True, "authentication failed")]


def test_refused_smtp_credentials_stop_the_worker_at_start(stack, tmp_path):
    done = run_worker({**stack.env(), "SAVIN_SMTP_PASSWORD": "not-the-password"}, tmp_path)
    assert done.returncode == EXIT_CONFIG
    line = one_line(done.stderr + done.stdout)
    assert "SAVIN_SMTP_USERNAME" in line and "SAVIN_SMTP_PASSWORD" in line and "535" in line, line
    assert "TWILIO" not in line and "not-the-password" not in line
    assert stack.twilio.rejected == []


async def test_credentials_refused_while_sending_keep_the_notices_and_make_the_worker_unready(stack):
    stack.worker_env.update(SAVIN_RETRY_DELAYS="1,2", SAVIN_MAX_ATTEMPTS="100")
    worker = stack.start_worker()
    await stack.import_registrations([registration("R-CF", "O-CF", sms=phone(42), email="cf.victim@example.org")])
    await stack.wait_caught_up(stack.topics.registrations)

    # Operators rotate both secrets at the providers; the worker still holds the old ones.
    stack.twilio.rotate_auth_token("rotated-token")
    stack.smtp.password = "rotated-password"
    stack.smtp.stop()  # drops the authenticated sessions the worker keeps open
    stack.smtp.start()
    await stack.publish_events([json.dumps(event("RELEASED", "O-CF"))])

    def refused():
        status, body = worker.readiness()
        return status == 503 and {"provider:twilio", "provider:smtp"} <= set(body["failing"]) and body

    body = await eventually(refused, 60, "readyz to name both providers")
    assert body["checks"]["provider:twilio"]["code"] == "20003"
    assert body["checks"]["provider:smtp"]["code"] == "535"
    assert "kafka" not in body["failing"] and phone(42) not in json.dumps(body) and "@" not in json.dumps(body)

    # Kept for retry, never failed; tried again and again, counted each time, logged once.
    await eventually(lambda: metric(worker.metrics(), "savin_provider_config_faults_total",
                                provider="twilio", code="20003") >= 3, 60, "retries of the refused SMS")
    results = await stack.results()
    assert {(r.channel.value, r.status, r.error_code) for r in results if r.source == "attempt"} == {
        ("sms", DeliveryStatus.RETRYING, "20003"), ("email", DeliveryStatus.RETRYING, "535")}
    metrics = worker.metrics()
    assert metric(metrics, "savin_provider_config_faults_total", provider="smtp", code="535") >= 1
    assert metric(metrics, "savin_provider_config_ok", provider="twilio") == 0
    log = worker.tail(10**9)
    assert len(re.findall(r"\[ERROR\] twilio refuses savin's configuration", log)) == 1, log[-3000:]
    assert len(re.findall(r"\[ERROR\] smtp refuses savin's configuration", log)) == 1, log[-3000:]
    assert "cf.victim@example.org" not in log and phone(42) not in log

    # Fixed at the providers: a check or the next retry clears the fault, and the notices go out.
    stack.twilio.rotate_auth_token(TWILIO_TOKEN)
    stack.smtp.password = SMTP_PASSWORD
    await eventually(worker.ready, 60, "readyz to answer 200 again")
    assert await asyncio.to_thread(stack.twilio.wait_for, 1, 60)
    assert await asyncio.to_thread(stack.smtp.wait_for, 1, 60)
    assert [m.to for m in stack.twilio.messages] == [phone(42)]
    assert metric(worker.metrics(), "savin_provider_config_ok", provider="twilio") == 1
