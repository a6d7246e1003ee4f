"""``savin broker``: a local Kafka (KRaft) for development: one node, or with
``--nodes 3`` a cluster of three on this machine (:class:`savin.dev.broker.DevCluster`).

``start`` waits until every node answers and prints the bootstrap string;
``stop`` and ``status`` find what runs from the data directory alone (a cluster
leaves ``cluster.json`` there).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from savin.dev.broker import BrokerError, DevBroker, DevCluster, cluster_ports
from savin.operators_cli import fail, say

__all__ = ["register"]

CONTEXT = {"help_option_names": ["-h", "--help"]}
broker_app = typer.Typer(help="Run a local Kafka (KRaft) for development: one node, or a cluster of three.",
                         no_args_is_help=True, context_settings=CONTEXT, pretty_exceptions_enable=False)

DataDir = Annotated[Path, typer.Option(help="Where the broker keeps its data, config and log.")]


def register(app: typer.Typer) -> None:
    app.add_typer(broker_app, name="broker")


def _progress(message: str) -> None:
    from savin.cli import err

    err.print(message, markup=False, highlight=False)


@broker_app.command("start")
def broker_start(
    data_dir: DataDir = Path("var/kafka"),
    port: int = typer.Option(9092, help="Client port (PLAINTEXT listener); node n of a cluster uses port + 2(n-1)."),
    controller_port: int = typer.Option(9093, help="KRaft controller port; node n of a cluster uses it + 2(n-1)."),
    heap: str = typer.Option("512m", help="JVM heap of each node, e.g. 512m or 1g."),
    nodes: int = typer.Option(1, min=1, help="1, or a cluster of N (3: replication factor 3, min.insync.replicas 2)."),
):
    """Start Kafka and wait until it answers; print the bootstrap address."""
    external = os.environ.get("SAVIN_KAFKA_BOOTSTRAP")
    if external:
        from savin.dev.broker import broker_reachable

        if broker_reachable(external):
            say(f"SAVIN_KAFKA_BOOTSTRAP names a running broker; using {external}")
            print(external)
            return
        raise fail(f"SAVIN_KAFKA_BOOTSTRAP={external} is set but no broker answers there")
    try:
        if nodes == 1:
            if DevCluster.load(data_dir) is not None:
                raise BrokerError(f"{data_dir} holds a cluster; start it with --nodes, or give another --data-dir")
            print(DevBroker(data_dir=data_dir, port=port, controller_port=controller_port,
                            heap=heap).start(progress=_progress))
            return
        cluster = DevCluster.create(data_dir, *cluster_ports(port, controller_port, nodes), heap=heap)
        bootstrap = cluster.start(progress=_progress)
    except BrokerError as e:
        raise fail(str(e)) from None
    print(bootstrap)
    _progress(f"use it with: SAVIN_KAFKA_BOOTSTRAP={bootstrap} SAVIN_REPLICATION_FACTOR={cluster.replication}")


@broker_app.command("stop")
def broker_stop(data_dir: DataDir = Path("var/kafka")):
    """Stop the broker (or every node of the cluster) started from DATA_DIR; no process is left behind."""
    (DevCluster.load(data_dir) or DevBroker(data_dir=data_dir)).stop(progress=_progress)


@broker_app.command("status")
def broker_status(data_dir: DataDir = Path("var/kafka")):
    """Say whether the broker runs and where (for a cluster, each node); exit 1 unless every node runs."""
    cluster = DevCluster.load(data_dir)
    if cluster is not None:
        _cluster_status(cluster)
        return
    broker = DevBroker(data_dir=data_dir)
    st = broker.status()
    if st.running:
        bootstrap = broker.pid_file.read_text().split()[1]
        say(f"running: pid {st.pid}, bootstrap {bootstrap}, data {st.data_dir}")
    else:
        say(f"not running (data {st.data_dir})")
        raise typer.Exit(1)


def _cluster_status(cluster: DevCluster) -> None:
    from savin.dev.broker import describe_partitions, under_replicated

    nodes = cluster.status()
    for n in nodes:
        pid = f"pid {n.pid}" if n.up else "no process"
        say(f"node {n.node_id}: {'up' if n.up else 'down'}, {pid}, port {n.port} "
            f"(controller {n.controller_port}), data {n.data_dir}")
    say(f"bootstrap {cluster.bootstrap}")
    if any(n.up for n in nodes):
        try:
            partitions = asyncio.run(describe_partitions(cluster.bootstrap, timeout=5.0))
        except Exception as e:  # noqa: BLE001 - the nodes' own lines are the answer; this one is extra
            say(f"partitions: not read ({type(e).__name__})")
        else:
            say(f"under-replicated partitions: {under_replicated(partitions)} of {len(partitions)}")
    if not all(n.up for n in nodes):
        raise typer.Exit(1)
