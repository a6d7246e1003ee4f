"""The worker process: a Faust app that hosts the stages as services, and the
web endpoints (Twilio's status callbacks, health, metrics).

The stages (:mod:`savin.streams.match`, :mod:`savin.streams.deliver`) consume a
batch at a time on their own aiokafka consumers; see :mod:`savin.streams.stage`
and ``docs/architecture.md`` for why they are not Faust agents.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import faust

from savin.notifiers.dispatcher import Dispatcher
from savin.settings import Settings
from savin.streams.deliver import DeliverStage
from savin.streams.match import MatchStage
from savin.topics import Topics, ensure_topics

__all__ = ["create_app", "run_worker"]

log = logging.getLogger("savin.worker")

def create_app(settings: Settings, dispatcher: Dispatcher) -> faust.App:
    topics = Topics(settings)
    app = faust.App(
        settings.namespace,
        broker=";".join(f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")),
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_acks=-1,
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )

    stages = []
    if "match" in settings.stages:
        stages.append(MatchStage(settings))
    if "deliver" in settings.stages:
        stages.append(DeliverStage(settings, dispatcher))
    for stage in stages:
        app.service(stage)

    async def publish_result(key: bytes, value: bytes) -> None:
        """For a web request: answer only once Kafka has the record."""
        await (await app.producer.send(topics.delivery_results, key, value, None, None, None))

    from savin.web.callbacks import twilio_status_view

    app.page("/callbacks/twilio/status")(
        twilio_status_view(
            auth_token=settings.twilio_auth_token.get_secret_value(),
            public_url=settings.twilio_status_callback,
            publish=publish_result,
        )
    )

    @app.page("/healthz")
    async def healthz(web, request):
        ready = app.producer is not None and all(stage.ready.is_set() for stage in stages)
        return web.json({"ready": bool(ready)}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web, request):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    return app


def run_worker(settings: Settings) -> None:
    from savin.bootstrap import build_app

    # Topics first, with their partition counts and compaction, so co-partitioned
    # pairs match whoever publishes first.
    asyncio.run(ensure_topics(settings.kafka_bootstrap, Topics(settings).specs(), settings.replication_factor))
    asyncio.set_event_loop(asyncio.new_event_loop())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), logfile=None)
    logging.getLogger("savin").setLevel(settings.log_level.upper())
    profile = os.environ.get("SAVIN_PROFILE")
    if not profile:
        worker.execute_from_commandline()
        return
    # Profiling for the benchmark's optimisation work: pyinstrument (the bench extra)
    # samples the whole worker until it stops, then writes an HTML report.
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        worker.execute_from_commandline()
    finally:
        profiler.stop()
        Path(profile).write_text(profiler.output_html())
        Path(profile).with_suffix(".txt").write_text(profiler.output_text(unicode=False, show_all=False))
        Path(profile).with_suffix(".flat.txt").write_text(profiler.output_text(flat=True, show_all=True))
