"""Prometheus metrics, served by the worker at ``/metrics``. Labels carry no personal data."""

import re

from prometheus_client import Counter, Gauge, Histogram

from savin import __version__

EVENTS = Counter("savin_events_total", "Custody events handled by the match stage", ["outcome"])
REGISTRATIONS = Counter("savin_registrations_applied_total", "Registration updates applied", ["status"])
NOTICES_PLANNED = Counter("savin_notices_planned_total", "Notice jobs emitted by the match stage")
NOTICES = Counter("savin_notices_total", "Notice outcomes", ["channel", "status"])
NOTICES_SKIPPED = Counter("savin_notices_skipped_total", "Notices skipped as already done")
DEAD_LETTERS = Counter("savin_dead_letters_total", "Messages sent to the dead-letter topic", ["topic"])
CALLBACKS = Counter("savin_callbacks_total", "Provider status callbacks", ["outcome"])
SEND_SECONDS = Histogram("savin_send_seconds", "Time for one provider send", ["provider"])
#: The partitions this worker holds, looked at every SAVIN_LAG_INTERVAL seconds (:mod:`savin.streams.lag`);
#: a partition's series go when it moves to another worker.
_CONSUMER = ["stage", "group", "topic", "partition"]
CONSUMER_LAG_RECORDS = Gauge("savin_consumer_lag_records",
                             "Records in each input partition after the stage group's committed offset", _CONSUMER)
CONSUMER_LAG_SECONDS = Gauge("savin_consumer_lag_seconds",
                             "Seconds since the first record after the committed offset was produced (on a retry "
                             "tier: since it came due); 0 when nothing is behind", _CONSUMER)
CONSUMER_STATUS = Gauge("savin_consumer_status",
                        "Each input partition's consumer status by Burrow's rules: 0 OK, 1 WARN, 2 STOP, 3 STALL, "
                        "4 REWIND", _CONSUMER)
STAGE_REWINDS = Counter("savin_stage_rewinds_total", "Times a stage went back to its last commit", ["stage"])
STAGE_LAST_COMMIT = Gauge("savin_stage_last_commit_timestamp_seconds",
                          "Unix time of each stage's last commit (or of its last idle check)", ["stage"])
STORE_EXPIRED = Counter("savin_store_expired_total", "Store entries removed past their retention", ["stage"])
KAFKA_CONNECTED = Gauge("savin_kafka_connected",
                        "1 while the worker's periodic metadata request gets an answer from Kafka, else 0")
PROVIDER_CONFIG_FAULTS = Counter("savin_provider_config_faults_total",
                                 "Sends and checks a provider refused for savin's configuration (credentials, account)",
                                 ["provider", "code"])
PROVIDER_CONFIG_OK = Gauge("savin_provider_config_ok",
                           "1 while a provider accepts savin's configuration, 0 while it refuses it", ["provider"])
READY = Gauge("savin_ready", "1 while the worker answers ready on /readyz, else 0")
LOG_LINES_SUPPRESSED = Counter("savin_log_lines_suppressed_total",
                               "Repeated log lines held back by the repeat filter", ["logger"])
CONSENT = Counter("savin_consent_changes_total", "Opt-outs and opt-ins applied by the deliver stage",
                  ["channel", "change"])
UNREACHABLE = Counter("savin_registrations_unreachable_total",
                      "Opt-outs that left a registration with no usable channel (no verified contact that is not "
                      "opted out), flagged for operators")
NOTICES_HELD = Counter("savin_notices_held_total", "Routine notices held for the registration's quiet hours")
ESCALATIONS = Counter("savin_escalations_total",
                      "Escalation ladder steps: opened, call (a round of calls), acknowledged, unacknowledged",
                      ["outcome"])
ACKNOWLEDGEMENTS = Counter("savin_acknowledgements_total", "Acknowledgements applied, by channel", ["channel"])
REGISTRATION_FLAGS = Counter("savin_registration_flags_total", "Registrations flagged for operators", ["flag"])
PROVIDER_RESULTS = Counter(
    "savin_provider_results_total",
    "What the providers said of notices, when sent (accepted, retrying, failed, undelivered, suppressed) and in "
    "status callbacks applied (sent, delivered, undelivered, failed), by the provider's error code ('none' without)",
    ["channel", "provider", "status", "code"])
RETRY_BACKLOG = Gauge("savin_retry_backlog_notices",
                      "Notices waiting on each retry tier, in the partitions this worker holds", ["tier"])
ESCALATION_BACKLOG = Gauge("savin_escalation_backlog_ladders",
                           "Escalation ladders open (waiting for an acknowledgement), in the partitions this worker "
                           "holds")
HELD_BACKLOG = Gauge("savin_held_backlog_notices",
                     "Routine notices held for quiet hours, in the partitions this worker holds")
#: From seconds (an urgent notice when all is well) to a night's quiet hours (a routine one held).
_LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600)
PUBLISH_TO_ACCEPTED = Histogram(
    "savin_publish_to_accepted_seconds",
    "Seconds from a custody event's publishing (its Kafka record's timestamp) to a provider accepting one of its "
    "notices, retries and quiet hours included; the calls of an escalation ladder are not counted",
    ["urgency", "channel"], buckets=_LATENCY_BUCKETS)
# Safety checks
HOLDS_OPEN = Gauge("savin_holds_open", "Holds open (mass changes and offender blocks) waiting for an operator",
                   ["kind"])
HOLD_NOTICES = Counter("savin_hold_notices_total",
                       "Notices kept back by a hold, and released or rejected by an operator's decision",
                       ["outcome"])
FEED_STALE = Gauge("savin_feed_stale", "1 while a source is stale (silent past its threshold), else 0", ["source"])
FEED_LOW = Gauge("savin_feed_low", "1 while a source sends far below its usual rate, else 0", ["source"])
FEED_LAST_EVENT = Gauge("savin_feed_last_event_timestamp_seconds",
                        "Unix time of the newest event or heartbeat from a source", ["source"])
DEADLINE_AT_RISK = Gauge("savin_deadline_at_risk_notices",
                         "Notices not yet delivered whose statutory deadline is within its warning margin, in the "
                         "partitions this worker holds")
DEADLINE_MISSED = Counter("savin_deadline_missed_total",
                          "Notices whose statutory deadline passed before they were delivered or acknowledged",
                          ["event_type"])
CORRECTIONS = Counter("savin_corrections_total",
                      "Notices of retracted events: corrected (a correction sent), cancelled before they went "
                      "out, or needing nothing", ["outcome"])
PROVIDER_RATE = Gauge("savin_provider_rate_per_second",
                      "Sends a second this worker allows itself per channel and sender: its share of the configured "
                      "limit, or less while it recovers from the provider's 'too many'", ["channel", "sender"])
PROVIDER_RATE_LIMITED = Counter("savin_provider_rate_limited_total",
                                "Sends a provider refused as too many (HTTP 429, Twilio 20429, SMTP 421 or 451), "
                                "each halving the sender's rate", ["channel", "sender"])
BUILD_INFO = Gauge("savin_build_info", "The running savin's version; always 1", ["version"])
BUILD_INFO.labels(version=__version__).set(1)

_SAFE_LABEL = re.compile(r"[A-Za-z0-9._:-]{1,32}")


def code_label(code: str | None) -> str:
    """A provider's error code as a label value: ``none`` without one, ``other`` for
    anything that does not look like a code (so no text a provider wrote gets in)."""
    if not code:
        return "none"
    return code if _SAFE_LABEL.fullmatch(code) else "other"
