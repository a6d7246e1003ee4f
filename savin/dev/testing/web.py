"""Run ``savin web`` as its own process, as production does."""

from __future__ import annotations

from savin.dev.testing.worker import WorkerProcess

__all__ = ["WebProcess"]


class WebProcess(WorkerProcess):
    """A portal subprocess; the same readiness, log and stop handling as a worker's."""

    what = "web"
    port_setting = "SAVIN_PORTAL_PORT"
