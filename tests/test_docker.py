"""docker/: the image, the compose file, Prometheus's configuration and alert
rules, and Grafana's dashboard, checked without a container engine (these
machines have none, so nothing is built or started).

- Prometheus's own ``promtool`` (Debian's ``prometheus`` package) checks the
  configuration and the rules, and runs the rules over made-up series to see
  each alert fire when it should and stay quiet when it should.
- The compose file is validated against the Compose Specification's JSON Schema
  as compose-go, the loader of ``docker compose``, ships it; then what the schema
  cannot know: pinned images, the health checks, the mounts, and that every
  ``SAVIN_*`` variable it sets is a setting savin has.
- The Dockerfile gets a small lint; every metric a rule or a panel names is one
  savin exports, with labels it has.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from savin import metrics
from savin.dev.testing import compose_spec
from savin.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
PROMETHEUS = DOCKER / "prometheus" / "prometheus.yml"
ALERTS = DOCKER / "prometheus" / "alerts.yml"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "savin.json"
GRAFANA_PROVISIONING = DOCKER / "grafana" / "provisioning"
ENV_EXAMPLE = DOCKER / "env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMTOOL = Path("/usr/bin/promtool")

#: What `docker compose` does not interpolate or tell apart: settings that are secrets.
SECRETS = {"SAVIN_DATA_KEY", "SAVIN_INDEX_KEY", "SAVIN_WEB_SECRET", "SAVIN_TWILIO_AUTH_TOKEN", "SAVIN_SMTP_PASSWORD"}
#: Labels Prometheus adds to every scraped series, and a histogram's bucket bound.
SCRAPE_LABELS = {"instance", "job"}


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return _yaml(COMPOSE)


def _savin_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def _command(service: dict) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def _mounts(service: dict) -> dict[str, str]:
    """Each bind mount's target and its source, resolved against docker/."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            found[target] = (DOCKER / source).resolve()
    return found


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    assert PROMTOOL.exists(), "promtool is missing: `make install` installs Debian's prometheus package"
    return subprocess.run([str(PROMTOOL), *args], check=False, capture_output=True, text=True, timeout=120, cwd=cwd)


# ---- promtool ---------------------------------------------------------------------------------


