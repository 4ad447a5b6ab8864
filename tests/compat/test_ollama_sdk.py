"""The official ``ollama`` SDK (0.6.3) against the mock's Ollama personality: it must not tell the mock from a server.

Scenarios are queued per session (the SDK has no per-call headers); every expectation is read from the journal.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from mockserver.testing import MockServer

MESSAGES: list[Any] = [{"role": "user", "content": "Hello there, mock!"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "look something up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]


@pytest.fixture(autouse=True)
def _no_cloud_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


def client(server: MockServer, sid: str, **kw: Any) -> ollama.Client:
    return ollama.Client(host=f"{server.url}/ollama", headers={"x-mock-session": sid}, **kw)


def aclient(server: MockServer, sid: str, **kw: Any) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=f"{server.url}/ollama", headers={"x-mock-session": sid}, **kw)


def collect(parts: Iterator[ollama.ChatResponse]) -> tuple[str, list[ollama.ChatResponse]]:
    seen = list(parts)
    return "".join(p.message.content or "" for p in seen), seen


# --- success ----------------------------------------------------------------------------------------


def test_chat_text_usage_and_durations(server: MockServer, sid: str) -> None:
    resp = client(server, sid).chat(model="llama3.2", messages=MESSAGES)
    (e,) = server.journal(sid)
    assert resp.message.content == e["text_sent"] and resp.message.role == "assistant"
    assert resp.done is True and resp.done_reason == "stop" == e["finish_reason_sent"]
    assert resp.prompt_eval_count == e["usage_truth"]["input_tokens"]
    assert resp.eval_count == e["usage_truth"]["output_tokens"]
    assert resp.total_duration and resp.total_duration >= 1_000_000, "durations are nanoseconds"
    assert resp.model == "llama3.2"
    assert e["request_body"]["stream"] is False, "the SDK sends stream explicitly"
    assert "authorization" not in e["request_headers"]


def test_stream_text_and_final_counters(server: MockServer, sid: str) -> None:
    text, parts = collect(client(server, sid).chat(model="llama3.2", messages=MESSAGES, stream=True))
    (e,) = server.journal(sid)
    assert text == e["text_sent"]
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].done_reason == "stop"
    assert parts[-1].prompt_eval_count == e["usage_truth"]["input_tokens"]
    assert parts[-1].eval_count == e["usage_truth"]["output_tokens"]
    assert e["response_headers"]["Content-Type"] == "application/x-ndjson"


def test_tool_call_whole_with_object_arguments(server: MockServer, sid: str) -> None:
    server.queue(sid, "tool_call", "tool_call")
    c = client(server, sid)
    resp = c.chat(model="llama3.2", messages=MESSAGES, tools=TOOLS)
    _, parts = collect(c.chat(model="llama3.2", messages=MESSAGES, tools=TOOLS, stream=True))
    first, second = server.journal(sid)
    (call,) = resp.message.tool_calls or []
    assert call.function.name == "lookup" == first["tool_calls_sent"][0]["name"]
    assert dict(call.function.arguments) == json.loads(first["tool_calls_sent"][0]["arguments"])
    assert resp.done_reason == "stop", "Ollama reports stop for a tool call"
    streamed = [tc for p in parts for tc in (p.message.tool_calls or [])]
    assert len(streamed) == 1 and dict(streamed[0].function.arguments) == json.loads(
        second["tool_calls_sent"][0]["arguments"]
    )


def test_empty_chunks_are_harmless_lines(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "empty_chunks", "empty_chunks": 4, "keepalives": 3})
    text, parts = collect(client(server, sid).chat(model="m", messages=MESSAGES, stream=True))
    (e,) = server.journal(sid)
    assert text == e["text_sent"]
    assert sum(1 for p in parts if p.message.content == "" and not p.done) == 4
    assert b"\n\n" not in e["wire"].encode(), "a blank line would crash the SDK"


@pytest.mark.parametrize("mode", ["null_usage", "missing_usage"])
def test_missing_counters_parse_as_none(server: MockServer, sid: str, mode: str) -> None:
    server.queue(sid, mode)
    resp = client(server, sid).chat(model="m", messages=MESSAGES)
    assert resp.prompt_eval_count is None and resp.eval_count is None
    assert server.journal(sid)[0]["usage_truth"]["total_tokens"] > 0


async def test_async_chat_and_stream(server: MockServer, sid: str) -> None:
    c = aclient(server, sid)
    resp = await c.chat(model="qwen3", messages=MESSAGES)
    stream = await c.chat(model="qwen3", messages=MESSAGES, stream=True)
    parts = [p async for p in stream]
    first, second = server.journal(sid)
    assert resp.message.content == first["text_sent"]
    assert "".join(p.message.content or "" for p in parts) == second["text_sent"]
    assert parts[-1].eval_count == second["usage_truth"]["output_tokens"]


def test_cloud_bearer_key_is_accepted(server: MockServer, sid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-cloud-FAKE-key-0123456789")
    resp = client(server, sid).chat(model="gpt-oss:120b-cloud", messages=MESSAGES)
    (e,) = server.journal(sid)
    assert resp.message.content == e["text_sent"]
    assert e["request_headers"]["authorization"] == "Bearer [REDACTED]"


# --- errors: ollama.ResponseError with the status, and the SDK never retries --------------------------

FAULTS = [
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


@pytest.mark.parametrize("preset", FAULTS)
@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
def test_faults_raise_response_error(server: MockServer, sid: str, preset: str, stream: bool) -> None:
    server.queue(sid, {"preset": preset, "times": 3})
    with pytest.raises(ollama.ResponseError) as info:
        result = client(server, sid).chat(model="llama3.2", messages=MESSAGES, stream=stream)
        if stream:
            list(result)  # type: ignore[arg-type]
    entries = server.journal(sid)
    assert len(entries) == 1, "the SDK never retries"
    (e,) = entries
    assert info.value.status_code == e["status"]
    assert info.value.error == json.loads(e["wire"])["error"]


def test_not_found_names_the_model(server: MockServer, sid: str) -> None:
    server.queue(sid, "not_found")
    with pytest.raises(ollama.ResponseError) as info:
        client(server, sid).chat(model="llama9", messages=MESSAGES)
    assert info.value.status_code == 404
    assert info.value.error == 'model "llama9" not found, try pulling it first'


def test_rate_limit_carries_retry_after(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "rate_limit", "retry_after": 7})
    with pytest.raises(ollama.ResponseError) as info:
        client(server, sid).chat(model="m", messages=MESSAGES)
    (e,) = server.journal(sid)
    assert info.value.status_code == 429 and e["response_headers"]["Retry-After"] == "7"


@pytest.mark.parametrize("kind", ["server_error", "overloaded", "rate_limit"])
def test_inband_error_is_status_minus_one(server: MockServer, sid: str, kind: str) -> None:
    server.queue(sid, {"preset": "error_mid_stream", "error_after_kind": kind})
    got = ""
    with pytest.raises(ollama.ResponseError) as info:
        for part in client(server, sid).chat(model="m", messages=MESSAGES, stream=True):
            got += part.message.content or ""
    (e,) = server.journal(sid)
    assert info.value.status_code == -1
    assert got == e["text_sent"] != "" and e["inband_error"] == kind


def test_abort_surfaces_as_httpx_protocol_error(server: MockServer, sid: str) -> None:
    server.queue(sid, "abort_mid_stream")
    got = ""
    with pytest.raises(httpx.RemoteProtocolError):
        for part in client(server, sid).chat(model="m", messages=MESSAGES, stream=True):
            got += part.message.content or ""
    (e,) = server.journal(sid)
    assert got == e["text_sent"] and e["aborted_after_chunks"] == 3


def test_truncated_stream_just_ends(server: MockServer, sid: str) -> None:
    server.queue(sid, "truncated_stream")
    text, parts = collect(client(server, sid).chat(model="m", messages=MESSAGES, stream=True))
    (e,) = server.journal(sid)
    assert text == e["text_sent"] and not e["terminated"]
    assert not any(p.done for p in parts), "without its done:true line the SDK sees no end"


def test_malformed_line_is_a_raw_decode_error(server: MockServer, sid: str) -> None:
    server.queue(sid, "malformed_chunk")
    with pytest.raises(json.JSONDecodeError):
        list(client(server, sid).chat(model="m", messages=MESSAGES, stream=True))


def test_hang_times_out(server: MockServer, sid: str) -> None:
    server.queue(sid, "timeout")
    with pytest.raises(httpx.ReadTimeout):
        client(server, sid, timeout=0.3).chat(model="m", messages=MESSAGES)
    (e,) = server.journal(sid)
    assert e["status"] is None


def test_stall_times_out(server: MockServer, sid: str) -> None:
    server.queue(sid, "stall_mid_stream")
    with pytest.raises(httpx.ReadTimeout):
        list(client(server, sid, timeout=0.3).chat(model="m", messages=MESSAGES, stream=True))
    (e,) = server.journal(sid)
    assert e["stalled"] and e["chunks_sent"] == 2


def test_connection_refused_is_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionError):
        ollama.Client(host=f"http://127.0.0.1:{port}").chat(model="m", messages=MESSAGES)


def test_queued_failure_then_success_needs_a_second_call(server: MockServer, sid: str) -> None:
    server.queue(sid, "server_error", "ok")
    c = client(server, sid)
    with pytest.raises(ollama.ResponseError):
        c.chat(model="m", messages=MESSAGES)
    resp = c.chat(model="m", messages=MESSAGES)
    entries = server.journal(sid)
    assert [e["status"] for e in entries] == [500, 200]
    assert resp.message.content == entries[-1]["text_sent"]


def test_parallel_tool_calls_whole_and_streamed(server: MockServer, sid: str) -> None:
    """Every call in the message (and one per line when streamed), each with object arguments, as the SDK reads."""
    server.queue(sid, {"tool_calls": 3}, {"tool_calls": 3})
    c = client(server, sid)
    resp = c.chat(model="llama3.2", messages=MESSAGES, tools=TOOLS)
    _, parts = collect(c.chat(model="llama3.2", messages=MESSAGES, tools=TOOLS, stream=True))
    first, second = server.journal(sid)
    whole = [(t.function.name, dict(t.function.arguments)) for t in resp.message.tool_calls or []]
    assert whole == [(s["name"], json.loads(s["arguments"])) for s in first["tool_calls_sent"]]
    streamed = [
        (t.function.name, dict(t.function.arguments)) for p in parts for t in p.message.tool_calls or []
    ]
    assert streamed == [(s["name"], json.loads(s["arguments"])) for s in second["tool_calls_sent"]]
    assert len(streamed) == 3 and len({json.dumps(a, sort_keys=True) for _, a in streamed}) == 3
