"""Every preset over raw HTTP against the Gemini personality, checked against the reference (§5) and the real
recordings' shape. Expectations come from the journal and the truth, never from constants.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import httpx
import pytest
from mock_helpers import HTTP, stream_raw

from harness.real_cassettes import recordings
from mockserver.personalities.gemini import proto_duration
from mockserver.scenarios import PRESETS
from mockserver.testing import MockServer
from mockserver.truth import count_tokens

KEY = "AIzaFAKE-mock-0123456789abcdefghijkl"
MODEL = "gemini-2.5-flash"
BODY: dict[str, Any] = {
    "systemInstruction": {"parts": [{"text": "You are terse."}]},
    "contents": [{"role": "user", "parts": [{"text": "Say something, café-style!"}]}],
    "generationConfig": {"maxOutputTokens": 64},
}
TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                    "required": ["city", "days"],
                },
            }
        ]
    }
]
ERROR_PRESETS = sorted(n for n, p in PRESETS.items() if p.error is not None and p.status is None)
#: preset -> (HTTP status, google.rpc status) the real service uses
ERROR_FORMS = {
    "rate_limit": (429, "RESOURCE_EXHAUSTED"),
    "quota_exhausted": (429, "RESOURCE_EXHAUSTED"),
    "auth_error": (400, "INVALID_ARGUMENT"),
    "permission_denied": (403, "PERMISSION_DENIED"),
    "not_found": (404, "NOT_FOUND"),
    "bad_request": (400, "INVALID_ARGUMENT"),
    "context_length": (400, "INVALID_ARGUMENT"),
    "server_error": (500, "INTERNAL"),
    "service_unavailable": (503, "UNAVAILABLE"),
    "gateway_timeout": (504, "DEADLINE_EXCEEDED"),
    "overloaded": (503, "UNAVAILABLE"),
}


def url(
    server: MockServer, action: str = "generateContent", version: str = "v1beta", sse: bool = True
) -> str:
    query = "?alt=sse" if action == "streamGenerateContent" and sse else ""
    return f"{server.url}/gemini/{version}/models/{MODEL}:{action}{query}"


def hdrs(sid: str, scenario: str | dict[str, Any] | None = None) -> dict[str, str]:
    out = {"x-goog-api-key": KEY, "x-mock-session": sid}
    if scenario is not None:
        out["x-mock-scenario"] = scenario if isinstance(scenario, str) else json.dumps(scenario)
    return out


def last(server: MockServer, sid: str) -> dict[str, Any]:
    entries = server.journal(sid)
    assert entries, "nothing journaled"
    return entries[-1]


def events(raw: bytes) -> list[str]:
    """SSE events split on the CRLF CRLF the real service uses; each must be exactly one ``data:`` line."""
    text = raw.decode()
    assert "\n\n" not in text.replace("\r\n\r\n", ""), "events not separated by CRLF CRLF"
    parts = [p for p in text.split("\r\n\r\n") if p]
    for part in parts:
        assert part.startswith("data: ") and "\n" not in part, f"not a single data line: {part[:60]!r}"
    return [p[len("data: ") :] for p in parts]


def chunks(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for data in events(raw):
        try:
            out.append(json.loads(data))
        except json.JSONDecodeError:
            continue
    return out


def text_of(chunk: dict[str, Any]) -> str:
    parts = ((chunk.get("candidates") or [{}])[0].get("content") or {}).get("parts") or []
    return "".join(p.get("text", "") for p in parts)


def expected_input_tokens(body: dict[str, Any]) -> int:
    texts = [body["systemInstruction"]["parts"]] + [c["parts"] for c in body["contents"]]
    total = sum(sum(count_tokens(p["text"]) for p in parts) + 4 for parts in texts) + 3
    decls = [d for t in body.get("tools", []) for d in t["functionDeclarations"]]
    return total + sum(count_tokens(json.dumps(d)) for d in decls)


# --- routes, auth, ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_both_api_versions_are_routed(server: MockServer, sid: str, version: str) -> None:
    r = HTTP.post(url(server, version=version), json=BODY, headers=hdrs(sid))
    assert r.status_code == 200 and last(server, sid)["provider"] == "gemini"


def test_ok_body_headers_usage_and_response_id(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers=hdrs(sid))
    e = last(server, sid)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=UTF-8"
    assert r.text.startswith('{\n  "candidates": [')  # pretty-printed, as the real non-streamed body
    data = r.json()
    assert list(data) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
    assert data["responseId"] == e["request_id"] and re.fullmatch(r"[A-Za-z0-9_-]{23}", data["responseId"])
    assert data["modelVersion"] == MODEL
    assert data["candidates"] == [
        {
            "content": {"parts": [{"text": e["text_sent"]}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ]
    truth = e["usage_truth"]
    assert truth["input_tokens"] == expected_input_tokens(BODY)
    assert data["usageMetadata"] == {
        "promptTokenCount": truth["input_tokens"],
        "candidatesTokenCount": truth["output_tokens"],
        "totalTokenCount": truth["total_tokens"],
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": truth["input_tokens"]}],
    }
    # Google sends no request-id and no rate-limit headers
    assert not [h for h in r.headers if "request-id" in h or "ratelimit" in h or h == "retry-after"]
    assert r.headers["server"] == "scaffolding on HTTPServer2"


def test_usage_details_are_proto3_counts(server: MockServer, sid: str) -> None:
    r = HTTP.post(
        url(server), json=BODY, headers=hdrs(sid, {"preset": "usage_details", "reasoning_tokens": 9})
    )
    truth = last(server, sid)["usage_truth"]
    meta = r.json()["usageMetadata"]
    assert meta["thoughtsTokenCount"] == truth["reasoning_tokens"] == 9
    assert meta["cachedContentTokenCount"] == truth["cached_tokens"] == 5
    assert meta["candidatesTokenCount"] == truth["output_tokens"] - 9  # thoughts are not candidates
    assert meta["totalTokenCount"] == truth["total_tokens"]


def test_missing_key_is_403_unregistered_callers(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers={"x-mock-session": sid})
    e = last(server, sid)
    assert r.status_code == 403 == e["status"] and e["error_kind"] == "auth_error"
    error = r.json()["error"]
    assert error["status"] == "PERMISSION_DENIED" and "unregistered callers" in error["message"]
    assert e["auth_fingerprint"] is None


def test_query_key_is_accepted_redacted_and_fingerprinted(server: MockServer, sid: str) -> None:
    r = HTTP.post(f"{url(server)}?key={KEY}", json=BODY, headers={"x-mock-session": sid})
    e = last(server, sid)
    assert r.status_code == 200
    assert e["query"] == {"key": "[REDACTED]"} and KEY not in json.dumps(e)
    assert e["auth_fingerprint"] == hashlib.sha256(KEY.encode()).hexdigest()[:12]


def test_header_key_is_redacted_and_fingerprinted(server: MockServer, sid: str) -> None:
    HTTP.post(url(server), json=BODY, headers=hdrs(sid))
    e = last(server, sid)
    assert e["request_headers"]["x-goog-api-key"] == "[REDACTED]"
    assert e["auth_fingerprint"] == hashlib.sha256(KEY.encode()).hexdigest()[:12]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "Invalid JSON payload received"),
        ({"contents": BODY["contents"], "temprature": 1}, 'Unknown name "temprature": Cannot find field.'),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents.parts must not be empty"),
        (
            {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
            "Please use a valid role: user, model.",
        ),
    ],
)
def test_invalid_requests_are_rejected_like_google(
    server: MockServer, sid: str, body: Any, fragment: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = HTTP.post(url(server), content=content, headers={**hdrs(sid), "content-type": "application/json"})
    error = r.json()["error"]
    assert r.status_code == 400 == error["code"] and error["status"] == "INVALID_ARGUMENT"
    assert fragment in error["message"]
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


def test_unknown_method_is_404(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server, action="countTokens"), json=BODY, headers=hdrs(sid))
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", [p for p in ERROR_PRESETS if p in ERROR_FORMS])
def test_error_presets_in_google_form(server: MockServer, sid: str, preset: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers=hdrs(sid, preset))
    e = last(server, sid)
    status, rpc = ERROR_FORMS[preset]
    assert r.status_code == status == e["status"] and e["error_kind"] == preset
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    assert r.text.startswith('{\n  "error": {\n    "code": ')  # Google's two-space pretty print
    error = r.json()["error"]
    assert list(error)[:3] == ["code", "message", "status"]
    assert error["code"] == status and error["status"] == rpc
    assert e["request_id"] is None  # error bodies carry no responseId


def test_rate_limit_retry_info_and_quota_failure(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers=hdrs(sid, {"preset": "rate_limit", "retry_after": 0.25}))
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in r.json()["error"]["details"]}
    assert details["RetryInfo"]["retryDelay"] == proto_duration(0.25) == "0.250s"
    assert "PerMinute" in details["QuotaFailure"]["violations"][0]["quotaId"]
    assert "Help" in details


def test_quota_exhausted_is_a_daily_quota_without_retry_info(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers=hdrs(sid, "quota_exhausted"))
    error = r.json()["error"]
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in error["details"]}
    assert "PerDay" in details["QuotaFailure"]["violations"][0]["quotaId"]
    assert "RetryInfo" not in details
    assert error["message"].startswith("You exceeded your current quota")


def test_auth_error_is_api_key_invalid_and_other_statuses_their_own_form(
    server: MockServer, sid: str
) -> None:
    bad = HTTP.post(url(server), json=BODY, headers=hdrs(sid, "auth_error")).json()["error"]
    assert bad["details"][0]["reason"] == "API_KEY_INVALID" and bad["message"].startswith("API key not valid")
    oauth = HTTP.post(url(server), json=BODY, headers=hdrs(sid, {"preset": "auth_error", "status": 401}))
    assert oauth.status_code == 401 and oauth.json()["error"]["status"] == "UNAUTHENTICATED"
    none = HTTP.post(url(server), json=BODY, headers=hdrs(sid, {"preset": "auth_error", "status": 403}))
    assert none.status_code == 403 and "unregistered callers" in none.json()["error"]["message"]


def test_context_length_message(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers=hdrs(sid, "context_length"))
    message = r.json()["error"]["message"]
    match = re.fullmatch(
        r"The input token count \((\d+)\) exceeds the maximum number of tokens allowed \((\d+)\)\.", message
    )
    assert match and int(match.group(1)) > int(match.group(2))


def test_overloaded_says_so(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers=hdrs(sid, "overloaded"))
    assert r.json()["error"]["message"] == "The model is overloaded. Please try again later."


def test_bad_gateway_is_the_google_front_end_page(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers=hdrs(sid, "bad_gateway"))
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    assert "<title>Error 502 (Server Error)!!1</title>" in r.text


def test_error_in_200_carries_the_natural_code(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers=hdrs(sid, "error_in_200"))
    assert (
        r.status_code == 200
        and r.json()["error"]["code"] == 500
        and r.json()["error"]["status"] == "INTERNAL"
    )


@pytest.mark.parametrize("stream", [False, True])
def test_content_filter_is_a_blocked_prompt(server: MockServer, sid: str, stream: bool) -> None:
    action = "streamGenerateContent" if stream else "generateContent"
    r = HTTP.post(url(server, action), json=BODY, headers=hdrs(sid, "content_filter"))
    e = last(server, sid)
    assert r.status_code == 200 and e["error_kind"] == "content_filter"
    data = chunks(r.content)[0] if stream else r.json()
    assert "candidates" not in data and data["promptFeedback"]["blockReason"] == "SAFETY"
    assert data["responseId"] == e["request_id"]


def test_filtered_output_whole_body_has_no_parts(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server), json=BODY, headers=hdrs(sid, "filtered_output"))
    candidate = r.json()["candidates"][0]
    assert candidate["finishReason"] == "SAFETY" and "content" not in candidate
    assert any(rating.get("blocked") for rating in candidate["safetyRatings"])
    assert last(server, sid)["text_sent"] == ""


# --- streams --------------------------------------------------------------------------------------


def test_stream_framing_running_usage_and_finish(server: MockServer, sid: str) -> None:
    status, raw = stream_raw(
        url(server, "streamGenerateContent"), BODY, hdrs(sid, {"preset": "ok", "chunks": 5})
    )
    e = last(server, sid)
    got = chunks(raw)
    assert status == 200 and e["response_headers"]["Content-Type"] == "text/event-stream"
    assert raw.endswith(b"\r\n\r\n") and b"[DONE]" not in raw and b"event:" not in raw
    assert "".join(text_of(c) for c in got) == e["text_sent"]
    assert {c["responseId"] for c in got} == {e["request_id"]}
    assert [c["candidates"][0].get("finishReason") for c in got] == [None] * (len(got) - 1) + ["STOP"]
    truth = e["usage_truth"]
    prompts = {c["usageMetadata"]["promptTokenCount"] for c in got}
    counts = [c["usageMetadata"]["candidatesTokenCount"] for c in got]
    assert prompts == {truth["input_tokens"]}  # repeated in every chunk
    assert counts == sorted(counts) and counts[-1] == truth["output_tokens"]  # growing snapshot, not deltas
    assert got[-1]["usageMetadata"]["totalTokenCount"] == truth["total_tokens"]
    assert e["terminated"] and e["finish_reason_sent"] == "STOP"
    # the streaming wire style of the real service: '": "' after keys, no space after commas
    assert events(raw)[0].startswith('{"candidates": [{"content": {"parts": [{"text": ')


def test_truncated_stream_has_no_finish_reason(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server, "streamGenerateContent"), BODY, hdrs(sid, "truncated_stream"))
    e = last(server, sid)
    got = chunks(raw)
    assert not e["terminated"] and e["finish_reason_sent"] is None
    assert not any(c["candidates"][0].get("finishReason") for c in got)
    assert "".join(text_of(c) for c in got) == e["text_sent"] != ""


def test_inband_error_has_error_as_first_key(server: MockServer, sid: str) -> None:
    spec = {"preset": "error_mid_stream", "error_after_kind": "overloaded"}
    _, raw = stream_raw(url(server, "streamGenerateContent"), BODY, hdrs(sid, spec))
    e = last(server, sid)
    data = events(raw)
    assert data[-1].startswith('{"error": {"code": 503,')
    assert json.loads(data[-1])["error"]["status"] == "UNAVAILABLE"
    assert "".join(text_of(c) for c in chunks(raw)) == e["text_sent"] and e["inband_error"] == "overloaded"


def test_malformed_chunk_is_cut_json(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server, "streamGenerateContent"), BODY, hdrs(sid, "malformed_chunk"))
    data = events(raw)
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[-1])
    assert last(server, sid)["malformed"]


def test_empty_chunks_without_keepalives(server: MockServer, sid: str) -> None:
    spec = {"preset": "empty_chunks", "empty_chunks": 3, "keepalives": 2}
    _, raw = stream_raw(url(server, "streamGenerateContent"), BODY, hdrs(sid, spec))
    e = last(server, sid)
    got = chunks(raw)
    empties = [c for c in got if c["candidates"][0].get("content", {}).get("parts") == [{"text": ""}]]
    assert len(empties) == 3 + 1  # three empty chunks plus the finish chunk's empty part
    assert b"\r\n:" not in raw and not raw.startswith(b":")  # Gemini has no keep-alive comments
    assert e["frames_sent"] == e["chunks_sent"] + 3 + 1


def test_tool_call_arrives_whole_in_one_chunk(server: MockServer, sid: str) -> None:
    body = {**BODY, "tools": TOOLS}
    _, raw = stream_raw(url(server, "streamGenerateContent"), body, hdrs(sid, "tool_call"))
    e = last(server, sid)
    calls = [p["functionCall"] for c in chunks(raw) for p in c["candidates"][0].get("content", {}).get("parts", [])
             if "functionCall" in p]  # fmt: skip
    (sent,) = e["tool_calls_sent"]
    assert calls == [{"name": "get_weather", "args": json.loads(sent["arguments"])}]
    assert set(calls[0]["args"]) == {"city", "days"} and isinstance(calls[0]["args"]["days"], int)
    assert sent["id"] is None and e["finish_reason_sent"] == "STOP"
    assert e["usage_truth"]["input_tokens"] == expected_input_tokens(body)


def test_filtered_output_stream_keeps_partial_text(server: MockServer, sid: str) -> None:
    _, raw = stream_raw(url(server, "streamGenerateContent"), BODY, hdrs(sid, "filtered_output"))
    got = chunks(raw)
    assert got[-1]["candidates"][0]["finishReason"] == "SAFETY" and "content" not in got[-1]["candidates"][0]
    assert "".join(text_of(c) for c in got) == last(server, sid)["text_sent"] != ""


def test_abort_leaves_an_incomplete_body(server: MockServer, sid: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError) as info:
        stream_raw(url(server, "streamGenerateContent"), BODY, hdrs(sid, "abort_mid_stream"))
    e = last(server, sid)
    assert e["aborted"] and e["aborted_after_chunks"] == 3
    got = info.value.received  # type: ignore[attr-defined]
    assert "".join(text_of(c) for c in chunks(got)) == e["text_sent"]


@pytest.mark.parametrize("scenario", ["ok", "truncated_stream"])
def test_json_array_stream_without_alt_sse(server: MockServer, sid: str, scenario: str) -> None:
    _, raw = stream_raw(url(server, "streamGenerateContent", sse=False), BODY, hdrs(sid, scenario))
    e = last(server, sid)
    assert e["response_headers"]["Content-Type"] == "application/json; charset=UTF-8"
    if scenario == "ok":
        items = json.loads(raw)
        assert isinstance(items, list) and items[-1]["candidates"][0]["finishReason"] == "STOP"
        assert "".join(text_of(c) for c in items) == e["text_sent"]
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)  # the closing bracket went with the finish chunk


def test_array_stream_error_is_wrapped_in_a_list(server: MockServer, sid: str) -> None:
    r = HTTP.post(url(server, "streamGenerateContent", sse=False), json=BODY, headers=hdrs(sid, "not_found"))
    assert r.status_code == 404 and r.json()[0]["error"]["status"] == "NOT_FOUND"


# --- shape against the real recordings ------------------------------------------------------------


def test_mock_keys_are_the_real_services_keys(server: MockServer, sid: str) -> None:
    """Every key the mock writes in a body, a candidate and usageMetadata appears in some real recording."""
    real: dict[str, set[str]] = {"body": set(), "candidate": set(), "usage": set()}
    for row in recordings("Google Gemini API", r":(stream)?[gG]enerateContent$"):
        for recorded in row.interactions():
            if recorded.status != 200:
                continue
            bodies = chunks(recorded.response_body) if recorded.is_stream else [recorded.response_json()]
            for body in bodies:
                real["body"] |= set(body)
                real["candidate"] |= set(body["candidates"][0])
                real["usage"] |= set(body["usageMetadata"])
    HTTP.post(url(server), json=BODY, headers=hdrs(sid))
    _, raw = stream_raw(url(server, "streamGenerateContent"), BODY, hdrs(sid))
    for body in [json.loads(server.journal(sid)[0]["wire"]), *chunks(raw)]:
        assert set(body) <= real["body"]
        assert set(body["candidates"][0]) <= real["candidate"]
        assert set(body["usageMetadata"]) <= real["usage"]


@pytest.mark.parametrize(
    ("seconds", "text"), [(7, "7s"), (0.01, "0.010s"), (1.5, "1.500s"), (0.000001, "0.000001s")]
)
def test_proto_duration(seconds: float, text: str) -> None:
    assert proto_duration(seconds) == text
