"""Ask every worker of the group for its share (the HTTP client side of a query)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from stream.api.shares import local_share, local_version
from stream.pipeline import Pipeline

LOCAL_PATH = "/internal/local"
ANALYTICS_PATH = "/internal/analytics"
CUSTOMER_PATH = "/internal/customers"  # + /{customer_id}: this worker's answer only
VERSION_PATH = "/internal/version"


class FanoutError(RuntimeError):
    """A worker of the group did not answer; the query cannot be complete."""


def worker_urls(pipeline: Pipeline) -> list[str]:
    """Web addresses of every worker that owns partitions (this one included)."""
    own = str(pipeline.app.conf.canonical_url).rstrip("/")
    try:
        hosts = {str(url).rstrip("/") for url in pipeline.app.router.tables_metadata()}
    except Exception:  # noqa: BLE001 - no assignment yet
        hosts = set()
    hosts.add(own)
    return sorted(hosts)


async def gather_local(pipeline: Pipeline, kinds: str) -> list[dict[str, Any]]:
    """Every worker's local aggregate items (``kinds``: comma-separated key kinds)."""
    return await gather(
        pipeline, LOCAL_PATH, {"kinds": kinds}, lambda: local_share(pipeline, kinds)
    )


async def group_version(pipeline: Pipeline) -> str:
    """The data version of the whole group: every worker's, in address order (one string)."""
    versions = await gather(pipeline, VERSION_PATH, {}, lambda: local_version(pipeline))
    return json.dumps(sorted([v["url"], v["version"]] for v in versions))


async def gather(
    pipeline: Pipeline,
    path: str,
    params: dict[str, str],
    local: Callable[[], Awaitable[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Every worker's answer to an internal GET ``path`` (this worker's own from ``local``)."""
    own = str(pipeline.app.conf.canonical_url).rstrip("/")
    urls = worker_urls(pipeline)

    async def fetch(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
        if url == own:
            return await local()
        try:
            async with session.get(f"{url}{path}", params=params) as response:
                if response.status != 200:
                    raise FanoutError(_refusal(url, response.status))
                return json.loads(await response.text())
        except (TimeoutError, aiohttp.ClientError) as error:
            raise FanoutError(f"worker {url} did not answer: {error}") from None

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, headers=pipeline.internal_headers) as session:
        return list(await asyncio.gather(*(fetch(session, url) for url in urls)))


async def find_customer(pipeline: Pipeline, customer_id: str) -> dict[str, Any] | None:
    """Ask the other workers for a customer this one does not hold (``None``: nobody does).

    Any worker may own any customer: the partition a customer's events arrive on is the
    producer's choice (murmur2, CRC32, explicit), so the key alone cannot route the question.
    """
    own = str(pipeline.app.conf.canonical_url).rstrip("/")
    others = [url for url in worker_urls(pipeline) if url != own]
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, headers=pipeline.internal_headers) as session:
        for url in others:
            try:
                async with session.get(f"{url}{CUSTOMER_PATH}/{customer_id}") as response:
                    if response.status == 200:
                        answer: dict[str, Any] = json.loads(await response.text())
                        return answer
                    if response.status != 404:
                        raise FanoutError(_refusal(url, response.status))
            except (TimeoutError, aiohttp.ClientError) as error:
                raise FanoutError(f"worker {url} did not answer: {error}") from None
    return None


def _refusal(url: str, status: int) -> str:
    if status == 401:
        return (
            f"worker {url} refused this worker's secret (HTTP 401): give every worker of the "
            "group the same api.internal_secret or api.token"
        )
    return f"worker {url} answered HTTP {status}"


def merge_shares(shares: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Partition -> items, from every worker's share; a partition seen twice is an error."""
    merged: dict[str, dict[str, Any]] = {}
    for share in shares:
        for partition, items in share.get("partitions", {}).items():
            if partition in merged:
                raise FanoutError(f"partition {partition} reported by two workers (rebalancing)")
            merged[partition] = items
    return merged
