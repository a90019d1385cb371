"""Run one Faust worker of the pipeline in this process."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from config.settings import Settings
from stream import logs


def run_worker(
    settings: Settings,
    bootstrap: str,
    *,
    web_port: int | None = None,
    data_dir: str | None = None,
    tick_seconds: float = 5.0,
) -> None:
    """Start the worker and block until SIGTERM/SIGINT stops it gracefully."""
    import faust

    from stream.app import build_pipeline
    from stream.gc_tuning import tune_collector
    from stream.topics_admin import ensure_topics

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


SHUTDOWN_TIMEOUT_EXIT = 3
_watchdog: list[threading.Timer] = []


def start_shutdown_watchdog(
    timeout_s: float, exit: Callable[[int], Any] = os._exit
) -> threading.Timer:
    """Exit the process if a graceful stop takes longer than ``timeout_s`` (started once)."""
    if _watchdog:
        return _watchdog[0]

    def give_up() -> None:
        logging.getLogger("crm_attribution.stream").error(
            "the graceful stop did not finish in %.0f s (is the Kafka broker reachable?); "
            "exiting with status %d",
            timeout_s,
            SHUTDOWN_TIMEOUT_EXIT,
        )
        exit(SHUTDOWN_TIMEOUT_EXIT)

    timer = threading.Timer(timeout_s, give_up)
    timer.daemon = True
    timer.start()
    _watchdog.append(timer)
    return timer
