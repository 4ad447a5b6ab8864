"""The OpenRouter personality over raw HTTP: wire details checked against provider-wire-formats.md §8 and the recorded
OpenRouter traffic. Expectations come from the journal and the truth, never from constants."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from mock_helpers import HTTP, SSE, headers, stream_raw

from mockserver.scenarios import PRESETS
from mockserver.testing import MockServer

GEN_ID = re.compile(r"^gen-\d{10}-[A-Za-z0-9]{20}$")
ERROR_PRESETS = sorted(n for n, p in PRESETS.items() if p.error is not None and p.status is None)
#: OpenRouter's own statuses where they differ from the neutral defaults
STATUSES = {"quota_exhausted": 402, "content_filter": 403, "overloaded": 503}


@pytest.fixture
def url(server: MockServer) -> str:
    return f"{server.url}/openrouter/api/v1/chat/completions"


def body(stream: bool = False, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": "anthropic/claude-sonnet-4.5",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    if stream:
        out["stream"] = True
    out.update(extra)
    return out


def last(server: MockServer, sid: str) -> dict[str, Any]:
    return server.journal(sid)[-1]


def test_ok_completion_generation_id_provider_and_usage(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, "usage_details"))
    e = last(server, sid)
    data = r.json()
    assert r.status_code == 200 and GEN_ID.match(data["id"])
    assert r.headers["x-generation-id"] == data["id"] == e["request_id"]
    assert data["provider"] == "Anthropic" and data["object"] == "chat.completion"
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["native_finish_reason"] == "end_turn"
    assert choice["message"]["content"] == e["text_sent"] and choice["message"]["reasoning"] is None
    usage, truth = data["usage"], e["usage_truth"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        truth["input_tokens"], truth["output_tokens"], truth["total_tokens"])  # fmt: skip
    assert usage["prompt_tokens_details"]["cached_tokens"] == truth["cached_tokens"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == truth["reasoning_tokens"]
    assert usage["cost"] > 0 and usage["is_byok"] is False and "cost_details" in usage
    assert not any(h.startswith("x-ratelimit") for h in r.headers), "OpenRouter sends no rate-limit headers"


def test_tool_call_completion(server: MockServer, sid: str, url: str) -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "divide", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    r = HTTP.post(url, json=body(tools=tools), headers=headers(sid, "tool_call"))
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["native_finish_reason"] == "tool_use"
    assert choice["message"]["content"] == "" and choice["message"]["tool_calls"][0]["index"] == 0


def test_missing_key_is_401(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers={"x-mock-session": sid})
    assert r.status_code == 401 and r.json() == {
        "error": {"message": "No auth credentials found", "code": 401}
    }


@pytest.mark.parametrize("preset", ERROR_PRESETS)
def test_error_presets(server: MockServer, sid: str, url: str, preset: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, preset))
    e = last(server, sid)
    data = r.json()
    assert r.status_code == e["status"] == STATUSES.get(preset, PRESETS[preset].status_for_error())
    assert data["error"]["code"] == r.status_code, "the code is an integer equal to the HTTP status"
    assert data["user_id"].startswith("user_")
    assert "x-generation-id" not in r.headers and e["request_id"] is None
    if (PRESETS[preset].retry_after or 0) > 0:
        assert r.headers["Retry-After"] == "1"


def test_error_metadata(server: MockServer, sid: str, url: str) -> None:
    def error(preset: str) -> dict[str, Any]:
        found: dict[str, Any] = HTTP.post(url, json=body(), headers=headers(sid, preset)).json()["error"]
        return found

    assert set(error("content_filter")["metadata"]) == {
        "reasons",
        "flagged_input",
        "provider_name",
        "model_slug",
    }
    assert set(error("rate_limit")["metadata"]) == {"provider_name", "raw"}
    assert set(error("bad_gateway")["metadata"]) == {"provider_name", "raw"}
    assert error("context_length")["message"].startswith("This endpoint's maximum context length is ")


def test_error_in_200(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, "error_in_200"))
    assert r.status_code == 200 and r.json()["error"]["code"] == 500 and "choices" not in r.json()


def test_stream_keepalives_role_on_every_delta_and_usage_chunk(
    server: MockServer, sid: str, url: str
) -> None:
    status, raw = stream_raw(url, body(stream=True), headers(sid, "empty_chunks"))
    e = last(server, sid)
    sse = SSE.parse(raw)
    assert status == 200 and raw.startswith(b": OPENROUTER PROCESSING\n\n")
    assert len(sse.comments) >= 2 and set(sse.comments) == {": OPENROUTER PROCESSING"}
    assert sse.data[-1] == "[DONE]"
    chunks = sse.chunks()
    assert all(c["id"] == e["request_id"] for c in chunks)
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks)
    usage_chunk = chunks[-1]
    assert (
        usage_chunk["choices"][0]["finish_reason"] is None
        and usage_chunk["choices"][0]["delta"]["content"] == ""
    )
    assert usage_chunk["usage"]["total_tokens"] == e["usage_truth"]["total_tokens"], (
        "usage without any opt-in"
    )
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]] == ["stop"]
    assert sse.text() == e["text_sent"]


def test_inband_error_keeps_200_and_ends_without_done(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True), headers(sid, "error_mid_stream"))
    e = last(server, sid)
    sse = SSE.parse(raw)
    frame = json.loads(sse.data[-1])
    assert e["status"] == 200 and e["inband_error"] == "server_error"
    assert frame["error"]["code"] == 500 and isinstance(frame["error"]["message"], str)
    assert frame["choices"] == [
        {"index": 0, "delta": {"content": ""}, "finish_reason": "error", "native_finish_reason": "error"}
    ]
    assert "[DONE]" not in sse.data and sse.text() == e["text_sent"]
