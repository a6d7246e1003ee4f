"""The worker's HTTP server: savin's own pages and nothing else.

Faust's web stack would also serve its debug and introspection pages
(``/router/``, ``/table/...``, statistics); the worker hands Faust this server
instead (``App.web_server``), so ``/livez``, ``/readyz`` and ``/metrics``
answer and every other path is a 404. Provider callbacks go to ``savin web``
(:mod:`savin.web.callbacks`), so stream work never waits on web traffic.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from savin.web.health import Readiness

__all__ = ["WebServer", "routes"]

def routes(readiness: Readiness) -> web.Application:
    """The application serving savin's pages."""

    async def livez(request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def readyz(request: web.Request) -> web.Response:
        ready, body = readiness.report()
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=256 * 1024)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    return app


class WebServer(Service):
    """Serves :func:`routes` on ``host:port`` while the worker runs."""

    def __init__(self, app: web.Application, host: str, port: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.app, self.host, self.port = app, host, port
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.log.info("serving /livez, /readyz and /metrics on %s:%s", self.host, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
