"""A three-node Kafka cluster loses a broker mid-burst: nothing is lost, nothing is
sent twice, the worker carries on, and the broker rejoins when it is back.

Real brokers (``savin broker start --nodes 3``), the worker as its own process
with SAVIN_REPLICATION_FACTOR=3, the fake Twilio and the SMTP server. Each
registration has its own phone number and email address, so every notice is
one address at the peers: lost = expected addresses never reached, duplicates =
deliveries beyond the first to an address. The figures are printed and attached
as test properties.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time

import pytest
from support import event, eventually, phone, registration, savin, tally
from test_faults import load, settled

from savin.dev.broker import DevCluster, describe_partitions, free_port, partition_leaders, under_replicated
from savin.dev.testing.stack import LocalStack
from savin.topics import with_admin

pytestmark = [pytest.mark.e2e, pytest.mark.fault]

#: Registrations notified by the burst the broker dies in, and by the events published after it died;
#: each has a text and an email.
BURST, AFTER = 500, 100


def _free_run(length: int) -> int:
    """The first of ``length`` consecutive free ports on 127.0.0.1."""
    while True:
        base = free_port()
        if base + length > 65535:
            continue
        try:
            for port in range(base, base + length):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base


def _cli(data_dir, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    # An empty SAVIN_KAFKA_BOOTSTRAP: the command starts brokers of its own, whatever the session uses.
    return savin(["broker", *args, "--data-dir", str(data_dir)], env={"SAVIN_KAFKA_BOOTSTRAP": ""}, timeout=timeout)


@pytest.fixture
def cluster(tmp_path):
    """Three nodes started by ``savin broker start --nodes 3`` on free ports; every node is stopped afterwards."""
    data = tmp_path / "cluster"
    base = _free_run(6)
    try:
        started = _cli(data, "start", "--nodes", "3", "--port", str(base), "--controller-port", str(base + 1),
                       "--heap", "384m")
        assert started.returncode == 0, started.stderr
        cluster = DevCluster.load(data)
        assert started.stdout.strip() == cluster.bootstrap == ",".join(f"127.0.0.1:{base + 2 * n}" for n in range(3))
        assert f"SAVIN_KAFKA_BOOTSTRAP={cluster.bootstrap} SAVIN_REPLICATION_FACTOR=3" in started.stderr
        yield cluster
    finally:
        if (left := DevCluster.load(data)) is not None:
            left.stop(progress=lambda m: None)


@pytest.fixture
def cluster_stack(cluster, tmp_path):
    stack = LocalStack(bootstrap=cluster.bootstrap, workdir=tmp_path / "stack",
                       worker_env={"SAVIN_REPLICATION_FACTOR": "3"})
    stack.start_peers(twilio_latency=0.02)
    try:
        yield stack
    finally:
        stack.stop()


def _delivered(stack: LocalStack) -> list[str]:
    """Every address a notice reached, once per delivery."""
    return [m.to for m in stack.twilio.messages] + [to for mail in stack.smtp.messages for to in mail.rcpt_tos]


def _registrations(prefix: str, numbers: range) -> tuple[list[str], set[str]]:
    regs = [registration(f"R-{prefix}{i}", f"O-{prefix}{i}", sms=phone(i), email=f"r{i}@example.org")
            for i in numbers]
    return regs, {phone(i) for i in numbers} | {f"r{i}@example.org" for i in numbers}


def _status(data_dir) -> tuple[int, dict[int, str]]:
    """``savin broker status``'s exit code, and each node's up or down."""
    done = _cli(data_dir, "status", timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("node ")]
    return done.returncode, {int(line.split()[1].rstrip(":")): line.split()[2].rstrip(",") for line in lines}


async def test_a_broker_killed_mid_burst_loses_no_notice_and_rejoins(cluster, cluster_stack, record_property):
    stack = cluster_stack
    began = time.monotonic()
    worker = stack.start_worker()
    burst_regs, burst_expected = _registrations("B", range(BURST))
    after_regs, after_expected = _registrations("A", range(BURST, BURST + AFTER))
    await load(stack, burst_regs + after_regs)

    topics = [spec.name for spec in stack.topics.specs()]
    partitions = await describe_partitions(cluster.bootstrap, topics)
    assert {len(p["replicas"]) for p in partitions} == {3}
    assert await _min_insync(cluster.bootstrap, stack.topics.notices_routine) == "2"

    await stack.publish_events([json.dumps(event("RELEASE_SCHEDULED", f"O-B{i}")) for i in range(BURST)])
    await eventually(lambda: len(_delivered(stack)) >= len(burst_expected) // 4, 90, "the burst to start")
    # The node leading the most of savin's partitions (each node is a broker and a controller voter).
    led = partition_leaders(await describe_partitions(cluster.bootstrap, topics))
    victim = max(led, key=led.get)
    cluster.node(victim).kill()
    delivered_at_kill = len(_delivered(stack))
    assert delivered_at_kill < len(burst_expected), "the burst finished before the kill; nothing was tested"
    killed_at = time.monotonic()

    await stack.publish_events([json.dumps(event("RELEASE_SCHEDULED", f"O-A{i}")) for i in range(BURST, BURST + AFTER)])
    expected = burst_expected | after_expected
    await eventually(lambda: set(_delivered(stack)) >= expected, 150, "every notice after the kill")
    drained = time.monotonic() - killed_at
    await settled(lambda: len(_delivered(stack)), quiet=3.0)  # late repeats would show here
    delivered = _delivered(stack)
    distinct, duplicates = tally(delivered)
    lost = len(expected - set(delivered))
    assert worker.proc.poll() is None, "the worker died with the broker"
    code, nodes = await asyncio.to_thread(_status, cluster.data_dir)
    assert (code, nodes[victim]) == (1, "down")

    restarted = time.monotonic()
    await asyncio.to_thread(cluster.node(victim).start, progress=lambda m: None)

    async def fully_replicated():
        return under_replicated(await describe_partitions(cluster.bootstrap, topics)) == 0

    await eventually(fully_replicated, 120, "the restarted node back in every in-sync replica set")
    rejoined = time.monotonic() - restarted
    code, nodes = await asyncio.to_thread(_status, cluster.data_dir)
    assert (code, set(nodes.values())) == (0, {"up"})

    print(f"\nkilled node {victim} (leading {led[victim]} of {sum(led.values())} partitions) after "
          f"{delivered_at_kill} of {len(burst_expected)} burst notices; {len(expected)} notices expected, "
          f"all reached {drained:.1f}s after the kill; lost {lost}, duplicates {duplicates}; "
          f"back in sync {rejoined:.1f}s after its restart; {time.monotonic() - began:.0f}s in all")
    for name, value in dict(killed_node=victim, notices=len(expected), delivered_at_kill=delivered_at_kill,
                            lost=lost, duplicates=duplicates, drained_s=round(drained, 1),
                            rejoined_s=round(rejoined, 1)).items():
        record_property(f"broker_kill_{name}", value)
    assert lost == 0 and distinct == len(expected)
    assert duplicates == 0, "the ledger should stop every repeat"

    stopped = _cli(cluster.data_dir, "stop", timeout=90)
    assert stopped.returncode == 0
    assert subprocess.run(["pgrep", "-f", str(cluster.data_dir)], capture_output=True).stdout == b""


async def _min_insync(bootstrap: str, topic: str) -> str:
    """The topic's ``min.insync.replicas``, as the cluster reports it."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    responses = await with_admin(bootstrap, lambda admin: admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)]))
    entries = responses[0].to_object()["resources"][0]["config_entries"]
    return next(e["config_value"] for e in entries if e["config_names"] == "min.insync.replicas")
