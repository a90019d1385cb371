"""How an /analytics answer says how fresh it is: response headers, described in the OpenAPI."""

from __future__ import annotations

from stream.api.openapi import openapi_description
from stream.api.queries import freshness_headers
from stream.versioned_cache import Answer

BUILT_AT = 1_780_000_000.25  # 2026-05-28T20:26:40.250Z


def test_an_outdated_answer_says_so_with_its_version_and_build_time() -> None:
    outdated = Answer({"x": 1}, '[["w1", 3]]', BUILT_AT, newer_data=True)
    headers = freshness_headers(outdated, BUILT_AT + 42.9)
    assert headers["X-Newer-Data"] == "true"
    assert headers["X-Built-At"] == "2026-05-28T20:26:40.250Z"
    assert headers["Age"] == "42"
    exact = freshness_headers(Answer({"x": 1}, '[["w1", 3]]', BUILT_AT), BUILT_AT)
    assert exact["X-Newer-Data"] == "false" and exact["Age"] == "0"
    # The version tag names the data version: the same for the same, another for another.
    assert exact["X-Data-Version"] == headers["X-Data-Version"]
    newer = freshness_headers(Answer({"x": 2}, '[["w1", 4]]', BUILT_AT), BUILT_AT)
    assert newer["X-Data-Version"] != headers["X-Data-Version"]


def test_the_openapi_describes_fresh_and_the_freshness_headers() -> None:
    analytics = openapi_description()["paths"]["/analytics"]["get"]
    assert "fresh" in {parameter["name"] for parameter in analytics["parameters"]}
    described = analytics["responses"]["200"]["headers"]
    assert set(described) == set(freshness_headers(Answer({}, "v", BUILT_AT), BUILT_AT))
    # Only /analytics carries them.
    assert "headers" not in openapi_description()["paths"]["/totals"]["get"]["responses"]["200"]
