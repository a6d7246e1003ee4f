"""`make demo`'s job, as a new user runs it: a broker, the peers, the worker and
the portal as their own processes; the sample day delivered, the malformed
event dead-lettered, and a victim registered through the portal's forms who is
told of the next hearing on both confirmed contacts, then texted and called about
an escape and acknowledging it with the PIN and 1 on the call."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_the_demo_runs_start_to_finish(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAVIN_")}
    done = subprocess.run([sys.executable, "-m", "savin.cli", "demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    out = " ".join(done.stdout.split())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "14 notices: 14 accepted" in out
    assert "invalid event" in out  # the malformed event, dead-lettered with its reason
    assert "both contacts confirmed" in out
    assert "told of the hearing in Spanish: email accepted, sms accepted" in out
    assert "Responda " in out and " si recibió este aviso" in out  # the escape's SMS asks for a reply
    assert "call (Polly.Mia): Richard Roe" in out  # the call speaks the notice, in Spanish, after the PIN
    assert "acknowledged by voice" in out and "no further call is planned" in out
    assert "stopped the worker, the peers and the broker" in out
