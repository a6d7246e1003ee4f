"""`savin bench --quick` runs every stage and writes complete results.
(Figures are checked for presence and sanity only: speed is never asserted.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from savin.dev.bench.runner import STAGES, TARGETS

pytestmark = pytest.mark.e2e


def ordered(figure: dict) -> bool:
    return figure["min"] <= figure["median"] <= figure["max"]


def test_quick_bench_writes_every_figure(kafka_bootstrap, tmp_path):
    out = tmp_path / "bench"
    env = {**os.environ, "SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_BENCH_DIR": str(tmp_path / "work")}
    done = subprocess.run([sys.executable, "-m", "savin.cli", "bench", "--quick", "--out", str(out),
                           "--duration", "5", "--recovery-registrations", "5000"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for stage in STAGES:
        assert f"] {stage}" in done.stdout  # progress was shown

    results = json.loads((out / "results.json").read_text())
    assert results["run"]["label"] == "quick (custom sizes)"
    assert results["machine"]["cores"] >= 1 and results["machine"]["kafka"] == "3.9.1"
    assert results["sizes"]["runs"] == 1

    match = results["match"]
    (run,) = match["runs"]
    assert run["baseline"]["messages"] == 10_000 and run["baseline"]["per_second"] > 0
    assert match["events"] == 10_000 and match["notices"] > 0 and run["events_per_second"] > 0
    assert run["ratio_to_baseline"] == pytest.approx(run["events_per_second"] / run["baseline"]["per_second"],
                                                     abs=0.01)
    assert all(ordered(match[k]) for k in ("events_per_second", "ratio_to_baseline", "baseline.per_second"))
    assert match["ratio_to_baseline"]["min"] == run["ratio_to_baseline"]

    assert results["send"]["notices"] == 1_000 and results["send"]["per_second"] > 0

    latency = results["latency"]
    (run,) = latency["runs"]
    assert run["events"] == 1_000 and run["warm_up"]["events"] > 0
    assert 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"] <= run["max_ms"]
    match_share = run["to_notice_job"]
    assert 0 < match_share["p50_ms"] <= match_share["p99_ms"] <= match_share["max_ms"] <= run["max_ms"]
    assert ordered(latency["p99_ms"]) and latency["p99_ms"]["max"] == run["p99_ms"]

    recovery = results["recovery"]
    assert recovery["registrations"] == 5_000
    assert recovery["seconds_to_first_notice"] > 0 and recovery["peak_rss_mb"] > 0
    ack = results["acknowledgement"]
    assert ack["events"] == 5 and 0 < ack["p50_ms"] <= ack["max_ms"] and ack["calls"] >= 5
    assert ack["steps_after_acknowledgement"] == 0

    burst = results["burst"]
    assert burst["notices"] == 2_000 and burst["drained"] and burst["sms"] == burst["email"] == 1_000
    assert burst["seconds_to_drain"] > 0 and burst["sms_per_second"] > 0 and burst["too_many_requests"] >= 0
    assert burst["share_of_limit"] == pytest.approx(burst["sms_per_second"] / burst["sms_limit_per_second"],
                                                    abs=0.01)
    backlog = results["backlog"]
    assert backlog["routine_notices"] == 2_000 and backlog["routine_accepted"] == 2_000
    assert 0 < backlog["urgent_seconds"] and 0 < backlog["routine_waiting_at_publish"] < 2_000
    cluster = results["cluster"]
    if cluster["measured"]:
        assert cluster["workers"] == 3 and cluster["replication"] == 3 and cluster["events_per_second"] > 0
    else:
        assert cluster["reason"]
    assert set(results["targets"]) == set(TARGETS)

    table = (out / "RESULTS.md").read_text()
    for figure in (f"{match['events_per_second']['median']:,} events/s", f"{latency['p99_ms']['max']:,} ms",
                   f"{recovery['peak_rss_mb']} MB", f"{burst['too_many_requests']} × 429",
                   f"**{backlog['urgent_seconds']} s**"):
        assert figure in table
