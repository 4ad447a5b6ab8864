"""Seeds and mutations for the adapter fuzz tests (tests/adapters/test_fuzz_adapters.py, bench/ for heavy runs).

Each seed is a realistic success for one wire: a whole body and a stream as (event name, JSON payload) frames, with the
text the adapter must report for it. Mutations put a hostile value (wrong type, list-of-parts content, non-numeric,
negative or huge counts, NaN/Infinity, nesting deeper than any parser's recursion limit) at one JSON path, or delete
the key there; streams are also cut at a byte. The adapter under test is called directly over an httpx.MockTransport,
so what escapes is the adapter's own doing, not the gateway's.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from adapters.base import Adapter
from adapters.errors import ErrorKind, ProviderError
from adapters.registry import Registry, load_adapter_class, load_registry
from adapters.types import ChatRequest, ChatResponse, End, Message, Start, TextDelta, ToolCallDelta, ToolSpec
from mockserver.aws_eventstream import encode_message

#: stands for a value nested deeper than Python's recursion limit; spliced in as text after json.dumps
DEEP = "\u0000deep-nesting\u0000"
DEEP_TEXT = "[" * 5000 + "]" * 5000
#: how long one fuzzed call may take before the test calls it a hang
HANG_AFTER = 10.0

PATH = tuple[str | int, ...]
Frame = tuple[str, Any]

WEATHER = ToolSpec(
    name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}
)


def chat_request() -> ChatRequest:
    return ChatRequest(
        model="m-1", messages=(Message(role="user", content="hi"),), max_tokens=64, tools=(WEATHER,)
    )


def _openai_stream() -> list[Frame]:
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "model": "m-1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            body["choices"] = []
            body["usage"] = usage
        return body

    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    return [
        ("", chunk({"role": "assistant", "content": ""})),
        ("", chunk({"content": "Hel"})),
        ("", chunk({"content": "lo"})),
        ("", chunk({"tool_calls": [call]})),
        ("", chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]})),
        ("", chunk({}, finish="stop")),
        ("", chunk({}, usage=usage)),
        ("", "[DONE]"),
    ]


OPENAI_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "m-1",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 1},
    },
}

ANTHROPIC_BODY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m-1",
    "content": [
        {"type": "text", "text": "Hello"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 2,
        "cache_creation_input_tokens": 0,
    },
}

ANTHROPIC_STREAM: list[Frame] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "m-1",
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 2},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]

GEMINI_BODY = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Hello"},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 10,
        "candidatesTokenCount": 5,
        "totalTokenCount": 16,
        "cachedContentTokenCount": 2,
        "thoughtsTokenCount": 1,
    },
    "modelVersion": "m-1",
    "responseId": "resp-1",
}

GEMINI_STREAM: list[Frame] = [
    (
        "",
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
            "responseId": "resp-1",
        },
    ),
    (
        "",
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}, "index": 0}],
            "responseId": "resp-1",
        },
    ),
    (
        "",
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
            "responseId": "resp-1",
        },
    ),
]

OLLAMA_BODY = {
    "model": "m-1",
    "created_at": "2025-01-01T00:00:00Z",
    "message": {
        "role": "assistant",
        "content": "Hello",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    },
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 10,
    "eval_count": 5,
}

OLLAMA_STREAM: list[Frame] = [
    ("", {"model": "m-1", "message": {"role": "assistant", "content": "Hel"}, "done": False}),
    ("", {"model": "m-1", "message": {"role": "assistant", "content": "lo"}, "done": False}),
    (
        "",
        {
            "model": "m-1",
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
            },
            "done": False,
        },
    ),
    (
        "",
        {
            "model": "m-1",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 10,
            "eval_count": 5,
        },
    ),
]

BEDROCK_BODY = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"text": "Hello"},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
            ],
        }
    },
    "stopReason": "end_turn",
    "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, "cacheReadInputTokens": 2},
    "metrics": {"latencyMs": 12},
}

BEDROCK_STREAM: list[Frame] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    (
        "contentBlockStart",
        {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}},
    ),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city": "Paris"}'}}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("messageStop", {"stopReason": "end_turn"}),
    (
        "metadata",
        {"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}, "metrics": {"latencyMs": 12}},
    ),
]


@dataclass(frozen=True)
class Seed:
    provider_id: str
    framing: str  # sse | anthropic-sse | ndjson | eventstream
    body: dict[str, Any]
    frames: list[Frame]
    request_id_header: str
    stream_ctype: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)


SEEDS: dict[str, Seed] = {
    "openai": Seed("openai", "sse", OPENAI_BODY, _openai_stream(), "x-request-id"),
    "azure-openai": Seed("azure-openai", "sse", OPENAI_BODY, _openai_stream(), "x-request-id"),
    "mistral": Seed("mistral", "sse", OPENAI_BODY, _openai_stream(), "mistral-correlation-id"),
    "openrouter": Seed("openrouter", "sse", OPENAI_BODY, _openai_stream(), "x-generation-id"),
    "anthropic": Seed("anthropic", "anthropic-sse", ANTHROPIC_BODY, ANTHROPIC_STREAM, "request-id"),
    "gemini": Seed("gemini", "sse", GEMINI_BODY, GEMINI_STREAM, "x-request-id"),
    "ollama": Seed("ollama", "ndjson", OLLAMA_BODY, OLLAMA_STREAM, "x-request-id", "application/x-ndjson"),
    "bedrock": Seed(
        "bedrock",
        "eventstream",
        BEDROCK_BODY,
        BEDROCK_STREAM,
        "x-amzn-requestid",
        "application/vnd.amazon.eventstream",
    ),
}


def dumps(value: Any) -> str:
    """JSON as a hostile server writes it: NaN/Infinity allowed, DEEP spliced in as real deep nesting."""
    return json.dumps(value, allow_nan=True).replace(json.dumps(DEEP), DEEP_TEXT)


def render_frame(framing: str, name: str, payload: Any) -> bytes:
    data = payload if isinstance(payload, str) and payload == "[DONE]" else dumps(payload)
    if framing == "sse":
        return f"data: {data}\n\n".encode()
    if framing == "anthropic-sse":
        return f"event: {name}\ndata: {data}\n\n".encode()
    if framing == "ndjson":
        return f"{data}\n".encode()
    headers = {":message-type": "event", ":event-type": name, ":content-type": "application/json"}
    return encode_message(headers, data.encode())


def render_stream(seed: Seed, frames: list[Frame]) -> tuple[bytes, int]:
    """The stream's bytes and the offset where its last frame (the terminator, or the metadata frame) starts."""
    parts = [render_frame(seed.framing, name, payload) for name, payload in frames]
    return b"".join(parts), sum(len(p) for p in parts[:-1])


