"""The generic OpenAI-compatible adapter on real recorded traffic of compatible APIs (../shared/real-cassettes):
Together (direct and through the Hugging Face router), Groq, DeepSeek and Cerebras. Every file parses, and what the
adapter reports matches what the recording says, read independently here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.errors import ErrorKind, ProviderError
from adapters.openai import OpenAICompatibleAdapter
from adapters.registry import ProviderEntry, load_registry
from adapters.types import ChatRequest, Message
from harness.real_cassettes import Interaction, load, recordings, replay_transport

#: INDEX.md's provider name -> registered provider whose entry replays it (Cerebras is not registered: a copy of
#: Groq's entry pointed at Cerebras' base URL stands in, configuration alone)
PROVIDERS: dict[str, str] = {
    "Together": "together",
    "HF router -> Together (OpenAI-compat)": "together",
    "Groq": "groq",
    "DeepSeek": "deepseek",
    "Cerebras (OpenAI-compat)": "cerebras",
}
FILES: list[tuple[Path, str]] = [
    (r.path, PROVIDERS[r.provider]) for r in recordings(list(PROVIDERS), r"/chat/completions$")
]
#: recorded error statuses -> the kind they mean
ERROR_KINDS = {404: ErrorKind.NOT_FOUND, 400: ErrorKind.BAD_REQUEST}


def test_every_compatible_recording_is_here() -> None:
    """Every provider named above has at least one chat recording selected (a guard against an empty selection)."""
    found = sorted({provider for _, provider in FILES})
    assert found == sorted(set(PROVIDERS.values())), found


def _entry(provider: str) -> ProviderEntry:
    registry = load_registry()
    if provider in registry:
        return registry.get(provider)
    return registry.get("groq").model_copy(
        update={"provider_id": provider, "base_url": "https://api.cerebras.ai/v1", "display_name": "Cerebras"}
    )


def _request(recorded: Interaction) -> ChatRequest:
    body = recorded.request_json() or {}
    messages = tuple(
        Message(
            role=m["role"] if m["role"] in ("system", "user", "assistant", "tool") else "system",
            content=m["content"] if isinstance(m.get("content"), str) else "",
        )
        for m in body.get("messages", [])
    ) or (Message(role="user", content="hi"),)
    return ChatRequest(model=body.get("model", "m"), messages=messages)


class _Key:
    async def resolve(self, ref: str) -> str:
        return "sk-test-replay"


def _details(usage: dict[str, Any], section: str, field: str) -> Any:
    return (usage.get(section) or {}).get(field)


@pytest.mark.parametrize(("path", "provider"), FILES, ids=[f"{pr}-{p.stem}" for p, pr in FILES])
async def test_adapter_reads_real_recording(path: Path, provider: str) -> None:
    interactions = [i for i in load(path) if i.uri.endswith("/chat/completions")]
    client = httpx.AsyncClient(transport=replay_transport(interactions))
    adapter = OpenAICompatibleAdapter(_entry(provider), http_client=client, credentials=_Key())  # type: ignore[arg-type]
    try:
        for recorded in interactions:
            request_id = recorded.response_headers.get("x-request-id")
            if recorded.status != 200:
                with pytest.raises(ProviderError) as info:
                    await adapter.complete(_request(recorded))
                error = recorded.response_json()["error"]
                assert info.value.kind == ERROR_KINDS[recorded.status], (info.value, error)
                assert info.value.status == recorded.status and not info.value.retryable
                assert info.value.message == error["message"] and info.value.provider_id == provider
                assert info.value.provider_code == error.get("code")
                continue
            response = await adapter.complete(_request(recorded))
            body = recorded.response_json()
            choice = body["choices"][0]
            message = choice["message"]
            assert response.text == (message.get("content") or "")
            assert [(c.name, c.arguments) for c in response.tool_calls] == [
                (c["function"]["name"], json.loads(c["function"]["arguments"]))
                for c in message.get("tool_calls") or []
            ]
            assert response.raw_finish_reason == choice["finish_reason"]
            if choice["finish_reason"] in ("stop", "tool_calls", "length"):
                assert response.finish_reason == choice["finish_reason"]
            usage = body["usage"]
            assert response.usage.input_tokens == usage["prompt_tokens"]
            assert response.usage.output_tokens == usage["completion_tokens"]
            assert response.usage.total_tokens == usage["total_tokens"]
            assert response.usage.cached_tokens == _details(usage, "prompt_tokens_details", "cached_tokens")
            reasoning = _details(usage, "completion_tokens_details", "reasoning_tokens")
            assert response.usage.reasoning_tokens == reasoning
            assert response.usage.source == "reported"
            assert response.request_id == request_id
            assert response.model == body["model"] and response.provider_id == provider
    finally:
        await adapter.aclose()
        await client.aclose()


def test_deepseek_reports_its_own_cache_counters_too() -> None:
    """DeepSeek sends prompt_cache_hit_tokens beside the OpenAI-style details; the registry declares cached tokens
    because the OpenAI-style field (the one the generic adapter reads) is present as well."""
    (path,) = [p for p, provider in FILES if provider == "deepseek"]
    usage = load(path)[0].response_json()["usage"]
    assert "prompt_cache_hit_tokens" in usage
    assert usage["prompt_tokens_details"]["cached_tokens"] == usage["prompt_cache_hit_tokens"]
    assert _entry("deepseek").capabilities.cached_tokens and _entry("deepseek").capabilities.reasoning_tokens
