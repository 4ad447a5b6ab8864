"""One parser for every form in which a provider says how long to wait before retrying.

Providers disagree on the form (provider-wire-formats.md §0, §3-§8, §12 "Retry-hint formats"):

* ``retry-after-ms: 7250``: OpenAI and Azure, beside a whole-second ``retry-after``; more precise, so it wins;
* ``x-amz-retry-after: 7250``: Bedrock, milliseconds, the only hint botocore's standard retry mode reads;
* ``retry-after: 7`` or ``retry-after: 7.25``: delta-seconds (the Stainless SDKs accept decimals);
* ``retry-after: Wed, 21 Oct 2015 07:28:00 GMT``: an HTTP-date (RFC 9110 §10.2.3), a wait relative to now;
* Gemini's body: ``error.details[]`` with ``@type: type.googleapis.com/google.rpc.RetryInfo`` and a protobuf duration
  ``retryDelay: "7.250s"``;
* Anthropic's ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`` RFC 3339 timestamps: used
  only when no other hint is present, and only for a bucket whose ``-remaining`` is 0 (a reset of a bucket that is not
  exhausted says nothing about when this request may be retried).

Every adapter reads its hint through :func:`parse_retry_after`, so a form learnt once is understood everywhere, and a
malformed value (a garbled date, ``nan``, a negative number, a non-string) is ignored, never raised: a bad hint must
not turn a retryable error into a crash.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

_ANTHROPIC_RESET = re.compile(r"^anthropic-ratelimit-([a-z-]+)-reset$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


class HeaderMap(Protocol):
    """What is read from response headers: ``httpx.Headers``, a dict, or anything with ``get`` and ``items``."""

    def get(self, key: str, default: Any = None, /) -> Any: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


def parse_duration(value: str) -> float | None:
    """A Go-style (``6m0s``, ``12ms``) or protobuf (``13s``, ``0.5s``) duration in seconds, or None."""
    value = value.strip()
    if not value:
        return None
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            return None
        number, unit = float(match.group(1)), match.group(2)
        total += number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
        pos = match.end()
    return total if pos == len(value) and pos > 0 else None


def parse_retry_after(
    headers: HeaderMap | None, body: Any = None, *, now: float | None = None
) -> float | None:
    """Seconds to wait, from whichever retry hint the response carries, or None when it carries no usable one.

    ``headers`` are the response headers; ``body`` the decoded JSON error body when there is one (Gemini's hint lives
    there). ``now`` (epoch seconds) is the clock absolute forms are measured against; by default the current time.
    """
    clock = time.time() if now is None else now
    if headers is not None:
        for name in ("retry-after-ms", "x-amz-retry-after"):
            ms = _number(headers.get(name))
            if ms is not None:
                return ms / 1000
        raw = headers.get("retry-after")
        seconds = _number(raw)
        if seconds is not None:
            return seconds
        deadline = _http_date(raw)
        if deadline is not None:
            return max(deadline - clock, 0.0)
    delay = retry_info_delay(body)
    if delay is not None:
        return delay
    if headers is not None:
        deadline = _exhausted_reset(headers)
        if deadline is not None:
            return max(deadline - clock, 0.0)
    return None


def retry_info_delay(body: Any) -> float | None:
    """``google.rpc.RetryInfo.retryDelay`` from an error body (``{"error": {...}}``, the bare error object, or the
    one-element list a Gemini JSON-array stream wraps it in), in seconds."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        return None
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return None
    for detail in details:
        if isinstance(detail, dict) and detail.get("@type") == RETRY_INFO:
            delay = detail.get("retryDelay")
            parsed = parse_duration(delay) if isinstance(delay, str) else None
            if parsed is not None and math.isfinite(parsed):
                return parsed
    return None


def _number(raw: Any) -> float | None:
    """A finite, non-negative number from a header value, else None (``nan``, ``inf``, ``-3``, dates, garbage)."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _http_date(raw: Any) -> float | None:
    """An HTTP-date as epoch seconds (a date with no zone is taken as UTC, as RFC 9110 requires GMT), else None."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _epoch(moment)


def _rfc3339(raw: Any) -> float | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return _epoch(moment)


def _epoch(moment: datetime) -> float | None:
    """Epoch seconds of a parsed date (no zone means UTC); None for a date the platform cannot represent."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _exhausted_reset(headers: HeaderMap) -> float | None:
    """The latest reset among Anthropic's exhausted rate-limit buckets (``-remaining: 0``), as epoch seconds."""
    latest: float | None = None
    for name, value in headers.items():
        match = _ANTHROPIC_RESET.match(name.lower())
        if match is None:
            continue
        remaining = headers.get(f"anthropic-ratelimit-{match.group(1)}-remaining")
        if _number(remaining) != 0:
            continue
        deadline = _rfc3339(value)
        if deadline is not None and (latest is None or deadline > latest):
            latest = deadline
    return latest
