"""Run ``savin worker`` as its own process, as production does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["WorkerProcess", "WorkerError"]


class WorkerError(RuntimeError):
    pass


class WorkerProcess:
    """A worker subprocess with its environment, log file and readiness check."""

    #: The ``savin`` command it runs, and the setting that gives it its HTTP port.
    what = "worker"
    port_setting = "SAVIN_WEB_PORT"

    def __init__(self, env: dict[str, str], log_path: Path, web_port: int):
        self.env = {**os.environ, **env, self.port_setting: str(web_port), "PYTHONUNBUFFERED": "1"}
        self.log_path = Path(log_path)
        self.web_port = web_port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, timeout: float = 90.0) -> "WorkerProcess":
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> "WorkerProcess":
        """Start the process without waiting for it to be ready."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "savin.cli", self.what], env=self.env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        return self

    def peak_rss(self) -> int:
        """The process's peak resident set size so far, in bytes (Linux)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise WorkerError("VmHWM not reported by /proc")

    def readiness(self) -> tuple[int, dict]:
        """``/readyz``'s HTTP status and body; (0, {}) while nothing answers."""
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.load(e)
            except ValueError:
                return e.code, {}
        except (OSError, ValueError):
            return 0, {}

    def ready(self) -> bool:
        status, body = self.readiness()
        return status == 200 and body.get("ready") is True

    def live(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/livez", timeout=2) as r:
                return r.status == 200
        except (OSError, ValueError):
            return False

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise WorkerError(f"{self.what} exited during start-up; see {self.log_path}:\n{self.tail()}")
            if self.ready():
                return
            time.sleep(0.25)
        raise WorkerError(f"{self.what} not ready within {timeout:.0f}s; see {self.log_path}:\n{self.tail()}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
            return r.read().decode()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop gracefully (SIGTERM), killing the process group if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def kill(self) -> None:
        """kill -9, as a crash or an OOM killer would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> "WorkerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
