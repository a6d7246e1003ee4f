"""Run ``savin web`` as its own process, as production does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from savin.dev.testing.worker import WorkerProcess

__all__ = ["WebProcess"]


class WebProcess(WorkerProcess):
    """A portal subprocess; the same readiness, log and stop handling as a worker's."""

    what = "web"

    def __init__(self, env: dict[str, str], log_path: Path, port: int):
        super().__init__(env, log_path, port)
        self.env = {**os.environ, **env, "SAVIN_PORTAL_PORT": str(port), "PYTHONUNBUFFERED": "1"}

    def launch(self) -> WebProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "savin.cli", "web"], env=self.env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        return self
