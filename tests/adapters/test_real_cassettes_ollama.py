"""The Ollama adapter on real recorded Ollama traffic (../shared/real-cassettes): the native ``/api/chat`` files parse
with :class:`OllamaAdapter`, and Ollama's OpenAI-compatible ``/v1`` files with the generic OpenAI-compatible adapter.
Expected values are read from each recording here, independently of the adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import Adapter
from adapters.ollama import OllamaAdapter
from adapters.openai import OpenAICompatibleAdapter
from adapters.registry import ProviderEntry, load_registry
from adapters.types import ChatRequest, End, Message, TextDelta
from harness.real_cassettes import Interaction, load, recordings, replay_transport
from harness.schemas import response_errors

NATIVE = [r.path for r in recordings("Ollama (local, native API)", r"^/api/chat$")]
COMPAT = [
    r.path
    for r in recordings(
        ["Ollama (local, OpenAI-compat)", "Ollama (cloud, OpenAI-compat)"], r"/v1/chat/completions$"
    )
]


def test_the_chat_recordings_cover_both_ollama_apis() -> None:
    """A guard against a selection that matches nothing: a plain and a tool-calling native chat, and the compat API."""
    assert {"tool_calls" in p.name for p in NATIVE} == {True, False}, NATIVE
    assert COMPAT, "no OpenAI-compatible Ollama recording selected"


def _request(recorded: Interaction) -> ChatRequest:
    body = recorded.request_json() or {}
    messages = tuple(
        Message(
            role=m["role"] if m["role"] in ("system", "user", "assistant", "tool") else "system",
            content=m["content"] if isinstance(m.get("content"), str) else "",
        )
        for m in body.get("messages", [])
    ) or (Message(role="user", content="hi"),)
    return ChatRequest(model=body.get("model", "llama3"), messages=messages)


class _NoKey:
    async def resolve(self, ref: str) -> str:
        return "ollama-replay-key"


async def _run(adapter_cls: type[Adapter], entry: ProviderEntry, recorded: list[Interaction]) -> list[Any]:
    client = httpx.AsyncClient(transport=replay_transport(recorded))
    adapter = adapter_cls(entry, http_client=client, credentials=_NoKey())  # type: ignore[arg-type]
    try:
        return [await adapter.complete(_request(r)) for r in recorded]
    finally:
        await adapter.aclose()
        await client.aclose()


@pytest.mark.parametrize("path", NATIVE, ids=[p.stem for p in NATIVE])
async def test_native_recording(path: Path) -> None:
    recorded = load(path)
    responses = await _run(OllamaAdapter, load_registry().get("ollama"), recorded)
    for got, interaction in zip(responses, recorded, strict=True):
        body = interaction.response_json()
        assert got.text == body["message"]["content"]
        assert [(c.name, c.arguments) for c in got.tool_calls] == [
            (c["function"]["name"], c["function"]["arguments"])
            for c in body["message"].get("tool_calls") or []
        ]
        assert got.raw_finish_reason == body["done_reason"] and got.finish_reason == "stop"
        assert (got.usage.input_tokens, got.usage.output_tokens) == (
            body["prompt_eval_count"],
            body["eval_count"],
        )
        assert got.usage.source == "reported" and got.request_id is None
        assert got.model == body["model"]
        ctype = interaction.response_headers.get("content-type", "")
        assert response_errors("ollama", interaction.status, ctype, interaction.response_body) == []


async def test_native_request_round_trips_the_recorded_tool_call() -> None:
    """#58 sends an assistant tool call back: the adapter writes arguments as an object, as the SDK did."""
    (path,) = [p for p in NATIVE if "tool_calls" in p.name]
    (recorded,) = load(path)
    sent_call = recorded.request_json()["messages"][0]["tool_calls"][0]
    from adapters.types import ToolCall

    request = ChatRequest(
        model="llama3.1",
        messages=(
            Message(
                role="assistant",
                tool_calls=(
                    ToolCall(
                        name=sent_call["function"]["name"], arguments=sent_call["function"]["arguments"]
                    ),
                ),
            ),
            Message(role="tool", content="70 degrees"),
        ),
    )
    body = OllamaAdapter(load_registry().get("ollama")).body(request, stream=False)
    assert body["messages"][0]["tool_calls"] == [sent_call]


def _cached_prompt_entry() -> dict[str, Any]:
    (path,) = [p for p in NATIVE if "tool_calls" not in p.name]
    body: dict[str, Any] = load(path)[0].response_json()
    return body


async def test_missing_prompt_eval_count_is_estimated_never_zero() -> None:
    """Older servers omitted prompt_eval_count for a cached prompt (ollama#2068): the recording without it."""
    body = _cached_prompt_entry()
    del body["prompt_eval_count"]
    original = load(next(p for p in NATIVE if "tool_calls" not in p.name))[0]
    edited = Interaction(
        original.method, original.uri, original.request_headers, original.request_body, 200,
        original.response_headers, json.dumps(body).encode(),
    )  # fmt: skip
    (got,) = await _run(OllamaAdapter, load_registry().get("ollama"), [edited])
    assert got.usage.source == "estimated" and got.usage.input_tokens > 0
    assert got.usage.output_tokens == body["eval_count"]


def _compat_entry() -> ProviderEntry:
    return (
        load_registry()
        .get("ollama")
        .model_copy(
            update={"adapter": "openai-compatible", "wire": "openai", "base_url": "http://127.0.0.1:11434/v1"}
        )
    )


@pytest.mark.parametrize("path", COMPAT, ids=[p.stem for p in COMPAT])
async def test_openai_compatible_recording(path: Path) -> None:
    recorded = [i for i in load(path) if i.uri.endswith("/chat/completions")]
    responses = await _run(OpenAICompatibleAdapter, _compat_entry(), recorded)
    for got, interaction in zip(responses, recorded, strict=True):
        body = interaction.response_json()
        choice = body["choices"][0]
        assert got.text == choice["message"]["content"]
        assert got.raw_finish_reason == choice["finish_reason"]
        assert got.usage.input_tokens == body["usage"]["prompt_tokens"]
        assert got.usage.output_tokens == body["usage"]["completion_tokens"]
        assert got.model == body["model"]


async def test_native_stream_framing_on_recorded_content() -> None:
    """No native streamed recording exists; the recorded answer, re-framed as Ollama NDJSON, streams back exactly."""
    body = _cached_prompt_entry()
    text = body["message"]["content"]
    pieces = [text[i : i + 17] for i in range(0, len(text), 17)]
    lines = [
        {
            "model": body["model"],
            "created_at": body["created_at"],
            "message": {"role": "assistant", "content": p},
            "done": False,
        }
        for p in pieces
    ] + [{**body, "message": {"role": "assistant", "content": ""}}]
    raw = "".join(json.dumps(line) + "\n" for line in lines).encode()
    replay = Interaction(
        "POST", "http://127.0.0.1:11434/api/chat", {}, b"", 200, {"content-type": "application/x-ndjson"}, raw
    )
    client = httpx.AsyncClient(transport=replay_transport([replay]))
    adapter = OllamaAdapter(load_registry().get("ollama"), http_client=client)
    try:
        events = [
            e
            async for e in adapter.stream(
                ChatRequest(model="llama3", messages=(Message(role="user", content="joke"),))
            )
        ]
    finally:
        await client.aclose()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text
    end = events[-1]
    assert isinstance(end, End) and end.raw_finish_reason == body["done_reason"]
    assert (end.usage.input_tokens, end.usage.output_tokens) == (
        body["prompt_eval_count"],
        body["eval_count"],
    )
