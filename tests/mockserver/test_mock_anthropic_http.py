"""Every preset over raw HTTP against the Anthropic personality, checked against provider-wire-formats.md §4 and
against the shapes of the real recordings in ../shared/real-cassettes.

Expectations come from the journal, the truth and the recordings, never from constants the personality also uses.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from mock_helpers import HTTP, stream_raw

from harness.real_cassettes import chat_recordings, load
from mockserver.scenarios import PRESETS
from mockserver.testing import MockServer
from mockserver.truth import count_tokens

FAKE_KEY = "sk-ant-api03-FAKE0123456789abcdef0123"
VERSION = "2023-06-01"
REQUEST_ID = re.compile(r"^req_011C[1-9A-HJ-NP-Za-km-z]{20}$")
MESSAGE_ID = re.compile(r"^msg_01[1-9A-HJ-NP-Za-km-z]{22}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
RATE_LIMIT_HEADERS = {
    f"anthropic-ratelimit-{what}-{field}"
    for what in ("requests", "tokens", "input-tokens", "output-tokens")
    for field in ("limit", "remaining", "reset")
}
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    }
]
ERROR_PRESETS = sorted(n for n, p in PRESETS.items() if p.error is not None and p.status is None)


@pytest.fixture
def url(server: MockServer) -> str:
    return f"{server.url}/anthropic/v1/messages"


def body(stream: bool = False, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Say something, café-style!"}],
    }
    if stream:
        out["stream"] = True
    out.update(extra)
    return out


def headers(
    sid: str, scenario: str | dict[str, Any] | None = None, *, bearer: bool = False
) -> dict[str, str]:
    out = {"anthropic-version": VERSION, "x-mock-session": sid}
    out.update({"Authorization": f"Bearer {FAKE_KEY}"} if bearer else {"x-api-key": FAKE_KEY})
    if scenario is not None:
        out["x-mock-scenario"] = scenario if isinstance(scenario, str) else json.dumps(scenario)
    return out


def last(server: MockServer, sid: str) -> dict[str, Any]:
    entries = server.journal(sid)
    assert entries, "nothing journaled"
    return entries[-1]


def events(raw: bytes) -> list[tuple[str, str]]:
    """(event name, data) per SSE block; every block must have exactly one of each."""
    out = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        out.append((lines[0][len("event: ") :], lines[1][len("data: ") :]))
    return out


def parsed(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    return [(name, json.loads(data)) for name, data in events(raw)]


def text_of(evs: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(
        p["delta"]["text"]
        for n, p in evs
        if n == "content_block_delta" and p["delta"]["type"] == "text_delta"
    )


def real_recording(name: str) -> Any:
    (path,) = [r.path for r in chat_recordings("anthropic") if r.name == name]
    return load(path)


# --- auth and validation --------------------------------------------------------------------------


@pytest.mark.parametrize("bearer", [False, True], ids=["x-api-key", "bearer"])
def test_both_credential_forms_are_accepted_and_fingerprinted(
    server: MockServer, sid: str, url: str, bearer: bool
) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, bearer=bearer))
    e = last(server, sid)
    assert r.status_code == 200
    assert e["auth_fingerprint"] == hashlib.sha256(FAKE_KEY.encode()).hexdigest()[:12]
    shown = e["request_headers"]["authorization" if bearer else "x-api-key"]
    assert FAKE_KEY not in json.dumps(e) and "[REDACTED]" in shown


def test_missing_credentials_are_a_401_authentication_error(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers={"anthropic-version": VERSION, "x-mock-session": sid})
    e = last(server, sid)
    assert r.status_code == 401 == e["status"] and e["error_kind"] == "auth_error"
    data = r.json()
    assert data["type"] == "error" and data["error"]["type"] == "authentication_error"
    assert data["request_id"] == r.headers["request-id"] == e["request_id"]
    assert not RATE_LIMIT_HEADERS & set(r.headers)


def test_missing_anthropic_version_is_a_400(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers={"x-api-key": FAKE_KEY, "x-mock-session": sid})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"model": None}, "model: Field required"),
        ({"messages": []}, "messages: at least one message is required"),
        (
            {"messages": [{"role": "tool", "content": "x"}]},
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        ({"tools": [{"name": "f"}]}, "tools.0.custom.input_schema: Field required"),
    ],
)
def test_body_validation_like_the_api(
    server: MockServer, sid: str, url: str, patch: dict[str, Any], message: str
) -> None:
    sent = {k: v for k, v in {**body(), **patch}.items() if v is not None}
    r = HTTP.post(url, json=sent, headers=headers(sid))
    assert r.status_code == 400
    assert r.json()["error"] == {"type": "invalid_request_error", "message": message}
    assert last(server, sid)["error_kind"] == "bad_request"


# --- non-streamed ---------------------------------------------------------------------------------


def test_ok_message_body_headers_and_truth(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid))
    e = last(server, sid)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert REQUEST_ID.match(r.headers["request-id"]) and r.headers["request-id"] == e["request_id"]
    assert set(r.headers) >= RATE_LIMIT_HEADERS
    assert all(RFC3339.match(r.headers[h]) for h in RATE_LIMIT_HEADERS if h.endswith("-reset"))
    data = r.json()
    assert MESSAGE_ID.match(data["id"]) and data["type"] == "message" and data["role"] == "assistant"
    assert data["model"].startswith("claude-sonnet-4-5-2025")
    assert data["content"] == [{"type": "text", "text": e["text_sent"]}]
    assert data["stop_reason"] == "end_turn" and data["stop_sequence"] is None
    truth = e["usage_truth"]
    assert data["usage"]["input_tokens"] == truth["input_tokens"] - truth["cached_tokens"]
    assert data["usage"]["output_tokens"] == truth["output_tokens"]


def test_message_has_the_shape_of_a_real_one(server: MockServer, sid: str, url: str) -> None:
    real = real_recording("test_anthropic_tool_output.yaml")[0].response_json()
    r = HTTP.post(url, json=body(tools=TOOLS), headers=headers(sid, "tool_call"))
    data = r.json()
    assert set(data) == set(real)
    assert set(data["usage"]) == set(real["usage"])
    assert set(data["usage"]["cache_creation"]) == set(real["usage"]["cache_creation"])
    (block,) = data["content"]
    assert set(block) == set(real["content"][0]) and block["type"] == "tool_use"
    assert block["id"].startswith("toolu_01") and isinstance(block["input"], dict)
    assert block["input"] == json.loads(last(server, sid)["tool_calls_sent"][0]["arguments"])
    assert data["stop_reason"] == "tool_use"


def test_cached_tokens_are_left_out_of_input_tokens(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, {"preset": "usage_details", "cached_tokens": 6}))
    truth = last(server, sid)["usage_truth"]
    usage = r.json()["usage"]
    assert usage["cache_read_input_tokens"] == truth["cached_tokens"] == 6
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == truth["input_tokens"]
    assert [b["type"] for b in r.json()["content"]] == ["thinking", "text"]
    assert usage["output_tokens"] == truth["output_tokens"]  # thinking is inside output_tokens


@pytest.mark.parametrize("mode", ["null_usage", "missing_usage"])
def test_null_and_missing_usage(server: MockServer, sid: str, url: str, mode: str) -> None:
    data = HTTP.post(url, json=body(), headers=headers(sid, mode)).json()
    if mode == "null_usage":
        assert data["usage"] is None
    else:
        assert "usage" not in data
    assert last(server, sid)["usage_sent"] is None


def test_refusal_is_a_stop_reason_with_partial_text(server: MockServer, sid: str, url: str) -> None:
    data = HTTP.post(url, json=body(), headers=headers(sid, "filtered_output")).json()
    e = last(server, sid)
    assert data["stop_reason"] == "refusal" == e["finish_reason_sent"]
    assert data["content"][0]["text"] == e["text_sent"] != ""


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ERROR_PRESETS)
def test_every_error_preset_in_anthropic_form(server: MockServer, sid: str, url: str, preset: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, preset))
    e = last(server, sid)
    assert r.status_code == e["status"] >= 400 and e["error_kind"] == preset
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert list(data) == ["type", "error", "request_id"] and data["type"] == "error"
    assert data["request_id"] == r.headers["request-id"] == e["request_id"]
    assert REQUEST_ID.match(data["request_id"])
    assert data["error"]["type"] in {
        "invalid_request_error", "authentication_error", "billing_error", "permission_error", "not_found_error",
        "rate_limit_error", "api_error", "timeout_error", "overloaded_error",
    }  # fmt: skip
    assert data["error"]["message"]


@pytest.mark.parametrize(
    ("preset", "status", "etype"),
    [
        ("overloaded", 529, "overloaded_error"),
        ("rate_limit", 429, "rate_limit_error"),
        ("auth_error", 401, "authentication_error"),
        ("permission_denied", 403, "permission_error"),
        ("not_found", 404, "not_found_error"),
        ("server_error", 500, "api_error"),
        ("gateway_timeout", 504, "timeout_error"),
        ("quota_exhausted", 400, "invalid_request_error"),
        ("context_length", 400, "invalid_request_error"),
        ("content_filter", 400, "invalid_request_error"),
    ],
)
def test_statuses_and_types_are_anthropic_ones(
    server: MockServer, sid: str, url: str, preset: str, status: int, etype: str
) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, preset))
    assert (r.status_code, r.json()["error"]["type"]) == (status, etype)


def test_prose_only_faults_carry_anthropic_wording(server: MockServer, sid: str, url: str) -> None:
    def message(preset: str) -> str:
        return str(HTTP.post(url, json=body(), headers=headers(sid, preset)).json()["error"]["message"])

    overflow = re.match(r"^prompt is too long: (\d+) tokens > (\d+) maximum$", message("context_length"))
    assert overflow and int(overflow.group(1)) > int(overflow.group(2))
    assert message("quota_exhausted").startswith(
        "Your credit balance is too low to access the Anthropic API."
    )
    assert message("content_filter") == "Output blocked by content filtering policy"
    assert message("not_found") == "model: claude-sonnet-4-5"  # as recorded from the live API
    assert message("overloaded") == "Overloaded"


def test_real_error_bodies_have_the_same_shape(server: MockServer, sid: str, url: str) -> None:
    real = real_recording("test_model_name_suggestion[anthropic].yaml")[0]
    mine = HTTP.post(url, json=body(), headers=headers(sid, "not_found"))
    assert mine.status_code == real.status
    assert set(mine.json()) == set(real.response_json())
    assert set(mine.json()["error"]) == set(real.response_json()["error"])


def test_rate_limit_retry_after_and_exhausted_budget(server: MockServer, sid: str, url: str) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    r = HTTP.post(url, json=body(), headers=headers(sid, {"preset": "rate_limit", "retry_after": 7}))
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert "retry-after-ms" not in r.headers  # Anthropic sends seconds only
    assert r.headers["anthropic-ratelimit-input-tokens-remaining"] == "0"
    reset = datetime.strptime(r.headers["anthropic-ratelimit-input-tokens-reset"], "%Y-%m-%dT%H:%M:%SZ")
    assert (reset.replace(tzinfo=UTC) - before).total_seconds() >= 6


def test_fractional_retry_after_stays_fractional(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, {"preset": "overloaded", "retry_after": 0.01}))
    assert r.status_code == 529 and r.headers["retry-after"] == "0.01"


@pytest.mark.parametrize(
    ("status", "etype", "code"),
    [(400, "invalid_request_error", None), (429, "rate_limit_error", "enforced_spend_limit_reached"),
     (402, "billing_error", None)],
)  # fmt: skip
def test_quota_forms_forbid_retries(
    server: MockServer, sid: str, url: str, status: int, etype: str, code: str | None
) -> None:
    spec = {"preset": "quota_exhausted"} if status == 400 else {"preset": "quota_exhausted", "status": status}
    r = HTTP.post(url, json=body(), headers=headers(sid, spec))
    assert r.status_code == status and r.headers["x-should-retry"] == "false"
    error = r.json()["error"]
    assert error["type"] == etype
    assert (error.get("details") or {}).get("error_code") == code


def test_error_in_200(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, "error_in_200"))
    assert r.status_code == 200 and r.json()["type"] == "error" and r.json()["error"]["type"] == "api_error"


@pytest.mark.parametrize("preset", ["malformed_body", "wrong_content_type"])
def test_body_faults(server: MockServer, sid: str, url: str, preset: str) -> None:
    r = HTTP.post(url, json=body(), headers=headers(sid, preset))
    assert r.status_code == 200
    if preset == "wrong_content_type":
        assert r.headers["content-type"].startswith("text/html") and r.json()["type"] == "message"
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.content)


# --- streamed -------------------------------------------------------------------------------------


def test_ok_stream_framing_usage_and_terminator(server: MockServer, sid: str, url: str) -> None:
    status, raw = stream_raw(url, body(stream=True), headers(sid, {"preset": "ok", "chunks": 5}))
    e = last(server, sid)
    assert status == 200 and e["response_headers"]["Content-Type"].startswith("text/event-stream")
    evs = parsed(raw)
    names = [n for n, _ in evs]
    assert all(p["type"] == n for n, p in evs), "every data.type repeats its event name"
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert names.count("content_block_delta") == e["chunks_sent"] == 5
    assert b"[DONE]" not in raw and b'data: {"type": "ping"}' in raw
    assert text_of(evs) == e["text_sent"]
    truth = e["usage_truth"]
    start = evs[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and MESSAGE_ID.match(start["id"])
    assert start["usage"]["input_tokens"] == truth["input_tokens"] and start["usage"]["output_tokens"] == 1
    delta = dict(evs)["message_delta"]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == truth["output_tokens"]  # cumulative, not an increment
    assert e["terminated"] and e["finish_reason_sent"] == "end_turn"


def test_stream_events_have_the_shape_of_real_ones(server: MockServer, sid: str, url: str) -> None:
    real = parsed(real_recording("test_request_stream_fallback_for_high_max_tokens.yaml")[0].response_body)
    _, raw = stream_raw(url, body(stream=True), headers(sid))
    mine = parsed(raw)
    assert [n for n, _ in mine if n != "content_block_delta"] == [
        n for n, _ in real if n != "content_block_delta"
    ]
    real_start, my_start = real[0][1]["message"], mine[0][1]["message"]
    assert set(my_start) == set(real_start) and set(my_start["usage"]) == set(real_start["usage"])
    real_delta, my_delta = dict(real)["message_delta"], dict(mine)["message_delta"]
    assert set(my_delta) == set(real_delta) and set(my_delta["usage"]) == set(real_delta["usage"])
    assert dict(mine)["content_block_start"] == dict(real)["content_block_start"]


def test_tool_call_stream(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True, tools=TOOLS), headers(sid, "tool_call"))
    e = last(server, sid)
    evs = parsed(raw)
    start = next(p for n, p in evs if n == "content_block_start")
    assert start["content_block"] == {
        "type": "tool_use", "id": e["tool_calls_sent"][0]["id"], "name": "get_weather", "input": {},
    }  # fmt: skip
    fragments = [p["delta"]["partial_json"] for n, p in evs if n == "content_block_delta"]
    assert fragments[0] == "" and all(
        p["delta"]["type"] == "input_json_delta" for n, p in evs if n == "content_block_delta"
    )
    assert json.loads("".join(fragments)) == json.loads(e["tool_calls_sent"][0]["arguments"])
    assert dict(evs)["message_delta"]["delta"]["stop_reason"] == "tool_use"


def test_keepalives_and_empty_deltas(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True), headers(sid, {"preset": "empty_chunks", "empty_chunks": 3}))
    e = last(server, sid)
    evs = parsed(raw)
    empties = [
        p for n, p in evs if n == "content_block_delta" and p["delta"] == {"type": "text_delta", "text": ""}
    ]
    assert len(empties) == 3 and [n for n, _ in evs].count("ping") >= 3
    assert text_of(evs) == e["text_sent"]


@pytest.mark.parametrize(
    ("kind", "etype", "message"),
    [("overloaded", "overloaded_error", "Overloaded"), ("server_error", "api_error", "Internal server error"),
     ("content_filter", "invalid_request_error", "Output blocked by content filtering policy")],
)  # fmt: skip
def test_inband_error_event(
    server: MockServer, sid: str, url: str, kind: str, etype: str, message: str
) -> None:
    status, raw = stream_raw(
        url, body(stream=True), headers(sid, {"preset": "error_mid_stream", "error_after_kind": kind})
    )
    e = last(server, sid)
    evs = parsed(raw)
    assert status == 200 and e["inband_error"] == kind and not e["terminated"]
    name, error = evs[-1]
    assert name == "error" and "message_stop" not in [n for n, _ in evs]
    assert error == {
        "type": "error", "error": {"details": None, "type": etype, "message": message}, "request_id": e["request_id"],
    }  # fmt: skip
    assert text_of(evs) == e["text_sent"] != ""


def test_truncated_stream_has_no_message_stop(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True), headers(sid, "truncated_stream"))
    evs = parsed(raw)
    assert evs[-1][0] == "message_delta" and not last(server, sid)["terminated"]


def test_malformed_event(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True), headers(sid, "malformed_chunk"))
    name, data = events(raw)[-1]
    assert name == "content_block_delta" and last(server, sid)["malformed"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)


@pytest.mark.parametrize("mode", ["null_usage", "missing_usage"])
def test_stream_null_and_missing_usage(server: MockServer, sid: str, url: str, mode: str) -> None:
    _, raw = stream_raw(url, body(stream=True), headers(sid, mode))
    evs = dict(parsed(raw))
    for event, holder in (
        ("message_start", evs["message_start"]["message"]),
        ("message_delta", evs["message_delta"]),
    ):
        if mode == "null_usage":
            assert holder["usage"] is None, event
        else:
            assert "usage" not in holder, event
    assert last(server, sid)["usage_sent"] is None


def test_thinking_block_precedes_text(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(
        url, body(stream=True), headers(sid, {"preset": "usage_details", "reasoning_tokens": 4})
    )
    evs = parsed(raw)
    starts = [p["content_block"]["type"] for n, p in evs if n == "content_block_start"]
    assert starts == ["thinking", "text"]
    kinds = [p["delta"]["type"] for n, p in evs if n == "content_block_delta"]
    assert kinds[:2] == ["thinking_delta", "signature_delta"]
    assert text_of(evs) == last(server, sid)["text_sent"]  # thinking is not output text


def test_abort_mid_stream_drops_the_connection(server: MockServer, sid: str, url: str) -> None:
    import httpx

    with pytest.raises(httpx.HTTPError) as info:
        stream_raw(url, body(stream=True), headers(sid, "abort_mid_stream"))
    e = last(server, sid)
    received = info.value.received  # type: ignore[attr-defined]
    assert e["aborted"] and e["aborted_after_chunks"] == 3 and b"message_stop" not in received


def test_parallel_tool_calls_stream_one_block_each_in_sequence(
    server: MockServer, sid: str, url: str
) -> None:
    """Each parallel call is its own tool_use block: started, filled and stopped before the next index starts."""
    spec = {"tool_calls": 3, "chunks": 4}
    _, raw = stream_raw(url, body(stream=True, tools=TOOLS), headers(sid, spec))
    e = last(server, sid)
    sent = e["tool_calls_sent"]
    evs = parsed(raw)
    blocks = [p for n, p in evs if n.startswith("content_block")]
    indexes = [p["index"] for p in blocks]
    assert indexes == sorted(indexes) and sorted(set(indexes)) == [0, 1, 2]
    for index, call in enumerate(sent):
        mine = [p for p in blocks if p["index"] == index]
        assert mine[0]["type"] == "content_block_start" and mine[-1]["type"] == "content_block_stop"
        assert mine[0]["content_block"] == {
            "type": "tool_use",
            "id": call["id"],
            "name": call["name"],
            "input": {},
        }
        fragments = "".join(p["delta"]["partial_json"] for p in mine if p["type"] == "content_block_delta")
        assert json.loads(fragments) == json.loads(call["arguments"])
    assert len({c["id"] for c in sent}) == 3 and len({c["arguments"] for c in sent}) == 3
    assert dict(evs)["message_delta"]["delta"]["stop_reason"] == "tool_use"
    tool_tokens = sum(count_tokens(c["name"]) + count_tokens(c["arguments"]) for c in sent)
    assert e["usage_truth"]["output_tokens"] == tool_tokens


def test_parallel_tool_calls_completion(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(tools=TOOLS), headers=headers(sid, "parallel_tool_calls"))
    e = last(server, sid)
    content = r.json()["content"]
    got = [(b["id"], b["name"], b["input"]) for b in content]
    assert got == [(c["id"], c["name"], json.loads(c["arguments"])) for c in e["tool_calls_sent"]]
    assert len(got) == 2 and r.json()["stop_reason"] == "tool_use"
