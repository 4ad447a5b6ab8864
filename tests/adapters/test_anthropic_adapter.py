"""Anthropic adapter details the certification suite does not reach: conversation mapping (system lifted out, tool
turns as blocks), and the error forms told apart only by ``details.error_code``, the message or ``x-should-retry``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from adapters.anthropic import AnthropicAdapter
from adapters.errors import ErrorKind, ProviderError
from adapters.registry import load_registry
from adapters.types import ChatRequest, Message, ToolCall, ToolSpec
from harness.schemas import request_schema_errors

KEY = "sk-ant-api03-unit-FAKE-0123456789"


class Key:
    async def resolve(self, ref: str) -> str:
        return KEY


def adapter_for(handler: Any) -> AnthropicAdapter:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AnthropicAdapter(load_registry().get("anthropic"), http_client=client, credentials=Key())  # type: ignore[arg-type]


CONVERSATION = ChatRequest(
    model="claude-sonnet-4-5",
    messages=(
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Paris and Rome?"),
        Message(
            role="assistant",
            content="Checking.",
            tool_calls=(
                ToolCall(id="toolu_01A", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(id="toolu_01B", name="get_weather", arguments={"city": "Rome"}),
            ),
        ),
        Message(role="tool", content="18C", tool_call_id="toolu_01A"),
        Message(role="tool", content="24C", tool_call_id="toolu_01B"),
    ),
    tools=(
        ToolSpec(
            name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}
        ),
    ),
    temperature=0.2,
)


async def test_conversation_maps_to_anthropic_turns_and_headers() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            200,
            json={
                "id": "msg_01X", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                "content": [{"type": "text", "text": "Paris 18C, Rome 24C."}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": {"input_tokens": 40, "output_tokens": 9,
                "cache_read_input_tokens": 10, "cache_creation_input_tokens": 2},
            },
            headers={"request-id": "req_011CUnit"},
        )  # fmt: skip

    adapter = adapter_for(handler)
    response = await adapter.complete(CONVERSATION)
    (request,) = sent
    assert request.url.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = json.loads(request.content)
    assert not request_schema_errors("anthropic", body)
    assert body["system"] == "Be brief." and body["max_tokens"] == 4096 and body["temperature"] == 0.2
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "24C"},
    ]
    assert body["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    # input_tokens excludes cache reads and writes; the normalized count adds them back
    assert (response.usage.input_tokens, response.usage.cached_tokens) == (52, 10)
    assert response.usage.total_tokens == 61 and response.request_id == "req_011CUnit"
    await adapter.aclose()


def error_response(status: int, error: dict[str, Any], **headers: str) -> httpx.Response:
    body = {"type": "error", "error": error, "request_id": "req_011CBody"}
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("response", "kind", "retryable"),
    [
        (error_response(429, {"type": "rate_limit_error", "message": "You have reached your specified API usage "
         "limits.", "details": {"error_code": "enforced_spend_limit_reached"}}, **{"x-should-retry": "false"}),
         ErrorKind.QUOTA_EXHAUSTED, False),
        (error_response(402, {"type": "billing_error", "message": "billing"}), ErrorKind.QUOTA_EXHAUSTED, False),
        (error_response(400, {"type": "invalid_request_error", "message": "input length and `max_tokens` exceed "
         "context limit: 198214 + 8192 > 200000"}), ErrorKind.CONTEXT_LENGTH, False),
        (error_response(413, {"type": "request_too_large", "message": "Request exceeds the maximum size"}),
         ErrorKind.BAD_REQUEST, False),
        (error_response(529, {"type": "overloaded_error", "message": "Overloaded"}), ErrorKind.OVERLOADED, True),
        (error_response(429, {"type": "rate_limit_error", "message": "slow down"}, **{"x-should-retry": "false"}),
         ErrorKind.RATE_LIMITED, False),
        (httpx.Response(502, text="<html>502 Bad Gateway</html>", headers={"content-type": "text/html"}),
         ErrorKind.SERVER_ERROR, True),
    ],
)  # fmt: skip
async def test_error_forms(response: httpx.Response, kind: ErrorKind, retryable: bool) -> None:
    adapter = adapter_for(lambda request: response)
    with pytest.raises(ProviderError) as info:
        await adapter.complete(CONVERSATION)
    assert (info.value.kind, info.value.retryable, info.value.status) == (
        kind,
        retryable,
        response.status_code,
    )
    if response.headers.get("content-type") == "application/json":
        assert info.value.request_id == "req_011CBody"  # from the body when the header is missing
    assert KEY not in repr(info.value)
    await adapter.aclose()


async def test_data_only_sse_is_not_a_complete_stream() -> None:
    """The SDK drops events without an ``event:`` line; a stream of them never reaches ``message_stop``."""
    raw = b'data: {"type":"message_start","message":{}}\n\ndata: {"type":"message_stop"}\n\n'
    adapter = adapter_for(
        lambda request: httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"})
    )
    with pytest.raises(ProviderError) as info:
        [e async for e in adapter.stream(CONVERSATION)]
    assert info.value.kind == ErrorKind.STREAM_INTERRUPTED
    await adapter.aclose()
