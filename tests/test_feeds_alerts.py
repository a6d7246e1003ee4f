"""The safety checks' alert rules and dashboard panels (docker/): each alert of
the savin-safety group fires over made-up series when it should and only then
(promtool, as tests/test_docker.py runs the others), and the dashboard shows
every safety metric."""

from __future__ import annotations

import json

import test_docker
from test_docker import ALERTS, DASHBOARD, W1, W2, _panel_queries, _series, _yaml

from savin import metrics

#: (what it shows, input series, [(alert, at, expected label sets)]), 15 s between samples.
SAFETY_SCENARIOS = [
    ("a source goes stale on the judge, which then moves to another worker; another source stays ok",
     [_series("savin_feed_stale", "0x4 1x8 stale", source="demo", **W1),
      _series("savin_feed_stale", "_x12 1x8 0x20", source="demo", **W2),
      _series("savin_feed_stale", "0x40", source="mo-doc-oms", **W1)],
     [("SavinFeedStale", "45s", []),
      ("SavinFeedStale", "75s", [{"source": "demo", "severity": "critical"}]),
      ("SavinFeedStale", "4m", [{"source": "demo", "severity": "critical"}]),
      ("SavinFeedStale", "7m", [])]),
    ("a source low for ten minutes, another for an hour",
     [_series("savin_feed_low", "1x40 0x200", source="county-jail", **W1),
      _series("savin_feed_low", "1x240", source="mo-doc-oms", **W1)],
     [("SavinFeedLow", "20m", []),
      ("SavinFeedLow", "45m", [{"source": "mo-doc-oms", "severity": "warning"}])]),
    ("a mass hold open, reported alike by both match instances; no offender block",
     [_series("savin_holds_open", "0x4 1x20", kind="mass", **W1),
      _series("savin_holds_open", "0x4 1x20", kind="mass", **W2),
      _series("savin_holds_open", "0x24", kind="offender", **W1)],
     [("SavinHoldOpen", "90s", []),
      ("SavinHoldOpen", "3m", [{"kind": "mass", "severity": "critical"}])]),
    ("notices at risk of their deadline on one worker, none on the other",
     [_series("savin_deadline_at_risk_notices", "0x4 3x20", **W1),
      _series("savin_deadline_at_risk_notices", "0x24", **W2)],
     [("SavinDeadlineAtRisk", "90s", []),
      ("SavinDeadlineAtRisk", "3m", [{"severity": "critical"}])]),
    ("a deadline missed, then none for longer than the window",
     [_series("savin_deadline_missed_total", "0x10 1x300", event_type="RELEASED", **W1)],
     [("SavinDeadlineMissed", "2m", []),
      ("SavinDeadlineMissed", "5m", [{"severity": "critical"}]),
      ("SavinDeadlineMissed", "70m", [])]),
    ("notices corrected and cancelled after a retraction; ones needing nothing do not count",
     [_series("savin_corrections_total", "0x10 2x60", outcome="corrected", **W1),
      _series("savin_corrections_total", "0x10 1x60", outcome="cancelled", **W2),
      _series("savin_corrections_total", "0+1x70", outcome="none", **W1)],
     [("SavinCorrectionsSent", "2m", []),
      ("SavinCorrectionsSent", "5m", [{"severity": "warning"}])]),
]

SAFETY_METRICS = [metrics.HOLDS_OPEN, metrics.HOLD_NOTICES, metrics.FEED_STALE, metrics.FEED_LOW,
                  metrics.FEED_LAST_EVENT, metrics.DEADLINE_AT_RISK, metrics.DEADLINE_MISSED, metrics.CORRECTIONS]


def _safety_alerts() -> set[str]:
    group, = (g for g in _yaml(ALERTS)["groups"] if g["name"] == "savin-safety")
    return {r["alert"] for r in group["rules"]}


def test_each_safety_alert_fires_when_it_should_and_only_then(tmp_path, monkeypatch):
    # The same run as the other alerts', over these scenarios.
    monkeypatch.setattr(test_docker, "SCENARIOS", SAFETY_SCENARIOS)
    test_docker.test_each_alert_fires_when_it_should_and_only_then(tmp_path)


def test_every_safety_alert_has_a_scenario():
    tried = {alert for _, _, expected in SAFETY_SCENARIOS for alert, _, sets in expected if sets}
    assert _safety_alerts() == tried


def test_every_safety_metric_has_a_panel_and_the_alerts_watch_the_ones_to_act_on():
    rules = " ".join(r["expr"] for g in _yaml(ALERTS)["groups"] if g["name"] == "savin-safety" for r in g["rules"])
    panels = " ".join(q for _, q in _panel_queries(json.loads(DASHBOARD.read_text(encoding="utf-8"))))
    for metric in SAFETY_METRICS:
        name = metric._name
        assert name in panels, name
    for name in ("savin_feed_stale", "savin_feed_low", "savin_holds_open", "savin_deadline_at_risk_notices",
                 "savin_deadline_missed", "savin_corrections"):
        assert name in rules, name