def json_paths(value: Any, prefix: PATH = ()) -> Iterator[PATH]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_paths(item, (*prefix, index))


_DELETE = object()


def mutate(value: Any, path: PATH, new: Any) -> Any:
    """A copy of ``value`` with ``new`` at ``path`` (the key removed when ``new`` is :data:`DELETE`)."""
    if not path:
        return {} if new is _DELETE else copy.deepcopy(new)
    out = copy.deepcopy(value)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    if new is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(new)
    return out


DELETE = _DELETE


class FakeKey:
    """A fake credential of the shape each provider takes (Bedrock's SigV4 pair); never a real key."""

    def __init__(self, provider_id: str) -> None:
        self.provider_id = provider_id

    async def resolve(self, ref: str) -> str:
        if self.provider_id == "bedrock":
            return "AKIAFUZZEXAMPLE00001:fuzz/Secret+Key00000000000000000000000000"
        return "fake-fuzz-key-0000"


@functools.cache
def _registry() -> Registry:
    """Loaded once: validating the YAML against its schema costs more than a fuzzed call."""
    return load_registry()


def make_adapter(provider_id: str, transport: httpx.AsyncBaseTransport, **overrides: Any) -> Adapter:
    entry = _registry().get(provider_id)
    if overrides:
        entry = entry.model_copy(update=overrides)
    cls = load_adapter_class(entry)
    client = httpx.AsyncClient(transport=transport)
    return cls(entry, http_client=client, credentials=FakeKey(provider_id))  # type: ignore[arg-type]


def response_for(seed: Seed, *, content: bytes, stream: bool) -> httpx.Response:
    ctype = seed.stream_ctype if stream else "application/json"
    headers = {"content-type": ctype, seed.request_id_header: "req-fuzz-1", **seed.headers}
    return httpx.Response(200, headers=headers, content=content)


@dataclass
class Outcome:
    """What one call produced: a ProviderError, or a result (a response, or the stream's events)."""

    error: ProviderError | None = None
    response: ChatResponse | None = None
    events: list[Any] = field(default_factory=list)


