"""Run one Faust worker of the pipeline in this process."""

from __future__ import annotations

import logging
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
    worker = faust.Worker(pipeline.app, **worker_kwargs)
    worker.execute_from_commandline()
