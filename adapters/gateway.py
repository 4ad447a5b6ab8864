"""The gateway: the one place that decides retries, fallbacks and telemetry around the adapters.

Adapters only map; a caller talks to the gateway. Policy, per provider, comes from the registry:

* Retries (tenacity): exponential backoff with full jitter, ``uniform(0, min(max_backoff, initial * 2**n))``
  for the n-th retry, or ``min(retry_after, retry_after_cap)`` when the error carries a server hint; at most
  ``retry.max_attempts`` attempts; an error with ``retryable=False`` is never retried. ``sleep`` and ``rng``
  are injected so tests and the certification suite check the exact delays without waiting.
* Streams are retried only while nothing but ``Start`` was produced. The gateway holds the ``Start`` event
  back until the first content event (or ``End``) arrives, so the caller sees exactly one ``Start``, the one
  of the attempt that served. Once a delta has been yielded, a failure is raised at once with
  ``output_delivered=True``: retrying would duplicate text the caller already has.
* Fallback: the primary's ``fallback`` providers are tried in order, each with its own retry policy and
  rollout, when the primary is excluded by its rollout (disabled, 0 %, not a canary tenant, outside the
  percentage bucket), when its retries of a retryable error are exhausted, or when it fails in a way that is
  about the provider's service rather than the request or our setup (quota, permission, unsupported, invalid
  response). Caller errors (bad_request, context_length, content_filter, not_found) are raised as is: another
  provider would reject the same request, or (content filter) routing around a safety decision is not the
  gateway's call. Neither is ``auth``: a rejected key is our misconfiguration, and serving from the fallback
  would hide it while spending another provider's budget. Never after stream output reached the caller.
* Telemetry: one span per call (see :mod:`adapters.telemetry`); every attempt and computed delay is also kept
  in :attr:`Gateway.last_attempts` and passed to ``on_attempt`` so checks can verify the backoff.

Only :class:`ProviderError` leaves the gateway: anything else an adapter raises becomes ``invalid_response``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from opentelemetry.trace import TracerProvider, use_span
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from adapters.base import Adapter
from adapters.errors import RETRYABLE_KINDS, ErrorKind, ProviderError
from adapters.pricing import cost_for
from adapters.registry import ProviderEntry, Registry, RetryPolicy, UnknownProviderError
from adapters.telemetry import AttemptInfo, CallSpan, GatewayTelemetry, retry_count
from adapters.types import ChatRequest, ChatResponse, Cost, End, Start, StreamEvent, TextDelta, ToolCallDelta

T = TypeVar("T")

#: The gateway's own deadlines are the adapter's timeouts times this margin: a safety net so that an
#: adapter which fails to enforce its timeouts still cannot hang a call, without racing the adapter's own
#: timeout errors.
SAFETY_MARGIN = 1.5

AdapterFactory = Callable[[ProviderEntry], Adapter]
Sleep = Callable[[float], Awaitable[None]]

#: Error kinds after which the next provider in the fallback chain is tried (retryable ones only once
#: exhausted).
DEFAULT_FALLBACK_KINDS: frozenset[ErrorKind] = RETRYABLE_KINDS | {
    ErrorKind.QUOTA_EXHAUSTED,
    ErrorKind.PERMISSION,
    ErrorKind.UNSUPPORTED,
    ErrorKind.INVALID_RESPONSE,
}


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt: ``delay`` is the wait computed before the next attempt (None when there was none)."""

    provider_id: str
    attempt: int
    error_kind: str | None
    delay: float | None = None
    retry_after: float | None = None


