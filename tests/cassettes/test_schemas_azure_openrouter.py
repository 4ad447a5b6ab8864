"""Response-side schemas of the azure-openai and openrouter wires: every real recording of the wire validates, the
mock's answers validate, and a body that drifted from the dialect fails naming the JSON path. Also the importer's
mapping of recordings made under another base URL (Azure's per-resource host, DeepSeek's short base path)."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from adapters.registry import Registry
from harness import cassettes as fmt
from harness import real_cassettes
from harness.importer import belongs_to, placeholder_host, recorded_base_path
from harness.schemas import response_errors
from mockserver.testing import MockServer

#: every deployment endpoint of Azure (errors on any of them are the wire's); OpenRouter's chat endpoint
ENDPOINTS = {
    "azure-openai": ("Azure OpenAI", r"^/openai/deployments/[^/]+/"),
    "openrouter": ("OpenRouter", r"^/api/v1/chat/completions$"),
}
JSON = "application/json"
SSE = "text/event-stream"


def _real(wire: str) -> list[tuple[str, Any]]:
    """(id, interaction) of every indexed recording of ``wire``'s endpoints: chat bodies, and errors on any of them."""
    out = []
    provider, endpoint = ENDPOINTS[wire]
    for row in real_cassettes.recordings(provider, endpoint):
        for n, item in enumerate(real_cassettes.load(row.path)):
            if item.status < 400 and not item.uri.split("?")[0].endswith("/chat/completions"):
                continue  # a 200 of another endpoint (embeddings) is not a chat body; its errors are the wire's
            out.append((f"{row.id}#{n}", item))
    return out


def _content_type(item: Any) -> str:
    return next((v for k, v in item.response_headers.items() if k.lower() == "content-type"), JSON)


@pytest.mark.parametrize("wire", ["azure-openai", "openrouter"])
def test_every_real_recording_of_the_wire_validates(wire: str) -> None:
    recorded = _real(wire)
    statuses = {item.status for _, item in recorded}
    assert 200 in statuses and any(s >= 400 for s in statuses)
    for where, item in recorded:
        errors = response_errors(wire, item.status, _content_type(item), item.response_body)
        assert errors == [], f"{where}: {errors}"


@pytest.mark.parametrize("provider", ["azure-openai", "openrouter"])
def test_every_golden_cassette_of_the_provider_validates(registry: Registry, provider: str) -> None:
    wire = registry.get(provider).wire
    for path in fmt.golden_paths(provider):
        for n, interaction in enumerate(fmt.load(path).interactions):
            resp = interaction.response
            errors = response_errors(wire, resp.status, resp.content_type, resp.body)
            assert errors == [], f"{path.name} #{n}: {errors}"


# ---------------------------------------------------------------- drift is caught, and named by its path
def _golden_body(provider: str, name: str, index: int = 0) -> dict[str, Any]:
    cassette = fmt.load(fmt.DEFAULT_ROOT / provider / f"{name}.cassette.json")
    data: dict[str, Any] = json.loads(cassette.interactions[index].response.body)
    return data


def _sse(*payloads: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads) + b"data: [DONE]\n\n"


def _problems(wire: str, status: int, ctype: str, body: dict[str, Any] | bytes) -> list[str]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return response_errors(wire, status, ctype, raw)


def _names(problems: list[str], path: str) -> bool:
    return any(f" {path}: " in p or p.startswith(f"{path}: ") for p in problems)


def test_azure_response_drift_is_named() -> None:
    good = _golden_body("azure-openai", "real-test_azure_provider_call")
    assert _problems("azure-openai", 200, JSON, good) == []
    drifted = copy.deepcopy(good)
    drifted["choices"][0]["finish_reason"] = "end_turn"  # a mock speaking Anthropic's reason
    drifted["prompt_filter_results"][0]["content_filter_results"]["hate"]["severity"] = "none"
    del drifted["prompt_filter_results"][0]["prompt_index"]
    problems = _problems("azure-openai", 200, JSON, drifted)
    assert _names(problems, "choices/0/finish_reason"), problems
    assert _names(problems, "prompt_filter_results/0/content_filter_results/hate/severity"), problems
    assert any("prompt_index" in p for p in problems), problems


