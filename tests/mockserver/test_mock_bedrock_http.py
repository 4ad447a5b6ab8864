"""Every preset over raw HTTP against the Bedrock personality, checked against provider-wire-formats.md §6.

Frames are decoded with botocore's own ``EventStreamBuffer`` (never the mock's encoder), and expectations come from the
journal and the truth, never from constants.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, EventStreamMessage
from mock_helpers import HTTP, stream_raw

from harness.real_cassettes import Interaction, chat_recordings, load
from mockserver import aws_eventstream as es
from mockserver.personalities.bedrock import ERRORS
from mockserver.scenarios import PRESETS
from mockserver.testing import MockServer
from mockserver.truth import count_tokens

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ENCODED = "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=AKIAMOCKFAKE00000001/20260101/us-east-1/bedrock/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, Signature=" + "ab" * 32
)
ERROR_PRESETS = sorted(n for n, p in PRESETS.items() if p.error is not None and p.status is None)
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "inputSchema": {
                    "json": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                        "required": ["city", "days"],
                    }
                },
            }
        }
    ]
}


def body(**extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "messages": [{"role": "user", "content": [{"text": "Say something, café-style!"}]}],
        "system": [{"text": "You are terse."}],
        "inferenceConfig": {"maxTokens": 64},
    }
    out.update(extra)
    return out


def url(server: MockServer, stream: bool = False, model: str = ENCODED) -> str:
    return f"{server.url}/bedrock/model/{model}/{'converse-stream' if stream else 'converse'}"


def headers(
    sid: str, scenario: str | dict[str, Any] | None = None, auth: str | None = SIGV4, **extra: str
) -> dict[str, str]:
    out = {
        "x-mock-session": sid,
        "X-Amz-Date": "20260101T000000Z",
        "Content-Type": "application/json",
        **extra,
    }
    if auth is not None:
        out["Authorization"] = auth
    if scenario is not None:
        out["x-mock-scenario"] = scenario if isinstance(scenario, str) else json.dumps(scenario)
    return out


def last(server: MockServer, sid: str) -> dict[str, Any]:
    entries = server.journal(sid)
    assert entries, "nothing journaled"
    return entries[-1]


def decode(raw: bytes) -> list[EventStreamMessage]:
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return list(buffer)


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    return [(m.headers[":event-type"], json.loads(m.payload)) for m in decode(raw)]


def expected_input(b: dict[str, Any]) -> int:
    parts = [b.get("system", [])] + [m["content"] for m in b["messages"]]
    total = sum(sum(count_tokens(p["text"]) for p in content) + 4 for content in parts if content) + 3
    return total + sum(count_tokens(json.dumps(t)) for t in b.get("toolConfig", {}).get("tools", []))


# --- the encoder ----------------------------------------------------------------------------------


def test_encoder_round_trips_through_botocore() -> None:
    raw = es.event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"caf\xc3\xa9"}}')
    (message,) = decode(raw)
    assert message.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(message.payload)["delta"]["text"] == "café"
    assert int.from_bytes(raw[:4], "big") == len(raw)
    with pytest.raises(ChecksumMismatch):
        decode(es.corrupt(raw))


# --- success --------------------------------------------------------------------------------------


def test_ok_converse_body_headers_and_truth(server: MockServer, sid: str) -> None:
    b = body()
    r = HTTP.post(url(server), json=b, headers=headers(sid))
    e = last(server, sid)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert UUID.match(r.headers["x-amzn-requestid"]) and r.headers["x-amzn-requestid"] == e["request_id"]
    assert not [h for h in r.headers if "ratelimit" in h or h in ("retry-after", "x-amz-retry-after")]
    assert list(r.json()) == ["metrics", "output", "stopReason", "usage"], "Bedrock sorts its keys"
    data = r.json()
    assert data["output"] == {"message": {"content": [{"text": e["text_sent"]}], "role": "assistant"}}
    assert data["stopReason"] == "end_turn" == e["finish_reason_sent"]
    truth = e["usage_truth"]
    assert truth["input_tokens"] == expected_input(b)
    assert data["usage"] == {
        "cacheReadInputTokenCount": 0,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokenCount": 0,
        "cacheWriteInputTokens": 0,
        "inputTokens": truth["input_tokens"],
        "outputTokens": truth["output_tokens"],
        "serverToolUsage": {},
        "totalTokens": truth["total_tokens"],
    }
    assert e["path"] == f"/bedrock/model/{MODEL}/converse" and e["provider"] == "bedrock"
    assert e["request_headers"]["authorization"] == "AWS4-HMAC-SHA256 [REDACTED]"


def test_cached_input_is_excluded_from_input_tokens(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=body(), headers=headers(sid, "usage_details"))
    truth = last(server, sid)["usage_truth"]
    usage = r.json()["usage"]
    assert usage["cacheReadInputTokens"] == truth["cached_tokens"] == 5
    assert usage["inputTokens"] == truth["input_tokens"] - 5
    assert usage["totalTokens"] == truth["total_tokens"]


@pytest.mark.parametrize(("preset", "present"), [("null_usage", True), ("missing_usage", False)])
def test_null_and_missing_usage(server: MockServer, sid: str, preset: str, present: bool) -> None:
    data = HTTP.post(url(server), json=body(), headers=headers(sid, preset)).json()
    assert ("usage" in data) is present and data.get("usage") is None
    e = last(server, sid)
    assert e["usage_sent"] is None and e["usage_truth"]["total_tokens"] > 0


def test_tool_use_completion(server: MockServer, sid: str) -> None:
    data = HTTP.post(url(server), json=body(toolConfig=TOOLS), headers=headers(sid, "tool_call")).json()
    e = last(server, sid)
    (block,) = data["output"]["message"]["content"]
    sent = e["tool_calls_sent"][0]
    assert block == {
        "toolUse": {"input": json.loads(sent["arguments"]), "name": "get_weather", "toolUseId": sent["id"]}
    }
    assert re.match(r"^tooluse_[A-Za-z0-9_-]{22}$", sent["id"])
    assert data["stopReason"] == "tool_use"


def test_filtered_output_is_a_200_with_content_filtered(server: MockServer, sid: str) -> None:
    data = HTTP.post(url(server), json=body(), headers=headers(sid, "filtered_output")).json()
    e = last(server, sid)
    assert data["stopReason"] == "content_filtered"
    assert data["output"]["message"]["content"] == [{"text": e["text_sent"]}] and e["text_sent"]


def test_arn_model_id_with_encoded_slash(server: MockServer, sid: str) -> None:
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{MODEL}"
    encoded = arn.replace(":", "%3A").replace("/", "%2F")
    r = HTTP.post(url(server, model=encoded), json=body(), headers=headers(sid))
    assert r.status_code == 200
    assert last(server, sid)["path"] == f"/bedrock/model/{arn}/converse"


# --- auth and validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "extra", "code"),
    [
        (None, {}, "MissingAuthenticationTokenException"),
        ("Basic dXNlcjpwYXNz", {}, "IncompleteSignatureException"),
        ("AWS4-HMAC-SHA256 Credential=AKIAMOCK/20260101/us-east-1/bedrock/aws4_request", {},
         "IncompleteSignatureException"),
        (SIGV4.replace("/bedrock/", "/s3/"), {}, "InvalidSignatureException"),
        (SIGV4.replace("content-type;host;", "content-type;"), {}, "InvalidSignatureException"),
        ("Bearer", {}, "UnrecognizedClientException"),
    ],
)  # fmt: skip
def test_auth_failures_are_the_front_end_403s(
    server: MockServer, sid: str, auth: str | None, extra: dict[str, str], code: str
) -> None:
    r = HTTP.post(url(server), json=body(), headers=headers(sid, auth=auth, **extra))
    e = last(server, sid)
    assert r.status_code == 403 == e["status"]
    assert r.headers["x-amzn-errortype"].split(":", 1)[0] == code
    assert set(r.json()) == {"message"}
    assert r.headers["x-amzn-requestid"] == e["request_id"]


def test_missing_x_amz_date_is_an_incomplete_signature(server: MockServer, sid: str) -> None:
    hdrs = {k: v for k, v in headers(sid).items() if k != "X-Amz-Date"}
    r = HTTP.post(url(server), json=body(), headers=hdrs)
    assert r.status_code == 403 and r.headers["x-amzn-errortype"].startswith("IncompleteSignatureException:")
    assert "X-Amz-Date" in r.json()["message"]


def test_bearer_api_key_is_accepted_and_fingerprinted(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=body(), headers=headers(sid, auth="Bearer ABSKbW9jay1rZXk="))
    e = last(server, sid)
    assert r.status_code == 200 and e["request_headers"]["authorization"] == "Bearer [REDACTED]"
    assert e["auth_fingerprint"]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"{not json", "Malformed input request"),
        (json.dumps({"messages": []}).encode(), "must start with a user message"),
        (json.dumps({"system": []}).encode(), "Value null at 'messages'"),
        (json.dumps({"messages": [{"role": "system", "content": []}]}).encode(),
         "Member must satisfy enum value set: [user, assistant]"),
    ],
)  # fmt: skip
def test_invalid_bodies_are_validation_exceptions(
    server: MockServer, sid: str, payload: bytes, needle: str
) -> None:
    r = HTTP.post(url(server), content=payload, headers=headers(sid))
    assert r.status_code == 400 and r.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert needle in r.json()["message"]
    assert last(server, sid)["error_kind"] == "bad_request"


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ERROR_PRESETS)
def test_every_error_preset(server: MockServer, sid: str, preset: str) -> None:
    r = HTTP.post(url(server), json=body(), headers=headers(sid, preset))
    e = last(server, sid)
    status, code, message = ERRORS[preset]
    assert r.status_code == status == e["status"]
    assert r.json() == {"message": message}
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-amzn-requestid"] == e["request_id"]
    if code is None:
        assert "x-amzn-errortype" not in r.headers
    else:
        assert re.match(
            rf"^{code}:http://internal\.amazon\.com/coral/[a-z.]+/$", r.headers["x-amzn-errortype"]
        )
    assert "x-amz-retry-after" not in r.headers or PRESETS[preset].retry_after is not None
    assert not [h for h in r.headers if "ratelimit" in h or h == "retry-after"]
    assert e["error_kind"] == preset


def test_retry_after_is_x_amz_retry_after_in_ms(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=body(), headers=headers(sid, {"preset": "rate_limit", "retry_after": 7}))
    assert r.status_code == 429 and r.headers["x-amz-retry-after"] == "7000"
    assert "retry-after" not in r.headers


def test_error_in_200_keeps_the_error_type(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=body(), headers=headers(sid, "error_in_200"))
    assert r.status_code == 200 and r.headers["x-amzn-errortype"].startswith("InternalServerException:")
    assert set(r.json()) == {"message"}


def test_malformed_body_and_wrong_content_type(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=body(), headers=headers(sid, "malformed_body"))
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    r = HTTP.post(url(server), json=body(), headers=headers(sid, "wrong_content_type"))
    assert r.headers["content-type"].startswith("text/html") and r.json()["output"]


# --- streams --------------------------------------------------------------------------------------


def test_stream_framing_order_and_usage(server: MockServer, sid: str) -> None:
    b = body()
    status, raw = stream_raw(url(server, stream=True), b, headers(sid, {"preset": "ok", "chunks": 5}))
    e = last(server, sid)
    assert status == 200 and e["response_headers"]["Content-Type"] == "application/vnd.amazon.eventstream"
    messages = decode(raw)
    assert all(
        list(m.headers) == [":event-type", ":content-type", ":message-type"]
        and m.headers[":message-type"] == "event"
        for m in messages
    )
    evs = [(m.headers[":event-type"], json.loads(m.payload)) for m in messages]
    names = [n for n, _ in evs]
    assert names == ["messageStart"] + ["contentBlockDelta"] * 5 + [
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert all(re.match(r"^[a-zA-Z0-9]+$", p["p"]) for _, p in evs), "every payload is padded with 'p'"
    assert all(list(p) == sorted(p) for _, p in evs), "payload keys are sorted"
    assert "".join(p["delta"]["text"] for n, p in evs if n == "contentBlockDelta") == e["text_sent"]
    assert evs[0][1]["role"] == "assistant" and evs[-2][1]["stopReason"] == "end_turn"
    usage = evs[-1][1]["usage"]
    truth = e["usage_truth"]
    assert truth["input_tokens"] == expected_input(b)
    assert usage == {
        "inputTokens": truth["input_tokens"],
        "outputTokens": truth["output_tokens"],
        "serverToolUsage": {},
        "totalTokens": truth["total_tokens"],
    }, "no cache counters in stream metadata when nothing was cached (as recorded)"
    assert evs[-1][1]["metrics"]["latencyMs"] >= 1
    assert e["terminated"] and e["chunks_sent"] == 5 and e["usage_sent"] == usage


def test_stream_cached_tokens_in_metadata(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server, stream=True), body(), headers(sid, "usage_details"))
    usage = events(raw)[-1][1]["usage"]
    truth = last(server, sid)["usage_truth"]
    assert usage["cacheReadInputTokens"] == truth["cached_tokens"] == 5
    assert usage["inputTokens"] + usage["cacheReadInputTokens"] == truth["input_tokens"]


@pytest.mark.parametrize(("preset", "present"), [("null_usage", True), ("missing_usage", False)])
def test_stream_null_and_missing_usage(server: MockServer, sid: str, preset: str, present: bool) -> None:
    _, raw = stream_raw(url(server, stream=True), body(), headers(sid, preset))
    name, metadata = events(raw)[-1]
    assert name == "metadata" and ("usage" in metadata) is present and metadata.get("usage") is None
    assert last(server, sid)["usage_sent"] is None


def test_stream_tool_block_has_a_start_and_partial_json(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server, stream=True), body(toolConfig=TOOLS), headers(sid, "tool_call"))
    e = last(server, sid)
    evs = events(raw)
    sent = e["tool_calls_sent"][0]
    start = next(p for n, p in evs if n == "contentBlockStart")
    assert start["start"] == {"toolUse": {"name": "get_weather", "toolUseId": sent["id"]}}
    fragments = [p["delta"]["toolUse"]["input"] for n, p in evs if n == "contentBlockDelta"]
    assert "".join(fragments) == sent["arguments"] and len(fragments) > 1
    assert next(p for n, p in evs if n == "messageStop")["stopReason"] == "tool_use"


def test_no_terminator_frame_exists_so_truncation_drops_stop_and_metadata(
    server: MockServer, sid: str
) -> None:
    _, raw = stream_raw(url(server, stream=True), body(), headers(sid, "truncated_stream"))
    e = last(server, sid)
    names = [n for n, _ in events(raw)]
    assert names[-1] == "contentBlockStop" and "messageStop" not in names and "metadata" not in names
    assert not e["terminated"] and e["finish_reason_sent"] is None


def test_no_keepalives_only_empty_deltas(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server, stream=True), body(), headers(sid, "empty_chunks"))
    e = last(server, sid)
    evs = events(raw)
    empties = [p for n, p in evs if n == "contentBlockDelta" and p["delta"] == {"text": ""}]
    assert len(empties) == 4 and e["frames_sent"] == len(evs)
    assert "".join(p["delta"]["text"] for n, p in evs if n == "contentBlockDelta") == e["text_sent"]


@pytest.mark.parametrize(
    ("kind", "member"),
    [
        ("server_error", "internalServerException"),
        ("rate_limit", "throttlingException"),
        ("overloaded", "serviceUnavailableException"),
        ("gateway_timeout", "modelStreamErrorException"),
        ("bad_request", "validationException"),
    ],
)
def test_inband_exception_frame(server: MockServer, sid: str, kind: str, member: str) -> None:
    _, raw = stream_raw(
        url(server, stream=True),
        body(),
        headers(sid, {"preset": "error_mid_stream", "error_after_kind": kind}),
    )
    e = last(server, sid)
    messages = decode(raw)
    error = messages[-1]
    assert error.headers == {
        ":exception-type": member,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert json.loads(error.payload)["message"]
    text = "".join(json.loads(m.payload)["delta"]["text"] for m in messages[1:-1])
    assert text == e["text_sent"] and e["inband_error"] == kind and e["chunks_sent"] == 3


def test_malformed_frame_has_a_bad_crc(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server, stream=True), body(), headers(sid, "malformed_chunk"))
    e = last(server, sid)
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    good = [next(buffer) for _ in range(3)]  # messageStart + 2 deltas
    assert [m.headers[":event-type"] for m in good] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
    ]
    with pytest.raises(ChecksumMismatch):
        next(buffer)
    assert e["malformed"]


def test_stream_errors_before_the_stream_are_json(server: MockServer, sid: str) -> None:
    status, raw = stream_raw(url(server, stream=True), body(), headers(sid, "rate_limit"))
    e = last(server, sid)
    assert status == 429 and json.loads(raw) == {"message": ERRORS["rate_limit"][2]}
    assert e["response_headers"]["x-amzn-ErrorType"].startswith("ThrottlingException:")


# --- the mock's shapes against real recorded Bedrock traffic --------------------------------------


def _recorded(name: str) -> list[Interaction]:
    (path,) = [r.path for r in chat_recordings("bedrock") if r.name == name]
    return load(path)


def test_stream_shapes_match_a_real_claude_recording(server: MockServer, sid: str) -> None:
    (real,) = _recorded("test_bedrock_native_output_stream.yaml")
    _, raw = stream_raw(url(server, stream=True), body(), headers(sid))
    real_messages, mock_messages = decode(real.response_body), decode(raw)
    assert [list(m.headers.items()) for m in mock_messages[:2]] == [
        list(m.headers.items()) for m in real_messages[:2]
    ], "event headers (names, values, order) as the real service sends them"
    real_events = [(m.headers[":event-type"], json.loads(m.payload)) for m in real_messages]
    mock_events = [(m.headers[":event-type"], json.loads(m.payload)) for m in mock_messages]
    assert [n for n, _ in mock_events if n != "contentBlockDelta"] == [
        n for n, _ in real_events if n != "contentBlockDelta"
    ]
    for name in ("messageStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"):
        real_keys = sorted(next(p for n, p in real_events if n == name))
        assert sorted(next(p for n, p in mock_events if n == name)) == real_keys, name
    real_usage = real_events[-1][1]["usage"]
    assert sorted(mock_events[-1][1]["usage"]) == sorted(real_usage)


def test_converse_shapes_match_a_real_claude_recording(server: MockServer, sid: str) -> None:
    (real,) = _recorded("test_bedrock_model_anthropic_model_without_tools.yaml")
    mock = HTTP.post(url(server), json=body(), headers=headers(sid)).json()
    recorded = real.response_json()
    assert sorted(mock) == sorted(recorded)
    assert sorted(mock["usage"]) == sorted(recorded["usage"])
    assert sorted(mock["output"]["message"]) == sorted(recorded["output"]["message"])


def test_parallel_tool_calls_stream_one_block_each_in_sequence(server: MockServer, sid: str) -> None:
    """Each parallel call is its own content block: contentBlockStart, its deltas and contentBlockStop, all keyed by
    one contentBlockIndex, before the next index starts (read with botocore's own event-stream decoder)."""
    spec = {"tool_calls": 3, "chunks": 4, "empty_chunks": 2}
    _, raw = stream_raw(url(server, stream=True), body(toolConfig=TOOLS), headers(sid, spec))
    e = last(server, sid)
    sent = e["tool_calls_sent"]
    blocks = [(n, p) for n, p in events(raw) if n.startswith("contentBlock")]
    indexes = [p["contentBlockIndex"] for _, p in blocks]
    assert indexes == sorted(indexes) and sorted(set(indexes)) == [0, 1, 2]
    for index, call in enumerate(sent):
        mine = [(n, p) for n, p in blocks if p["contentBlockIndex"] == index]
        assert mine[0] == (
            "contentBlockStart",
            {**mine[0][1], "start": {"toolUse": {"name": call["name"], "toolUseId": call["id"]}}},
        )
        assert mine[-1][0] == "contentBlockStop"
        fragments = "".join(p["delta"]["toolUse"]["input"] for n, p in mine if n == "contentBlockDelta")
        assert fragments == call["arguments"]
    assert len({c["id"] for c in sent}) == 3
    assert e["usage_truth"]["output_tokens"] == sum(
        count_tokens(c["name"]) + count_tokens(c["arguments"]) for c in sent
    )


def test_parallel_tool_calls_completion(server: MockServer, sid: str) -> None:
    data = HTTP.post(
        url(server), json=body(toolConfig=TOOLS), headers=headers(sid, "parallel_tool_calls")
    ).json()
    e = last(server, sid)
    got = [b["toolUse"] for b in data["output"]["message"]["content"]]
    assert got == [
        {"input": json.loads(c["arguments"]), "name": c["name"], "toolUseId": c["id"]}
        for c in e["tool_calls_sent"]
    ]
    assert len(got) == 2 and data["stopReason"] == "tool_use"
