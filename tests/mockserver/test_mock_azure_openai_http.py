"""The Azure OpenAI personality over raw HTTP: every preset in Azure's dialect, checked against the reference (§3)
and, where a recording exists, against the real bytes in ../shared/real-cassettes (#49, #50).

Expectations come from the journal, the truth and the recordings, never from constants of the personality.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from mock_helpers import FAKE_KEY, HTTP, SSE, chat_body, stream_raw

from harness.real_cassettes import load, recordings
from mockserver.scenarios import DEFAULT_STATUS, PRESETS
from mockserver.testing import MockServer

API_VERSION = "2024-10-21"
ERROR_PRESETS = sorted(n for n, p in PRESETS.items() if p.error is not None and p.status is None)
#: faults the Azure gateway answers (apim-request-id only); the others come from the model backend
GATEWAY_FAULTS = {
    "rate_limit",
    "quota_exhausted",
    "auth_error",
    "permission_denied",
    "not_found",
    "bad_gateway",
    "gateway_timeout",
}
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


def _recording(fragment: str) -> list[Any]:
    (path,) = [r.path for r in recordings("Azure OpenAI", r"^/openai/deployments/") if fragment in r.name]
    return load(path)


@pytest.fixture
def url(server: MockServer) -> str:
    return f"{server.url}/azure/openai/deployments/gpt-4o-mini/chat/completions?api-version={API_VERSION}"


def hdrs(sid: str, scenario: str | dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
    out = {"api-key": FAKE_KEY, "x-mock-session": sid, **extra}
    if scenario is not None:
        out["x-mock-scenario"] = scenario if isinstance(scenario, str) else json.dumps(scenario)
    return out


def body(**kw: Any) -> dict[str, Any]:
    """An AzureOpenAI-style body: no model (the deployment is in the path)."""
    out = chat_body(**kw)
    del out["model"]
    return out


def last(server: MockServer, sid: str) -> dict[str, Any]:
    entries = server.journal(sid)
    assert entries, "nothing journaled"
    return entries[-1]


def azure_chunks(raw: bytes) -> list[dict[str, Any]]:
    return SSE.parse(raw).chunks()


def azure_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        (c["choices"][0].get("delta") or {}).get("content") or "" for c in chunks if c.get("choices")
    )


# --- routing and auth ------------------------------------------------------------------------------


def test_ok_completion_in_azures_shape(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=hdrs(sid))
    e = last(server, sid)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    data = r.json()
    recorded = _recording("test_azure_provider_call")[0].response_json()
    assert list(data) == list(recorded), "top-level keys differ from the real recording (#13)"
    choice = data["choices"][0]
    assert list(choice) == list(recorded["choices"][0])
    assert set(choice["content_filter_results"]) == set(recorded["choices"][0]["content_filter_results"])
    assert data["prompt_filter_results"][0]["prompt_index"] == 0
    assert set(data["prompt_filter_results"][0]["content_filter_results"]) == set(
        recorded["prompt_filter_results"][0]["content_filter_results"]
    )
    assert choice["message"]["content"] == e["text_sent"] and choice["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] == e["usage_truth"]["total_tokens"]
    assert r.headers["x-request-id"] == e["request_id"] != r.headers["apim-request-id"]
    assert r.headers["x-ms-deployment-name"] == "gpt-4o-mini" and r.headers["x-ms-region"]
    assert int(r.headers["x-ratelimit-remaining-requests"]) < int(r.headers["x-ratelimit-limit-requests"])
    assert "x-ratelimit-reset-tokens" not in r.headers  # Azure sends no reliable reset headers
    assert e["path"] == "/azure/openai/deployments/gpt-4o-mini/chat/completions"


def test_deployment_in_the_path_decides_the_model(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=chat_body(model="something-else"), headers=hdrs(sid))
    assert r.status_code == 200 and r.json()["model"].startswith("gpt-4o-mini")


def test_v1_surface(server: MockServer, sid: str) -> None:
    r = HTTP.post(
        f"{server.url}/azure/openai/v1/chat/completions",
        json=chat_body(model="gpt-4o"),
        headers={"Authorization": f"Bearer {FAKE_KEY}", "x-mock-session": sid},
    )
    e = last(server, sid)
    assert r.status_code == 200 and r.json()["model"].startswith("gpt-4o")
    assert e["auth_fingerprint"] and r.headers["x-request-id"] == e["request_id"]


def test_missing_key_is_the_recorded_401(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers={"x-mock-session": sid})
    (recorded,) = [i for i in _recording("test_azure_openai_embeddings") if i.status == 401][:1]
    e = last(server, sid)
    assert r.status_code == 401 and r.content == recorded.response_body  # byte for byte
    assert r.headers["apim-request-id"] == e["request_id"] and "x-request-id" not in r.headers
    assert set(recorded.response_headers) - {"date", "content-length"} <= {k.lower() for k in r.headers}


def test_missing_api_version_is_404_resource_not_found(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url.split("?")[0], json=body(), headers=hdrs(sid))
    assert r.status_code == 404 and r.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert r.headers["apim-request-id"] == last(server, sid)["request_id"]


@pytest.mark.parametrize("param", ["stream_options", "max_completion_tokens"])
def test_old_api_version_rejects_newer_parameters(server: MockServer, sid: str, param: str) -> None:
    old = f"{server.url}/azure/openai/deployments/gpt-4o/chat/completions?api-version=2024-02-01"
    extra: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
    payload = body(**(extra if param == "stream_options" else {"max_completion_tokens": 5}))
    r = HTTP.post(old, json=payload, headers=hdrs(sid))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == f"Unrecognized request argument supplied: {param}"
    ok = HTTP.post(old.replace("2024-02-01", API_VERSION), json=payload, headers=hdrs(sid))
    assert ok.status_code == 200


# --- streams ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_framing(server: MockServer, sid: str, url: str, include_usage: bool) -> None:
    status, raw = stream_raw(url, body(stream=True, include_usage=include_usage), hdrs(sid, {"chunks": 6}))
    e = last(server, sid)
    sse = SSE.parse(raw)
    chunks = sse.chunks()
    assert status == 200 and e["terminated"] and sse.data[-1] == "[DONE]"
    assert not sse.comments, "Azure sends no SSE comments"
    first = chunks[0]
    assert first["choices"] == [] and first["id"] == "" and first["model"] == "" and first["created"] == 0
    assert first["prompt_filter_results"][0]["content_filter_results"]
    assert chunks[1]["choices"][0]["delta"]["role"] == "assistant"
    no_delta = [c for c in chunks if c.get("choices") and "delta" not in c["choices"][0]]
    assert len(no_delta) >= 2, "expected asynchronous-filter chunks (choices without delta)"
    for c in no_delta:
        offsets = c["choices"][0]["content_filter_offsets"]
        assert offsets["start_offset"] <= offsets["end_offset"] <= len(e["text_sent"])
        assert c["choices"][0]["content_filter_results"]
    assert azure_text(chunks) == e["text_sent"]
    finishes = [
        c["choices"][0]["finish_reason"]
        for c in chunks
        if c.get("choices") and c["choices"][0]["finish_reason"]
    ]
    assert finishes == ["stop"]
    usage = [c for c in chunks if c.get("usage")]
    if include_usage:
        assert len(usage) == 1 and usage[0]["choices"] == [] and usage[0]["usage"] == e["usage_sent"]
        assert usage[0]["usage"]["total_tokens"] == e["usage_truth"]["total_tokens"]
    else:
        assert not usage and all("usage" not in c for c in chunks)


def test_stream_tool_call(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True, tools=TOOLS), hdrs(sid, "tool_call"))
    e = last(server, sid)
    calls = [
        call
        for c in azure_chunks(raw)
        if c.get("choices") and "delta" in c["choices"][0]
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert calls[0]["id"] == e["tool_calls_sent"][0]["id"] and calls[0]["function"]["name"] == "get_weather"
    assert "".join(c["function"]["arguments"] for c in calls) == e["tool_calls_sent"][0]["arguments"]


def test_filtered_output(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=hdrs(sid, "filtered_output"))
    choice = r.json()["choices"][0]
    assert (
        choice["finish_reason"] == "content_filter"
        and choice["message"]["content"] == last(server, sid)["text_sent"]
    )
    assert any(v.get("filtered") for v in choice["content_filter_results"].values())
    _, raw = stream_raw(url, body(stream=True), hdrs(sid, "filtered_output"))
    chunks = azure_chunks(raw)
    finish = [c for c in chunks if c.get("choices") and c["choices"][0].get("finish_reason")]
    assert finish[0]["choices"][0]["finish_reason"] == "content_filter"
    assert azure_text(chunks) == last(server, sid)["text_sent"]


def test_empty_chunks_without_keepalive_comments(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True), hdrs(sid, "empty_chunks"))
    e = last(server, sid)
    sse = SSE.parse(raw)
    assert not sse.comments
    empties = [
        c for c in sse.chunks() if c.get("choices") and c["choices"][0].get("delta") == {"content": ""}
    ]
    assert len(empties) == PRESETS["empty_chunks"].empty_chunks
    assert azure_text(sse.chunks()) == e["text_sent"]


def test_truncated_stream_has_no_done(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True), hdrs(sid, "truncated_stream"))
    e = last(server, sid)
    assert "[DONE]" not in SSE.parse(raw).data and not e["terminated"]
    assert azure_text(azure_chunks(raw)) == e["text_sent"]


@pytest.mark.parametrize("kind", ["server_error", "rate_limit", "overloaded"])
def test_error_mid_stream(server: MockServer, sid: str, url: str, kind: str) -> None:
    _, raw = stream_raw(
        url, body(stream=True), hdrs(sid, {"preset": "error_mid_stream", "error_after_kind": kind})
    )
    e = last(server, sid)
    sse = SSE.parse(raw)
    error = json.loads(sse.data[-1])["error"]
    assert e["inband_error"] == kind and "[DONE]" not in sse.data
    if kind == "rate_limit":
        assert error["code"] == "429" and "type" not in error
    else:
        assert error["type"] == "server_error" and error["code"] is None
    assert azure_text(sse.chunks()) == e["text_sent"] and e["chunks_sent"] == 3


def test_malformed_chunk(server: MockServer, sid: str, url: str) -> None:
    _, raw = stream_raw(url, body(stream=True), hdrs(sid, "malformed_chunk"))
    bad = [d for d in SSE.parse(raw).data if d != "[DONE]"][-1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)
    assert last(server, sid)["malformed"]


def test_abort_mid_stream(server: MockServer, sid: str, url: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError) as info:
        stream_raw(url, body(stream=True), hdrs(sid, "abort_mid_stream"))
    e = last(server, sid)
    assert e["aborted_after_chunks"] == 3
    assert azure_text(azure_chunks(info.value.received)) == e["text_sent"]  # type: ignore[attr-defined]


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ERROR_PRESETS)
def test_error_presets(server: MockServer, sid: str, url: str, preset: str) -> None:
    r = HTTP.post(url, json=body(), headers=hdrs(sid, preset))
    e = last(server, sid)
    kind = PRESETS[preset].error
    assert kind is not None
    want_status = 403 if kind == "quota_exhausted" else DEFAULT_STATUS[kind]
    assert r.status_code == want_status == e["status"] and e["error_kind"] == kind
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if kind in GATEWAY_FAULTS:
        assert r.headers["apim-request-id"] == e["request_id"] and "x-request-id" not in r.headers
        if kind != "not_found":
            assert error["code"] == str(r.status_code) or error["code"] == "PermissionDenied"
            assert "type" not in error
    else:
        assert r.headers["x-request-id"] == e["request_id"]
        assert r.headers["apim-request-id"] and r.headers["x-ms-deployment-name"] == "gpt-4o-mini"
    retry = PRESETS[preset].retry_after
    if retry is not None and kind != "quota_exhausted":
        assert r.headers["retry-after"] == str(math.ceil(retry))
        assert r.headers["retry-after-ms"] == str(round(retry * 1000))


def test_rate_limit_in_azures_words(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=hdrs(sid, {"preset": "rate_limit", "retry_after": 6}))
    error = r.json()["error"]
    assert error["code"] == "429" and set(error) == {"code", "message"}
    assert (
        f"ChatCompletions_Create Operation under Azure OpenAI API version {API_VERSION}" in error["message"]
    )
    assert "Please retry after 6 seconds" in error["message"]
    assert r.headers["retry-after"] == "6" and r.headers["retry-after-ms"] == "6000"
    assert r.headers["x-ratelimit-remaining-tokens"] == "0" and r.headers["policy-id"]


def test_not_found_is_the_recorded_deployment_not_found(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=hdrs(sid, "not_found"))
    recorded = next(i for i in _recording("test_chat_reasoning") if i.status == 404)
    assert r.status_code == recorded.status and r.content == recorded.response_body  # byte for byte


def test_content_filter_error_body(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=hdrs(sid, "content_filter"))
    error = r.json()["error"]
    assert r.status_code == 400 and error["code"] == "content_filter" and error["param"] == "prompt"
    inner = error["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert any(v.get("filtered") for v in inner["content_filter_result"].values())


def test_server_error_quotes_the_request_id(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=hdrs(sid, "server_error"))
    assert f"request ID {r.headers['x-request-id']}" in r.json()["error"]["message"]


def test_error_in_200(server: MockServer, sid: str, url: str) -> None:
    r = HTTP.post(url, json=body(), headers=hdrs(sid, "error_in_200"))
    assert r.status_code == 200 and r.json()["error"]["type"] == "server_error"
