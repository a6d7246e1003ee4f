"""`make demo`'s job, as a new user runs it: a broker, the peers, the worker and
the portal as their own processes; the sample day delivered, the malformed
event dead-lettered, and a victim registered through the portal's forms who is
told of the next hearing on both confirmed contacts, then texted and called about
an escape and acknowledging it with the PIN and 1 on the call; an operator then
signs in to the console and reads that notice's timeline. With --serve it keeps
running, says where the portal and console are and how to sign in, and stops
everything on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from savin.dev.testing.console_client import ConsoleClient

pytestmark = pytest.mark.e2e


def test_the_demo_runs_start_to_finish_and_keeps_serving(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAVIN_")}
    env["COLUMNS"] = "200"
    proc = subprocess.Popen([sys.executable, "-m", "savin.cli", "demo", "--serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 300
    try:
        for line in proc.stdout:
            lines.append(line)
            if "Kafka " in line and "namespace" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
        so_far = "".join(lines)
        assert "Still running" in so_far, so_far[-3000:]
        login = re.search(r"operator console\s+(http://\S+)/console\s+sign in as (\S+) / (\S+)", so_far)
        assert login, so_far[-2000:]
        url, name, password = login.groups()
        # The console the demo leaves running takes the sign-in it printed.
        client = ConsoleClient(url)
        assert client.sign_in(name, password).status_code == 303
        assert "Overview" in client.get("/console").text
        assert client.get("/").status_code == 200  # and the portal
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = so_far + rest
    out = " ".join(output.split())
    assert proc.returncode == 0, output[-3000:]
    assert "14 notices: 14 accepted" in out
    assert "invalid event" in out  # the malformed event, dead-lettered with its reason
    assert "both contacts confirmed" in out
    assert "told of the hearing in Spanish: email accepted, sms accepted" in out
    assert "Responda " in out and " si recibió este aviso" in out  # the escape's SMS asks for a reply
    assert "call (Polly.Mia): Richard Roe" in out  # the call speaks the notice, in Spanish, after the PIN
    assert "acknowledged by voice" in out and "no further call is planned" in out
    assert "an operator signs in to the console" in out
    timeline = output.split("escape notice's timeline", 1)[1].split("9/9", 1)[0].lower()
    assert "acknowledg" in timeline and "accepted" in timeline
    assert "+1573" not in timeline  # ids and times only
    assert "stopped the worker, the peers and the broker" in out
