"""Build the pipeline and run one Faust worker of it in this process."""

from __future__ import annotations

import logging
from typing import Any

import faust

from crm_attribution.settings.typed import Settings
from stream.api.views import attach as attach_views
from stream.kafka.admin import ensure_topics
from stream.ops import logs
from stream.ops.gc_tuning import tune_collector
from stream.ops.shutdown import start_shutdown_watchdog
from stream.pipeline import Pipeline
from stream.worker.agents import attach_agent
from stream.worker.timers import attach_timers


def build_pipeline(settings: Settings, bootstrap: str, **kwargs: Any) -> Pipeline:
    """Create the app and register its agent, timers and web views."""
    pipeline = Pipeline(settings, bootstrap, **kwargs)
    attach_agent(pipeline)
    attach_timers(pipeline)
    attach_views(pipeline)
    return pipeline


def run_worker(
    settings: Settings,
    bootstrap: str,
    *,
    web_port: int | None = None,
    data_dir: str | None = None,
    tick_seconds: float = 5.0,
) -> None:
    """Start the worker and block until SIGTERM/SIGINT stops it gracefully."""
    level = settings.worker.log_level
    logs.configure(settings.worker.json_logs, level)
    ensure_topics(bootstrap, settings)
    pipeline = build_pipeline(
        settings, bootstrap, web_port=web_port, data_dir=data_dir, tick_seconds=tick_seconds
    )
    worker_kwargs: dict[str, Any] = {"loglevel": level, "quiet": True}
    if settings.worker.json_logs:
        worker_kwargs["logging_config"] = None
    logging.getLogger("crm_attribution.stream").info(
        "worker %s on %s, web %s",
        settings.worker.app_id,
        bootstrap,
        pipeline.app.conf.canonical_url,
    )
    timeout = settings.worker.shutdown_timeout_seconds
    tune_collector()

    class Worker(faust.Worker):
        def _schedule_shutdown(self, signal: Any) -> None:
            start_shutdown_watchdog(timeout)
            super()._schedule_shutdown(signal)

    Worker(pipeline.app, **worker_kwargs).execute_from_commandline()
