"""The total deadline (``timeouts.total``) bounds a whole adapter call, and hostile values are refused by name.

No real long waits: the registry entry sets a tiny total and an httpx.MockTransport trickles headers, body bytes or
empty stream deltas for far longer; the adapter alone (no gateway) must give up with ``timeout`` near the deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
from conftest import entry_data, make_registry
from fuzz_support import SEEDS, FakeKey, call, chat_request, dumps, mutate, render_stream

from adapters.base import DEFAULT_TOTAL_TIMEOUT
from adapters.errors import ErrorKind, ProviderError
from adapters.openai import OpenAIAdapter
from adapters.registry import RegistryError
from adapters.types import ChatRequest, ChatResponse, End, Start, StreamEvent, TextDelta, Usage

TOTAL = 0.4
#: scheduling slack on a shared, loaded machine; far below every other bound in play (30 s idle, 10 s hang guard)
SLACK = 5.0
#: a stream idle bound far above the total: only the total deadline can end these calls in time
SLOW = {"connect": 5, "read": 30, "stream_idle": 30, "total": TOTAL}


def adapter_with(handler: Any, timeouts: dict[str, float] = SLOW) -> OpenAIAdapter:
    entry = make_registry(entry_data(timeouts=timeouts)).get("acme")
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAIAdapter(entry, http_client=client, credentials=FakeKey("acme"))  # type: ignore[arg-type]


def test_the_registry_carries_the_total_deadline_and_documents_its_default() -> None:
    configured = make_registry(entry_data(timeouts=SLOW)).get("acme")
    assert configured.timeouts.as_timeouts().total == TOTAL
    omitted = make_registry(entry_data()).get("acme")
    assert omitted.timeouts.as_timeouts().total == DEFAULT_TOTAL_TIMEOUT
    with pytest.raises((RegistryError, jsonschema.ValidationError, ValueError)) as info:
        make_registry(entry_data(timeouts={**SLOW, "total": 0}))
    assert "total" in str(info.value)


async def _answer_late(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(30)
    return httpx.Response(200, json={})


async def _trickle(chunks: list[bytes], every: float) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(every)
        yield chunk


async def _timed(coro: Any) -> tuple[ProviderError, float]:
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(coro, 10)
    return info.value, time.monotonic() - started


async def test_trickled_headers_end_at_the_total_deadline() -> None:
    adapter = adapter_with(_answer_late)
    err, elapsed = await _timed(adapter.complete(chat_request()))
    assert err.kind is ErrorKind.TIMEOUT and "total deadline" in err.message
    assert TOTAL <= elapsed < TOTAL + SLACK, elapsed


async def test_a_trickled_body_ends_at_the_total_deadline() -> None:
    body = json.dumps(SEEDS["openai"].body).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        chunks = [body[i : i + 1] for i in range(len(body))]
        return httpx.Response(
            200, headers={"content-type": "application/json"}, content=_trickle(chunks, 0.05)
        )

    adapter = adapter_with(handler)
    err, elapsed = await _timed(adapter.complete(chat_request()))
    assert err.kind is ErrorKind.TIMEOUT
    assert TOTAL <= elapsed < TOTAL + SLACK, elapsed


async def test_an_endless_run_of_empty_deltas_ends_at_the_total_deadline_keeping_the_partial_text() -> None:
    def chunk(content: str) -> bytes:
        frame = {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": content}}],
        }
        return f"data: {json.dumps(frame)}\n\n".encode()

    def handler(request: httpx.Request) -> httpx.Response:
        chunks = [chunk("Hi")] + [chunk("")] * 100_000
        headers = {"content-type": "text/event-stream", "x-request-id": "req-trickle"}
        return httpx.Response(200, headers=headers, content=_trickle(chunks, 0.01))

    adapter = adapter_with(handler)
    events: list[Any] = []

    async def consume() -> None:
        async for event in adapter.stream(chat_request()):
            events.append(event)

    err, elapsed = await _timed(consume())
    assert err.kind is ErrorKind.TIMEOUT and "total deadline" in err.message, repr(err)
    assert TOTAL <= elapsed < TOTAL + SLACK, elapsed
    assert isinstance(events[0], Start) and [e.text for e in events if isinstance(e, TextDelta)] == ["Hi"]
    assert not any(isinstance(e, End) for e in events)
    assert err.partial_text == "Hi" and err.request_id == "req-trickle"


async def test_a_call_within_the_deadline_is_untouched() -> None:
    seed = SEEDS["openai"]
    content, _ = render_stream(seed, seed.frames)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)

    adapter = adapter_with(handler)
    events = [event async for event in adapter.stream(chat_request())]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello"


#: where each wire keeps its input-token count, in the whole body
INPUT_COUNT = {
    "openai": ("usage", "prompt_tokens"),
    "azure-openai": ("usage", "prompt_tokens"),
    "mistral": ("usage", "prompt_tokens"),
    "openrouter": ("usage", "prompt_tokens"),
    "anthropic": ("usage", "input_tokens"),
    "gemini": ("usageMetadata", "candidatesTokenCount"),
    "ollama": ("eval_count",),
    "bedrock": ("usage", "inputTokens"),
}


@pytest.mark.parametrize("bad", ["12", True, -3, 2.5, float("inf"), [1]], ids=repr)
@pytest.mark.parametrize("provider", sorted(INPUT_COUNT))
async def test_a_count_that_is_not_a_count_is_invalid_response(provider: str, bad: Any) -> None:
    """Never coerced (``True`` as 1, ``"12"`` as 12, ``2.5`` as 2) nor billed negative: refused, naming the field."""
    seed = SEEDS[provider]
    path = INPUT_COUNT[provider]
    outcome = await call(seed, dumps(mutate(seed.body, path, bad)).encode(), stream=False)
    assert outcome.error is not None, f"{provider} accepted {bad!r} as a count: {outcome.response!r}"
    assert outcome.error.kind is ErrorKind.INVALID_RESPONSE
    assert str(path[-1]) in outcome.error.message


@pytest.mark.parametrize("provider", ["openai", "azure-openai", "openrouter", "mistral"])
async def test_list_of_parts_content_reads_as_its_text(provider: str) -> None:
    seed = SEEDS[provider]
    parts = [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]
    body = mutate(seed.body, ("choices", 0, "message", "content"), parts)
    outcome = await call(seed, dumps(body).encode(), stream=False)
    assert outcome.error is None and outcome.response is not None
    assert outcome.response.text == "Hello"
    frames = list(seed.frames)
    name, payload = frames[1]
    frames[1] = (name, mutate(payload, ("choices", 0, "delta", "content"), [{"type": "text", "text": "Hel"}]))
    content, _ = render_stream(seed, frames)
    streamed = await call(seed, content, stream=True)
    assert streamed.error is None
    assert "".join(e.text for e in streamed.events if isinstance(e, TextDelta)) == "Hello"


async def test_deep_nesting_is_invalid_response() -> None:
    seed = SEEDS["openai"]
    body = dumps(seed.body).replace('"Hello"', "[" * 5000 + "]" * 5000).encode()
    outcome = await call(seed, body, stream=False)
    assert outcome.error is not None and outcome.error.kind is ErrorKind.INVALID_RESPONSE


async def test_a_bedrock_stream_cut_inside_its_metadata_frame_is_interrupted() -> None:
    seed = SEEDS["bedrock"]
    content, metadata_at = render_stream(seed, seed.frames)
    for cut in (metadata_at, metadata_at + 1, (metadata_at + len(content)) // 2, len(content) - 1):
        outcome = await call(seed, content[:cut], stream=True)
        assert outcome.error is not None, f"cut at {cut} of {len(content)} succeeded"
        assert outcome.error.kind is ErrorKind.STREAM_INTERRUPTED
        assert outcome.error.partial_text == "Hello"
    whole = await call(seed, content, stream=True)
    assert whole.error is None and whole.events[-1].usage.source == "reported"


class _BuggyAdapter(OpenAIAdapter):
    """A third-party adapter with parser bugs: subclassing Adapter alone puts it under the call guard."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if request.max_tokens == 1:
            return ChatResponse(
                text="x",
                finish_reason="stop",
                usage=Usage(input_tokens=-1, output_tokens=1, total_tokens=0),
                request_id="req-neg",
                model=request.model,
                provider_id=self.provider_id,
            )
        raise KeyError("choices")

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        yield Start(provider_id=self.provider_id, model=request.model, request_id="req-buggy")
        yield TextDelta(text="par")
        raise TypeError("unhashable type: 'list'")


