"""Every preset over raw HTTP against the Ollama personality (provider-wire-formats.md §9).

Expectations come from the journal and the truth, never from constants.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from mock_helpers import HTTP, stream_raw

from harness.schemas import response_errors
from mockserver.scenarios import DEFAULT_STATUS, PRESETS
from mockserver.testing import MockServer

ONE = [{"role": "user", "content": "Say something, café-style!"}]
ERROR_PRESETS = sorted(n for n, p in PRESETS.items() if p.error is not None and p.status is None)
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
DONE_KEYS = [
    "model",
    "created_at",
    "message",
    "done_reason",
    "done",
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
]


def url(server: MockServer) -> str:
    return f"{server.url}/ollama/api/chat"


def hdrs(sid: str, scenario: str | dict[str, Any] | None = None) -> dict[str, str]:
    out = {"x-mock-session": sid}
    if scenario is not None:
        out["x-mock-scenario"] = scenario if isinstance(scenario, str) else json.dumps(scenario)
    return out


def body(stream: bool | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "llama3.2", "messages": ONE, **extra}
    if stream is not None:
        out["stream"] = stream
    return out


def lines(raw: bytes) -> list[dict[str, Any]]:
    text = raw.decode()
    assert text.endswith("\n") and "\n\n" not in text, "NDJSON lines, never a blank one"
    return [json.loads(line) for line in text.split("\n")[:-1]]


def last(server: MockServer, sid: str) -> dict[str, Any]:
    return server.journal(sid)[-1]


def test_completion_body_shape_and_counters(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=body(False), headers=hdrs(sid))
    e = last(server, sid)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=utf-8"
    data = r.json()
    assert list(data) == DONE_KEYS
    assert data["message"] == {"role": "assistant", "content": e["text_sent"]}
    assert data["done"] is True and data["done_reason"] == "stop"
    assert data["prompt_eval_count"] == e["usage_truth"]["input_tokens"]
    assert data["eval_count"] == e["usage_truth"]["output_tokens"]
    assert data["total_duration"] > data["load_duration"] > 0 and data["created_at"].endswith("Z")
    assert not any(k.lower().startswith(("x-request-id", "x-ratelimit")) for k in r.headers)
    assert e["request_id"] is None, "Ollama sends no request id"


def test_stream_is_the_default_and_ndjson(server: MockServer, sid: str) -> None:
    status, raw = stream_raw(url(server), body(None), hdrs(sid, {"preset": "ok", "chunks": 5}))
    e = last(server, sid)
    parts = lines(raw)
    assert status == 200 and e["stream"] is True
    assert e["response_headers"]["Content-Type"] == "application/x-ndjson"
    assert [p["done"] for p in parts] == [False] * 5 + [True]
    assert "".join(p["message"]["content"] for p in parts) == e["text_sent"]
    assert list(parts[-1]) == DONE_KEYS and parts[-1]["message"]["content"] == ""
    assert parts[-1]["eval_count"] == e["usage_truth"]["output_tokens"] and e["terminated"]


@pytest.mark.parametrize("mode", ["null_usage", "missing_usage"])
@pytest.mark.parametrize("stream", [False, True])
def test_usage_modes_omit_the_counters(server: MockServer, sid: str, mode: str, stream: bool) -> None:
    status, raw = stream_raw(url(server), body(stream), hdrs(sid, mode))
    done = lines(raw)[-1] if stream else json.loads(raw)
    assert status == 200 and done["done"] is True
    assert "prompt_eval_count" not in done and "eval_count" not in done
    assert "eval_duration" in done and last(server, sid)["usage_sent"] is None


def test_empty_chunks_are_empty_content_lines_and_no_keepalives(server: MockServer, sid: str) -> None:
    spec = {"preset": "empty_chunks", "empty_chunks": 3, "keepalives": 4}
    _, raw = stream_raw(url(server), body(True), hdrs(sid, spec))
    e = last(server, sid)
    parts = lines(raw)
    empties = [p for p in parts if not p["done"] and p["message"]["content"] == ""]
    assert len(empties) == 3 and e["frames_sent"] == e["chunks_sent"] + 3 + 1


def test_tool_call_arrives_whole(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=body(False, tools=TOOLS), headers=hdrs(sid, "tool_call"))
    _, raw = stream_raw(url(server), body(True, tools=TOOLS), hdrs(sid, "tool_call"))
    first, second = server.journal(sid)
    call = r.json()["message"]["tool_calls"]
    assert call == [
        {
            "function": {
                "name": "get_weather",
                "arguments": json.loads(first["tool_calls_sent"][0]["arguments"]),
            }
        }
    ]
    assert r.json()["done_reason"] == "stop" and r.json()["message"]["content"] == ""
    with_calls = [p for p in lines(raw) if p["message"].get("tool_calls")]
    assert len(with_calls) == 1 and with_calls[0]["done"] is False
    args = with_calls[0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert args == json.loads(second["tool_calls_sent"][0]["arguments"])
    assert second["tool_calls_sent"][0]["id"] is None


@pytest.mark.parametrize("preset", ERROR_PRESETS)
def test_error_presets(server: MockServer, sid: str, preset: str) -> None:
    r = HTTP.post(url(server), json=body(False), headers=hdrs(sid, preset))
    e = last(server, sid)
    assert r.status_code == e["status"] == DEFAULT_STATUS[PRESETS[preset].error or ""]
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    data = r.json()
    assert list(data) == ["error"] and isinstance(data["error"], str) and data["error"]
    if preset == "rate_limit":
        assert r.headers["retry-after"] == "1"
    else:
        assert "retry-after" not in r.headers


def test_error_texts_are_ollamas(server: MockServer, sid: str) -> None:
    def err(preset: str, model: str = "llama3.2") -> str:
        return str(
            HTTP.post(url(server), json=body(False, model=model), headers=hdrs(sid, preset)).json()["error"]
        )

    assert err("not_found", "nope:7b") == 'model "nope:7b" not found, try pulling it first'
    assert err("context_length").startswith("prompt too long; exceeded max context length by ")
    assert err("overloaded") == "server busy, please try again.  maximum pending requests exceeded"


def test_inband_error_line(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server), body(True), hdrs(sid, "error_mid_stream"))
    parts = lines(raw)
    e = last(server, sid)
    assert list(parts[-1]) == ["error"] and all(not p.get("done") for p in parts)
    assert "".join(p["message"]["content"] for p in parts[:-1]) == e["text_sent"]


def test_truncated_stream_has_no_done_line(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server), body(True), hdrs(sid, "truncated_stream"))
    assert not any(p["done"] for p in lines(raw)) and not last(server, sid)["terminated"]


def test_malformed_chunk_is_one_bad_line(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server), body(True), hdrs(sid, "malformed_chunk"))
    *good, bad = raw.decode().split("\n")[:-1]
    assert [json.loads(g)["done"] for g in good] == [False, False]
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)


def test_abort_drops_the_connection(server: MockServer, sid: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        stream_raw(url(server), body(True), hdrs(sid, "abort_mid_stream"))
    assert last(server, sid)["aborted_after_chunks"] == 3


def test_filtered_output_ends_with_stop(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=body(False), headers=hdrs(sid, "filtered_output"))
    e = last(server, sid)
    assert r.json()["done_reason"] == "stop" == e["finish_reason_sent"]
    assert r.json()["message"]["content"] == e["text_sent"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "missing request body"),
        (b"{", "invalid character looking for beginning of value"),
        (json.dumps({"messages": ONE}).encode(), "model is required"),
        (
            json.dumps({"model": "m", "messages": ONE, "stream": "yes"}).encode(),
            "json: cannot unmarshal string into Go struct field ChatRequest.stream of type bool",
        ),
    ],
)
def test_request_validation(server: MockServer, sid: str, payload: bytes, message: str) -> None:
    r = HTTP.post(url(server), content=payload, headers={**hdrs(sid), "content-type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": message}


def test_bearer_is_optional(server: MockServer, sid: str) -> None:
    r = HTTP.post(
        url(server), json=body(False), headers={**hdrs(sid), "Authorization": "Bearer ollama-FAKE-123456"}
    )
    assert (
        r.status_code == 200 and last(server, sid)["request_headers"]["authorization"] == "Bearer [REDACTED]"
    )


def test_go_style_html_escaping(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=body(False), headers=hdrs(sid, {"preset": "ok", "text": "a<b>&c"}))
    assert "\\u003c" in r.text and "\\u0026" in r.text and r.json()["message"]["content"] == "a<b>&c"


#: presets that send a body (a hang, a reset or a stall sends none to validate)
WITH_BODY = sorted(p for p, s in PRESETS.items() if not (s.hang or s.reset or s.stall_after is not None))


@pytest.mark.parametrize("preset", WITH_BODY)
def test_every_preset_fits_the_response_schemas(server: MockServer, sid: str, preset: str) -> None:
    """Whatever the preset, what the mock sends (whole or streamed) validates against Ollama's response schemas."""
    for stream in (False, True):
        try:
            status, raw = stream_raw(url(server), body(stream, tools=TOOLS), hdrs(sid, preset))
        except httpx.RemoteProtocolError as exc:  # abort: a stream's complete lines are still valid
            if not stream:
                continue  # a whole body cut in half is not JSON, on purpose
            status, raw = 200, exc.received  # type: ignore[attr-defined]
            raw = raw[: raw.rfind(b"\n") + 1]
        ctype = last(server, sid)["response_headers"].get("Content-Type", "")
        if preset in ("malformed_body", "malformed_chunk", "wrong_content_type"):
            continue
        if preset == "error_in_200":
            status = 500  # an error body served with 200, on purpose: it must still be Ollama's error shape
        assert response_errors("ollama", status, ctype, raw) == [], (preset, stream)
