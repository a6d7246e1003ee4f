"""The one settings object, read from ``SAVIN_*`` environment variables.

Validated once at start; a wrong value fails with the variable's name.
Adapters receive plain values taken from it, never the object itself.
"""

from __future__ import annotations

import base64
import binascii
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from savin.domain.feeds import Thresholds, parse_thresholds
from savin.domain.holds import DEFAULT_HOLD_RULES, HoldRule, parse_hold_rules

__all__ = ["Settings", "SettingsError", "load_settings", "DataKeys"]

PREFIX = "SAVIN_"

#: The stages a worker can run (SAVIN_STAGES): "match" (custody events and
#: registrations to notice jobs), "deliver" (notice jobs, retries and status
#: callbacks to sends and delivery results) and "status" (custody events to each
#: offender's current status, for the portal).
STAGES = frozenset({"match", "deliver", "status"})


def _index_key_bytes(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 of 32 random bytes (savin keys new --index)") from None
    if len(raw) != 32:
        raise ValueError(f"must be base64 of 32 bytes, not {len(raw)} (savin keys new --index)")
    return raw


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class DataKeys:
    """Keyring for sealing: the first key is used to seal, all of them open."""

    def __init__(self, keys: dict[str, bytes]):
        if not keys:
            raise ValueError("at least one key is required")
        self.keys = keys
        self.active_id = next(iter(keys))

    @classmethod
    def parse(cls, text: str) -> "DataKeys":
        """Parse ``kid:base64key[,kid:base64key...]``; a bare key gets kid ``k1``."""
        keys: dict[str, bytes] = {}
        for n, item in enumerate(p.strip() for p in text.split(",") if p.strip()):
            kid, sep, b64 = item.partition(":")
            if not sep:
                kid, b64 = f"k{n + 1}", item
            if not kid.isidentifier():
                raise ValueError(f"key id {kid!r} must be letters, digits or _, not starting with a digit")
            try:
                raw = base64.b64decode(b64, validate=True)
            except ValueError:
                raise ValueError(f"key {kid!r} is not valid base64") from None
            if len(raw) != 32:
                raise ValueError(f"key {kid!r} must be 32 bytes (AES-256), got {len(raw)}")
            keys[kid] = raw
        return cls(keys)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    #: Kafka allows 249 characters in a topic name; the namespace leaves room for the longest suffix.
    namespace: str = Field("savin", pattern=r"^[A-Za-z0-9._-]+$", max_length=200)
    partitions: int = Field(4, ge=1, le=256)
    replication_factor: int = Field(1, ge=1)

    # Worker
    #: A stable name for this worker (e.g. the pod name). With it, a restarted
    #: worker takes its partitions back at once instead of waiting for the session
    #: timeout of the process it replaces (static group membership).
    worker_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    #: A development run: the built-in provider defaults (the local fake Twilio and
    #: SMTP server) are allowed. A worker without it refuses to start on them.
    development: bool = False
    data_dir: Path = Path("var/worker")
    store: str = Field("rocksdb", pattern=r"^(rocksdb|memory)$")
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    log_level: str = Field("info", pattern=r"^(?i:debug|info|warning|error)$")
    #: ``text`` (a line a person reads) or ``json`` (one JSON object per line, for a log pipeline).
    log_format: str = Field("text", pattern=r"^(text|json)$")
    send_batch_size: int = Field(200, ge=1, le=10_000)
    send_batch_within: float = Field(0.05, gt=0, le=10)
    match_batch_size: int = Field(2000, ge=1, le=100_000)
    #: Seconds between the match stage's commits (what a crash can make it repeat).
    commit_interval: float = Field(1.0, gt=0, le=60)
    #: A custody event repeated within this many days is dropped as a duplicate.
    dedup_days: float = Field(30, gt=0, le=3650)
    #: RocksDB memory per store partition: block cache and write buffer (MB).
    rocksdb_cache_mb: int = Field(16, ge=1, le=4096)
    rocksdb_write_buffer_mb: int = Field(4, ge=1, le=1024)
    retry_delays: Annotated[tuple[float, ...], NoDecode] = (30.0, 300.0, 3600.0)
    max_attempts: int = Field(12, ge=1, le=1000)
    #: Seconds between a stage's sweeps of its store for entries past their retention.
    expiry_interval: float = Field(3600.0, gt=0, le=86_400)
    #: Days a final ledger entry (delivered, failed, ...) is kept before the deliver
    #: stage forgets it; a repeat of the notice after that is no longer recognised.
    ledger_retention_days: float = Field(90, gt=0, le=3650)
    #: Seconds between the worker's looks at its stage groups' committed and log-end offsets:
    #: the lag gauges and the consumer status (judged over the last 10 looks) move at this pace.
    lag_interval: float = Field(10.0, gt=0, le=3600)
    #: Which stages this worker runs (default: both). Lets a deployment scale
    #: matching and delivery separately, and the benchmark time one stage alone.
    stages: Annotated[frozenset[str], NoDecode] = STAGES

    #: The quiet hours of a registration that has not set its own, ``HH:MM-HH:MM`` in its
    #: time zone, or ``none``: routine notices wait through them.
    quiet_hours: str = Field("21:00-08:00", pattern=r"^(none|([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])$")

    # Escalation: an urgent notice not acknowledged is followed by calls (seconds)
    #: After the SMS and email of an urgent notice, the first call.
    escalation_first_call: float = Field(300.0, ge=0, le=86_400)
    #: A call nobody answered (or an answering machine took) is repeated after this.
    escalation_unanswered_every: float = Field(1800.0, gt=0, le=86_400)
    #: A call answered without the keypad confirmation is repeated after this.
    escalation_answered_every: float = Field(7200.0, gt=0, le=86_400)
    #: No call is placed this long after the first send; the notice is then unacknowledged.
    escalation_give_up: float = Field(86_400.0, gt=0, le=30 * 86_400)
    #: Routine notices escalate too (by default only urgent ones do).
    escalate_routine: bool = False
    #: With no voice number registered, call the number registered for texts.
    escalation_call_sms_phone: bool = True

    # Safety checks
    #: Holds on mass changes: ``TYPE=MAX/SECONDS[/SHARE]`` items (``RELEASED=50/600``: more than 50
    #: RELEASED events from one source in 10 minutes are held for an operator); empty: none.
    hold_rules: str = DEFAULT_HOLD_RULES
    #: Seconds the notices of an event type with a hold rule wait before they go out, so that a
    #: burst is seen before its first notices leave (0: no wait, and the first of a burst go out).
    hold_settle: float = Field(2.0, ge=0, le=60)
    #: Seconds of silence after which a source is stale: ``SOURCE=SECONDS`` items, ``default`` for
    #: every other source (``mo-doc-oms=900,default=3600``).
    feed_silent_after: str = "default=3600"
    #: Seconds between the feed watchdog's looks at every source.
    feed_check_interval: float = Field(10.0, gt=0, le=3600)
    #: The statutory deadlines policy (TOML); default: the one savin ships (savin/policy/deadlines.toml).
    deadline_policy: Path | None = None

    # Portal (savin web)
    portal_host: str = "127.0.0.1"
    portal_port: int = Field(8080, ge=1, le=65535)
    #: The base URL victims reach the portal at (for links in notices and pages).
    public_url: str | None = Field(None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    #: Signs the portal's form tokens (CSRF); the built-in value is refused unless SAVIN_DEVELOPMENT=true.
    web_secret: SecretStr = SecretStr("savin-dev-web-secret")
    #: The time zone the portal shows times in.
    portal_timezone: str = "America/Chicago"
    #: Verification codes and links one client address may ask for in an hour (per web process);
    #: a phone or email address is limited to 3 an hour whatever the client.
    client_code_sends: int = Field(10, ge=1, le=10_000)

    # Operator console and API (savin web, under /console and /api/v1)
    #: Serve the console and the API from this web process (turn off on a public-facing one).
    console: bool = True
    #: Hours a console sign-in lasts.
    console_session_hours: float = Field(8.0, gt=0, le=24 * 7)
    #: Wrong passwords in a row that lock an account, and for how many minutes.
    console_login_tries: int = Field(5, ge=1, le=100)
    console_lockout_minutes: float = Field(15.0, gt=0, le=24 * 60)

    # Sealing
    data_key: Annotated[SecretStr | None, Field(None)] = None
    #: The blind-index key (base64 of 32 bytes), separate from the data key: the HMAC
    #: key that finds a registration by phone or email (`savin keys new --index`).
    index_key: Annotated[SecretStr | None, Field(None)] = None

    # Twilio
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: SecretStr = SecretStr("savin-dev-token")
    twilio_from: str | None = "+15005550006"
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = None
    twilio_status_callback: str | None = None
    twilio_timeout: float = Field(10.0, gt=0)
    #: The caller ID of notice calls: one fixed number a victim can learn and save.
    twilio_voice_from: str | None = "+15005550006"
    #: Calls Twilio lets the account start per second (its CPS limit), for all workers together;
    #: each worker starts its partitions' share of them.
    twilio_calls_per_second: float = Field(1.0, gt=0, le=1000)
    #: Texts a second the Twilio sender (SAVIN_TWILIO_FROM, or the messaging service) takes, for all
    #: workers together; each worker sends its partitions' share. Set it to what the sender is
    #: provisioned for: a US long code 1, toll-free 3, a short code 100, a messaging service the sum of
    #: its numbers'. The default is a short code's: a limit set too high is found out by the first 429
    #: and the sender slows down (halving, then recovering); one set too low would hold every urgent
    #: notice back without a sign.
    sms_per_second: float = Field(100.0, gt=0, le=10_000)
    #: Emails a second the SMTP relay takes from savin, for all workers together (shared as for texts).
    #: Relays throttle per account (a 421 or 451 reply slows savin down); 50 is a common relay quota.
    email_per_second: float = Field(50.0, gt=0, le=10_000)
    #: SMTP sessions one worker keeps open to the relay (each sends one message at a time).
    smtp_connections: int = Field(8, ge=1, le=100)
    #: Ask for the registrant's PIN before a call says anything about the notice.
    voice_pin: bool = True
    #: Answering-machine detection on notice calls (a machine gets no content).
    voice_machine_detection: bool = True

    # SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(8025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_verify_tls: bool = True
    smtp_timeout: float = Field(10.0, gt=0)
    email_from: str = "Victim Notification <notices@savin.invalid>"

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, v: str):
        for server in v.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not (sep and host.strip("[]") and port.isdigit() and 1 <= int(port) <= 65535):
                raise ValueError(_BOOTSTRAP_FORM)
        return v

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _split_delays(cls, v):
        if isinstance(v, str):
            try:
                v = tuple(float(p) for p in v.split(",") if p.strip())
            except ValueError:
                raise ValueError("must be comma-separated seconds, e.g. 30,300,3600") from None
        if not v or any(d <= 0 for d in v):
            raise ValueError("must be one or more positive delays in seconds")
        return v

    @field_validator("stages", mode="before")
    @classmethod
    def _split_stages(cls, v):
        if isinstance(v, str):
            v = {p.strip() for p in v.split(",") if p.strip()}
        v = frozenset(v)
        if unknown := v - STAGES:
            raise ValueError(f"unknown stages {', '.join(sorted(unknown))}; choose from {', '.join(sorted(STAGES))}")
        if not v:
            raise ValueError("name at least one stage: match, deliver, status")
        return v

    @field_validator("data_key")
    @classmethod
    def _check_key(cls, v: SecretStr | None):
        if v is not None:
            DataKeys.parse(v.get_secret_value())
        return v

    @field_validator("index_key")
    @classmethod
    def _check_index_key(cls, v: SecretStr | None):
        if v is not None:
            _index_key_bytes(v.get_secret_value())
        return v

    @field_validator("hold_rules")
    @classmethod
    def _check_hold_rules(cls, v: str):
        parse_hold_rules(v)  # a ValueError names the item
        return v

    @field_validator("feed_silent_after")
    @classmethod
    def _check_feed_thresholds(cls, v: str):
        parse_thresholds(v)
        return v

    @cached_property
    def hold_rule_table(self) -> dict[str, HoldRule]:
        """SAVIN_HOLD_RULES parsed: event type -> rule."""
        return parse_hold_rules(self.hold_rules)

    @cached_property
    def feed_thresholds(self) -> Thresholds:
        """SAVIN_FEED_SILENT_AFTER parsed."""
        return parse_thresholds(self.feed_silent_after)

    @field_validator("twilio_account_sid")
    @classmethod
    def _check_sid(cls, v: str):
        if not (v.startswith("AC") and len(v) == 34):
            raise ValueError("must be an Account SID: AC followed by 32 hex digits")
        return v

    @cached_property
    def default_quiet_hours(self):
        """SAVIN_QUIET_HOURS as a QuietHours, or None for ``none``."""
        from savin.schemas.registration import QuietHours

        if self.quiet_hours == "none":
            return None
        start, end = self.quiet_hours.split("-")
        return QuietHours(start=start, end=end)

    @cached_property
    def data_keys(self) -> DataKeys:
        if self.data_key is None:
            raise SettingsError(
                f"{PREFIX}DATA_KEY is not set: generate one with `savin keys new`"
            )
        return DataKeys.parse(self.data_key.get_secret_value())

    @cached_property
    def index_key_bytes(self) -> bytes:
        if self.index_key is None:
            raise SettingsError(
                f"{PREFIX}INDEX_KEY is not set: generate one with `savin keys new --index`"
            )
        return _index_key_bytes(self.index_key.get_secret_value())

    def topic(self, name: str) -> str:
        return f"{self.namespace}.{name}"


_BOOTSTRAP_FORM = "must be host:port, or several separated by commas, e.g. 127.0.0.1:9092"
_NAME_CHARACTERS = "letters, digits, '.', '_' or '-'"

#: What a setting with a pattern allows, in words (the pattern itself helps no one).
ALLOWED = {
    "namespace": f"must be 1 to 200 {_NAME_CHARACTERS}",
    "worker_id": f"must be 1 to 64 {_NAME_CHARACTERS}",
    "store": "must be rocksdb or memory",
    "log_level": "must be debug, info, warning or error",
    "log_format": "must be text or json",
    "public_url": "must be an http:// or https:// URL without a query",
    "quiet_hours": "must be HH:MM-HH:MM (e.g. 21:00-08:00) or none",
}


def _bounds(field: str) -> str:
    """``from 1 to 256``, ``more than 0``, ... from the field's constraints."""
    low = high = None
    info = Settings.model_fields.get(field)
    for m in info.metadata if info is not None else ():
        for attr, words in (("ge", "at least"), ("gt", "more than")):
            if getattr(m, attr, None) is not None:
                low = (words, getattr(m, attr))
        for attr, words in (("le", "at most"), ("lt", "less than")):
            if getattr(m, attr, None) is not None:
                high = (words, getattr(m, attr))
    if low and high and low[0] == "at least" and high[0] == "at most":
        return f"from {low[1]} to {high[1]}"
    return " and ".join(f"{words} {value}" for words, value in filter(None, (low, high)))


def _describe(field: str, err: dict) -> str:
    """What is wrong with one setting, in words; never its value (it may be a secret)."""
    kind = err["type"]
    if field in ALLOWED and kind in ("string_pattern_mismatch", "string_too_long", "string_too_short"):
        return ALLOWED[field]
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind.startswith("bool_"):
        return "must be true or false"
    if kind.startswith(("int_", "float_", "greater_than", "less_than")):
        info = Settings.model_fields.get(field)
        what = "a whole number" if info is not None and info.annotation is int else "a number"
        bounds = _bounds(field)
        return f"must be {what}{' ' + bounds if bounds else ''}"
    return str(err["msg"])


def load_settings(**overrides) -> Settings:
    """Build settings from the environment, turning errors into one readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        lines = []
        for err in e.errors(include_input=False):
            field = str(err["loc"][0]) if err["loc"] else "?"
            lines.append(f"{PREFIX}{field.upper()}: {_describe(field, err)}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
