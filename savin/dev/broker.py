"""A real single-node Apache Kafka broker (KRaft: broker and controller in one
process) for development, the demo, the benchmark and the tests.

The jars come from Maven Central through Maven, into a cache reused across
runs; the broker is the stock ``kafka.Kafka`` main class on the machine's Java.
"""

from __future__ import annotations

import asyncio
import base64
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

__all__ = ["BrokerError", "DevBroker", "KAFKA_VERSION", "wait_for_broker", "free_port"]

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


def broker_reachable(bootstrap: str, timeout: float = 3.0) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError:
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
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


@dataclass
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str | None
    data_dir: Path


@dataclass
class DevBroker:
    data_dir: Path = field(default_factory=lambda: Path("var/kafka"))
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    cache_dir: Path = field(default_factory=default_cache_dir)
    extra_config: dict[str, str] = field(default_factory=dict)

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
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir / "kraft-logs"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
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
        java = check_java()
        libs = resolve_jars(Path(self.cache_dir), progress)
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
                [*jvm, "kafka.tools.StorageTool", "format", "-t", _kafka_uuid(), "-c", str(conf), "--ignore-formatted"],
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
        try:
            wait_for_broker(self.bootstrap, timeout, alive=lambda: proc.poll() is None)
        except BrokerError as e:
            self.stop(progress=lambda _m: None)
            tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise BrokerError(f"{e}\n--- last lines of {self.log_file} ---\n{tail}") from None
        progress(f"broker ready at {self.bootstrap}")
        return self.bootstrap

    def stop(self, progress: Progress = print, timeout: float = 30.0) -> bool:
        pid = self._read_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            progress("broker is not running")
            return False
        progress(f"stopping broker (pid {pid})")
        self._signal(pid, signal.SIGTERM)
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
        return True

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