def _buggy() -> _BuggyAdapter:
    entry = make_registry(entry_data()).get("acme")
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    return _BuggyAdapter(entry, http_client=client, credentials=FakeKey("acme"))  # type: ignore[arg-type]


async def test_a_parser_bug_in_complete_is_invalid_response_with_its_cause() -> None:
    with pytest.raises(ProviderError) as info:
        await _buggy().complete(chat_request())
    assert info.value.kind is ErrorKind.INVALID_RESPONSE and info.value.provider_id == "acme"
    assert isinstance(info.value.__cause__, KeyError) and "KeyError" in info.value.message


async def test_negative_counts_never_leave_the_adapter() -> None:
    with pytest.raises(ProviderError) as info:
        await _buggy().complete(chat_request().model_copy(update={"max_tokens": 1}))
    assert info.value.kind is ErrorKind.INVALID_RESPONSE and "input_tokens" in info.value.message
    assert info.value.request_id == "req-neg"


async def test_a_parser_bug_mid_stream_keeps_the_request_id_and_partial_text() -> None:
    events: list[Any] = []
    with pytest.raises(ProviderError) as info:
        async for event in _buggy().stream(chat_request()):
            events.append(event)
    assert [type(e) for e in events] == [Start, TextDelta]
    err = info.value
    assert err.kind is ErrorKind.INVALID_RESPONSE and isinstance(err.__cause__, TypeError)
    assert err.partial_text == "par" and err.request_id == "req-buggy"


#: where each wire names the tool of its first call, in the whole body
TOOL_NAME = {
    "openai": ("choices", 0, "message", "tool_calls", 0, "function", "name"),
    "anthropic": ("content", 1, "name"),
    "gemini": ("candidates", 0, "content", "parts", 1, "functionCall", "name"),
    "ollama": ("message", "tool_calls", 0, "function", "name"),
    "bedrock": ("output", "message", "content", 1, "toolUse", "name"),
}


@pytest.mark.parametrize("bad", [{"n": 1}, ["get_weather"], 7], ids=repr)
@pytest.mark.parametrize("provider", sorted(TOOL_NAME))
async def test_a_tool_name_that_is_not_a_string_is_refused_not_stringified(provider: str, bad: Any) -> None:
    seed = SEEDS[provider]
    outcome = await call(seed, dumps(mutate(seed.body, TOOL_NAME[provider], bad)).encode(), stream=False)
    assert outcome.error is not None, f"{provider} reported tool calls {outcome.response!r}"
    assert outcome.error.kind is ErrorKind.INVALID_RESPONSE
