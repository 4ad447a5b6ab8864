"""The catalogue of certification checks (the DoD of ../shared/DOD.md), and the decorator that tags a test with one.

The catalogue is the single source of check IDs, titles, areas and severities: the suite's tests, the Allure labels and
the certificate all read it, so a check cannot be renamed in one place and forgotten in another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import allure
import pytest

from adapters.errors import scrub

Severity = Literal["blocker", "critical", "normal", "minor"]

AREAS: dict[str, str] = {
    "REG": "Registration and configuration",
    "GLD": "Golden contract",
    "REQ": "The request sent",
    "ERR": "Error mapping",
    "STR": "Streaming",
    "TOK": "Token and cost accounting",
    "RID": "Request ids",
    "RTY": "Runtime resilience",
    "TEL": "Telemetry and cost attribution",
    "SEC": "Secrets and egress",
    "LIV": "Live",
}


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    severity: Severity = "critical"

    @property
    def area(self) -> str:
        return self.id.split("-", 1)[0]

    @property
    def feature(self) -> str:
        return f"{self.area}: {AREAS[self.area]}"


_CHECKS = [
    Check(
        "REG-ID", "Registered with a stable kebab-case id; entry valid against the registry schema", "blocker"
    ),
    Check("REG-CAPS", "Capabilities declared and behaviour agrees"),
    Check(
        "REG-CRED",
        "credential_ref only; resolved at call time; rotation picked up without restart",
        "blocker",
    ),
    Check("REG-PRICE", "Every registered model priced; unpriced is reported, never $0"),
    Check("REG-LIMITS", "Default timeouts and retry policy declared", "normal"),
    Check("REG-ROLLOUT", "Rollout status and fallback declared", "normal"),
    Check("GLD-COMPLETE", "Golden non-streaming cassette replays to the expected response"),
    Check("GLD-STREAM", "Golden streaming cassette replays to the expected event sequence"),
    Check("GLD-REQUEST", "The request sent is well formed for the provider"),
    Check(
        "REQ-FIELDS",
        "Every field of the normalized request reaches the wire in the provider's form, or is refused as unsupported",
        "blocker",
    ),
    Check("ERR-429", "Rate limit: rate_limited, retryable, retry_after parsed"),
    Check("ERR-QUOTA", "Insufficient quota: quota_exhausted, not retryable"),
    Check("ERR-401", "Authentication failure: auth, not retryable"),
    Check("ERR-403", "Permission denied: permission, not retryable"),
    Check("ERR-404", "Model not found: not_found, not retryable"),
    Check("ERR-400", "Bad request: bad_request, not retryable"),
    Check("ERR-CONTEXT", "Context length exceeded: its own kind"),
    Check("ERR-FILTER", "Content filtered: its own kind or finish reason, partial text kept"),
    Check("ERR-5XX", "500/502/503/504: retryable server errors"),
    Check("ERR-OVERLOADED", "Overloaded (529 or equivalent): overloaded, retryable"),
    Check("ERR-TIMEOUT", "No headers within the timeout: timeout, within the configured bound"),
    Check("ERR-CONN", "Refused or reset connection: connection, retryable"),
    Check("ERR-MALFORMED", "Invalid JSON, wrong content type or 200-with-error: mapped, never raw"),
    Check("STR-ORDER", "One Start, deltas, one End; deltas concatenate to exactly the text sent", "blocker"),
    Check("STR-EMPTY", "Empty chunks, empty deltas and keep-alives never forwarded"),
    Check(
        "STR-ABORT", "Dropped connection: stream_interrupted, partial text kept, never complete", "blocker"
    ),
    Check("STR-INBAND", "In-band error event: right kind, partial text kept"),
    Check("STR-TRUNCATED", "Stream without terminator: interrupted, not complete"),
    Check("STR-MALFORMED", "Malformed frame: invalid_response, no hang"),
    Check("STR-STALL", "No chunk within the idle timeout: timeout"),
    Check("STR-END", "End carries finish reason, usage and request id, once"),
    Check("STR-TOOLS", "Tool-call argument fragments reassembled"),
    Check("TOK-COMPLETE", "Non-streaming usage equals the server's truth"),
    Check("TOK-STREAM", "Streaming usage equals the truth (cumulative counters not summed)"),
    Check("TOK-NULL", "Null or missing usage: estimated, non-zero, within tolerance"),
    Check("TOK-COST", "Cost from registry price per 1M tokens, exact; unpriced flagged"),
    Check("TOK-DETAIL", "Cached and reasoning tokens broken out", "normal"),
    Check("RID-OK", "Request id preserved on responses"),
    Check("RID-ERR", "Request id preserved on errors"),
    Check("RID-STREAM", "Request id preserved on stream End events"),
    Check("RTY-BACKOFF", "Retryable errors retried with exponential backoff and jitter, bounded"),
    Check("RTY-AFTER", "retry_after honoured and capped"),
    Check("RTY-NONRETRY", "Non-retryable errors not retried"),
    Check("RTY-STREAM", "No retry once stream output reached the caller", "blocker"),
    Check("RTY-FALLBACK", "Fallback provider serves when the primary is exhausted or disabled"),
    Check("TEL-FIELDS", "One span per call with GenAI and attribution fields"),
    Check("TEL-ERROR", "Failures recorded with the error kind", "normal"),
    Check("TEL-TTFT", "Streams record time to first token", "normal"),
    Check("SEC-CASSETTE", "No secret in any cassette", "blocker"),
    Check("SEC-SURFACE", "No secret in errors, reprs, logs, telemetry or reports", "blocker"),
    Check("SEC-EGRESS", "The adapter only talks to its registered host", "blocker"),
    Check("LIV-SMOKE", "Live call succeeds and validates against the golden schema"),
    Check("LIV-BUDGET", "Live spend stays under the cap; over-cap calls refused before sending"),
]

CHECKS: dict[str, Check] = {c.id: c for c in _CHECKS}

F = TypeVar("F", bound=Callable[..., Any])


def check(check_id: str) -> Callable[[F], F]:
    """Tag a test as (part of) a DoD check: the marker feeds the certificate, the labels feed Allure."""
    try:
        spec = CHECKS[check_id]
    except KeyError:
        raise ValueError(f"unknown check id {check_id!r}; add it to harness/checks.py") from None

    def decorate(fn: F) -> F:
        fn = pytest.mark.dod(spec.id)(fn)
        fn = allure.feature(spec.feature)(fn)
        fn = allure.story(f"{spec.id} {spec.title}")(fn)
        fn = allure.severity(spec.severity)(fn)
        fn = allure.label("check_id", spec.id)(fn)
        return fn

    return decorate


NOT_APPLICABLE = "not applicable: "


def not_applicable(reason: str) -> None:
    """End a check as not applicable; the certificate shows the reason, it is never counted as a pass."""
    pytest.skip(NOT_APPLICABLE + reason)


# ---------------------------------------------------------------- evidence: what a passing check verified
#: how a passing check that recorded no evidence is shown (it still passes, for now)
NO_EVIDENCE = "(no evidence recorded)"
#: the longest evidence line kept: one glance in a table cell, not a dump
EVIDENCE_LIMIT = 200

_evidence: list[str] | None = None


def evidence(line: str) -> None:
    """Record one line of evidence of what the running check verified (several calls append).

    e.g. ``evidence(f"429 retry-after-ms 7300 -> {err.kind}, retryable, retry_after {err.retry_after} s, "
    f"request id {err.request_id}")``. A pass then says what it proved: the certificate, JUnit and Allure show
    the lines. The line is made one line, cut to :data:`EVIDENCE_LIMIT` characters and scrubbed of every
    known credential and key-shaped string, so evidence can never leak a secret into a report.
    """
    if _evidence is None:
        raise RuntimeError("evidence() records what a running check verified: call it from inside the check")
    text = scrub(" ".join(str(line).split()))
    if len(text) > EVIDENCE_LIMIT:
        text = text[: EVIDENCE_LIMIT - 3] + "..."
    if not text:
        return
    _evidence.append(text)
    with allure.step(f"evidence: {text}"):
        pass


def begin_evidence() -> None:
    """Start collecting evidence for the test about to run (the provcert plugin calls this)."""
    global _evidence
    _evidence = []


def take_evidence() -> list[str]:
    """The evidence the test recorded; collecting stops until the next :func:`begin_evidence`."""
    global _evidence
    lines, _evidence = _evidence or [], None
    return lines


def recorded_evidence() -> list[str]:
    """The evidence recorded so far by the running test (without ending the collection)."""
    return list(_evidence or [])
