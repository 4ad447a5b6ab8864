"""The OpenAI adapter on real recorded OpenAI traffic (../shared/real-cassettes): every file parses, and what it
reports matches what the recording says, read independently here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.errors import ErrorKind, ProviderError
from adapters.openai import OpenAIAdapter
from adapters.registry import load_registry
from adapters.types import ChatRequest, End, Message, TextDelta
from harness.real_cassettes import Interaction, load, recordings, replay_transport

CHAT = recordings("OpenAI", r"^/v1/chat/completions$")
FILES = [r.path for r in CHAT]
#: recorded error files -> the kind their status and code mean
ERROR_KINDS = {404: ErrorKind.NOT_FOUND, 400: ErrorKind.BAD_REQUEST}


def test_the_chat_recordings_cover_completions_streams_and_errors() -> None:
    """A guard against a selection that matches nothing."""
    assert any(r.stream == "yes" for r in CHAT) and any(r.stream == "no" for r in CHAT)
    assert any(status >= 400 for r in CHAT for status in r.statuses)


def _request(recorded: Interaction) -> ChatRequest:
    body = recorded.request_json() or {}
    messages = tuple(
        Message(
            role=m["role"] if m["role"] in ("system", "user", "assistant", "tool") else "system",
            content=m["content"] if isinstance(m.get("content"), str) else "",
        )
        for m in body.get("messages", [{"role": "user", "content": "hi"}])
    ) or (Message(role="user", content="hi"),)
    return ChatRequest(model=body.get("model", "gpt-4o"), messages=messages)


def _expected_stream(body: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    """Text, usage and finish reason of the first choice (index 0): the normalized response is that choice, and an
    ``n > 1`` stream interleaves the other choices' chunks (#130)."""
    text, usage, finish = "", None, None
    for line in body.decode().splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        chunk = json.loads(line[5:])
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            text += (choice.get("delta") or {}).get("content") or ""
            finish = choice.get("finish_reason") or finish
    return text, usage, finish


async def _adapter(recorded: list[Interaction]) -> tuple[OpenAIAdapter, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=replay_transport(recorded))

    class Key:
        async def resolve(self, ref: str) -> str:
            return "sk-test-replay"

    adapter = OpenAIAdapter(load_registry().get("openai"), http_client=client, credentials=Key())  # type: ignore[arg-type]
    return adapter, client


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_adapter_reads_real_recording(path: Path) -> None:
    interactions = [i for i in load(path) if i.uri.endswith("/chat/completions")]
    adapter, client = await _adapter(interactions)
    try:
        for recorded in interactions:
            request = _request(recorded)
            request_id = recorded.response_headers.get("x-request-id")
            if recorded.status != 200:
                with pytest.raises(ProviderError) as info:
                    await adapter.complete(request)
                error = recorded.response_json()["error"]
                assert info.value.kind == ERROR_KINDS[recorded.status], (info.value, error)
                assert info.value.status == recorded.status and not info.value.retryable
                assert info.value.message == error["message"]
                assert info.value.request_id == request_id
            elif recorded.is_stream:
                events = [e async for e in adapter.stream(request)]
                text, usage, finish = _expected_stream(recorded.response_body)
                assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text
                end = events[-1]
                assert isinstance(end, End) and end.raw_finish_reason == finish
                if usage:
                    assert (end.usage.input_tokens, end.usage.output_tokens) == (
                        usage["prompt_tokens"],
                        usage["completion_tokens"],
                    )
                    assert end.usage.source == "reported"
                else:
                    assert end.usage.source == "estimated"
            else:
                response = await adapter.complete(request)
                body = recorded.response_json()
                message = body["choices"][0]["message"]
                assert response.text == (message.get("content") or "")
                assert [(c.name, c.arguments) for c in response.tool_calls] == [
                    (c["function"]["name"], json.loads(c["function"]["arguments"]))
                    for c in message.get("tool_calls") or []
                ]
                assert response.raw_finish_reason == body["choices"][0]["finish_reason"]
                assert response.usage.input_tokens == body["usage"]["prompt_tokens"]
                assert response.usage.output_tokens == body["usage"]["completion_tokens"]
                cached = (body["usage"].get("prompt_tokens_details") or {}).get("cached_tokens")
                assert response.usage.cached_tokens == cached
                assert response.request_id == request_id
                assert response.model == body["model"]
    finally:
        await adapter.aclose()
        await client.aclose()
