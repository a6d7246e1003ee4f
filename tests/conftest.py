"""Shared fixtures: one real Kafka broker per test session (or the one named by
SAVIN_KAFKA_BOOTSTRAP), unique namespaces per test, worker subprocesses."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from savin.broker import DevBroker, free_port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> str:
    external = os.environ.get("SAVIN_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    broker = DevBroker(
        data_dir=tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port(), heap="768m"
    )
    broker.start(progress=lambda m: print(f"[broker] {m}"))
    try:
        yield broker.bootstrap
    finally:
        broker.stop(progress=lambda m: print(f"[broker] {m}"))


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
