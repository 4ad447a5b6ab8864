"""One OpenTelemetry span per gateway call: GenAI semantic-convention attributes plus provcert attribution.

A span covers the whole call (retries and fallbacks included) because that is what a caller waited for and
paid for; individual attempts are span events. Attribute names come from the OpenTelemetry
semantic-conventions package where one exists, so backends that understand GenAI spans render them natively;
what the conventions lack (tenant, profile, cost, retry count, outcome, time to first token) goes under
``provcert.*``. The raw user id never leaves the process: only a truncated SHA-256 of it is recorded.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as genai
from opentelemetry.semconv.attributes import error_attributes, server_attributes
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from adapters.errors import ProviderError, scrub
from adapters.types import ChatRequest, Cost, Usage

TRACER_NAME = "provcert.gateway"

# provcert attributes (no semantic-convention equivalent)
PROVCERT_TRACE_ID = "provcert.trace_id"
PROVCERT_TENANT_ID = "provcert.tenant_id"
PROVCERT_USER_ID_HASH = "provcert.user_id_hash"
PROVCERT_PROFILE_ID = "provcert.profile_id"
PROVCERT_PROVIDER_ID = "provcert.provider_id"
PROVCERT_REQUESTED_PROVIDER_ID = "provcert.requested_provider_id"
PROVCERT_COST_USD = "provcert.cost_usd"
PROVCERT_COST_PRICED = "provcert.cost_priced"
PROVCERT_COST_SOURCE = "provcert.cost_source"
PROVCERT_RETRY_COUNT = "provcert.retry_count"
PROVCERT_ATTEMPTS = "provcert.attempts"
PROVCERT_OUTCOME = "provcert.outcome"
PROVCERT_LATENCY_MS = "provcert.latency_ms"
PROVCERT_TTFT_MS = "provcert.ttft_ms"
PROVCERT_USAGE_SOURCE = "provcert.usage_source"
PROVCERT_FALLBACK_FROM = "provcert.fallback_from"
PROVCERT_STREAM = "provcert.stream"
PROVCERT_REASONING_TOKENS = "provcert.usage.reasoning_tokens"

ATTEMPT_EVENT = "provcert.attempt"


def hash_user_id(user_id: str) -> str:
    """A stable pseudonym for a user: the first 16 hex digits of SHA-256 of the id."""
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class AttemptInfo:
    """What a span event records about one attempt."""

    provider_id: str
    attempt: int
    error_kind: str | None
    delay: float | None
    retry_after: float | None


class CallSpan:
    """The span of one gateway call, ended exactly once by :meth:`succeed`, :meth:`fail` or :meth:`cancel`."""

    def __init__(self, span: Span, clock: Callable[[], float]) -> None:
        self.span = span
        self._clock = clock
        self._started = clock()
        self._ended = False
        self.ttft_ms: float | None = None

    def elapsed_ms(self) -> float:
        return (self._clock() - self._started) * 1000.0

    def attempt(self, info: AttemptInfo) -> None:
        attrs: dict[str, Any] = {PROVCERT_PROVIDER_ID: info.provider_id, "provcert.attempt": info.attempt}
        if info.error_kind is not None:
            attrs[error_attributes.ERROR_TYPE] = info.error_kind
        if info.delay is not None:
            attrs["provcert.retry_delay_s"] = info.delay
        if info.retry_after is not None:
            attrs["provcert.retry_after_s"] = info.retry_after
        self.span.add_event(ATTEMPT_EVENT, attrs)

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = self.elapsed_ms()
            self.span.set_attribute(PROVCERT_TTFT_MS, self.ttft_ms)

    def served_by(self, *, provider_id: str, name: str, base_url: str, fallback_from: str | None) -> None:
        """``name`` is the provider's ``gen_ai.provider.name`` (its registry ``telemetry_name``)."""
        parts = urlsplit(base_url)
        attrs: dict[str, Any] = {
            PROVCERT_PROVIDER_ID: provider_id,
            genai.GEN_AI_PROVIDER_NAME: name,
            genai.GEN_AI_SYSTEM: name,
        }
        if parts.hostname:
            attrs[server_attributes.SERVER_ADDRESS] = parts.hostname
        if parts.port:
            attrs[server_attributes.SERVER_PORT] = parts.port
        if fallback_from is not None:
            attrs[PROVCERT_FALLBACK_FROM] = fallback_from
        self.span.set_attributes(attrs)

    def succeed(
        self,
        *,
        model: str,
        usage: Usage,
        request_id: str | None,
        finish_reason: str,
        cost: Cost,
        attempts: int,
        retry_count: int,
    ) -> None:
        if self._ended:
            return
        attrs: dict[str, Any] = {
            genai.GEN_AI_RESPONSE_MODEL: model,
            genai.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
            genai.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
            genai.GEN_AI_RESPONSE_FINISH_REASONS: (finish_reason,),
            PROVCERT_USAGE_SOURCE: usage.source,
            PROVCERT_OUTCOME: "success",
        }
        if usage.cached_tokens is not None:
            attrs[genai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_tokens
        if usage.reasoning_tokens is not None:
            attrs[PROVCERT_REASONING_TOKENS] = usage.reasoning_tokens
        if request_id:
            attrs[genai.GEN_AI_RESPONSE_ID] = request_id
        attrs.update(cost_attributes(cost))
        self.span.set_attributes(attrs)
        self._end(attempts, retry_count)

    def fail(self, error: ProviderError, *, attempts: int, retry_count: int) -> None:
        if self._ended:
            return
        self.span.set_attributes(
            {error_attributes.ERROR_TYPE: error.kind.value, PROVCERT_OUTCOME: "error"}
            | ({genai.GEN_AI_RESPONSE_ID: error.request_id} if error.request_id else {})
        )
        # the default stacktrace would include chained causes (raw transport errors), so record a scrubbed one
        stack = scrub("".join(traceback.format_exception(error, chain=False)))
        self.span.record_exception(
            error, attributes={"exception.stacktrace": stack, "exception.message": str(error)}
        )
        self.span.set_status(Status(StatusCode.ERROR, error.kind.value))
        self._end(attempts, retry_count)

    def cancel(self, *, attempts: int, retry_count: int) -> None:
        """The caller stopped consuming (stream closed early, task cancelled): neither success nor failure."""
        if self._ended:
            return
        self.span.set_attribute(PROVCERT_OUTCOME, "cancelled")
        self._end(attempts, retry_count)

    def _end(self, attempts: int, retry_count: int) -> None:
        if self._ended:
            return
        self._ended = True
        self.span.set_attributes(
            {
                PROVCERT_ATTEMPTS: attempts,
                PROVCERT_RETRY_COUNT: retry_count,
                PROVCERT_LATENCY_MS: self.elapsed_ms(),
            }
        )
        self.span.end()


def cost_attributes(cost: Cost) -> dict[str, Any]:
    """``provcert.cost_usd`` as an exact Decimal string when priced, else ``provcert.cost_priced=false``."""
    if not cost.priced:
        return {PROVCERT_COST_PRICED: False}
    return {
        PROVCERT_COST_USD: _decimal_str(cost.total_usd),
        PROVCERT_COST_PRICED: True,
        PROVCERT_COST_SOURCE: cost.price_source or "",
    }


def _decimal_str(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def request_attributes(request: ChatRequest, *, requested_provider: str, stream: bool) -> dict[str, Any]:
    """Attributes known before any attempt: request parameters and attribution (never message content)."""
    meta = request.metadata
    attrs: dict[str, Any] = {
        genai.GEN_AI_OPERATION_NAME: "chat",
        genai.GEN_AI_REQUEST_MODEL: request.model,
        PROVCERT_REQUESTED_PROVIDER_ID: requested_provider,
        PROVCERT_PROVIDER_ID: requested_provider,
        PROVCERT_STREAM: stream,
    }
    if request.max_tokens is not None:
        attrs[genai.GEN_AI_REQUEST_MAX_TOKENS] = request.max_tokens
    if request.temperature is not None:
        attrs[genai.GEN_AI_REQUEST_TEMPERATURE] = request.temperature
    optional = {
        PROVCERT_TRACE_ID: meta.trace_id,
        PROVCERT_TENANT_ID: meta.tenant_id,
        PROVCERT_PROFILE_ID: meta.profile_id,
        PROVCERT_USER_ID_HASH: hash_user_id(meta.user_id) if meta.user_id else None,
    }
    attrs.update({k: v for k, v in optional.items() if v})
    return attrs


class GatewayTelemetry:
    """Starts call spans on the given tracer provider (default: the global one)."""

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self._clock = clock

    def start(self, request: ChatRequest, *, provider_id: str, stream: bool) -> CallSpan:
        span = self._tracer.start_span(
            f"chat {request.model}",
            kind=SpanKind.CLIENT,
            attributes=request_attributes(request, requested_provider=provider_id, stream=stream),
        )
        return CallSpan(span, self._clock)


def retry_count(attempt_providers: Sequence[str]) -> int:
    """Retries in a call: attempts beyond the first on each provider tried."""
    return len(attempt_providers) - len(set(attempt_providers))
