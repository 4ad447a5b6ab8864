"""The Mistral adapter on real recorded Mistral traffic (../shared/real-cassettes): every file parses, and what it
reports matches what the recording says, read independently here (content-part lists included: Magistral streams its
thinking as ``{"type": "thinking"}`` parts, which are not answer text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.mistral import MistralAdapter
from adapters.registry import load_registry
from adapters.types import ChatRequest, End, Message, TextDelta
from harness.real_cassettes import Interaction, load, recordings, replay_transport

CHAT = recordings("Mistral", r"^/v1/chat/completions$")
FILES = [r.path for r in CHAT]


def test_the_chat_recordings_cover_completions_and_a_thinking_stream() -> None:
    """A guard against a selection that matches nothing, and against losing the one stream of thinking parts."""
    assert any(r.stream == "no" for r in CHAT)
    streams = [i for r in CHAT for i in load(r.path) if i.is_stream]
    assert any(_expected_stream(i.response_body)[1] > 0 for i in streams)


def _request(recorded: Interaction) -> ChatRequest:
    body = recorded.request_json() or {}
    messages = tuple(
        Message(role=m["role"], content=m["content"] if isinstance(m.get("content"), str) else "")
        for m in body.get("messages", [])
    ) or (Message(role="user", content="hi"),)
    return ChatRequest(model=body.get("model", "mistral-small-latest"), messages=messages)


def _answer_text(content: Any) -> str:
    """The recording's answer text, read independently: strings, or the ``text`` parts of a part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if p.get("type") == "text")
    return ""


def _expected_stream(body: bytes) -> tuple[str, int, dict[str, Any] | None, str | None]:
    text, thinking_parts, usage, finish = "", 0, None, None
    for line in body.decode().splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        chunk = json.loads(line[5:])
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            text += _answer_text(content)
            if isinstance(content, list):
                thinking_parts += sum(1 for p in content if p.get("type") == "thinking")
            finish = choice.get("finish_reason") or finish
    return text, thinking_parts, usage, finish


async def _adapter(recorded: list[Interaction]) -> tuple[MistralAdapter, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=replay_transport(recorded))

    class Key:
        async def resolve(self, ref: str) -> str:
            return "sk-test-replay"

    adapter = MistralAdapter(load_registry().get("mistral"), http_client=client, credentials=Key())  # type: ignore[arg-type]
    return adapter, client


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_adapter_reads_real_recording(path: Path) -> None:
    interactions = load(path)
    adapter, client = await _adapter(interactions)
    try:
        for recorded in interactions:
            request = _request(recorded)
            request_id = recorded.response_headers.get("mistral-correlation-id")
            assert recorded.status == 200, "a recorded Mistral error would need an error expectation here"
            if recorded.is_stream:
                events = [e async for e in adapter.stream(request)]
                text, _thinking, usage, finish = _expected_stream(recorded.response_body)
                assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text != ""
                assert not any(isinstance(e, TextDelta) and not e.text for e in events)
                end = events[-1]
                assert (
                    isinstance(end, End) and end.raw_finish_reason == finish and end.finish_reason == "stop"
                )
                assert usage is not None
                assert (end.usage.input_tokens, end.usage.output_tokens, end.usage.total_tokens) == (
                    usage["prompt_tokens"],
                    usage["completion_tokens"],
                    usage["total_tokens"],
                )
                assert end.usage.source == "reported"
                assert end.request_id == request_id is not None
            else:
                response = await adapter.complete(request)
                body = recorded.response_json()
                choice = body["choices"][0]
                assert response.text == _answer_text(choice["message"].get("content"))
                assert [(c.name, c.arguments) for c in response.tool_calls] == [
                    (c["function"]["name"], json.loads(c["function"]["arguments"]))
                    for c in choice["message"].get("tool_calls") or []
                ]
                assert response.raw_finish_reason == choice["finish_reason"]
                assert response.usage.input_tokens == body["usage"]["prompt_tokens"]
                assert response.usage.output_tokens == body["usage"]["completion_tokens"]
                assert response.usage.total_tokens == body["usage"]["total_tokens"]
                assert response.usage.cached_tokens is None and response.usage.source == "reported"
                assert response.request_id == request_id
                assert response.model == body["model"]
        sent = client._transport.sent  # type: ignore[attr-defined]
        for request_sent in sent:
            wire = json.loads(request_sent.content)
            assert "stream_options" not in wire and "max_completion_tokens" not in wire
    finally:
        await adapter.aclose()
        await client.aclose()
