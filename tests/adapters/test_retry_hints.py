"""The one retry-hint parser every adapter uses: each real form, their precedence, and malformed values ignored."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.retry_hints import parse_retry_after, retry_info_delay

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def anthropic(reset_in: float, *, remaining: str = "0", retry_after: str | None = None) -> dict[str, str]:
    headers = {
        "anthropic-ratelimit-input-tokens-remaining": remaining,
        "anthropic-ratelimit-input-tokens-reset": rfc3339(NOW + reset_in),
        "anthropic-ratelimit-requests-remaining": "99",
        "anthropic-ratelimit-requests-reset": rfc3339(NOW + 1000),
    }
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return headers


def gemini(delay: Any) -> dict[str, Any]:
    return {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
            ],
        }
    }


@pytest.mark.parametrize(
    ("headers", "body", "want"),
    [
        ({"retry-after-ms": "7250", "retry-after": "8"}, None, 7.25),  # OpenAI/Azure: ms wins
        ({"retry-after": "8"}, None, 8.0),
        ({"retry-after": "0.5"}, None, 0.5),  # the Stainless SDKs accept decimal seconds
        ({"x-amz-retry-after": "1500"}, None, 1.5),  # Bedrock
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, None, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, None, 0.0),  # a past date: go now
        ({}, gemini("7.250s"), 7.25),
        ({}, [gemini("13s")], 13.0),  # Gemini's JSON-array stream wraps the error in a list
        ({}, gemini("1m30s"), 90.0),
        (anthropic(12), None, 12.0),  # only the exhausted bucket's reset counts
        (anthropic(12, retry_after="3"), None, 3.0),  # retry-after present: the reset is not used
        (anthropic(12, remaining="5"), None, None),  # no bucket exhausted: no hint
        ({}, None, None),
    ],
)
def test_every_form(headers: dict[str, str], body: Any, want: float | None) -> None:
    got = parse_retry_after(httpx.Headers(headers), body, now=NOW)
    assert got == (None if want is None else pytest.approx(want))


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "soon"},
        {"retry-after": "nan"},
        {"retry-after": "inf"},
        {"retry-after": "-3"},
        {"retry-after": "Wed, 99 Foo 2026 25:61:00 GMT"},
        {"retry-after-ms": "abc"},
        {"retry-after": ""},
        {"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": "yesterday"},
    ],
)
def test_malformed_values_are_ignored(headers: dict[str, str]) -> None:
    assert parse_retry_after(httpx.Headers(headers), None, now=NOW) is None


def test_a_malformed_header_falls_through_to_the_next_form() -> None:
    headers = {"retry-after-ms": "garbage", "retry-after": "4"}
    assert parse_retry_after(headers, None, now=NOW) == 4.0


@pytest.mark.parametrize(
    "body", [None, "text", [], [1, 2], {"error": "x"}, gemini(7), gemini("7 seconds"), gemini("")]
)
def test_malformed_retry_info_is_ignored(body: Any) -> None:
    assert retry_info_delay(body) is None
    assert parse_retry_after({}, body, now=NOW) is None


def test_http_date_is_relative_to_the_clock() -> None:
    date = email.utils.formatdate(NOW + 60, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW + 45) == pytest.approx(15.0)