def test_azure_error_drift_is_named() -> None:
    gateway = {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}}
    assert _problems("azure-openai", 401, JSON, gateway) == []
    problems = _problems("azure-openai", 429, JSON, {"error": {"code": 429, "message": "Requests to ..."}})
    assert _names(problems, "error/code"), problems  # OpenRouter's integer code is not Azure's
    blocked: dict[str, Any] = {
        "error": {"message": "filtered", "type": None, "param": "prompt", "code": "content_filter"}
    }
    problems = _problems("azure-openai", 400, JSON, blocked)
    assert any("innererror" in p for p in problems), problems
    blocked["error"]["innererror"] = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {}}
    assert _problems("azure-openai", 400, JSON, blocked) == []


def test_azure_stream_drift_is_named() -> None:
    stream = (
        fmt.load(fmt.DEFAULT_ROOT / "azure-openai" / "mock-stream.cassette.json").interactions[0].response
    )
    assert response_errors("azure-openai", 200, stream.content_type, stream.body) == []
    prompt_chunk = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [],
    }
    annotation = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": None, "content_filter_offsets": {"check_offset": 0}}],
    }
    content = {**annotation, "object": "chat.completion", "choices": [{"index": 0, "delta": {"content": 3}}]}
    problems = response_errors("azure-openai", 200, SSE, _sse(prompt_chunk, annotation, content))
    assert any(p.startswith("stream-chunk frame 0: prompt_filter_results") for p in problems), problems
    assert any(
        p.startswith("stream-chunk frame 1: choices/0") and "content_filter_results" in p for p in problems
    )
    assert any(p.startswith("stream-chunk frame 1: choices/0/content_filter_offsets") for p in problems), (
        problems
    )
    assert any(p.startswith("stream-chunk frame 2: object") for p in problems), problems
    assert any(p.startswith("stream-chunk frame 2: choices/0/delta/content") for p in problems), problems


def test_openrouter_response_drift_is_named() -> None:
    good = _golden_body("openrouter", "real-test_openrouter_tool_calling")
    assert _problems("openrouter", 200, JSON, good) == []
    drifted = copy.deepcopy(good)
    del drifted["provider"]
    del drifted["choices"][0]["native_finish_reason"]
    drifted["choices"][0]["finish_reason"] = "tool_use"
    drifted["usage"]["cost"] = "0.0001"
    problems = _problems("openrouter", 200, JSON, drifted)
    assert any("'provider' is a required property" in p for p in problems), problems
    assert any(p.startswith("response body: choices/0: 'native_finish_reason'") for p in problems), problems
    assert _names(problems, "choices/0/finish_reason") and _names(problems, "usage/cost"), problems


def test_openrouter_error_bodies_have_integer_codes_also_in_a_200() -> None:
    good = _golden_body("openrouter", "real-test_openrouter_errors_raised")
    assert _problems("openrouter", 429, JSON, good) == []
    assert _problems("openrouter", 200, JSON, good) == []  # the 200 whose generation failed
    drifted = copy.deepcopy(good)
    drifted["error"]["code"] = "429"  # Azure's string code is not OpenRouter's
    assert _names(_problems("openrouter", 429, JSON, drifted), "error/code")
    assert _names(_problems("openrouter", 200, JSON, drifted), "error/code")


