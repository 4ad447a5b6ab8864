"""Every preset over raw HTTP against the OpenAI personality.

Expectations come from the journal and the truth, never from constants.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from mock_helpers import HTTP, SSE, chat_body, headers, stream_raw

from mockserver.scenarios import DEFAULT_STATUS, PRESETS
from mockserver.testing import MockServer
from mockserver.truth import count_tokens

ONE = [{"role": "user", "content": "x"}]
ERROR_PRESETS = sorted(n for n, p in PRESETS.items() if p.error is not None and p.status is None)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
]


def last(server: MockServer, sid: str) -> dict[str, Any]:
    entries = server.journal(sid)
    assert entries, "nothing journaled"
    return entries[-1]


def expected_input_tokens(body: dict[str, Any]) -> int:
    total = sum(count_tokens(m["content"]) + 4 for m in body["messages"]) + 3
    return total + sum(count_tokens(json.dumps(t)) for t in body.get("tools", []))


def assert_usage_matches(usage: dict[str, Any], truth: dict[str, int]) -> None:
    assert usage["prompt_tokens"] == truth["input_tokens"]
    assert usage["completion_tokens"] == truth["output_tokens"]
    assert usage["total_tokens"] == truth["total_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": truth["cached_tokens"], "audio_tokens": 0}
    assert usage["completion_tokens_details"] == {
        "reasoning_tokens": truth["reasoning_tokens"],
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }


# --- success --------------------------------------------------------------------------------------


def test_ok_completion_body_headers_and_truth(server: MockServer, sid: str, chat_url: str) -> None:
    body = chat_body()
    r = HTTP.post(chat_url, json=body, headers=headers(sid))
    e = last(server, sid)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    data = r.json()
    assert list(data) == ["id", "object", "created", "model", "choices", "usage", "service_tier",
                          "system_fingerprint"]  # fmt: skip
    assert data["id"].startswith("chatcmpl-") and data["object"] == "chat.completion"
    assert data["model"] == body["model"]
    choice = data["choices"][0]
    assert choice == {
        "index": 0,
        "message": {"role": "assistant", "content": e["text_sent"], "refusal": None},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert 12 <= len(e["text_sent"].split()) <= 20
    truth = e["usage_truth"]
    assert truth["input_tokens"] == expected_input_tokens(body)
    assert truth["output_tokens"] == count_tokens(e["text_sent"])
    assert_usage_matches(data["usage"], truth)
    assert e["usage_sent"] == data["usage"] and e["finish_reason_sent"] == "stop"
    rid = r.headers["x-request-id"]
    assert rid.startswith("req_") and len(rid) == 36 and int(rid[4:], 16) >= 0
    assert rid == e["request_id"]
    assert r.headers["openai-version"] == "2020-10-01"
    assert int(r.headers["openai-processing-ms"]) >= 0 and r.headers["openai-organization"]
    for name in ("limit-requests", "limit-tokens", "remaining-requests", "remaining-tokens"):
        assert r.headers[f"x-ratelimit-{name}"].isdigit()
    assert r.headers["x-ratelimit-reset-requests"] == "6ms" and r.headers["x-ratelimit-reset-tokens"] == "0s"


def test_same_request_same_text(server: MockServer, sid: str, chat_url: str) -> None:
    a = HTTP.post(chat_url, json=chat_body(), headers=headers(sid)).json()
    b = HTTP.post(chat_url, json=chat_body(stream=False), headers=headers(sid)).json()
    c = HTTP.post(
        chat_url, json=chat_body(messages=[{"role": "user", "content": "other"}]), headers=headers(sid)
    )
    text = a["choices"][0]["message"]["content"]
    assert text == b["choices"][0]["message"]["content"]
    assert text != c.json()["choices"][0]["message"]["content"]


def test_explicit_text_and_chunks(server: MockServer, sid: str, chat_url: str) -> None:
    scenario = {"text": "Grüße aus 東京 🚀!", "chunks": 4}
    status, raw = stream_raw(chat_url, chat_body(stream=True), headers(sid, scenario))
    sse = SSE.parse(raw)
    e = last(server, sid)
    assert status == 200 and sse.text() == "Grüße aus 東京 🚀!" == e["text_sent"]
    assert e["chunks_sent"] == 4


@pytest.mark.parametrize("include_usage", [False, True])
def test_ok_stream_shape(server: MockServer, sid: str, chat_url: str, include_usage: bool) -> None:
    body = chat_body(stream=True, include_usage=include_usage)
    with HTTP.stream("POST", chat_url, json=body, headers=headers(sid)) as r:
        raw = r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        rid = r.headers["x-request-id"]
    sse = SSE.parse(raw)
    e = last(server, sid)
    assert e["request_id"] == rid and e["stream"] is True
    assert raw.decode() == e["wire"]
    assert sse.data[-1] == "[DONE]" and e["terminated"]
    chunks = sse.chunks()
    assert len({c["id"] for c in chunks}) == 1 and len({c["created"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) == e["chunks_sent"] == 6
    assert sse.text() == e["text_sent"]
    assert e["frames_sent"] == len(sse.data)
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0]["delta"] == {}
    assert finish[0]["choices"][0]["finish_reason"] == "stop" == e["finish_reason_sent"]
    if include_usage:
        assert all("usage" in c for c in chunks)
        assert all(c["usage"] is None for c in chunks[:-1])
        assert chunks[-1]["choices"] == []
        assert_usage_matches(chunks[-1]["usage"], e["usage_truth"])
        assert e["usage_sent"] == chunks[-1]["usage"]
    else:
        assert all("usage" not in c for c in chunks)
        assert e["usage_sent"] is None
    assert e["usage_truth"]["output_tokens"] == count_tokens(e["text_sent"])


@pytest.mark.parametrize("stream", [False, True])
def test_usage_details(server: MockServer, sid: str, chat_url: str, stream: bool) -> None:
    body = chat_body(stream=stream, include_usage=stream)
    _, raw = stream_raw(chat_url, body, headers(sid, "usage_details"))
    e = last(server, sid)
    usage = SSE.parse(raw).chunks()[-1]["usage"] if stream else json.loads(raw)["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 5
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 7
    assert e["usage_truth"]["output_tokens"] == count_tokens(e["text_sent"]) + 7
    assert_usage_matches(usage, e["usage_truth"])


@pytest.mark.parametrize("stream", [False, True])
def test_null_and_missing_usage(server: MockServer, sid: str, chat_url: str, stream: bool) -> None:
    body = chat_body(stream=stream, include_usage=stream)
    _, raw = stream_raw(chat_url, body, headers(sid, "null_usage"))
    e = last(server, sid)
    assert e["usage_sent"] is None and e["usage_truth"]["output_tokens"] > 0
    if stream:
        chunks = SSE.parse(raw).chunks()
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] is None
    else:
        assert json.loads(raw)["usage"] is None
    _, raw = stream_raw(chat_url, body, headers(sid, "missing_usage"))
    e = last(server, sid)
    assert e["usage_sent"] is None and e["usage_truth"]["total_tokens"] > 0
    if stream:
        chunks = SSE.parse(raw).chunks()
        assert all("usage" not in c for c in chunks) and all(c["choices"] for c in chunks)
    else:
        assert "usage" not in json.loads(raw)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call(server: MockServer, sid: str, chat_url: str, stream: bool) -> None:
    body = chat_body(stream=stream, include_usage=stream, tools=TOOLS)
    _, raw = stream_raw(chat_url, body, headers(sid, "tool_call"))
    e = last(server, sid)
    (sent,) = e["tool_calls_sent"]
    assert sent["name"] == "get_weather" and sent["id"].startswith("call_")
    args = json.loads(sent["arguments"])
    assert set(args) == {"city", "days"} and isinstance(args["days"], int)
    assert e["finish_reason_sent"] == "tool_calls" and e["text_sent"] == ""
    truth = e["usage_truth"]
    assert truth["input_tokens"] == expected_input_tokens(body)
    assert truth["output_tokens"] == count_tokens("get_weather") + count_tokens(sent["arguments"])
    if not stream:
        message = json.loads(raw)["choices"][0]["message"]
        assert message["content"] is None
        call = message["tool_calls"][0]
        assert call == {"id": sent["id"], "type": "function",
                        "function": {"name": "get_weather", "arguments": sent["arguments"]}}  # fmt: skip
        return
    chunks = [c for c in SSE.parse(raw).chunks() if c["choices"]]
    frags = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert frags[0] == {"index": 0, "id": sent["id"], "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}  # fmt: skip
    assert all(set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in frags[1:])
    assert "".join(f["function"]["arguments"] for f in frags) == sent["arguments"]
    assert len(frags) == e["chunks_sent"] > 2
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_without_tools_answers_text(server: MockServer, sid: str, chat_url: str) -> None:
    r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid, "tool_call"))
    assert r.json()["choices"][0]["message"]["content"] and r.json()["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_filtered_output(server: MockServer, sid: str, chat_url: str, stream: bool) -> None:
    _, full = stream_raw(chat_url, chat_body(), headers(sid))
    full_text = json.loads(full)["choices"][0]["message"]["content"]
    _, raw = stream_raw(chat_url, chat_body(stream=stream), headers(sid, "filtered_output"))
    e = last(server, sid)
    assert e["finish_reason_sent"] == "content_filter"
    assert full_text.startswith(e["text_sent"]) and 0 < len(e["text_sent"]) < len(full_text)
    if stream:
        sse = SSE.parse(raw)
        assert sse.text() == e["text_sent"] and e["chunks_sent"] == 3
        assert sse.chunks()[-1]["choices"][0]["finish_reason"] == "content_filter"
    else:
        assert json.loads(raw)["choices"][0]["finish_reason"] == "content_filter"


def test_empty_chunks_and_keepalives(server: MockServer, sid: str, chat_url: str) -> None:
    _, raw = stream_raw(chat_url, chat_body(stream=True), headers(sid, "empty_chunks"))
    sse = SSE.parse(raw)
    e = last(server, sid)
    deltas = [c["choices"][0]["delta"] for c in sse.chunks()]
    assert sum(1 for d in deltas if d == {"content": ""}) == 4
    assert sse.comments == [": keep-alive", ": keep-alive"]
    assert sse.text() == e["text_sent"] and e["chunks_sent"] == 6
    assert e["frames_sent"] == len(sse.data) + len(sse.comments)
    assert raw.decode() == e["wire"]


def test_slow_stream_timing(server: MockServer, sid: str, chat_url: str) -> None:
    t0 = time.monotonic()
    _, raw = stream_raw(chat_url, chat_body(stream=True), headers(sid, "slow_stream"))
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.2 + 5 * 0.05
    assert SSE.parse(raw).text() == last(server, sid)["text_sent"]


def test_slow_non_stream_waits_before_headers(server: MockServer, sid: str, chat_url: str) -> None:
    t0 = time.monotonic()
    r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid, {"ttft": 0.1, "chunk_delay": 0.02}))
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.1 + 5 * 0.02


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ERROR_PRESETS)
@pytest.mark.parametrize("stream", [False, True])
def test_error_presets(server: MockServer, sid: str, chat_url: str, preset: str, stream: bool) -> None:
    scenario: Any = {"preset": preset, "retry_after": 0.5} if preset == "rate_limit" else preset
    r = HTTP.post(chat_url, json=chat_body(stream=stream), headers=headers(sid, scenario))
    e = last(server, sid)
    kind = PRESETS[preset].error
    assert kind is not None
    assert r.status_code == DEFAULT_STATUS[kind] == e["status"]
    assert e["error_kind"] == kind and r.headers["x-request-id"] == e["request_id"]
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert r.text == e["wire"] and e["usage_truth"] is None and e["chunks_sent"] == 0
    expected_code = {
        "rate_limit": "rate_limit_exceeded",
        "quota_exhausted": "insufficient_quota",
        "auth_error": "invalid_api_key",
        "not_found": "model_not_found",
        "context_length": "context_length_exceeded",
        "content_filter": "invalid_prompt",  # the real Chat Completions form (pal-mcp-server#178)
    }
    assert err["code"] == expected_code.get(kind, err["code"])
    if kind == "rate_limit":
        assert err["type"] == "tokens" and "Please try again in 500ms" in err["message"]
        assert r.headers["retry-after"] == "1" and r.headers["retry-after-ms"] == "500"
        assert r.headers["x-ratelimit-remaining-tokens"] == "0"
        assert r.headers["x-ratelimit-reset-tokens"] == "500ms"
    if kind == "quota_exhausted":
        assert r.headers["x-should-retry"] == "false" and err["type"] == "insufficient_quota"
    if kind == "not_found":
        assert err["message"] == "The model `gpt-4o-mini` does not exist or you do not have access to it."
    if kind == "context_length":
        assert err["param"] == "messages" and "maximum context length" in err["message"]
    if kind == "service_unavailable":
        assert r.headers["retry-after"] == "1" and r.headers["retry-after-ms"] == "1000"
    if kind in ("bad_request", "context_length", "content_filter", "auth_error", "not_found"):
        assert err["type"] == "invalid_request_error"
    if kind not in ("rate_limit", "service_unavailable"):
        assert "retry-after" not in r.headers


def test_error_status_and_message_overrides(server: MockServer, sid: str, chat_url: str) -> None:
    scenario = {"error": "server_error", "status": 529, "message": "custom words"}
    r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid, scenario))
    assert r.status_code == 529 and r.json()["error"]["message"] == "custom words"


def test_error_in_200(server: MockServer, sid: str, chat_url: str) -> None:
    r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid, "error_in_200"))
    assert r.status_code == 200 and r.json()["error"]["type"] == "server_error"
    e = last(server, sid)
    assert e["status"] == 200 and e["error_kind"] == "server_error"


@pytest.mark.parametrize("stream", [False, True])
def test_wrong_content_type(server: MockServer, sid: str, chat_url: str, stream: bool) -> None:
    status, _ = stream_raw(chat_url, chat_body(stream=stream), headers(sid, "wrong_content_type"))
    e = last(server, sid)
    assert status == 200 and e["response_headers"]["Content-Type"] == "text/html; charset=utf-8"
    r = HTTP.post(chat_url, json=chat_body(stream=stream), headers=headers(sid, "wrong_content_type"))
    assert r.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_body(server: MockServer, sid: str, chat_url: str, stream: bool) -> None:
    status, raw = stream_raw(chat_url, chat_body(stream=stream), headers(sid, "malformed_body"))
    e = last(server, sid)
    assert status == 200 and e["malformed"] and raw.decode() == e["wire"]
    if stream:
        (data,) = SSE.parse(raw).data
        with pytest.raises(json.JSONDecodeError):
            json.loads(data)
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)


# --- stream faults --------------------------------------------------------------------------------


def test_abort_mid_stream(server: MockServer, sid: str, chat_url: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError) as info:
        stream_raw(chat_url, chat_body(stream=True), headers(sid, "abort_mid_stream"))
    received: bytes = info.value.received  # type: ignore[attr-defined]
    e = last(server, sid)
    assert e["aborted"] and e["aborted_after_chunks"] == 3 == e["chunks_sent"] and not e["terminated"]
    assert received.decode() == e["wire"]
    assert SSE.parse(received).text() == e["text_sent"]
    assert "[DONE]" not in e["wire"]


def test_abort_non_stream_truncates_body(server: MockServer, sid: str, chat_url: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        HTTP.post(chat_url, json=chat_body(), headers=headers(sid, "abort_mid_stream"))
    e = last(server, sid)
    assert e["aborted"] and e["status"] == 200


def test_error_mid_stream(server: MockServer, sid: str, chat_url: str) -> None:
    _, raw = stream_raw(chat_url, chat_body(stream=True), headers(sid, "error_mid_stream"))
    sse = SSE.parse(raw)
    e = last(server, sid)
    assert e["inband_error"] == "server_error" and not e["terminated"] and e["chunks_sent"] == 3
    final = json.loads(sse.data[-1])
    message = "The server had an error while processing your request. Sorry about that!"
    assert final == {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    assert "[DONE]" not in sse.data and sse.text() == e["text_sent"]


def test_error_mid_stream_kind(server: MockServer, sid: str, chat_url: str) -> None:
    scenario = {"error_after": 1, "error_after_kind": "rate_limit"}
    _, raw = stream_raw(chat_url, chat_body(stream=True), headers(sid, scenario))
    assert json.loads(SSE.parse(raw).data[-1])["error"]["code"] == "rate_limit_exceeded"
    r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid, scenario))
    assert r.status_code == 429  # a non-streamed request cannot fail mid-body: it gets the error itself


def test_truncated_stream(server: MockServer, sid: str, chat_url: str) -> None:
    status, raw = stream_raw(chat_url, chat_body(stream=True), headers(sid, "truncated_stream"))
    sse = SSE.parse(raw)
    e = last(server, sid)
    assert status == 200 and "[DONE]" not in sse.data and not e["terminated"]
    assert sse.chunks()[-1]["choices"][0]["finish_reason"] == "stop"
    assert sse.text() == e["text_sent"]


def test_malformed_chunk(server: MockServer, sid: str, chat_url: str) -> None:
    _, raw = stream_raw(chat_url, chat_body(stream=True), headers(sid, "malformed_chunk"))
    sse = SSE.parse(raw)
    e = last(server, sid)
    assert e["malformed"] and e["chunks_sent"] == 2 and not e["terminated"]
    assert sse.data[-1].startswith('{"id":"chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(sse.data[-1])


def test_stall_mid_stream(server: MockServer, sid: str, chat_url: str) -> None:
    with pytest.raises(httpx.ReadTimeout) as info:
        stream_raw(chat_url, chat_body(stream=True), headers(sid, "stall_mid_stream"), timeout=0.3)
    e = last(server, sid)
    assert e["stalled"] and e["chunks_sent"] == 2 and e["client_disconnected"] and e["complete"]
    assert info.value.received.decode() == e["wire"]  # type: ignore[attr-defined]


def test_timeout_hangs_without_headers(server: MockServer, sid: str, chat_url: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        HTTP.post(chat_url, json=chat_body(), headers=headers(sid, "timeout"), timeout=0.3)
    assert time.monotonic() - t0 < 1.0
    e = last(server, sid)
    assert e["status"] is None and e["wire"] == "" and e["client_disconnected"] and e["complete"]
    assert e["request_id"] is None  # no headers, so no id ever reached the client


def test_headers_delay(server: MockServer, sid: str, chat_url: str) -> None:
    t0 = time.monotonic()
    assert (
        HTTP.post(chat_url, json=chat_body(), headers=headers(sid, {"headers_delay": 0.15})).status_code
        == 200
    )
    assert time.monotonic() - t0 >= 0.15


@pytest.mark.parametrize("stream", [False, True])
def test_reset_before_headers(server: MockServer, sid: str, chat_url: str, stream: bool) -> None:
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        HTTP.post(chat_url, json=chat_body(stream=stream), headers=headers(sid, "reset"))
    e = last(server, sid)
    assert e["status"] is None and e["aborted"] and e["wire"] == "" and e["request_id"] is None


# --- OpenAI's own request validation --------------------------------------------------------------


def test_missing_or_malformed_auth_is_401(server: MockServer, sid: str, chat_url: str) -> None:
    for auth in (None, "Bearer", "Basic abc"):
        h = {"x-mock-session": sid} | ({"Authorization": auth} if auth else {})
        r = HTTP.post(chat_url, json=chat_body(), headers=h)
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["message"].startswith("You didn't provide an API key.")
        assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", None, None)
        assert r.headers["x-request-id"].startswith("req_")
    entries = server.journal(sid)
    assert [e["status"] for e in entries] == [401, 401, 401]
    assert all(e["error_kind"] == "auth_error" for e in entries)
    assert entries[0]["auth_fingerprint"] is None  # no credential at all


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        (b"{not json", None, "We could not parse the JSON body"),
        ({"messages": [{"role": "user", "content": "x"}]}, None, "you must provide a model parameter"),
        ({"model": 3, "messages": [{"role": "user", "content": "x"}]}, "model", "Invalid type for 'model'"),
        ({"model": "m"}, "messages", "Missing required parameter: 'messages'."),
        ({"model": "m", "messages": []}, "messages", "empty array"),
        ({"model": "m", "messages": "hi"}, "messages", "expected an array, but got a string"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role", "messages[0].role"),
        ({"model": "m", "messages": ONE, "stream": "yes"}, "stream", "boolean"),
        ({"model": "m", "messages": ONE, "stream_options": {}}, "stream_options", "only allowed when"),
        ({"model": "m", "messages": ONE, "tools": [{"type": "function"}]}, "tools[0].function.name",
         "tools[0].function.name"),
    ],
)  # fmt: skip
def test_body_validation(
    server: MockServer, sid: str, chat_url: str, body: Any, param: Any, needle: str
) -> None:
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = HTTP.post(chat_url, headers=headers(sid), **kwargs)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param and needle in err["message"]
    assert last(server, sid)["status"] == 400
