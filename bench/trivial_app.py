"""The reference for stream throughput: a Faust agent that only reads and counts.

Run as ``python bench/trivial_app.py BOOTSTRAP APP_ID WEB_PORT TOPIC [TOPIC...]``; it serves the
count at ``/count``. Same Faust settings as the pipeline (raw keys and values, same commit rules).
"""

from __future__ import annotations

import sys
import tempfile

import faust


def main() -> None:
    """Start the counting worker."""
    bootstrap, app_id, port, *topics = sys.argv[1:]
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="trivial-"),
        topic_replication_factor=1,
        web_host="127.0.0.1",
        web_port=int(port),
        key_serializer="raw",
        value_serializer="raw",
        stream_wait_empty=False,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
    )
    seen = {"count": 0}
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")

    @app.agent(source)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for _event in stream.events():
            seen["count"] += 1

    @app.page("/count")
    async def get_count(web, request):  # type: ignore[no-untyped-def]
        return web.json(seen)

    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
