"""The dev broker: start, a produce/consume round trip, stop with no process left."""

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from savin.dev.broker import free_port
from savin.topics import partition_for


async def _round_trip(bootstrap: str) -> bytes:
    topic = f"rt-{uuid.uuid4().hex[:8]}"
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(topic, b"hello", key=b"k")
    finally:
        await prod.stop()
    cons = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                            group_id=f"g-{topic}")
    await cons.start()
    try:
        msg = await asyncio.wait_for(cons.getone(), 30)
        return msg.value
    finally:
        await cons.stop()


async def test_round_trip_through_session_broker(kafka_bootstrap):
    assert await _round_trip(kafka_bootstrap) == b"hello"


def _java_pids(marker: str) -> list[str]:
    ps = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return ps.stdout.split()


def test_cli_start_round_trip_stop_leaves_no_process(tmp_path):
    data = tmp_path / "kafka"
    port, cport = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "SAVIN_KAFKA_BOOTSTRAP"}
    cli = [sys.executable, "-m", "savin.cli", "broker"]
    started = subprocess.run([*cli, "start", "--data-dir", str(data), "--port", str(port),
                              "--controller-port", str(cport)], capture_output=True, text=True, env=env)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == f"127.0.0.1:{port}"
    try:
        status = subprocess.run([*cli, "status", "--data-dir", str(data)], capture_output=True, text=True)
        assert status.returncode == 0 and f"127.0.0.1:{port}" in status.stdout
        assert asyncio.run(_round_trip(f"127.0.0.1:{port}")) == b"hello"
        assert (data / "logs" / "server.log").exists()
    finally:
        stopped = subprocess.run([*cli, "stop", "--data-dir", str(data)], capture_output=True, text=True)
    assert stopped.returncode == 0
    assert _java_pids(str(data)) == []
    status = subprocess.run([*cli, "status", "--data-dir", str(data)], capture_output=True, text=True)
    assert status.returncode == 1 and "not running" in status.stdout


def test_missing_java_is_explained(monkeypatch):
    from savin.dev import broker

    monkeypatch.setattr(broker.shutil, "which", lambda name: None)
    with pytest.raises(broker.BrokerError, match="Java 17 or newer is required"):
        broker.check_java()


def test_missing_maven_is_explained(monkeypatch, tmp_path):
    from savin.dev import broker

    monkeypatch.setattr(broker.shutil, "which", lambda name: None)
    with pytest.raises(broker.BrokerError, match="Maven is required"):
        broker.resolve_jars(tmp_path)


def test_partitioner_matches_kafka_default():
    # Computed with kafka-clients 3.9.1: Utils.toPositive(Utils.murmur2(key)) % 4,
    # what a Java producer upstream uses for a keyed record.
    keys = (b"MO-0", b"MO-1", b"MO-2", b"MO-3", b"offender-12345")
    assert [partition_for(k, 4) for k in keys] == [2, 3, 3, 0, 1]


def test_cluster_ids_are_never_read_as_an_option(monkeypatch):
    """One random id in 64 starts with "-", which the format tool takes for a flag."""
    import base64

    from savin.dev import broker

    dash_first = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))
    fresh = iter([dash_first, uuid.uuid4()])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(fresh))
    cluster_id = broker._kafka_uuid()
    assert not cluster_id.startswith("-") and len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


@pytest.mark.parametrize(("replication", "in_sync"), [(1, 1), (2, 1), (3, 2), (5, 2)])
def test_topics_keep_all_replicas_but_one_in_sync_and_never_ask_more_than_two(replication, in_sync):
    from savin.topics import min_insync_replicas

    assert min_insync_replicas(replication) == in_sync