def test_openrouter_stream_drift_is_named() -> None:
    cassette = fmt.load(
        fmt.DEFAULT_ROOT / "openrouter" / "real-test_openrouter_streaming_reasoning.cassette.json"
    )
    stream = cassette.interactions[0].response
    assert response_errors("openrouter", 200, stream.content_type, stream.body) == []
    chunk = {
        "id": "gen-1",
        "provider": "Google",
        "model": "anthropic/claude-sonnet-4.5",
        "object": "chat.completion.chunk",
        "created": 1,
        "choices": [{"index": 0, "delta": {"content": "hi", "reasoning": 1}, "finish_reason": None}],
    }
    in_band: dict[str, Any] = {
        **chunk,
        "error": {"code": 502, "message": "Provider disconnected"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
    }
    problems = response_errors("openrouter", 200, SSE, _sse(chunk, in_band))
    assert any(p.startswith("stream-chunk frame 0: choices/0: 'native_finish_reason'") for p in problems), (
        problems
    )
    assert any(p.startswith("stream-chunk frame 0: choices/0/delta/reasoning") for p in problems), problems
    assert any(p.startswith("stream-chunk frame 1: choices/0/finish_reason") for p in problems), problems
    in_band["choices"][0]["finish_reason"] = "error"
    assert response_errors("openrouter", 200, SSE, _sse(in_band)) == []


# ---------------------------------------------------------------- the mock speaks the same dialect, in every preset
PRESETS = [
    "ok",
    "tool_call",
    "usage_details",
    "null_usage",
    "missing_usage",
    "filtered_output",
    "empty_chunks",
    "error_mid_stream",
    "rate_limit",
    "quota_exhausted",
    "auth_error",
    "permission_denied",
    "not_found",
    "bad_request",
    "context_length",
    "content_filter",
    "server_error",
    "bad_gateway",
    "service_unavailable",
    "gateway_timeout",
    "overloaded",
]
MOCK = {
    "azure-openai": (
        "/azure/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
        {"api-key": "mock-key"},
        "gpt-4o-mini",
    ),
    "openrouter": (
        "/openrouter/api/v1/chat/completions",
        {"Authorization": "Bearer mock-key"},
        "anthropic/claude-sonnet-4.5",
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("wire", sorted(MOCK))
def test_the_mock_validates_in_every_preset(server: MockServer, wire: str, stream: bool) -> None:
    path, auth, model = MOCK[wire]
    presets = PRESETS + (["error_in_200"] if wire == "openrouter" else [])  # documented for OpenRouter only
    problems = []
    for preset in presets:
        session = server.new_session()
        server.queue(session, {"preset": preset, "retry_after": 0.01})
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if preset == "tool_call":
            body["tools"] = [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
            ]
        response = httpx.post(
            server.url + path, json=body, headers={**auth, "x-mock-session": session}, timeout=10
        )
        ctype = response.headers.get("content-type", "")
        problems += [
            f"{preset}: {e}" for e in response_errors(wire, response.status_code, ctype, response.content)
        ]
    assert problems == []


# ---------------------------------------------------------------- which recordings belong to which provider
def test_a_placeholder_registry_host_matches_any_resource_of_its_domain(registry: Registry) -> None:
    azure = registry.get("azure-openai")
    assert placeholder_host("example-resource.openai.azure.com") and not placeholder_host("api.openai.com")
    assert not placeholder_host("example.com")
    chat = (
        "https://traceloop-stg.openai.azure.com/openai/deployments/gpt-5-nano/chat/completions?api-version=x"
    )
    assert belongs_to(azure, chat)
    assert not belongs_to(azure, chat.replace("/chat/completions", "/embeddings"))  # not a route of the wire
    assert not belongs_to(azure, chat.replace("openai.azure.com", "openai.example.net"))
    assert not belongs_to(registry.get("openai"), chat)  # a real host still has to match exactly


def test_a_recording_under_a_shorter_base_path_belongs_to_its_provider(registry: Registry) -> None:
    deepseek, openai = registry.get("deepseek"), registry.get("openai")
    assert recorded_base_path(deepseek, "https://api.deepseek.com/chat/completions") == ""
    assert recorded_base_path(deepseek, "https://api.deepseek.com/v1/chat/completions") == "/v1"
    assert not belongs_to(deepseek, "https://api.deepseek.com/v2/chat/completions")
    assert not belongs_to(openai, "https://api.openai.com/v1/responses")  # a path the wire does not serve
    assert not belongs_to(deepseek, "https://api.deepseek.com.evil.example/chat/completions")


def test_imported_provenance_records_where_the_recording_was_made() -> None:
    for provider, name, base in [
        ("deepseek", "real-test_deepseek_model_thinking_part", "https://api.deepseek.com"),
        (
            "azure-openai",
            "real-test_azure_provider_call",
            "https://pydanticai7521574644.openai.azure.com/openai",
        ),
    ]:
        provenance = fmt.read_provenance(fmt.DEFAULT_ROOT / provider / f"{name}.cassette.json")
        assert provenance is not None and provenance["source"] == "imported"
        assert provenance["origin"]["recorded_base_url"] == [base]