@dataclass
class CallRecord:
    """What happened in one gateway call, for checks and debugging."""

    requested: str
    stream: bool
    attempts: list[AttemptRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    served_by: str | None = None
    fallback_from: str | None = None
    cost: Cost | None = None
    error: ProviderError | None = None


class Gateway:
    """Calls providers through their adapters with the registry's retry, rollout and fallback policy."""

    def __init__(
        self,
        registry: Registry,
        adapters: Mapping[str, Adapter] | AdapterFactory,
        *,
        tracer_provider: TracerProvider | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.perf_counter,
        on_attempt: Callable[[AttemptRecord], None] | None = None,
        fallback_on: frozenset[ErrorKind] = DEFAULT_FALLBACK_KINDS,
    ) -> None:
        self.registry = registry
        self._adapters: dict[str, Adapter] = dict(adapters) if isinstance(adapters, Mapping) else {}
        self._factory: AdapterFactory | None = None if isinstance(adapters, Mapping) else adapters
        self._owned: list[Adapter] = []
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._telemetry = GatewayTelemetry(tracer_provider, clock=clock)
        self._on_attempt = on_attempt
        self.fallback_on = fallback_on
        #: the attempts of the most recent call (replaced when a call starts); see also :attr:`last_call`
        self.last_attempts: list[AttemptRecord] = []
        self.last_call: CallRecord | None = None

    async def aclose(self) -> None:
        """Close the adapters this gateway built through its factory (injected ones belong to the caller)."""
        for adapter in self._owned:
            await adapter.aclose()
        self._owned.clear()

    # ----- public calls -----

    async def complete(self, provider_id: str, request: ChatRequest) -> ChatResponse:
        call = self._new_call(provider_id, stream=False)
        span = self._telemetry.start(request, provider_id=provider_id, stream=False)
        try:
            with use_span(
                span.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                entries = self._plan(provider_id, request, call)
                last_error: ProviderError | None = None
                for entry in entries:
                    served = self._request_for(entry, request)
                    try:
                        adapter = self._adapter(entry)
                        self._serving(call, span, entry, adapter)
                        t = adapter.timeouts
                        response = await self._with_retries(
                            entry,
                            call,
                            span,
                            partial(adapter.complete, served),
                            (t.connect + t.read) * SAFETY_MARGIN,
                        )
                    except ProviderError as err:
                        last_error = err
                        if self._falls_back(err):
                            continue
                        raise
                    cost = cost_for(entry, served.model, response.usage)
                    call.cost = cost
                    span.succeed(
                        model=response.model or request.model,
                        usage=response.usage,
                        request_id=response.request_id,
                        finish_reason=response.finish_reason,
                        cost=cost,
                        **self._counts(call),
                    )
                    return response
                raise last_error or self._nothing_to_try(provider_id, call)
        except ProviderError as err:
            self._failed(call, span, err)
            raise
        except BaseException:
            span.cancel(**self._counts(call))
            raise

    async def stream(self, provider_id: str, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        call = self._new_call(provider_id, stream=True)
        span = self._telemetry.start(request, provider_id=provider_id, stream=True)
        try:
            entries = self._plan(provider_id, request, call)
            last_error: ProviderError | None = None
            for entry in entries:
                served = self._request_for(entry, request)
                try:
                    adapter = self._adapter(entry)
                    self._serving(call, span, entry, adapter)
                    t = adapter.timeouts
                    events, head = await self._with_retries(
                        entry,
                        call,
                        span,
                        partial(self._open_stream, adapter, served),
                        (t.connect + t.read + t.stream_idle) * SAFETY_MARGIN,
                    )
                except ProviderError as err:
                    last_error = err
                    if self._falls_back(err):
                        continue
                    raise
                idle = adapter.timeouts.stream_idle * SAFETY_MARGIN
                delivery_gen = self._deliver(entry, served, call, span, events, head, idle)
                async with aclosing(delivery_gen) as delivery:
                    async for event in delivery:
                        yield event
                return
            raise last_error or self._nothing_to_try(provider_id, call)
        except ProviderError as err:
            self._failed(call, span, err)
            raise
        except BaseException:
            span.cancel(**self._counts(call))
            raise

    # ----- planning and fallback -----

    def _new_call(self, provider_id: str, *, stream: bool) -> CallRecord:
        call = CallRecord(requested=provider_id, stream=stream)
        self.last_call = call
        self.last_attempts = call.attempts
        return call

    def _plan(self, provider_id: str, request: ChatRequest, call: CallRecord) -> list[ProviderEntry]:
        """The primary and its fallbacks, in order, minus those the rollout excludes for this request."""
        try:
            primary = self.registry.get(provider_id)
        except UnknownProviderError as exc:
            raise ProviderError(
                ErrorKind.BAD_REQUEST, str(exc), provider_id=provider_id, retryable=False
            ) from None
        meta = request.metadata
        chain = [primary] + [self.registry.get(pid) for pid in primary.fallback if pid in self.registry]
        admitted: list[ProviderEntry] = []
        for entry in chain:
            if any(e.provider_id == entry.provider_id for e in admitted):
                continue
            if entry.rollout.admits(
                entry.provider_id, tenant_id=meta.tenant_id, key=meta.tenant_id or meta.trace_id
            ):
                admitted.append(entry)
            else:
                call.skipped.append((entry.provider_id, f"rollout {entry.rollout.status}"))
        return admitted

    @staticmethod
    def _request_for(entry: ProviderEntry, request: ChatRequest) -> ChatRequest:
        """The request as ``entry`` can serve it: a fallback that does not register the requested model serves
        with its own default (first registered) model, since another provider's model name means nothing to it."""
        if not entry.models or request.model in entry.model_ids:
            return request
        return request.model_copy(update={"model": entry.models[0].id})

    def _nothing_to_try(self, provider_id: str, call: CallRecord) -> ProviderError:
        why = "; ".join(f"{pid}: {reason}" for pid, reason in call.skipped) or "no provider"
        return ProviderError(
            ErrorKind.UNSUPPORTED,
            f"no provider available for this request ({why}) and no usable fallback",
            provider_id=provider_id,
            retryable=False,
        )

    def _falls_back(self, err: ProviderError) -> bool:
        return not err.output_delivered and err.kind in self.fallback_on

    def _adapter(self, entry: ProviderEntry) -> Adapter:
        adapter = self._adapters.get(entry.provider_id)
        if adapter is not None:
            return adapter
        if self._factory is None:
            raise ProviderError(
                ErrorKind.UNSUPPORTED,
                f"no adapter configured for provider {entry.provider_id!r}",
                provider_id=entry.provider_id,
                retryable=False,
            )
        try:
            adapter = self._factory(entry)
        except Exception as exc:
            raise ProviderError(
                ErrorKind.UNSUPPORTED,
                f"cannot build the adapter for {entry.provider_id!r}: {type(exc).__name__}: {exc}",
                provider_id=entry.provider_id,
                retryable=False,
                cause=exc,
            ) from None
        self._adapters[entry.provider_id] = adapter
        self._owned.append(adapter)
        return adapter

    def _serving(self, call: CallRecord, span: CallSpan, entry: ProviderEntry, adapter: Adapter) -> None:
        call.served_by = entry.provider_id
        call.fallback_from = call.requested if entry.provider_id != call.requested else None
        span.served_by(
            provider_id=entry.provider_id,
            name=entry.genai_provider_name,
            base_url=getattr(adapter, "base_url", entry.base_url),
            fallback_from=call.fallback_from,
        )

    def _failed(self, call: CallRecord, span: CallSpan, err: ProviderError) -> None:
        call.error = err
        span.fail(err, **self._counts(call))

    @staticmethod
    def _counts(call: CallRecord) -> dict[str, int]:
        providers = [a.provider_id for a in call.attempts]
        return {"attempts": len(providers), "retry_count": retry_count(providers)}

    # ----- retries -----

    async def _with_retries(
        self,
        entry: ProviderEntry,
        call: CallRecord,
        span: CallSpan,
        attempt: Callable[[], Awaitable[T]],
        limit: float,
    ) -> T:
        """Run ``attempt`` under the entry's retry policy, recording each attempt and each computed delay."""
        pid = entry.provider_id
        first = len(call.attempts)

        async def one() -> T:
            number = len(call.attempts) - first + 1
            try:
                result = await _bounded(attempt(), limit, pid, "no response")
            except ProviderError as err:
                if not err.provider_id:
                    err.provider_id = pid
                call.attempts.append(AttemptRecord(pid, number, err.kind.value, retry_after=err.retry_after))
                raise
            except Exception as exc:
                wrapped = _wrap(exc, pid)
                call.attempts.append(AttemptRecord(pid, number, wrapped.kind.value))
                raise wrapped from exc
            call.attempts.append(AttemptRecord(pid, number, None))
            return result

        def wait(state: RetryCallState) -> float:
            # tenacity computes the wait before checking stop; no delay is recorded for the last attempt
            if state.attempt_number >= entry.retry.max_attempts:
                return 0.0
            delay = self.backoff_delay(entry.retry, state.attempt_number, _error_of(state))
            call.attempts[-1] = replace(call.attempts[-1], delay=delay)
            self._emit(span, call.attempts[-1])
            return delay

        retrying = AsyncRetrying(
            stop=stop_after_attempt(entry.retry.max_attempts),
            wait=wait,
            retry=retry_if_exception(_should_retry),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return await retrying(one)
        finally:
            if len(call.attempts) > first:
                self._emit(span, call.attempts[-1])

    def backoff_delay(self, policy: RetryPolicy, attempt_number: int, error: ProviderError | None) -> float:
        """Seconds to wait after failed attempt ``attempt_number`` (1-based).

        A server's ``retry_after`` wins, capped at ``retry_after_cap``; otherwise full jitter over the
        exponential ceiling ``min(max_backoff, initial_backoff * 2**(attempt_number - 1))``.
        """
        if error is not None and error.retry_after is not None:
            return max(0.0, min(error.retry_after, policy.retry_after_cap))
        ceiling = min(policy.max_backoff, policy.initial_backoff * 2 ** (attempt_number - 1))
        return self._rng.uniform(0, ceiling)

    def _emit(self, span: CallSpan, record: AttemptRecord) -> None:
        span.attempt(
            AttemptInfo(
                record.provider_id, record.attempt, record.error_kind, record.delay, record.retry_after
            )
        )
        if self._on_attempt is not None:
            self._on_attempt(record)

    # ----- streams -----

    async def _open_stream(
        self, adapter: Adapter, request: ChatRequest
    ) -> tuple[AsyncIterator[StreamEvent], list[StreamEvent]]:
        """Start a stream and read up to its first event other than Start: the part that is safe to retry."""
        events = adapter.stream(request)
        head: list[StreamEvent] = []
        try:
            async for event in events:
                head.append(event)
                if not isinstance(event, Start):
                    return events, head
        except BaseException:
            await _aclose(events)
            raise
        await _aclose(events)
        raise ProviderError(
            ErrorKind.STREAM_INTERRUPTED,
            "stream ended before any content or End event",
            provider_id=adapter.provider_id,
        )

    async def _deliver(
        self,
        entry: ProviderEntry,
        request: ChatRequest,
        call: CallRecord,
        span: CallSpan,
        events: AsyncIterator[StreamEvent],
        head: list[StreamEvent],
        idle: float,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yield the held-back head and the rest of the stream; failures from here on are never retried."""
        state = _Delivery()
        try:
            for event in head:
                self._observe(state, entry, request, call, span, event)
                yield event
                if state.ended:
                    return
            while True:
                try:
                    event = await _bounded(anext(events), idle, entry.provider_id, "no stream event")
                except StopAsyncIteration:
                    break
                self._observe(state, entry, request, call, span, event)
                yield event
                if state.ended:
                    return
            raise ProviderError(
                ErrorKind.STREAM_INTERRUPTED,
                "stream ended without an End event",
                provider_id=entry.provider_id,
                request_id=state.request_id,
                partial_text="".join(state.text),
            )
        except ProviderError as err:
            err.output_delivered = err.output_delivered or state.delivered
            if not err.provider_id:
                err.provider_id = entry.provider_id
            if not err.partial_text and state.text:
                err.partial_text = "".join(state.text)
            raise
        except Exception as exc:
            wrapped = _wrap(exc, entry.provider_id)
            wrapped.output_delivered = state.delivered
            wrapped.partial_text = "".join(state.text)
            raise wrapped from exc
        finally:
            await _aclose(events)

    def _observe(
        self,
        state: _Delivery,
        entry: ProviderEntry,
        request: ChatRequest,
        call: CallRecord,
        span: CallSpan,
        event: StreamEvent,
    ) -> None:
        """Track what is about to reach the caller; the span is finished before End is yielded, so a caller
        that stops right after End still records a success.
        """
        if isinstance(event, Start):
            state.request_id = event.request_id
            state.model = event.model
        elif isinstance(event, (TextDelta, ToolCallDelta)):
            span.first_token()
            state.delivered = True
            if isinstance(event, TextDelta):
                state.text.append(event.text)
        elif isinstance(event, End):
            state.ended = True
            call.cost = cost_for(entry, request.model, event.usage)
            span.succeed(
                model=state.model or request.model,
                usage=event.usage,
                request_id=event.request_id or state.request_id,
                finish_reason=event.finish_reason,
                cost=call.cost,
                **self._counts(call),
            )


@dataclass
class _Delivery:
    delivered: bool = False
    ended: bool = False
    request_id: str | None = None
    model: str | None = None
    text: list[str] = field(default_factory=list)


async def _bounded(awaitable: Awaitable[T], limit: float, provider_id: str, what: str) -> T:
    """Await with the gateway's safety-net deadline, in case an adapter does not enforce its own timeouts."""
    try:
        async with asyncio.timeout(limit) as deadline:
            return await awaitable
    except TimeoutError:
        if not deadline.expired():
            raise
        raise ProviderError(
            ErrorKind.TIMEOUT,
            f"{what} within {limit:g}s (gateway safety net over the adapter's timeouts)",
            provider_id=provider_id,
        ) from None


def _should_retry(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable and not exc.output_delivered


def _error_of(state: RetryCallState) -> ProviderError | None:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None and outcome.failed else None
    return exc if isinstance(exc, ProviderError) else None


def _wrap(exc: BaseException, provider_id: str) -> ProviderError:
    return ProviderError(
        ErrorKind.INVALID_RESPONSE,
        f"adapter raised {type(exc).__name__}: {exc}",
        provider_id=provider_id,
        retryable=False,
        cause=exc,
    )


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
