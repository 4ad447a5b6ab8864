"""The Mistral personality over raw HTTP: wire details checked against provider-wire-formats.md §7 and the recorded
Mistral traffic. Expectations come from the journal and the truth, never from constants."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from mock_helpers import HTTP, SSE, headers, stream_raw

from mockserver.scenarios import PRESETS
from mockserver.testing import MockServer

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ERROR_PRESETS = sorted(n for n, p in PRESETS.items() if p.error is not None and p.status is None)
GATEWAY = {"auth_error", "permission_denied", "bad_gateway", "service_unavailable", "gateway_timeout"}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture
def url(server: MockServer) -> str:
    return f"{server.url}/mistral/v1/chat/completions"


def body(stream: bool = False, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": "mistral-small-latest",
        "messages": [{"role": "user", "content": "Say something, café-style!"}],
        "stream": stream,
    }
    out.update(extra)
    return out


def last(server: MockServer, sid: str) -> dict[str, Any]:
    return server.journal(sid)[-1]


def test_ok_completion_headers_body_and_truth(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(max_tokens=64), headers=headers(sid))
    e = last(server, sid)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert UUID7.match(r.headers["mistral-correlation-id"])
    assert r.headers["mistral-correlation-id"] == r.headers["x-kong-request-id"] == e["request_id"]
    for name in ("x-ratelimit-limit-req-10-second", "x-ratelimit-remaining-tokens-minute",
                 "x-ratelimit-limit-tokens-month", "x-ratelimit-tokens-query-cost"):  # fmt: skip
        assert r.headers[name].isdigit()
    data = r.json()
    assert list(data) == ["id", "created", "model", "usage", "object", "choices"], "the recorded key order"
    assert re.fullmatch(r"[0-9a-f]{32}", data["id"]) and data["object"] == "chat.completion"
    assert data["choices"][0] == {
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "tool_calls": None, "content": e["text_sent"]},
    }
    truth = e["usage_truth"]
    assert data["usage"] == {
        "prompt_tokens": truth["input_tokens"],
        "total_tokens": truth["total_tokens"],
        "completion_tokens": truth["output_tokens"],
    }


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"max_completion_tokens": 5}, "max_completion_tokens"),
    ],
)
def test_unknown_fields_are_422_extra_forbidden(
    server: MockServer, sid: str, url: str, extra: dict[str, Any], field: str
) -> None:
    r = HTTP.post(url, json=body(stream=True, **extra), headers=headers(sid))
    assert r.status_code == 422
    assert r.json() == {
        "object": "error",
        "message": {
            "detail": [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", field],
                    "msg": "Extra inputs are not permitted",
                    "input": extra[field],
                }
            ]
        },
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert last(server, sid)["request_id"] == r.headers["mistral-correlation-id"]


def test_missing_fields_are_422_missing(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json={"messages": []}, headers=headers(sid))
    detail = r.json()["message"]["detail"]
    assert r.status_code == 422 and [(d["type"], d["loc"]) for d in detail] == [
        ("missing", ["body", "model"])
    ]


def test_missing_key_is_kong_401(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers={"x-mock-session": sid})
    e = last(server, sid)
    assert r.status_code == 401 and r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.json() == {"message": "Unauthorized", "request_id": e["request_id"].replace("-", "")}
    assert "x-ratelimit-limit-req-10-second" not in r.headers


@pytest.mark.parametrize("preset", ERROR_PRESETS)
def test_error_presets(server: MockServer, sid: str, url: str, preset: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, preset))
    e = last(server, sid)
    data = r.json()
    assert r.status_code == e["status"] >= 400 and e["error_kind"] == preset
    assert r.headers["mistral-correlation-id"] == e["request_id"]
    if preset in GATEWAY:
        assert set(data) == {"message", "request_id"}
    else:
        assert list(data) == ["object", "message", "type", "param", "code", "raw_status_code"]
        assert data["object"] == "error" and data["raw_status_code"] == r.status_code
    if (PRESETS[preset].retry_after or 0) > 0:
        assert r.headers["Retry-After"] == "1"


def test_mistral_specific_statuses_and_codes(server: MockServer, sid: str, url: str) -> None:
    def get(preset: str) -> tuple[int, dict[str, Any]]:
        r = HTTP.post(url, json=body(), headers=headers(sid, preset))
        return r.status_code, r.json()

    status, data = get("not_found")
    assert (status, data["type"], data["code"]) == (400, "invalid_model", "1500")
    assert data["message"] == "Invalid model: mistral-small-latest"
    status, data = get("context_length")
    assert (status, data["type"], data["code"]) == (400, "invalid_request_invalid_args", "3051")
    assert re.fullmatch(
        r"Prompt contains \d+ tokens and 0 draft tokens, too large for model with \d+ maximum context length",
        data["message"],
    )
    status, data = get("rate_limit")
    assert (status, data["type"], data["code"]) == (429, "rate_limited", "1300")
    status, data = get("overloaded")
    assert (status, data["type"], data["code"]) == (429, "service_tier_capacity_exceeded", "3505")


@pytest.mark.parametrize(("seconds", "header"), [(7, "7"), (0.01, "0.01"), (2.5, "2.5")])
def test_retry_after_in_seconds(server: MockServer, sid: str, url: str, seconds: float, header: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, {"preset": "rate_limit", "retry_after": seconds}))
    assert r.headers["Retry-After"] == header and "retry-after-ms" not in r.headers


def test_error_in_200_is_a_flat_error_object(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, "error_in_200"))
    assert r.status_code == 200 and r.json()["object"] == "error" and "choices" not in r.json()


def test_stream_usage_on_the_final_content_chunk_and_done(server: MockServer, sid: str, url: str) -> None:
    status, raw = stream_raw(
        url, body(stream=True), headers(sid, {"preset": "empty_chunks", "keepalives": 3})
    )
    e = last(server, sid)
    sse = SSE.parse(raw)
    assert status == 200 and e["response_headers"]["Content-Type"] == "text/event-stream; charset=utf-8"
    assert sse.comments == [], "Mistral sends no keep-alive comments"
    assert sse.data[-1] == "[DONE]" and e["terminated"]
    chunks = sse.chunks()
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["choices"] for c in chunks), "no choices:[] usage chunk"
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop" and final["choices"][0]["delta"] == {"content": ""}
    assert final["usage"]["total_tokens"] == e["usage_truth"]["total_tokens"]
    assert all("usage" not in c for c in chunks[:-1])
    assert sse.text() == e["text_sent"]


@pytest.mark.parametrize(("mode", "present"), [("null_usage", True), ("missing_usage", False)])
def test_stream_null_and_missing_usage(
    server: MockServer, sid: str, url: str, mode: str, present: bool
) -> None:
    _, raw = stream_raw(url, body(stream=True), headers(sid, mode))
    final = SSE.parse(raw).chunks()[-1]
    assert ("usage" in final) is present and final.get("usage") is None


def test_stream_tool_call_is_sent_whole(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True, tools=TOOLS), headers(sid, "tool_call"))
    e = last(server, sid)
    calls = [c for ch in SSE.parse(raw).chunks() for c in ch["choices"][0]["delta"].get("tool_calls") or []]
    assert len(calls) == 1 and set(calls[0]) == {"id", "function", "index"}
    assert re.fullmatch(r"[A-Za-z0-9]{9}", calls[0]["id"])
    assert calls[0]["function"] == {"name": "get_weather", "arguments": e["tool_calls_sent"][0]["arguments"]}
    assert json.loads(calls[0]["function"]["arguments"])["city"]


def test_inband_error_is_a_flat_error_object_without_done(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(
        url, body(stream=True), headers(sid, {"preset": "error_mid_stream", "error_after_kind": "rate_limit"})
    )
    e = last(server, sid)
    sse = SSE.parse(raw)
    error = json.loads(sse.data[-1])
    assert error["object"] == "error" and error["type"] == "rate_limited" and "choices" not in error
    assert "[DONE]" not in sse.data and not e["terminated"] and e["inband_error"] == "rate_limit"
    assert sse.text() == e["text_sent"]
