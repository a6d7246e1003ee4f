"""The worker: a Faust app that hosts the two stages as services, and the web
endpoints (Twilio's status callbacks, health, metrics).

The stages (:mod:`savin.streams.matcher`, :mod:`savin.streams.deliverer`)
consume a batch at a time on their own aiokafka consumers; see
:mod:`savin.streams.stage` and ``docs/architecture.md`` for why they are not
Faust agents.
"""

from __future__ import annotations

import logging

import faust

from savin.dispatch import Dispatcher
from savin.settings import Settings
from savin.streams.deliverer import DeliverStage
from savin.streams.matcher import MatchStage
from savin.topics import Topics

__all__ = ["create_app", "MATCH_AGENTS", "DELIVER_AGENTS"]

log = logging.getLogger("savin.worker")

#: ``SAVIN_AGENTS`` names that start each stage: matching needs the registrations,
#: and delivery, retries and status callbacks all move the same ledger.
MATCH_AGENTS = frozenset({"registrations", "match"})
DELIVER_AGENTS = frozenset({"deliver", "retry", "callbacks"})


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
    if settings.agents & MATCH_AGENTS:
        stages.append(MatchStage(settings))
    if settings.agents & DELIVER_AGENTS:
        stages.append(DeliverStage(settings, dispatcher))
    for stage in stages:
        app.service(stage)

    async def publish_result(key: bytes, value: bytes) -> None:
        """For a web request: answer only once Kafka has the record."""
        await (await app.producer.send(topics.delivery_results, key, value, None, None, None))

    from savin.streams.callbacks import twilio_status_view

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

    app.savin = {"topics": topics, "dispatcher": dispatcher, "stages": stages}  # type: ignore[attr-defined]
    return app
