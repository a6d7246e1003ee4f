"""`savin bench --quick` runs every stage and writes complete results.
(Figures are checked for presence and sanity only: speed is never asserted.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_quick_bench_writes_every_figure(kafka_bootstrap, tmp_path):
    out = tmp_path / "bench"
    env = {**os.environ, "SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_BENCH_DIR": str(tmp_path / "work")}
    done = subprocess.run([sys.executable, "-m", "savin.cli", "bench", "--quick", "--out", str(out),
                           "--duration", "5", "--recovery-registrations", "5000"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for stage in ("baseline", "match", "send", "latency", "recovery", "acknowledgement"):
        assert f"] {stage}" in done.stdout  # progress was shown

    results = json.loads((out / "results.json").read_text())
    assert results["run"]["label"] == "quick (custom sizes)"
    assert results["machine"]["cores"] >= 1 and results["machine"]["kafka"] == "3.9.1"
    assert results["baseline"]["per_second"] > 0 and results["baseline"]["messages"] == 10_000
    match = results["match"]
    assert match["events"] == 10_000 and match["notices"] > 0 and match["events_per_second"] > 0
    assert match["ratio_to_baseline"] == pytest.approx(match["events_per_second"] / results["baseline"]["per_second"],
                                                       abs=0.01)
    assert results["send"]["notices"] == 1_000 and results["send"]["per_second"] > 0
    latency = results["latency"]
    assert latency["events"] == 1_000
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    match_share = latency["to_notice_job"]
    assert 0 < match_share["p50_ms"] <= match_share["p99_ms"] <= match_share["max_ms"] <= latency["max_ms"]
    recovery = results["recovery"]
    assert recovery["registrations"] == 5_000
    assert recovery["seconds_to_first_notice"] > 0 and recovery["peak_rss_mb"] > 0
    ack = results["acknowledgement"]
    assert ack["events"] == 5 and 0 < ack["p50_ms"] <= ack["max_ms"] and ack["calls"] >= 5
    assert ack["steps_after_acknowledgement"] == 0
    assert set(results["targets"]) == {"match_ratio", "send_per_second", "latency_p99_ms", "recovery_seconds",
                                       "peak_rss_mb"}

    table = (out / "RESULTS.md").read_text()
    for figure in (f"{results['baseline']['per_second']:,} messages/s", f"{match['events_per_second']:,} events/s",
                   f"p99 {latency['p99_ms']} ms", f"{recovery['peak_rss_mb']} MB"):
        assert figure in table
