"""The Anthropic adapter on real recorded Anthropic traffic (../shared/real-cassettes): every file parses, and what it
reports matches what the recording says, read independently here (a small SSE reader, not the adapter's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.anthropic import AnthropicAdapter
from adapters.errors import ErrorKind, ProviderError
from adapters.registry import load_registry
from adapters.types import ChatRequest, End, Message, Start, TextDelta, ToolCallDelta
from harness.real_cassettes import Interaction, load, recordings, replay_transport
from harness.schemas import request_schema_errors

#: every indexed Messages API recording, whatever feature it shows (thinking, caching, vision, tools)
MESSAGES = recordings("Anthropic", r"^/v1/messages$")
FILES = [r.path for r in MESSAGES]
#: recorded error statuses -> the kind their status and type mean
ERROR_KINDS = {404: ErrorKind.NOT_FOUND, 400: ErrorKind.BAD_REQUEST}
FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}


def test_the_messages_recordings_cover_completions_streams_and_errors() -> None:
    """A guard against a selection that matches nothing: INDEX.md's Messages rows hold all three kinds."""
    assert any(r.stream == "yes" for r in MESSAGES) and any(r.stream == "no" for r in MESSAGES)
    assert any(status >= 400 for r in MESSAGES for status in r.statuses)


def _request(recorded: Interaction) -> ChatRequest:
    body = recorded.request_json() or {}
    messages = []
    for m in body.get("messages") or []:
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
        messages.append(Message(role=m["role"], content=content or ""))
    return ChatRequest(
        model=body.get("model", "claude-sonnet-4-5"),
        messages=tuple(messages) or (Message(role="user", content="hi"),),
        max_tokens=body.get("max_tokens"),
    )


def _sse(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, payload) pairs of a recorded stream: blocks split on blank lines, data lines joined."""
    events = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if name and data:
            events.append((name, json.loads("\n".join(data))))
    return events


def _expected_stream(body: bytes) -> dict[str, Any]:
    text, tools, blocks = "", [], {}
    start_usage: dict[str, Any] = {}
    last_usage: dict[str, Any] = {}
    stop = None
    for name, payload in _sse(body):
        if name == "message_start":
            start_usage = payload["message"]["usage"]
        elif name == "content_block_start" and payload["content_block"]["type"] == "tool_use":
            block = payload["content_block"]
            blocks[payload["index"]] = len(tools)
            tools.append({"id": block["id"], "name": block["name"], "json": ""})
        elif name == "content_block_delta":
            delta = payload["delta"]
            if delta["type"] == "text_delta":
                text += delta["text"]
            elif delta["type"] == "input_json_delta":
                tools[blocks[payload["index"]]]["json"] += delta["partial_json"]
        elif name == "message_delta":
            stop = payload["delta"]["stop_reason"]
            last_usage = payload.get("usage") or last_usage
    usage = {**start_usage, **last_usage}
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = usage["input_tokens"] + cached + (usage.get("cache_creation_input_tokens") or 0)
    return {
        "text": text,
        "tools": [(t["id"], t["name"], json.loads(t["json"] or "{}")) for t in tools],
        "stop": stop,
        "input": prompt,
        "output": last_usage["output_tokens"],
        "cached": usage.get("cache_read_input_tokens"),
    }


async def _adapter(recorded: list[Interaction]) -> tuple[AnthropicAdapter, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=replay_transport(recorded))

    class Key:
        async def resolve(self, ref: str) -> str:
            return "sk-ant-test-replay"

    entry = load_registry().get("anthropic")
    adapter = AnthropicAdapter(entry, http_client=client, credentials=Key())  # type: ignore[arg-type]
    return adapter, client


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_recorded_requests_validate_against_the_request_schema(path: Path) -> None:
    """The schema GLD-REQUEST holds the adapter to also accepts what real clients really sent."""
    for recorded in load(path):
        errors = request_schema_errors("anthropic", recorded.request_json())
        assert not errors, f"{path.name}: {errors}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_adapter_reads_real_recording(path: Path) -> None:
    interactions = [i for i in load(path) if "/v1/messages" in i.uri]
    adapter, client = await _adapter(interactions)
    try:
        for recorded in interactions:
            request = _request(recorded)
            if recorded.status != 200:
                await _check_error(adapter, request, recorded)
            elif recorded.is_stream:
                await _check_stream(adapter, request, recorded)
            else:
                await _check_message(adapter, request, recorded)
    finally:
        await adapter.aclose()
        await client.aclose()


async def _check_error(adapter: AnthropicAdapter, request: ChatRequest, recorded: Interaction) -> None:
    with pytest.raises(ProviderError) as info:
        await adapter.complete(request)
    body = recorded.response_json()
    assert info.value.kind == ERROR_KINDS[recorded.status], (info.value, body)
    assert info.value.status == recorded.status and not info.value.retryable
    assert info.value.message == body["error"]["message"]
    assert info.value.provider_code == body["error"]["type"]
    # the header was dropped at record time; the body keeps the id
    want_id = recorded.response_headers.get("request-id") or body["request_id"]
    assert info.value.request_id == want_id and want_id.startswith("req_")


async def _check_stream(adapter: AnthropicAdapter, request: ChatRequest, recorded: Interaction) -> None:
    events = [e async for e in adapter.stream(request)]
    want = _expected_stream(recorded.response_body)
    request_id = recorded.response_headers.get("request-id")
    assert isinstance(events[0], Start) and events[0].request_id == request_id
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == want["text"]
    assert all(e.text for e in events if isinstance(e, TextDelta)), "an empty delta was forwarded"
    end = events[-1]
    assert isinstance(end, End) and sum(isinstance(e, End) for e in events) == 1
    assert end.raw_finish_reason == want["stop"] and end.finish_reason == FINISH[want["stop"]]
    assert [(c.id, c.name, c.arguments) for c in end.tool_calls] == want["tools"]
    for ordinal, (_, name, arguments) in enumerate(want["tools"]):
        fragments = [e for e in events if isinstance(e, ToolCallDelta) and e.index == ordinal]
        assert fragments[0].name == name
        assert json.loads("".join(f.arguments_fragment for f in fragments) or "{}") == arguments
    assert (end.usage.input_tokens, end.usage.output_tokens) == (want["input"], want["output"])
    assert end.usage.cached_tokens == want["cached"] and end.usage.reasoning_tokens is None
    assert end.usage.source == "reported" and end.request_id == request_id


async def _check_message(adapter: AnthropicAdapter, request: ChatRequest, recorded: Interaction) -> None:
    response = await adapter.complete(request)
    body = recorded.response_json()
    blocks = body["content"]
    assert response.text == "".join(b["text"] for b in blocks if b["type"] == "text")
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        (b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"
    ]
    assert response.raw_finish_reason == body["stop_reason"]
    assert response.finish_reason == FINISH[body["stop_reason"]]
    usage = body["usage"]
    cached = usage["cache_read_input_tokens"]
    assert (
        response.usage.input_tokens == usage["input_tokens"] + cached + usage["cache_creation_input_tokens"]
    )
    assert response.usage.output_tokens == usage["output_tokens"]
    assert response.usage.cached_tokens == cached
    assert response.request_id == recorded.response_headers.get("request-id")
    assert response.model == body["model"]
