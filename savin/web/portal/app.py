"""The portal's application: ``create_app(settings)`` builds it, ``run_web``
serves it with uvicorn. Pages live in :mod:`savin.web.portal.pages`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from savin.bootstrap import StartupError, build_notifiers
from savin.ops.feeds import FeedView
from savin.sealing import Sealer
from savin.settings import PREFIX, Settings
from savin.streams.store import open_store
from savin.topics import Topics, ensure_topics
from savin.web.console.app import install as install_console
from savin.web.portal import acknowledge, manage, register, voice, webhooks
from savin.web.portal.commands import Commands
from savin.web.portal.context import Portal
from savin.web.portal.pages import Pages
from savin.web.portal.security import Csrf, SecurityHeaders
from savin.web.portal.views import Views

__all__ = ["STATIC", "check_web_settings", "create_app", "run_web"]

log = logging.getLogger("savin.web.portal")

STATIC = Path(__file__).parent / "static"
#: SAVIN_WEB_SECRET's least length outside a development run.
MIN_WEB_SECRET = 32


def check_web_settings(settings: Settings) -> None:
    """The keys the portal seals and finds contacts with; the built-in form-signing
    secret is refused outside a development run."""
    default = Settings.model_fields["web_secret"].default.get_secret_value()
    secret = settings.web_secret.get_secret_value()
    if not settings.development and secret == default:
        raise StartupError(f"{PREFIX}WEB_SECRET still holds the development default; set a long random value, "
                           f"or {PREFIX}DEVELOPMENT=true for a development run")
    if not settings.development and len(secret) < MIN_WEB_SECRET:
        # It signs operators' sessions and the portal's links: a short one can be guessed offline.
        raise StartupError(f"{PREFIX}WEB_SECRET must be at least {MIN_WEB_SECRET} characters, not {len(secret)}; "
                           "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'")
    settings.data_keys  # noqa: B018 - raises SettingsError naming SAVIN_DATA_KEY
    settings.index_key_bytes  # noqa: B018 - raises SettingsError naming SAVIN_INDEX_KEY


def create_app(settings: Settings, views: Views | None = None) -> FastAPI:
    topics = Topics(settings)
    state: dict[str, object] = {}
    sealer = Sealer(settings.data_keys, index_key=settings.index_key_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal views
        if views is None:
            path = None if settings.store == "memory" else settings.data_dir / "web" / "views"
            store = open_store(path, settings.rocksdb_cache_mb, settings.rocksdb_write_buffer_mb,
                               on_damage=lambda e: log.warning("view store damaged (%s); rebuilding", type(e).__name__))
            await ensure_topics(settings.kafka_bootstrap, topics.specs(), settings.replication_factor)
            views = Views(settings.kafka_bootstrap, topics.offender_status, topics.registrations, store,
                          verifications_topic=topics.verifications, attempts_topic=topics.attempts,
                          consent_topic=topics.consent, calls_topic=topics.calls,
                          escalations_topic=topics.escalations)
            state["store"] = store
        pages.views = views
        commands.views = views
        if console is not None:
            console.attach(views)  # its feeds part follows the feed topics the status pages read
            console.start()
        else:
            FeedView(topics, settings.feed_thresholds).attach(views)
        task = asyncio.create_task(views.run(), name="savin-web-views")
        state["task"] = task
        try:
            yield
        finally:
            if console is not None:
                await console.stop()
            await commands.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if "store" in state:
                state["store"].close()  # type: ignore[attr-defined]

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    pages = Pages(Csrf(settings.web_secret.get_secret_value()), timezone=settings.portal_timezone,
                  public_url=settings.public_url, secure_cookies=(settings.public_url or "").startswith("https:"))
    notifiers = {n.channel: n for n in build_notifiers(settings, sealer)}
    commands = Commands(settings.kafka_bootstrap, topics, views, notifiers)  # type: ignore[arg-type]
    portal = Portal(settings, topics, pages, sealer, commands)
    app.state.portal = portal
    app.include_router(pages.router)
    for part in (register, manage, webhooks, acknowledge, voice):
        app.include_router(part.routes(portal))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    console = install_console(app, settings, topics, commands, sealer) if settings.console else None

    @app.get("/livez", include_in_schema=False)
    async def livez():
        return JSONResponse({"live": True})

    @app.get("/metrics", include_in_schema=False)
    async def metrics_page():
        # Counters of this process only: callbacks refused, registrations left unreachable, sends.
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz", include_in_schema=False)
    async def readyz():
        task = state.get("task")
        running = task is not None and not task.done()  # type: ignore[union-attr]
        ready = running and views is not None and views.ready.is_set()
        check = {"ok": ready}
        if not ready:
            check["detail"] = "restoring from Kafka" if running else "not reading Kafka"
        return JSONResponse({"ready": ready, "checks": {"views": check}}, status_code=200 if ready else 503)

    app.add_middleware(SecurityHeaders)
    return app


def run_web(settings: Settings) -> None:
    import uvicorn

    from savin.logs import configure_logging

    configure_logging(settings)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # No access log: a search URL holds what was searched for.
    uvicorn.run(create_app(settings), host=settings.portal_host, port=settings.portal_port,
                access_log=False, log_level=settings.log_level.lower(), server_header=False,
                proxy_headers=False, log_config=None)
