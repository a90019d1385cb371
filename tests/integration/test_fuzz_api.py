"""The worker's HTTP API, fuzzed from its OpenAPI description on the real broker: no 5xx.

The short version (a few cases per operation and mode); docs/reliability.md has the long run.
"""

from __future__ import annotations

import os

import pytest

from crm_attribution.settings.typed import load_settings
from stream.api.access import internal_secret
from tests.fuzz.api_fuzz import fuzz_api
from tests.integration.stream_harness import API_TOKEN, Worker

pytestmark = pytest.mark.kafka
# Cases per operation and mode; CRM_FUZZ_EXAMPLES=300 is the long run of docs/reliability.md.
EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "15"))


def test_fuzzed_requests_get_no_server_error(api_worker: Worker) -> None:
    # The shared worker (tests/integration/conftest.py): no request limit, a drained log; its
    # fixture checks at the end that it still stops with exit 0.
    worker = api_worker
    secret = internal_secret(load_settings(environ={}), API_TOKEN)
    counts = fuzz_api(worker.url, API_TOKEN, secret, EXAMPLES)
    print(f"API fuzz: {counts.requests} requests, {counts.five_xx} 5xx, {dict(counts.by_mode)}")
    assert counts.requests >= 15 * 2 * EXAMPLES // 2, counts
    assert counts.five_xx == 0, counts.server_errors
    assert counts.statuses[200] and counts.statuses[400], counts.statuses
    assert worker.alive(), worker.log_tail()