class Harness:
    """One adapter over a MockTransport that answers every request with the current ``content`` as a 200."""

    def __init__(self, seed: Seed, *, stream: bool) -> None:
        self.seed = seed
        self.stream = stream
        self.content = b""
        self.transport = httpx.MockTransport(
            lambda request: response_for(seed, content=self.content, stream=stream)
        )
        self.adapter = make_adapter(seed.provider_id, self.transport)

    async def aclose(self) -> None:
        await self.adapter._client.aclose()

    async def call(self, content: bytes) -> Outcome:
        """One direct adapter call with ``content`` as the 200 body; a hang or any non-ProviderError fails the test
        with what happened (the adapter must never let them out)."""
        self.content = content
        pid = self.seed.provider_id
        outcome = Outcome()
        try:
            if self.stream:

                async def collect() -> None:
                    async for event in self.adapter.stream(chat_request()):
                        outcome.events.append(event)

                await asyncio.wait_for(collect(), HANG_AFTER)
            else:
                outcome.response = await asyncio.wait_for(self.adapter.complete(chat_request()), HANG_AFTER)
        except ProviderError as exc:
            outcome.error = exc
        except TimeoutError:
            raise AssertionError(f"{pid}: hang (no answer within {HANG_AFTER}s)") from None
        except Exception as exc:
            raise AssertionError(f"{pid}: raw {type(exc).__name__} escaped: {exc!r}"[:500]) from exc
        return outcome


async def call(seed: Seed, content: bytes, *, stream: bool) -> Outcome:
    """One call on a fresh harness."""
    harness = Harness(seed, stream=stream)
    try:
        return await harness.call(content)
    finally:
        await harness.aclose()


#: kinds a mangled 200 may sensibly be: the body is unreadable, or it (still) carries the provider's own verdict
MANGLED_KINDS = frozenset(
    {
        ErrorKind.INVALID_RESPONSE,
        ErrorKind.STREAM_INTERRUPTED,
        ErrorKind.SERVER_ERROR,
        ErrorKind.CONTENT_FILTER,
        ErrorKind.OVERLOADED,
        ErrorKind.BAD_REQUEST,
        ErrorKind.CONTEXT_LENGTH,
        ErrorKind.RATE_LIMITED,
    }
)


def check_usage(usage: Any, where: str) -> None:
    for name in ("input_tokens", "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"):
        value = getattr(usage, name)
        if value is None and name in ("cached_tokens", "reasoning_tokens"):
            continue
        assert type(value) is int and value >= 0, f"{where}: usage.{name} = {value!r}"
    assert usage.source in ("reported", "estimated"), where


def check_outcome(seed: Seed, outcome: Outcome, *, stream: bool) -> None:
    """Only ProviderError with a sensible kind, or a consistent result."""
    pid = seed.provider_id
    if outcome.error is not None:
        err = outcome.error
        assert err.kind in MANGLED_KINDS, f"{pid}: a mangled 200 reported as {err.kind.value}: {err}"
        assert err.provider_id == pid and isinstance(err.message, str) and isinstance(err.partial_text, str)
        if stream:
            delivered = "".join(e.text for e in outcome.events if isinstance(e, TextDelta))
            assert err.partial_text == delivered, f"{pid}: partial text {err.partial_text!r} != {delivered!r}"
        return
    if not stream:
        response = outcome.response
        assert isinstance(response, ChatResponse) and isinstance(response.text, str)
        check_usage(response.usage, pid)
        for tool in response.tool_calls:
            assert isinstance(tool.name, str) and isinstance(tool.arguments, dict), pid
        return
    events = outcome.events
    assert events and isinstance(events[0], Start) and isinstance(events[-1], End), f"{pid}: {events!r}"[:300]
    assert sum(isinstance(e, Start) for e in events) == 1 and sum(isinstance(e, End) for e in events) == 1
    for event in events[1:-1]:
        assert isinstance(event, (TextDelta, ToolCallDelta)), f"{pid}: {event!r}"
        if isinstance(event, TextDelta):
            assert isinstance(event.text, str) and event.text, f"{pid}: empty text delta"
    end = events[-1]
    assert isinstance(end, End)
    check_usage(end.usage, pid)
    for tool in end.tool_calls:
        assert isinstance(tool.name, str) and isinstance(tool.arguments, dict), pid
