"""Shared fixtures: one real Kafka broker per test session (or the one named by
SAVIN_KAFKA_BOOTSTRAP), unique namespaces per test, worker subprocesses."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from savin.dev.broker import DevBroker, free_port
from savin.sealing import new_key


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> DevBroker | None:
    """The session's broker, or None when SAVIN_KAFKA_BOOTSTRAP names one to use."""
    if os.environ.get("SAVIN_KAFKA_BOOTSTRAP"):
        yield None
        return
    broker = DevBroker(
        data_dir=tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port(), heap="768m"
    )
    broker.start(progress=lambda m: print(f"[broker] {m}"))
    try:
        yield broker
    finally:
        broker.stop(progress=lambda m: print(f"[broker] {m}"))


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker) -> str:
    return kafka_broker.bootstrap if kafka_broker else os.environ["SAVIN_KAFKA_BOOTSTRAP"]


@pytest.fixture
def stack(kafka_bootstrap, tmp_path):
    """A local savin (peers + worker wiring) in its own namespace on the session broker."""
    from savin.dev.testing.stack import LocalStack

    s = LocalStack(bootstrap=kafka_bootstrap, workdir=tmp_path / "stack")
    s.start_peers()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def data_key() -> str:
    from savin.sealing import new_key

    return f"k1:{new_key()}"


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def catcher():
    """A real SMTP server (aiosmtpd, STARTTLS, AUTH) for one test."""
    from support import SMTP_PASSWORD, SMTP_USER

    from savin.dev.testing.smtp_server import SmtpCatcher

    c = SmtpCatcher(SMTP_USER, SMTP_PASSWORD).start()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def own_broker(tmp_path):
    """A broker this test may stop and start again (the session's broker stays up)."""
    broker = DevBroker(data_dir=tmp_path / "kafka", port=free_port(), controller_port=free_port(), heap="512m")
    broker.start(progress=lambda m: None)
    try:
        yield broker
    finally:
        broker.stop(progress=lambda m: None)


@pytest.fixture(scope="session")
def sealer():
    """A sealer with a fresh data key."""
    from savin.sealing import Sealer
    from savin.settings import DataKeys

    return Sealer(DataKeys.parse(f"k1:{new_key()}"))


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
async def chromium():
    """Debian's chromium, headless, driven by Playwright (never a downloaded browser)."""
    from playwright.async_api import async_playwright

    pw = await async_playwright().start()
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
        yield browser
    finally:
        await browser.close()
        await pw.stop()


@pytest.fixture(scope="session")
def axe_script() -> str:
    """axe-core's source, fetched once (integrity-checked) and cached."""
    from savin.dev.testing.axe import axe_source

    return axe_source()


@pytest.fixture
async def browser_page(chromium):
    """A factory of fresh pages: ``await browser_page(width, height)``, each in its own context."""
    contexts = []

    async def open_page(width: int = 1280, height: int = 900):
        context = await chromium.new_context(viewport={"width": width, "height": height},
                                              bypass_csp=True)  # axe-core goes in as an injected script
        contexts.append(context)
        return await context.new_page()

    yield open_page
    for c in contexts:
        await c.close()
