"""Runs the Faust worker in this process."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from savin.settings import Settings

__all__ = ["run_worker"]


def run_worker(settings: Settings) -> None:
    import faust

    from savin.bootstrap import build_app
    from savin.kafka import ensure_topics
    from savin.topics import Topics

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
