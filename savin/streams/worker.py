"""The worker process: a Faust app that hosts the stages as services, the lag
monitor (:mod:`savin.streams.lag`), the health checks, and savin's web server
(``/livez``, ``/readyz``, ``/metrics``; nothing of Faust's own pages; Twilio's
status callbacks go to ``savin web``).

A worker running the status stage also runs the feed watchdog
(:mod:`savin.streams.watchdog`), which judges the sources while that stage holds
partition 0.

The stages (:mod:`savin.streams.match`, :mod:`savin.streams.deliver`) consume a
batch at a time on their own aiokafka consumers; see :mod:`savin.streams.stage`
and ``docs/architecture.md`` for why they are not Faust agents.

Before it creates topics or starts Faust, :func:`run_worker` refuses the
development provider defaults outside a development run and asks each provider
whether it accepts savin's credentials; a refusal ends the process with one line
naming the settings and exit code 2. A provider that cannot be asked (down,
timing out) does not stop the start: that is a temporary fault, which the
retries and ``/readyz`` deal with.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import faust
from faust.app.base import BootStrategy

from savin.logs import configure_logging
from savin.notifiers.dispatcher import Dispatcher
from savin.settings import Settings
from savin.streams.deliver import DeliverStage
from savin.streams.lag import LagMonitor
from savin.streams.match import MatchStage
from savin.streams.status import StatusStage
from savin.streams.watchdog import FeedWatchdog
from savin.topics import Topics, ensure_topics

__all__ = ["create_app", "run_worker", "EXIT_CONFIG"]

log = logging.getLogger("savin.worker")

#: Exit code of a worker that refused to start on its configuration.
EXIT_CONFIG = 2


class _Boot(BootStrategy):
    """Faust without its own consumer group: the stages have their own, and a
    Faust group would make a restarted worker wait for the session of the
    process it replaces to time out before anything starts (about a minute)."""

    enable_kafka_consumer = False


class _App(faust.App):
    BootStrategy = _Boot


def create_app(settings: Settings, dispatcher: Dispatcher) -> faust.App:
    from savin.web.health import Health, KafkaProbe, Readiness
    from savin.web.server import WebServer, routes

    app = _App(
        settings.namespace,
        broker=";".join(f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")),
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_acks=-1,
        # The web server is savin's own (below); Faust only starts and stops it.
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
    )

    stages: list = []
    if "match" in settings.stages:
        stages.append(MatchStage(settings))
    if "deliver" in settings.stages:
        stages.append(DeliverStage(settings, dispatcher))
    if "status" in settings.stages:
        stages.append(StatusStage(settings))
    notifiers = dispatcher.notifiers if "deliver" in settings.stages else []

    probe = KafkaProbe(settings.kafka_bootstrap)
    # A deliver batch may wait for a provider's timeout before it commits.
    stall_after = max(10.0, 2 * max(settings.twilio_timeout, settings.smtp_timeout))
    lag = LagMonitor(settings, stages)
    readiness = Readiness(probe, stages, notifiers, stall_after=stall_after, lag=lag)
    app.service(Health(probe, notifiers))
    for stage in stages:
        app.service(stage)
    app.service(lag)
    for stage in stages:
        if isinstance(stage, StatusStage):
            app.service(FeedWatchdog(settings, stage))
    app.web_server(WebServer(routes(readiness), settings.web_host, settings.web_port))
    return app


class _Worker(faust.Worker):
    """Faust's worker on savin's logging (:func:`savin.logs.configure_logging`), set up
    before it starts: mode's own would replace the handler and the format, and its
    progress spinner writes to stdout around the lines."""

    def __init__(self, app: faust.App, **kwargs) -> None:
        super().__init__(app, override_logging=False, redirect_stdouts=False, **kwargs)
        self.spinner = None


def _refuse(message: str) -> None:
    log.error("%s", message)
    raise SystemExit(EXIT_CONFIG)


def run_worker(settings: Settings) -> None:
    from savin.bootstrap import StartupError, build_app, build_notifiers, check_providers, check_settings

    configure_logging(settings)
    try:
        check_settings(settings)
    except StartupError as e:
        _refuse(str(e))
    if "deliver" in settings.stages:
        try:
            for warning in asyncio.run(check_providers(build_notifiers(settings))):
                log.warning("%s", warning)
        except StartupError as e:
            _refuse(str(e))
    # Topics first, with their partition counts and compaction, so co-partitioned
    # pairs match whoever publishes first.
    asyncio.run(ensure_topics(settings.kafka_bootstrap, Topics(settings).specs(), settings.replication_factor))
    asyncio.set_event_loop(asyncio.new_event_loop())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings)
    worker = _Worker(app, loglevel=settings.log_level.upper(), logfile=None)
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
