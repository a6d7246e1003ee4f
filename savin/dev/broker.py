"""Real Apache Kafka brokers (KRaft) for development, the demo, the benchmark and
the tests: one node (:class:`DevBroker`), or a cluster of several on one machine
(:class:`DevCluster`).

The jars come from Maven Central through Maven, into a cache reused across
runs; each node is the stock ``kafka.Kafka`` main class on the machine's Java.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["BrokerError", "DevBroker", "DevCluster", "NodeStatus", "KAFKA_VERSION", "cluster_ports",
           "describe_partitions", "free_port", "partition_leaders", "under_replicated", "wait_for_broker"]

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
# The release tarball puts these two beside the kafka jars by hand.
EXTRA_ARTIFACTS = [
    ("org.slf4j", "slf4j-reload4j", "1.7.36"),
    ("ch.qos.reload4j", "reload4j", "1.2.25"),
]

Progress = Callable[[str], None]


class BrokerError(RuntimeError):
    """The broker could not be set up, started or reached; the message says what to do."""


def default_cache_dir() -> Path:
    if explicit := os.environ.get("SAVIN_CACHE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "savin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        raise BrokerError(f"could not read the Java version from `{java} -version`")
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 else major


def check_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "Java 17 or newer is required to run Kafka and was not found on PATH.\n"
            "Install it, e.g. `apt-get install openjdk-17-jre-headless` (Debian/Ubuntu) "
            "or `brew install openjdk@17` (macOS)."
        )
    major = _java_major(java)
    if major < 17:
        raise BrokerError(f"Java {major} found at {java}; Kafka {KAFKA_VERSION} here needs Java 17 or newer.")
    return java


def _pom() -> str:
    deps = [("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION), *EXTRA_ARTIFACTS]
    body = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>savin</groupId><artifactId>kafka-runtime</artifactId><version>1</version>"
        f"<dependencies>{body}</dependencies></project>"
    )


def resolve_jars(cache_dir: Path, progress: Progress = print) -> Path:
    """Return a directory holding the broker's classpath, resolving it once."""
    libs = cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven is required once, to fetch Kafka's jars from Maven Central, and was not found.\n"
            "Install it, e.g. `apt-get install maven` (Debian/Ubuntu) or `brew install maven` (macOS)."
        )
    work = libs.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_pom())
    progress(f"resolving Kafka {KAFKA_VERSION} from Maven Central into {libs} (once)")
    tmp = work / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run(
        [mvn, "-B", "-q", "dependency:copy-dependencies", f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"],
        cwd=work, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise BrokerError("Maven could not resolve Kafka's jars:\n" + (proc.stdout + proc.stderr)[-3000:])
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.write_text(KAFKA_VERSION)
    return libs


def _kafka_uuid() -> str:
    """A cluster id as Kafka's ``Uuid.randomUuid()`` makes one: URL-safe base64 of
    16 random bytes, never starting with "-" (the format tool would read it as an option)."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


async def _metadata_ok(bootstrap: str, timeout: float) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.start(), timeout)
        await asyncio.wait_for(client.list_topics(), timeout)
        return True
    except Exception:
        return False
    finally:
        try:
            await client.close()
        except Exception:
            pass


def _accepts(address: str, timeout: float) -> bool:
    host, _, port = address.strip().rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def broker_reachable(bootstrap: str, timeout: float = 3.0) -> bool:
    """Whether a broker of ``bootstrap`` (one address or several, comma-separated)
    answers a metadata request; any one of a cluster's nodes will do."""
    if not any(_accepts(address, timeout) for address in bootstrap.split(",")):
        return False
    return asyncio.run(_metadata_ok(bootstrap, timeout))


def wait_for_broker(bootstrap: str, timeout: float = 90.0, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise BrokerError("the broker process exited during start-up")
        if broker_reachable(bootstrap, timeout=2.0):
            return
        time.sleep(0.3)
    raise BrokerError(f"the broker at {bootstrap} did not answer a metadata request within {timeout:.0f}s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0): reap it if it is ours; another process's
    # (a node restarted by a test, stopped by `savin broker stop`) has ended all the same.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # not Linux, or gone
    return stat.rpartition(")")[2].split()[0] == "Z"


@dataclass
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str | None
    data_dir: Path


@dataclass
class DevBroker:
    """One KRaft node, broker and controller in one process. Alone (the defaults)
    it is a whole cluster of one; :class:`DevCluster` makes several that vote together."""

    data_dir: Path = field(default_factory=lambda: Path("var/kafka"))
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    cache_dir: Path = field(default_factory=default_cache_dir)
    extra_config: dict[str, str] = field(default_factory=dict)
    node_id: int = 1
    #: ``controller.quorum.voters`` (``id@host:port,...``); None: this node alone.
    voters: str | None = None
    #: Replicas of the broker's own topics (consumer offsets, transactions) and of auto-created ones.
    replication: int = 1
    #: The id its storage is formatted with; None: a fresh one (a cluster gives all its nodes one).
    cluster_id: str | None = None

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).resolve()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def _config(self) -> str:
        from savin.topics import min_insync_replicas

        replicas, in_sync = str(self.replication), str(min_insync_replicas(self.replication))
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters or f"{self.node_id}@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir / "kraft-logs"),
            "num.partitions": "1",
            "default.replication.factor": replicas,
            "min.insync.replicas": in_sync,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": in_sync,
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
            **self.extra_config,
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _log4j(self) -> str:
        log = self.data_dir / "logs" / "server.log"
        return (
            "log4j.rootLogger=INFO, file\n"
            "log4j.appender.file=org.apache.log4j.RollingFileAppender\n"
            f"log4j.appender.file.File={log}\n"
            "log4j.appender.file.MaxFileSize=20MB\nlog4j.appender.file.MaxBackupIndex=2\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=INFO\n"
        )

    def _read_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def status(self) -> BrokerStatus:
        pid = self._read_pid()
        return BrokerStatus(pid is not None, pid, self.bootstrap if pid else None, self.data_dir)

    def start(self, progress: Progress = print, timeout: float = 120.0) -> str:
        if (pid := self._read_pid()) is not None:
            progress(f"broker already running (pid {pid}) at {self.bootstrap}")
            return self.bootstrap
        proc = self.launch(check_java(), resolve_jars(Path(self.cache_dir), progress), progress)
        self.wait_ready(proc, progress, timeout)
        return self.bootstrap

    def launch(self, java: str, libs: Path, progress: Progress = print) -> subprocess.Popen:
        """Write the config, format the storage the first time, and start the process
        without waiting for it to answer (a cluster's nodes answer only once a
        majority of them runs)."""
        for p in (self.port, self.controller_port):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", p)) == 0:
                    raise BrokerError(
                        f"port {p} on 127.0.0.1 is taken by another process; "
                        "choose others with --port/--controller-port"
                    )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        conf = self.data_dir / "server.properties"
        conf.write_text(self._config())
        log4j = self.data_dir / "log4j.properties"
        log4j.write_text(self._log4j())
        classpath = f"{libs}/*"
        jvm = [java, f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j.configuration=file:{log4j}", f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
               "-cp", classpath]
        if not (self.data_dir / "kraft-logs" / "meta.properties").exists():
            progress(f"formatting KRaft storage in {self.data_dir / 'kraft-logs'}")
            fmt = subprocess.run(
                [*jvm, "kafka.tools.StorageTool", "format", "-t", self.cluster_id or _kafka_uuid(), "-c", str(conf),
                 "--ignore-formatted"],
                capture_output=True, text=True,
            )
            if fmt.returncode != 0:
                raise BrokerError("formatting Kafka storage failed:\n" + (fmt.stdout + fmt.stderr)[-3000:])
        progress(f"starting Kafka {KAFKA_VERSION} (KRaft) on {self.bootstrap}; log: {self.log_file}")
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [*jvm, "kafka.Kafka", str(conf)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid} {self.bootstrap}\n")
        return proc

    def wait_ready(self, proc: subprocess.Popen, progress: Progress = print, timeout: float = 120.0) -> None:
        """Wait until the launched node answers a metadata request; stop it and say
        why (with its log's last lines) if it does not."""
        try:
            wait_for_broker(self.bootstrap, timeout, alive=lambda: proc.poll() is None)
        except BrokerError as e:
            self.stop(progress=lambda _m: None)
            tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise BrokerError(f"{e}\n--- last lines of {self.log_file} ---\n{tail}") from None
        progress(f"broker ready at {self.bootstrap}")

    def stop(self, progress: Progress = print, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); False if it was not running."""
        pid = self.terminate(progress)
        if pid is None:
            return False
        self.reap(pid, progress, timeout)
        return True

    def terminate(self, progress: Progress = print) -> int | None:
        """Ask the broker to stop, without waiting; its pid, or None if it was not running."""
        pid = self._read_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            progress("broker is not running")
            return None
        progress(f"stopping broker (pid {pid})")
        self._signal(pid, signal.SIGTERM)
        return pid

    def reap(self, pid: int, progress: Progress = print, timeout: float = 30.0) -> None:
        """Wait for the terminated broker to end, killing it after ``timeout``."""
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            progress("broker did not stop in time; killing it")
            self._signal(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        progress("broker stopped")

    def kill(self) -> None:
        """End the broker at once, as a crash would (for fault tests)."""
        if (pid := self._read_pid()) is not None:
            self._signal(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.05)
            self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


# ---- a cluster of nodes ---------------------------------------------------------------

CLUSTER_FILE = "cluster.json"


def cluster_ports(port: int, controller_port: int, nodes: int) -> tuple[list[int], list[int]]:
    """Each node's client and controller port: node ``n`` (from 0) listens on
    ``port + 2n`` and ``controller_port + 2n``, so 9092 and 9093 give
    9092/9093, 9094/9095 and 9096/9097."""
    clients = [port + 2 * n for n in range(nodes)]
    controllers = [controller_port + 2 * n for n in range(nodes)]
    if len(set(clients + controllers)) != 2 * nodes:
        raise BrokerError(f"--port {port} and --controller-port {controller_port} give {nodes} nodes overlapping "
                          "ports; make them differ by an odd number (e.g. 9092 and 9093)")
    return clients, controllers


@dataclass
class NodeStatus:
    node_id: int
    pid: int | None
    port: int
    controller_port: int
    data_dir: Path

    @property
    def up(self) -> bool:
        return self.pid is not None


@dataclass
class DevCluster:
    """Several KRaft nodes on this machine, for development and fault tests.

    Every node is broker and controller in one process (``process.roles`` both),
    and every node votes in the controller quorum (a static
    ``controller.quorum.voters`` naming all of them); their storage is formatted
    with one cluster id. With three nodes any one may die, though it leads
    partitions and may be the active controller: the other two keep the quorum's
    majority and the two in-sync replicas that acks=all writes need (replication
    factor 3 and ``min.insync.replicas`` 2 for the broker's own topics; savin's
    get the same from :func:`savin.topics.ensure_topics` with
    SAVIN_REPLICATION_FACTOR=3).

    In ``data_dir``: ``cluster.json`` (the cluster id and ports, which ``stop``
    and ``status`` read) and ``node-<id>/``, each kept as a :class:`DevBroker` keeps its own.
    """

    data_dir: Path
    ports: list[int]
    controller_ports: list[int]
    heap: str = "512m"
    cache_dir: Path = field(default_factory=default_cache_dir)
    cluster_id: str = field(default_factory=_kafka_uuid)

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).resolve()
        if len(self.ports) != len(self.controller_ports) or len(self.ports) < 2:
            raise BrokerError("a cluster needs two or more nodes, each with a client and a controller port")

    @classmethod
    def load(cls, data_dir: Path, **kw) -> DevCluster | None:
        """The cluster last started from ``data_dir``, or None if it holds none."""
        try:
            saved = json.loads((Path(data_dir) / CLUSTER_FILE).read_text())
        except FileNotFoundError:
            return None
        return cls(data_dir, saved["ports"], saved["controller_ports"], cluster_id=saved["cluster_id"], **kw)

    @classmethod
    def create(cls, data_dir: Path, ports: list[int], controller_ports: list[int], **kw) -> DevCluster:
        """A cluster in ``data_dir`` on these ports: the one formatted there before
        (same id and number of nodes), or a new one."""
        if (Path(data_dir) / "kraft-logs").exists():
            raise BrokerError(f"{data_dir} holds a single broker's data; give the cluster another --data-dir")
        saved = cls.load(data_dir)
        if saved is None:
            return cls(data_dir, ports, controller_ports, **kw)
        if len(saved.ports) != len(ports):
            raise BrokerError(f"{data_dir} holds a cluster of {len(saved.ports)} nodes, not {len(ports)}; "
                              "give this one another --data-dir")
        return cls(data_dir, ports, controller_ports, cluster_id=saved.cluster_id, **kw)

    @property
    def replication(self) -> int:
        """The replication factor the cluster's topics get: every node, up to three."""
        return min(3, len(self.ports))

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    @property
    def nodes(self) -> list[DevBroker]:
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, c in enumerate(self.controller_ports, 1))
        return [DevBroker(data_dir=self.data_dir / f"node-{i}", port=p, controller_port=c, heap=self.heap,
                          cache_dir=self.cache_dir, node_id=i, voters=voters, replication=self.replication,
                          cluster_id=self.cluster_id)
                for i, (p, c) in enumerate(zip(self.ports, self.controller_ports), 1)]

    def node(self, node_id: int) -> DevBroker:
        return self.nodes[node_id - 1]

    def start(self, progress: Progress = print, timeout: float = 180.0) -> str:
        """Start every node that is not running and wait until each answers; return
        the bootstrap string. Should one fail, every node is stopped."""
        down = [n for n in self.nodes if n._read_pid() is None]
        if down:
            java, libs = check_java(), resolve_jars(Path(self.cache_dir), progress)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / CLUSTER_FILE).write_text(json.dumps(
                {"cluster_id": self.cluster_id, "ports": self.ports, "controller_ports": self.controller_ports}))
            try:
                # All at once: a node answers only once a majority of the quorum runs.
                launched = [(n, n.launch(java, libs, _as_node(n, progress))) for n in down]
                for node, proc in launched:
                    node.wait_ready(proc, _as_node(node, progress), timeout)
            except BrokerError:
                self.stop(progress=lambda _m: None)
                raise
        progress(f"cluster of {len(self.ports)} nodes ready at {self.bootstrap}")
        return self.bootstrap

    def stop(self, progress: Progress = print, timeout: float = 30.0) -> bool:
        """Stop every node; True if any was running. All are asked at once: a node
        stopped last, alone, would wait for a quorum that has already gone."""
        asked = [(n, n.terminate(_as_node(n, progress))) for n in self.nodes]
        deadline = time.monotonic() + timeout  # one for all: they stop together
        for node, pid in asked:
            if pid is not None:
                node.reap(pid, _as_node(node, progress), max(0.0, deadline - time.monotonic()))
        return any(pid is not None for _, pid in asked)

    def status(self) -> list[NodeStatus]:
        return [NodeStatus(n.node_id, n._read_pid(), n.port, n.controller_port, n.data_dir) for n in self.nodes]


def _as_node(node: DevBroker, progress: Progress) -> Progress:
    return lambda message: progress(f"node {node.node_id}: {message}")


async def describe_partitions(bootstrap: str, topics: list[str] | None = None, timeout: float = 10.0) -> list[dict]:
    """Every partition of ``topics`` (all when None) as the cluster's metadata gives
    it: ``topic``, ``partition``, ``leader`` (-1 when none), ``replicas``, ``isr``."""
    from savin.topics import with_admin

    async def describe(admin) -> list[dict]:
        return await asyncio.wait_for(admin.describe_topics(topics), timeout)

    described = await asyncio.wait_for(
        with_admin(bootstrap, describe, timeout, request_timeout_ms=int(timeout * 1000)), 3 * timeout)
    return [{"topic": t["topic"], **p} for t in described for p in t["partitions"]]


def partition_leaders(partitions: list[dict]) -> dict[int, int]:
    """How many of ``partitions`` each node leads."""
    led: dict[int, int] = {}
    for p in partitions:
        if p["leader"] >= 0:
            led[p["leader"]] = led.get(p["leader"], 0) + 1
    return led


def under_replicated(partitions: list[dict]) -> int:
    """How many of ``partitions`` have fewer in-sync replicas than replicas."""
    return sum(len(p["isr"]) < len(p["replicas"]) for p in partitions)
