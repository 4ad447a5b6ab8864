"""The OpenRouter adapter on real recorded OpenRouter traffic (../shared/real-cassettes): the three upstream 429s,
a streamed reasoning answer with ``: OPENROUTER PROCESSING`` keep-alives, and a tool call. Expectations are read from
the recordings here, independently of the adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.errors import ErrorKind, ProviderError
from adapters.openrouter import OpenRouterAdapter
from adapters.registry import load_registry
from adapters.types import ChatRequest, End, Message, TextDelta
from harness.real_cassettes import Interaction, load, recordings, replay_transport

CHAT = recordings("OpenRouter", r"^/api/v1/chat/completions$")
FILES = [r.path for r in CHAT]


def test_the_chat_recordings_cover_completions_streams_and_errors() -> None:
    """A guard against a selection that matches nothing."""
    assert any(r.stream == "yes" for r in CHAT) and any(r.stream == "no" for r in CHAT)
    assert any(status >= 400 for r in CHAT for status in r.statuses)


def _request(recorded: Interaction) -> ChatRequest:
    body = recorded.request_json() or {}
    messages = tuple(
        Message(role=m["role"], content=m["content"] if isinstance(m.get("content"), str) else "")
        for m in body.get("messages", [])
    ) or (Message(role="user", content="hi"),)
    return ChatRequest(model=body.get("model", "openai/gpt-4o-mini"), messages=messages)


def _expected_stream(body: bytes) -> tuple[str, dict[str, Any] | None, str | None, str | None, int]:
    text, usage, finish, gen_id, comments = "", None, None, None, 0
    for line in body.decode().splitlines():
        if line.startswith(":"):
            comments += 1
            continue
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        chunk = json.loads(line[5:])
        gen_id = chunk.get("id") or gen_id
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            text += (choice.get("delta") or {}).get("content") or ""
            finish = choice.get("finish_reason") or finish
    return text, usage, finish, gen_id, comments


async def _adapter(recorded: list[Interaction]) -> tuple[OpenRouterAdapter, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=replay_transport(recorded))

    class Key:
        async def resolve(self, ref: str) -> str:
            return "sk-or-v1-test-replay"

    entry = load_registry().get("openrouter")
    adapter = OpenRouterAdapter(entry, http_client=client, credentials=Key())  # type: ignore[arg-type]
    return adapter, client


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_adapter_reads_real_recording(path: Path) -> None:
    interactions = load(path)
    adapter, client = await _adapter(interactions)
    try:
        for recorded in interactions:
            request = _request(recorded)
            header_id = recorded.response_headers.get("x-generation-id")
            if recorded.status != 200:
                with pytest.raises(ProviderError) as info:
                    await adapter.complete(request)
                error = recorded.response_json()["error"]
                assert error["code"] == recorded.status == 429
                assert info.value.kind == ErrorKind.RATE_LIMITED and info.value.retryable
                assert info.value.status == recorded.status
                assert info.value.message == error["message"]
                assert info.value.provider_code == str(error["code"])
                assert info.value.request_id == header_id
            elif recorded.is_stream:
                events = [e async for e in adapter.stream(request)]
                text, usage, finish, gen_id, comments = _expected_stream(recorded.response_body)
                assert comments > 0, "this recording carries OPENROUTER PROCESSING keep-alives"
                assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text != ""
                end = events[-1]
                assert isinstance(end, End) and end.raw_finish_reason == finish
                assert usage is not None
                assert (end.usage.input_tokens, end.usage.output_tokens, end.usage.total_tokens) == (
                    usage["prompt_tokens"],
                    usage["completion_tokens"],
                    usage["total_tokens"],
                )
                assert end.usage.cached_tokens == usage["prompt_tokens_details"]["cached_tokens"]
                assert end.usage.reasoning_tokens == usage["completion_tokens_details"]["reasoning_tokens"]
                assert end.usage.source == "reported"
                # x-* headers were dropped at record time: the chunks' generation id stands in for the header
                assert end.request_id == (header_id or gen_id) is not None
            else:
                response = await adapter.complete(request)
                body = recorded.response_json()
                message = body["choices"][0]["message"]
                assert response.text == (message.get("content") or "")
                assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
                    (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                    for c in message.get("tool_calls") or []
                ]
                assert response.raw_finish_reason == body["choices"][0]["finish_reason"]
                assert response.usage.input_tokens == body["usage"]["prompt_tokens"]
                assert response.usage.output_tokens == body["usage"]["completion_tokens"]
                assert response.request_id == (header_id or body["id"])
                assert response.model == body["model"]
    finally:
        await adapter.aclose()
        await client.aclose()
