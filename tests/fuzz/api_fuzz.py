"""Fuzz a worker's HTTP API from its own OpenAPI description (schemathesis), and count.

Every operation gets ``examples`` cases made from the description (valid parameters) and as
many made to break it (negative mode: wrong types, out-of-range numbers, odd strings), sent
with the credential the route's ``security`` names. A 5xx answer is a failure; the counts go
to docs/reliability.md. ``python -m tests.fuzz.api_fuzz URL TOKEN SECRET EXAMPLES`` runs it
against a running worker.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, openapi


@dataclass
class ApiFuzzCounts:
    """Requests sent, answers by status, and the first few 5xx cases."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_mode: Counter[tuple[str, int]] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)

    @property
    def five_xx(self) -> int:
        """Answers with a 5xx status."""
        return sum(n for status, n in self.statuses.items() if status >= 500)


def fuzz_api(base_url: str, token: str, secret: str, examples: int) -> ApiFuzzCounts:
    """Send ``examples`` positive and ``examples`` negative cases to every operation."""
    spec = requests.get(f"{base_url}/openapi.json", timeout=30).json()
    schema = openapi.from_dict(spec)
    counts = ApiFuzzCounts()
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        security = operation.definition.raw.get("security", spec.get("security", []))
        names = {name for requirement in security for name in requirement}
        headers = {}
        if "analystToken" in names:
            headers = {"Authorization": f"Bearer {token}"}
        elif "workerSecret" in names:
            headers = {"Authorization": f"Bearer {secret}"}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run(operation, mode, base_url, headers, session, examples, counts)
    return counts


def _run(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    session: requests.Session,
    examples: int,
    counts: ApiFuzzCounts,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=120)
        counts.requests += 1
        counts.statuses[response.status_code] += 1
        counts.by_mode[(mode.value, response.status_code)] += 1
        if response.status_code >= 500 and len(counts.server_errors) < 10:
            counts.server_errors.append(
                f"{response.status_code} {response.request.url}: {response.text[:200]}"
            )

    try:
        send()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # A route without parameters has nothing to make invalid.


if __name__ == "__main__":
    url, token, secret, examples = sys.argv[1:5]
    found = fuzz_api(url, token, secret, int(examples))
    print(f"requests {found.requests}, 5xx {found.five_xx}, statuses {dict(found.statuses)}")
    for line in found.server_errors:
        print(line)
