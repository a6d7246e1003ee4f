"""A complete local savin: a broker (or SAVIN_KAFKA_BOOTSTRAP), the fake Twilio,
the SMTP server and worker subprocesses wired to them. Used by the demo, the
end-to-end tests and the benchmark, so all three run the same wiring."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from savin.dev.broker import free_port
from savin.dev.testing.fake_twilio import FakeTwilio
from savin.dev.testing.smtp_server import SmtpCatcher
from savin.dev.testing.web import WebProcess
from savin.dev.testing.worker import WorkerProcess
from savin.ops.audit import delivery_results
from savin.ops.dead_letters import list_dead_letters
from savin.ops.publishing import (
    PublishReport,
    event_encoder,
    publish_lines,
    registration_encoder,
)
from savin.ops.reading import group_lag, wait_until
from savin.schemas import DeadLetter, DeliveryResult
from savin.sealing import Sealer, new_key
from savin.settings import Settings, load_settings
from savin.topics import Topics, producer

__all__ = ["LocalStack"]

TWILIO_SID = "AC" + "5a" * 16
TWILIO_TOKEN = "savin-local-auth-token"
SMTP_USER, SMTP_PASSWORD = "savin", "local-smtp-password"


@dataclass
class LocalStack:
    bootstrap: str
    workdir: Path
    namespace: str = field(default_factory=lambda: f"s{uuid.uuid4().hex[:10]}")
    data_key: str = field(default_factory=lambda: f"k1:{new_key()}")
    index_key: str = field(default_factory=new_key)
    partitions: int = 4
    worker_env: dict[str, str] = field(default_factory=dict)
    twilio: FakeTwilio | None = None
    smtp: SmtpCatcher | None = None
    web_port: int = field(default_factory=free_port)
    #: The first ``savin web`` process's port: Twilio's status callbacks and the links in
    #: notice emails point there (a later web process gets a port of its own).
    portal_port: int = field(default_factory=free_port)
    workers: list[WorkerProcess] = field(default_factory=list)

    # ---- lifecycle -------------------------------------------------------------

    def start_peers(self, twilio_latency: float = 0.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.twilio = FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN)
        self.twilio.latency = twilio_latency
        self.twilio.start_in_thread()
        self.smtp = SmtpCatcher(username=SMTP_USER, password=SMTP_PASSWORD)
        self.smtp.start()

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        if self.twilio is not None:
            self.twilio.stop_thread()
        if self.smtp is not None:
            self.smtp.stop()

    def env(self) -> dict[str, str]:
        assert self.twilio is not None and self.smtp is not None, "start_peers() first"
        return {
            # The peers are the local fake Twilio and SMTP server.
            "SAVIN_DEVELOPMENT": "true",
            "SAVIN_KAFKA_BOOTSTRAP": self.bootstrap,
            "SAVIN_NAMESPACE": self.namespace,
            "SAVIN_PARTITIONS": str(self.partitions),
            "SAVIN_DATA_KEY": self.data_key,
            "SAVIN_INDEX_KEY": self.index_key,
            "SAVIN_DATA_DIR": str(self.workdir / "worker"),
            "SAVIN_TWILIO_ACCOUNT_SID": TWILIO_SID,
            "SAVIN_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "SAVIN_TWILIO_BASE_URL": self.twilio.base_url,
            "SAVIN_TWILIO_FROM": "+15005550006",
            "SAVIN_TWILIO_STATUS_CALLBACK": f"http://127.0.0.1:{self.portal_port}/callbacks/twilio/status",
            "SAVIN_PORTAL_PORT": str(self.portal_port),
            "SAVIN_SMTP_HOST": "127.0.0.1",
            "SAVIN_SMTP_PORT": str(self.smtp.port),
            "SAVIN_SMTP_USERNAME": SMTP_USER,
            "SAVIN_SMTP_PASSWORD": SMTP_PASSWORD,
            "SAVIN_SMTP_VERIFY_TLS": "false",
            # Notices go out whatever the time of day; a test of quiet hours sets them.
            "SAVIN_QUIET_HOURS": "none",
            # Bursts of one event type from one source are what many tests send; a test of the
            # hold on mass changes sets its rules.
            "SAVIN_HOLD_RULES": "",
            **self.worker_env,
        }

    def settings(self) -> Settings:
        env = self.env()
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return load_settings(_env_file=None)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def start_worker(self, timeout: float = 120.0, **extra_env: str) -> WorkerProcess:
        return self.worker(**extra_env).start(timeout)

    def worker(self, **extra_env: str) -> WorkerProcess:
        """A worker wired to this stack, not yet started; stopped with the stack."""
        w = WorkerProcess({**self.env(), **extra_env}, self.workdir / "worker.log", self.web_port)
        self.workers.append(w)
        return w

    def start_web(self, timeout: float = 60.0, **extra_env: str) -> WebProcess:
        """A ``savin web`` process wired to this stack, with its own port and view store;
        stopped with the stack. The first one serves :attr:`portal_port`, where the worker
        points Twilio's status callbacks and the links in its emails."""
        n = sum(isinstance(w, WebProcess) for w in self.workers)
        env = {**self.env(), "SAVIN_DATA_DIR": str(self.workdir / f"web-{n}"), **extra_env}
        w = WebProcess(env, self.workdir / f"web-{n}.log", self.portal_port if n == 0 else free_port())
        self.workers.append(w)
        return w.start(timeout)

    @property
    def topics(self) -> Topics:
        return Topics(self.settings())

    # ---- publishing --------------------------------------------------------------

    async def import_registrations(self, lines: Iterable[bytes | str]) -> PublishReport:
        s = self.settings()
        encode = registration_encoder(Sealer(s.data_keys, index_key=s.index_key_bytes), s.partitions)
        return await publish_lines(_as_bytes(lines), encode, s.kafka_bootstrap, self.topics.registrations, self.topics,
                                   replication=s.replication_factor)

    async def publish_events(self, lines: Iterable[bytes | str]) -> PublishReport:
        s = self.settings()
        return await publish_lines(_as_bytes(lines), event_encoder(s.partitions), s.kafka_bootstrap,
                                   self.topics.custody_events, self.topics, replication=s.replication_factor)

    async def publish_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Publish bytes as a broken upstream would: no validation at all."""
        prod = producer(self.bootstrap)
        await prod.start()
        try:
            await prod.send_and_wait(self.topics.custody_events, value, key=key)
        finally:
            await prod.stop()

    async def wait_caught_up(self, topic: str, timeout: float = 60.0) -> None:
        """Wait until the worker has committed everything in ``topic``."""

        async def done():
            return (await group_lag(self.bootstrap, self.topics.group(self.topics.stage_reading(topic)), [topic]))[topic] == 0

        await wait_until(done, timeout, what=f"the worker to consume {topic}")

    async def results(self) -> list[DeliveryResult]:
        return await delivery_results(self.settings())

    async def dead_letters(self) -> list[DeadLetter]:
        return await list_dead_letters(self.settings())


def _as_bytes(lines: Iterable[bytes | str]) -> Iterable[bytes]:
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line)
        yield line.encode() if isinstance(line, str) else line


def run(coro):
    return asyncio.run(coro)
