"""The retry-hint vocabulary: every form in which a real provider tells a client how long to wait.

Real providers do not agree on how to say "retry in 7 s": OpenAI and Azure send ``retry-after-ms`` beside a
whole-second ``retry-after`` (or ``retry-after`` alone, or as an HTTP-date: the Stainless SDKs read all three),
Anthropic sends ``retry-after`` plus RFC 3339 ``anthropic-ratelimit-*-reset`` timestamps, Gemini puts a
``google.rpc.RetryInfo`` with a protobuf duration in the error body, Bedrock has only ``x-amz-retry-after`` in
milliseconds. An adapter that reads only one of them silently ignores the others, so the mock must be able to
send each one on request: a scenario picks the form with ``retry_after_form`` and each personality declares the
forms its real provider sends (:attr:`~mockserver.personalities.base.Personality.retry_hint_forms`, each with
the source it was taken from).

Whatever form was sent, the journal records what it *means* (:class:`RetryHint`): the wait in seconds and, for the
absolute forms (HTTP-date, reset timestamps), the deadline, so a check can compare an adapter's ``retry_after``
with what the server really said, not with the scenario's nominal value.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

#: Every retry-hint form some personality can send.
RetryForm = Literal["seconds", "ms", "http_date", "reset_headers", "body", "amz_ms"]

#: What each form puts on the wire (documentation for the README, the admin API and error messages).
FORM_DESCRIPTIONS: dict[str, str] = {
    "seconds": "`retry-after: <seconds>` (delta-seconds, RFC 9110 §10.2.3)",
    "ms": "`retry-after-ms: <milliseconds>` beside a whole-second `retry-after`",
    "http_date": "`retry-after: <IMF-fixdate>` (an HTTP-date, RFC 9110 §10.2.3)",
    "reset_headers": "Anthropic's RFC 3339 `anthropic-ratelimit-*-reset` timestamps, no `retry-after`",
    "body": "`google.rpc.RetryInfo.retryDelay` (a protobuf duration) in the error body's `details`",
    "amz_ms": "`x-amz-retry-after: <milliseconds>` (the only hint botocore's standard retry mode reads)",
}

ALL_FORMS: tuple[str, ...] = get_args(RetryForm)


@dataclass(frozen=True)
class RetryHint:
    """What a rendered retry hint means: ``seconds`` to wait from the moment it was sent, and for an absolute form
    the ``deadline`` (epoch seconds) it names, which a client compares with its own clock."""

    form: str
    seconds: float
    deadline: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.form, "seconds": self.seconds, "deadline": self.deadline}


def whole_seconds(seconds: float) -> int:
    """A delta-seconds ``retry-after`` is a whole number; round up so a client never retries early."""
    return max(math.ceil(seconds - 1e-9), 0)


def deadline_after(seconds: float, now: float | None = None) -> float:
    """The whole-second instant at or after ``now + seconds``: HTTP-dates and Anthropic's resets carry no fraction,
    and a deadline rounded down would ask the client to come back early."""
    return float(math.ceil((time.time() if now is None else now) + seconds))


def http_date(deadline: float) -> str:
    """An IMF-fixdate (``Wed, 21 Oct 2015 07:28:00 GMT``), the form RFC 9110 requires servers to send."""
    return email.utils.formatdate(deadline, usegmt=True)


def rfc3339(deadline: float) -> str:
    """Anthropic's reset timestamp: UTC, whole seconds, ``Z`` suffix (``2025-07-29T09:59:33Z``)."""
    return datetime.fromtimestamp(deadline, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unsupported_form(personality: str, form: str, supported: tuple[str, ...]) -> str:
    """The mock's 400 message for a form the personality's real provider never sends."""
    listed = ", ".join(supported) if supported else "none (this provider sends no retry hint)"
    return (
        f"invalid scenario: retry_after_form: {form!r} is not a retry-hint form the {personality} wire sends; "
        f"supported: {listed}"
    )


def seconds_value(seconds: float, *, decimals: bool) -> float:
    """The delta-seconds a ``retry-after`` carries: whole seconds rounded up, or (``decimals``) the value itself to
    millisecond precision, for personalities whose tests need sub-second waits (the SDKs accept decimal seconds)."""
    if decimals and seconds != int(seconds):
        return round(seconds, 3)
    return float(whole_seconds(seconds))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.3f}".rstrip("0").rstrip(".")


def header_hint(
    form: str,
    seconds: float,
    *,
    decimals: bool = False,
    name: str = "retry-after",
    now: float | None = None,
) -> tuple[dict[str, str], RetryHint]:
    """Headers carrying ``seconds`` in one of the header-borne forms (``seconds``, ``ms``, ``http_date``,
    ``amz_ms``), and what they mean. ``name`` is the ``retry-after`` header's spelling on this wire."""
    now = time.time() if now is None else now
    if form == "seconds":
        value = seconds_value(seconds, decimals=decimals)
        return {name: _number(value)}, RetryHint(form, value)
    if form == "ms":
        ms = round(seconds * 1000)
        return {name: str(whole_seconds(seconds)), "retry-after-ms": str(ms)}, RetryHint(form, ms / 1000)
    if form == "http_date":
        deadline = deadline_after(seconds, now)
        return {name: http_date(deadline)}, RetryHint(form, deadline - now, deadline)
    if form == "amz_ms":
        ms = round(seconds * 1000)
        return {"x-amz-retry-after": str(ms)}, RetryHint(form, ms / 1000)
    raise ValueError(f"{form!r} is not a header-borne retry-hint form")