def test_promtool_accepts_the_rules():
    result = _promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_configuration_and_the_rules_it_loads():
    result = _promtool("check", "config", str(PROMETHEUS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alerts.yml" in result.stdout, result.stdout


def _series(name: str, values: str, **labels: str) -> dict:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


W1 = {"instance": "worker-1:6066", "job": "savin-worker"}
W2 = {"instance": "worker-2:6066", "job": "savin-worker"}
DELIVER = {"stage": "deliver", "group": "savin.deliver"}
SMS = {"channel": "sms", "provider": "twilio"}
EMAIL = {"channel": "email", "provider": "smtp"}
MATCH = {"stage": "match", "group": "savin.match"}

#: (what it shows, input series, [(alert, at, expected label sets)]), 15 s between samples.
SCENARIOS = [
    ("a stage that stops committing; one that goes on",
     [_series("savin_stage_last_commit_timestamp_seconds", "0+15x8 120x60", stage="deliver", **W1),
      _series("savin_stage_last_commit_timestamp_seconds", "0+15x68", stage="match", **W1)],
     [("SavinStageStopped", "5m", []),
      ("SavinStageStopped", "8m", [{"stage": "deliver", **W1, "severity": "critical"}])]),
    ("lag growing on one stage, high but steady on another",
     [_series("savin_consumer_lag_records", "0+100x200", **DELIVER, topic="notices.urgent", partition="0", **W1),
      _series("savin_consumer_lag_records", "200x200", **DELIVER, topic="notices.urgent", partition="1", **W2),
      _series("savin_consumer_lag_records", "5000x200", **MATCH, topic="custody-events", partition="0", **W1)],
     [("SavinConsumerLagGrowing", "5m", []),
      ("SavinConsumerLagGrowing", "20m", [{"stage": "deliver", "severity": "warning"}])]),
    ("urgent notices waiting a few minutes, then not; routine ones waiting ever longer",
     [_series("savin_consumer_lag_seconds", "0+15x40 0x100", **DELIVER, topic="notices.urgent", partition="0", **W1),
      _series("savin_consumer_lag_seconds", "0+15x140", **DELIVER, topic="notices.routine", partition="0", **W1)],
     [("SavinUrgentNoticesWaiting", "5m", [{"stage": "deliver", "topic": "notices.urgent", "severity": "critical"}]),
      ("SavinUrgentNoticesWaiting", "20m", []),
      ("SavinConsumerBehind", "20m", []),
      ("SavinConsumerBehind", "28m", [{"stage": "deliver", "topic": "notices.routine", "severity": "warning"}])]),
    ("partitions in STOP and STALL; one in WARN, one in REWIND",
     [_series("savin_consumer_status", "0x4 2x20", **DELIVER, topic="notices.urgent", partition="0", **W1),
      _series("savin_consumer_status", "1x24", **DELIVER, topic="notices.urgent", partition="1", **W1),
      _series("savin_consumer_status", "3x24", **MATCH, topic="custody-events", partition="0", **W2),
      _series("savin_consumer_status", "4x24", **MATCH, topic="custody-events", partition="1", **W2)],
     [("SavinConsumerStopped", "2m30s", [{**MATCH, "topic": "custody-events", "partition": "0", **W2,
                                          "severity": "critical"}]),
      ("SavinConsumerStopped", "4m", [{**DELIVER, "topic": "notices.urgent", "partition": "0", **W1,
                                       "severity": "critical"},
                                      {**MATCH, "topic": "custody-events", "partition": "0", **W2,
                                       "severity": "critical"}])]),
    ("one SMS in six fails or goes undelivered; email is fine",
     [_series("savin_provider_results_total", "0+10x200", **SMS, status="accepted", code="none", **W1),
      _series("savin_provider_results_total", "0+1x200", **SMS, status="failed", code="21211", **W1),
      _series("savin_provider_results_total", "0+1x200", **SMS, status="undelivered", code="30003", **W1),
      _series("savin_provider_results_total", "0+10x200", **SMS, status="delivered", code="none", **W1),
      _series("savin_provider_results_total", "0+10x200", **EMAIL, status="accepted", code="none", **W1),
      _series("savin_provider_results_total", "0x200", **EMAIL, status="failed", code="550", **W1)],
     [("SavinNoticeFailureRate", "10m", []),
      ("SavinNoticeFailureRate", "40m", [{"channel": "sms", "severity": "warning"}])]),
    ("one Twilio error code passes 5% of its notices; others and SMTP's stay below",
     [_series("savin_provider_results_total", "0+40x200", **SMS, status="accepted", code="none", **W1),
      _series("savin_provider_results_total", "0+5x200", **SMS, status="undelivered", code="30007", **W1),
      _series("savin_provider_results_total", "0+1x200", **SMS, status="failed", code="21211", **W1),
      _series("savin_provider_results_total", "0+40x200", **SMS, status="accepted", code="none", **W2),
      _series("savin_provider_results_total", "0+100x200", **EMAIL, status="accepted", code="none", **W1),
      _series("savin_provider_results_total", "0+1x200", **EMAIL, status="failed", code="550", **W1)],
     [("SavinProviderErrorRate", "10m", []),
      ("SavinProviderErrorRate", "40m", [{"provider": "twilio", "code": "30007", "severity": "warning"}])]),
    ("urgent notices reach the provider half a minute to two minutes after the event; routine ones later still",
     [_series("savin_publish_to_accepted_seconds_bucket", "0+9x100", urgency="urgent", channel="sms", le="30.0", **W1),
      _series("savin_publish_to_accepted_seconds_bucket", "0+10x100", urgency="urgent", channel="sms", le="120.0",
              **W1),
      _series("savin_publish_to_accepted_seconds_bucket", "0+10x100", urgency="urgent", channel="sms", le="+Inf",
              **W1),
      _series("savin_publish_to_accepted_seconds_bucket", "0x100", urgency="routine", channel="sms", le="120.0",
              **W1),
      _series("savin_publish_to_accepted_seconds_bucket", "0+10x100", urgency="routine", channel="sms", le="+Inf",
              **W1)],
     [("SavinUrgentPublishToAcceptedSlow", "5m", []),
      ("SavinUrgentPublishToAcceptedSlow", "22m", [{"channel": "sms", "severity": "warning"}])]),
    ("notices pile up on the first retry tier, summed over the workers; the second tier stays small",
     [_series("savin_retry_backlog_notices", "60x100", tier="notice-retries.0", **W1),
      _series("savin_retry_backlog_notices", "60x100", tier="notice-retries.0", **W2),
      _series("savin_retry_backlog_notices", "5x100", tier="notice-retries.1", **W1)],
     [("SavinRetryBacklogHigh", "10m", []),
      ("SavinRetryBacklogHigh", "20m", [{"tier": "notice-retries.0", "severity": "warning"}])]),
    ("open ladders pile up past 50 for over an hour",
     [_series("savin_escalation_backlog_ladders", "30x300", **W1),
      _series("savin_escalation_backlog_ladders", "10x10 30x290", **W2)],
     [("SavinEscalationBacklogHigh", "30m", []),
      ("SavinEscalationBacklogHigh", "70m", [{"severity": "warning"}])]),
    ("a dead letter, then none for longer than the window",
     [_series("savin_dead_letters_total", "0x20 1x100", topic="custody-events", **W1)],
     [("SavinDeadLettersGrowing", "4m", []),
      ("SavinDeadLettersGrowing", "7m", [{"topic": "custody-events", "severity": "warning"}]),
      ("SavinDeadLettersGrowing", "25m", [])]),
    ("Twilio refuses the credentials; SMTP accepts them",
     [_series("savin_provider_config_ok", "1x4 0x20", provider="twilio", **W1),
      _series("savin_provider_config_ok", "1x24", provider="smtp", **W1)],
     [("SavinProviderRefusesConfiguration", "90s", []),
      ("SavinProviderRefusesConfiguration", "3m", [{"provider": "twilio", **W1, "severity": "critical"}])]),
    ("two urgent notices end unacknowledged; acknowledged ones do not count",
     [_series("savin_escalations_total", "0x10 2x60", outcome="unacknowledged", **W1),
      _series("savin_escalations_total", "0+1x70", outcome="acknowledged", **W1)],
     [("SavinUrgentNoticeUnacknowledged", "2m", []),
      ("SavinUrgentNoticeUnacknowledged", "5m", [{"severity": "warning"}])]),
    ("a registration flagged",
     [_series("savin_registration_flags_total", "0x10 1x60", flag="channel_failed", **W1)],
     [("SavinRegistrationsFlagged", "5m", [{"flag": "channel_failed", "severity": "warning"}])]),
    ("a registration left with no usable channel",
     [_series("savin_registrations_unreachable_total", "0x10 1x60", instance="web:8080", job="savin-web")],
     [("SavinRegistrationsUnreachable", "5m", [{"severity": "warning"}])]),
    ("a worker not ready, a target down, Kafka unreachable; Prometheus's own target does not count",
     [_series("savin_ready", "1x4 0x40", **W2),
      _series("up", "1x4 0x40", instance="web:8080", job="savin-web"),
      _series("up", "0x44", instance="localhost:9090", job="prometheus"),
      _series("savin_kafka_connected", "1x4 0x40", **W1)],
     [("SavinNotReady", "3m", []),
      ("SavinNotReady", "8m", [{**W2, "severity": "critical"}]),
      ("SavinTargetDown", "5m", [{"instance": "web:8080", "job": "savin-web", "severity": "critical"}]),
      ("SavinKafkaUnreachable", "5m", [{**W1, "severity": "critical"}])]),
    ("a stage that keeps rewinding",
     [_series("savin_stage_rewinds_total", "0+1x60", stage="match", **W1)],
     [("SavinStageRewinding", "12m", [{"stage": "match", **W1, "severity": "warning"}])]),
    ("Twilio's sends take seconds; SMTP's do not",
     [_series("savin_send_seconds_bucket", "0x100", provider="twilio", le="0.5", **W1),
      _series("savin_send_seconds_bucket", "0+10x100", provider="twilio", le="10.0", **W1),
      _series("savin_send_seconds_bucket", "0+10x100", provider="twilio", le="+Inf", **W1),
      _series("savin_send_seconds_bucket", "0+10x100", provider="smtp", le="0.5", **W1),
      _series("savin_send_seconds_bucket", "0+10x100", provider="smtp", le="10.0", **W1),
      _series("savin_send_seconds_bucket", "0+10x100", provider="smtp", le="+Inf", **W1)],
     [("SavinSendsSlow", "20m", [{"provider": "twilio", "severity": "warning"}])]),
]


def test_each_alert_fires_when_it_should_and_only_then(tmp_path):
    # promtool compares annotations too; their wording is checked apart
    # (test_alert_rules_are_complete), so the copy run here has none.
    rules = _yaml(ALERTS)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    tests = []
    for what, series, expected in SCENARIOS:
        tests.append({
            "name": what, "interval": "15s", "input_series": series,
            "alert_rule_test": [{"alertname": alert, "eval_time": at,
                                 "exp_alerts": [{"exp_labels": labels} for labels in sets]}
                                for alert, at, sets in expected],
        })
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["alerts.yml"], "evaluation_interval": "15s", "tests": tests}), encoding="utf-8")
    result = _promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_scenario():
    from test_feeds_alerts import SAFETY_SCENARIOS  # the safety checks' alerts, run there

    alerts = {rule["alert"] for group in _yaml(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule}
    tried = {alert for _, _, expected in SCENARIOS + SAFETY_SCENARIOS for alert, _, sets in expected if sets}
    assert alerts == tried


# ---- metrics named by the rules and the dashboard --------------------------------------------


def _exported() -> dict[str, set[str]]:
    """Every series name savin exports, with the labels it may carry."""
    found: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        labels = set(collector._labelnames) | SCRAPE_LABELS
        for family in collector.describe():
            if family.type == "counter":
                found[f"{family.name}_total"] = labels
            elif family.type == "histogram":
                for suffix in ("_count", "_sum"):
                    found[family.name + suffix] = labels
                found[f"{family.name}_bucket"] = labels | {"le"}
            else:
                found[family.name] = labels
    return found


EXPORTED = _exported()
METRIC = re.compile(r"\b(savin_[a-z0-9_]+)\b(\{[^}]*\})?")
RECORDED = re.compile(r"\b(savin:[a-z0-9_:]+)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
LABEL_VALUES = re.compile(r"label_values\(\s*(savin_[a-z0-9_]+)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)")


def _unknown(query: str, recorded: dict[str, set[str]], *, builtin: frozenset[str] = frozenset()) -> list[str]:
    """What in one PromQL query is not exported by savin (metric names, label names)."""
    wrong = []
    labels: set[str] = set()
    names = 0
    for name, matchers in METRIC.findall(query):
        if name not in EXPORTED:
            wrong.append(f"metric {name}")
            continue
        names += 1
        labels |= EXPORTED[name]
        wrong += [f"label {label} of {name}" for label in MATCHER.findall(matchers or "")
                  if label not in EXPORTED[name]]
    for name in RECORDED.findall(query):
        if name not in recorded:
            wrong.append(f"recording rule {name}")
            continue
        names += 1
        labels |= recorded[name]
    names += sum(1 for b in builtin if re.search(rf"\b{b}\b", query))
    if not names:
        wrong.append("no metric of savin's")
    for grouping in GROUPING.findall(query):
        wrong += [f"label {label} in by/without" for label in (g.strip() for g in grouping.split(","))
                  if label and label not in labels]
    return wrong


def _recorded() -> dict[str, set[str]]:
    found = {}
    for group in _yaml(ALERTS)["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                grouping = GROUPING.findall(rule["expr"])
                found[rule["record"]] = {g.strip() for g in grouping[0].split(",")} if grouping else set()
    return found


def test_every_rule_names_metrics_and_labels_savin_exports():
    recorded = _recorded()
    for group in _yaml(ALERTS)["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            # `up` is Prometheus's own: whether it could scrape a target at all.
            assert _unknown(rule["expr"], recorded, builtin=frozenset({"up"})) == [], name


def _panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                found.append((inner["title"], target["expr"]))
    return found


def test_the_dashboard_is_json_and_every_query_names_metrics_and_labels_savin_exports():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = _panel_queries(dashboard)
    assert len(queries) >= 20
    for title, query in queries:
        assert _unknown(query, {}) == [], title
    for variable in dashboard["templating"]["list"]:
        (metric, label), = LABEL_VALUES.findall(variable["query"]["query"])
        assert label in EXPORTED[metric], variable["name"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_dashboard_shows_what_operators_watch():
    queries = " ".join(q for _, q in _panel_queries(json.loads(DASHBOARD.read_text(encoding="utf-8"))))
    for needed in ("savin_consumer_lag_records", "savin_consumer_lag_seconds", "savin_consumer_status",
                   "by (stage, topic, partition)", "savin_notices_total", "by (status)",
                   "by (channel)", "histogram_quantile(0.95", "savin_send_seconds_bucket", "savin_dead_letters_total",
                   "savin_escalations_total", "savin_acknowledgements_total", "savin_ready",
                   "savin_provider_results_total", "by (provider, code)", "savin_publish_to_accepted_seconds_bucket",
                   "savin_retry_backlog_notices", "savin_escalation_backlog_ladders", "savin_build_info"):
        assert needed in queries, needed


def test_the_dashboard_reads_the_provisioned_datasource():
    datasources = _yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    uids = {d["uid"] for d in datasources}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    used |= {v["datasource"]["uid"] for v in dashboard["templating"]["list"]}
    assert used and used <= uids


def test_alert_rules_are_complete():
    allowed = {"stage", "group", "topic", "partition", "channel", "provider", "code", "tier", "flag", "instance",
               "job"}
    for group in _yaml(ALERTS)["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            name = rule["alert"]
            assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), name
            assert rule["labels"]["severity"] in {"critical", "warning"}, name
            assert set(rule["annotations"]) == {"summary", "description"}, name
            for text in rule["annotations"].values():
                # Only ids reach an alert: the labels above, and the value.
                for variable in re.findall(r"\{\{(.*?)\}\}", text):
                    used = re.findall(r"\$(\w+)(?:\.(\w+))?", variable)
                    assert used, (name, variable)
                    for var, label in used:
                        assert var == "value" or (var == "labels" and label in allowed), (name, variable)


def test_the_rules_file_says_which_alerts_wait_for_metrics():
    head = ALERTS.read_text(encoding="utf-8").split("groups:")[0]
    assert "feed stale" in head.lower() and "hold" in head.lower() and "issue 14" in head


# ---- the compose file ---------------------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification(compose):
    assert compose_spec.problems(compose) == []


def test_the_compose_schema_check_finds_mistakes(compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker-1"]["healthcheck"]["tset"] = ["CMD", "true"]
    broken["services"]["web"]["ports"] = [{"host": "127.0.0.1"}]
    found = compose_spec.problems(broken)
    assert any(p.startswith("services.worker-1.healthcheck") for p in found), found
    assert any(p.startswith("services.web.ports") for p in found), found


def test_every_image_is_pinned(compose):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    for name, service in compose["services"].items():
        image = service["image"]
        repository, _, tag = image.split("@")[0].rpartition(":")
        assert repository and "/" not in tag, (name, image)
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), (name, image)
        if "build" in service:
            assert image == f"savin:{version}", name
    assert compose["services"]["kafka"]["image"] == "apache/kafka:3.9.1"


def test_kafka_runs_in_kraft_mode_on_one_node(compose):
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    bootstrap = {s["environment"]["SAVIN_KAFKA_BOOTSTRAP"] for s in _savin_services(compose).values()}
    assert bootstrap and all(f"INTERNAL://{b}" in env["KAFKA_ADVERTISED_LISTENERS"] for b in bootstrap)


def test_two_workers_and_the_web(compose):
    services = _savin_services(compose)
    workers = {n: s for n, s in services.items() if _command(s) == ["worker"]}
    webs = {n: s for n, s in services.items() if _command(s) == ["web"]}
    assert len(workers) == 2 and len(webs) == 1
    ids = {s["environment"]["SAVIN_WORKER_ID"] for s in workers.values()}
    assert len(ids) == 2
    volumes = [v for s in services.values() for v in s["volumes"] if v.endswith(":/var/lib/savin")]
    assert len(volumes) == len(set(volumes)) == 3
    for name, service in services.items():
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name
        assert (DOCKER / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
        assert service["environment"]["SAVIN_PUBLIC_URL"], name
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy", name


def test_the_workers_health_checks_ask_readyz(compose):
    port = Settings.model_fields["web_port"].default
    for name, service in _savin_services(compose).items():
        test = " ".join(service["healthcheck"]["test"])
        expected = port if _command(service) == ["worker"] else Settings.model_fields["portal_port"].default
        assert f"127.0.0.1:{expected}/readyz" in test, name


def test_the_workers_send_email_to_the_catcher(compose):
    assert "mailpit" in compose["services"]
    for name, service in _savin_services(compose).items():
        assert service["environment"]["SAVIN_SMTP_HOST"] == "mailpit", name


def test_prometheus_scrapes_every_savin_process_and_loads_the_rules(compose):
    service = compose["services"]["prometheus"]
    mounts = _mounts(service)
    config_at = next(a.split("=", 1)[1] for a in service["command"] if a.startswith("--config.file="))
    assert mounts[config_at] == PROMETHEUS
    config = _yaml(PROMETHEUS)
    for rule_file in config["rule_files"]:
        target = str(PurePosixPath(config_at).parent / rule_file)
        assert mounts[target] == ALERTS, rule_file
    targets = {(job["metrics_path"], t) for job in config["scrape_configs"]
               for static in job["static_configs"] for t in static["targets"]}
    for name, service in _savin_services(compose).items():
        port = 6066 if _command(service) == ["worker"] else 8080
        assert ("/metrics", f"{name}:{port}") in targets, name


def test_grafana_provisions_the_dashboard(compose):
    mounts = _mounts(compose["services"]["grafana"])
    assert mounts["/etc/grafana/provisioning"] == GRAFANA_PROVISIONING
    providers = _yaml(GRAFANA_PROVISIONING / "dashboards" / "savin.yml")["providers"]
    (provider,) = providers
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent
    datasource, = _yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"


def _savin_variables(text: str) -> set[str]:
    return set(re.findall(rf"\b({PREFIX}[A-Z0-9_]+)", text))


def test_every_savin_variable_is_a_setting(compose):
    settings = {f"{PREFIX}{name.upper()}" for name in Settings.model_fields}
    named = set()
    for service in compose["services"].values():
        named |= {k for k in service.get("environment", {}) if k.startswith(PREFIX)}
    named |= _savin_variables(COMPOSE.read_text(encoding="utf-8"))
    named |= _savin_variables(DOCKERFILE.read_text(encoding="utf-8"))
    named |= _savin_variables(ENV_EXAMPLE.read_text(encoding="utf-8"))
    assert len(named) > 10
    assert named - settings == set()


def test_no_secret_is_in_the_compose_file_or_the_example(compose):
    for name, service in compose["services"].items():
        assert not SECRETS & set(service.get("environment", {})), name
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
                   if line and not line.startswith("#"))
    assert {name: example[name] for name in SECRETS & set(example)} == {"SAVIN_TWILIO_AUTH_TOKEN": ""}
    assert example["SAVIN_TWILIO_ACCOUNT_SID"] == ""
    for service in _savin_services(compose).values():
        assert service["env_file"] == ".env"
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], check=False, cwd=ROOT)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0, "docker/.env must be ignored by git"


# ---- the Dockerfile and its build context -----------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments left out."""
    found, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, rest = whole.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def dockerfile_problems(text: str) -> list[str]:
    """A small lint: pinned bases, a user that is not root, no downloads by ADD,
    nothing ``latest``, apt lists removed where apt installs."""
    problems = []
    instructions = _instructions(text)
    stages = set()
    last_from = max((i for i, (k, _) in enumerate(instructions) if k == "FROM"), default=-1)
    if last_from < 0:
        return ["no FROM"]
    for i, (keyword, args) in enumerate(instructions):
        if "latest" in args.lower():
            problems.append(f"{keyword} {args}: names latest")
        if keyword == "FROM":
            parts = args.split()
            image = parts[0]
            if image in stages:
                continue
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
            name = image.split("@")[0]
            tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
            if not re.search(r"\d+\.\d+", tag):
                problems.append(f"FROM {image}: no version tag")
            if not DIGEST.search(image):
                problems.append(f"FROM {image}: no digest")
        if keyword == "ADD" and re.search(r"\b(https?|git)://|git@", args):
            problems.append(f"ADD {args}: downloads; COPY what the build context holds")
        if keyword == "RUN" and re.search(r"\bapt(-get)? +install\b", args) and "rm -rf /var/lib/apt/lists" not in args:
            problems.append(f"RUN {args[:40]}...: apt lists left in the layer")
        if keyword == "HEALTHCHECK":
            problems.append("HEALTHCHECK: compose checks health")
    final = instructions[last_from:]
    users = [(i, args) for i, (k, args) in enumerate(final) if k == "USER"]
    starts = [i for i, (k, _) in enumerate(final) if k in ("CMD", "ENTRYPOINT")]
    if not users:
        problems.append("no USER: the process would run as root")
    else:
        at, user = users[-1]
        if user.split(":")[0] in ("root", "0"):
            problems.append(f"USER {user}: root")
        if starts and at > min(starts):
            problems.append("USER comes after CMD/ENTRYPOINT")
    if not starts:
        problems.append("no CMD or ENTRYPOINT")
    return problems


def test_the_dockerfile_passes_the_lint():
    assert dockerfile_problems(DOCKERFILE.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("text, problem", [
    ("FROM python:3.11-slim\nCMD [\"savin\"]\n", "no digest"),
    ("FROM python:latest\nUSER app\nCMD [\"savin\"]\n", "latest"),
    ("FROM python:3.11.14-slim@sha256:" + "0" * 64 + "\nCMD [\"savin\"]\n", "no USER"),
    ("FROM python:3.11.14-slim@sha256:" + "0" * 64 + "\nUSER root\nCMD [\"savin\"]\n", "root"),
    ("FROM python:3.11.14-slim@sha256:" + "0" * 64 + "\nCMD [\"savin\"]\nUSER app\n", "after CMD"),
    ("FROM python:3.11.14-slim@sha256:" + "0" * 64 + "\nADD https://example.org/x.tgz /x\nUSER app\nCMD [\"x\"]\n",
     "downloads"),
    ("FROM python:3.11.14-slim@sha256:" + "0" * 64 + "\nRUN apt-get update && \\\n    apt-get install -y curl\n"
     "USER app\nCMD [\"x\"]\n", "apt lists"),
])
def test_the_lint_finds_each_mistake(text, problem):
    assert any(problem in p for p in dockerfile_problems(text)), dockerfile_problems(text)


def test_the_image_serves_both_processes_as_a_user_with_its_data_in_a_volume():
    instructions = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM"):]
    args = {k: [a for kk, a in final if kk == k] for k, _ in final}
    exposed = {p for a in args["EXPOSE"] for p in a.split()}
    assert {"6066", "8080"} <= exposed
    env = " ".join(args["ENV"])
    assert "SAVIN_DATA_DIR=/var/lib/savin" in env
    assert any("/var/lib/savin" in v for v in args["VOLUME"])
    assert json.loads(args["ENTRYPOINT"][-1]) == ["savin"] and json.loads(args["CMD"][-1]) == ["worker"]
    installs = [a for _, a in instructions if "pip install" in a]
    assert installs and not any("[" in a or " -e " in a for a in installs), "the image installs no extras"


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether docker leaves ``path`` out of the build context: the last pattern
    that matches the path or a folder above it decides; ``!`` takes it back in."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        regex = "".join(".*" if tok == "**" else "[^/]*" if tok == "*" else "[^/]" if tok == "?" else re.escape(tok)
                        for tok in re.findall(r"\*\*|\*|\?|[^*?]+", glob))
        if any(re.fullmatch(regex, p) for p in prefixes):
            ignored = not negate
    return ignored


def test_the_build_context_holds_the_package_and_no_secrets():
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    for kept in ("pyproject.toml", "README.md", "savin/cli.py", "savin/templates/en/base.sms.j2"):
        assert not _dockerignored(kept, patterns), kept
    for left_out in ("docker/.env", ".env", ".git/config", ".venv/bin/python", "var/worker/x", "tests/test_docker.py",
                     "savin/__pycache__/cli.cpython-311.pyc"):
        assert _dockerignored(left_out, patterns), left_out
    for keyword, args in _instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert not _dockerignored(source.rstrip("/"), patterns), source


# ---- fetching the compose schema ---------------------------------------------------------------


def _module_zip(module: str, version: str, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(f"{module}@{version}/{name}", content)
    return buffer.getvalue()


def test_a_module_file_is_taken_only_from_a_zip_with_the_right_hash(tmp_path):
    module, version = "example.org/Some/mod", "v1.0.0"
    data = _module_zip(module, version, {"go.mod": b"module example.org/Some/mod\n", "schema/s.json": b"{}"})
    proxy = tmp_path / "proxy"
    at = proxy / "example.org/!some/mod/@v/v1.0.0.zip"  # the proxy's spelling of capitals
    at.parent.mkdir(parents=True)
    at.write_bytes(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        h1 = compose_spec.dirhash(archive)
    dest = tmp_path / "cache" / "s.json"
    with pytest.raises(compose_spec.ComposeSpecError, match="checksum"):
        compose_spec.fetch_module_file(dest, module, version, "h1:" + "A" * 43 + "=", "schema/s.json",
                                       proxy=proxy.as_uri())
    assert not dest.exists()
    assert compose_spec.fetch_module_file(dest, module, version, h1, "schema/s.json", proxy=proxy.as_uri()) == dest
    assert dest.read_bytes() == b"{}"
