"""The official ``google-genai`` SDK against the mock: it must not be able to tell the mock from the real Gemini API.

Every expectation is read from the mock's journal (what was really sent), never from constants. The SDK facts checked
here are the reference's (§5): ``x-goog-api-key`` auth, ``v1`` by default and ``v1beta`` on request, ``responseId``
as the only id, ``ClientError``/``ServerError`` by status with ``.code``/``.status``/``.message``, **no retries by
default**, and with ``HttpRetryOptions`` retries on 408/429/5xx that ignore ``RetryInfo``.
"""

from __future__ import annotations

import functools
import json
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from mockserver.testing import MockServer

FAKE_KEY = "AIzaFAKE-provcert-0123456789abcdefghij"
MODEL = "gemini-2.5-flash"
TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="lookup",
            parameters_json_schema={
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "required": ["q"],
            },
        )
    ]
)
#: tiny delays so that retry tests never really wait
FAST_RETRIES = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02, jitter=0.0)


_OPEN: list[genai.Client] = []


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


@pytest.fixture(autouse=True)
def _cheap_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every genai.Client loads the CA store three times (~0.2 s); the mock is plain http, so share one context.

    Clients are kept alive until the test ends: a garbage-collected genai.Client closes its HTTP client.
    """
    shared = _shared_ssl_context()
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: shared)
    monkeypatch.setattr("httpx2.create_ssl_context", lambda *a, **k: shared, raising=False)
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(server: MockServer, sid: str, version: str | None = "v1beta", **kw: Any) -> genai.Client:
    options = types.HttpOptions(
        base_url=f"{server.url}/gemini", api_version=version, headers={"x-mock-session": sid}, **kw
    )
    made = genai.Client(api_key=FAKE_KEY, http_options=options)
    _OPEN.append(made)
    return made


def body_error(entry: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(entry["wire"])
    error: dict[str, Any] = data["error"]
    return error


# --- success --------------------------------------------------------------------------------------


def test_completion_text_usage_and_response_id(server: MockServer, sid: str) -> None:
    resp = client(server, sid).models.generate_content(model=MODEL, contents="Hello there, mock!")
    (e,) = server.journal(sid)
    assert resp.text == e["text_sent"]
    assert resp.response_id == e["request_id"]  # the only id Gemini has: the body's responseId
    assert resp.candidates is not None and resp.candidates[0].finish_reason == types.FinishReason.STOP
    usage, truth = resp.usage_metadata, e["usage_truth"]
    assert usage is not None
    assert usage.prompt_token_count == truth["input_tokens"]
    assert usage.candidates_token_count == truth["output_tokens"]
    assert usage.total_token_count == truth["total_tokens"]
    assert usage.thoughts_token_count is None and usage.cached_content_token_count is None  # zeros omitted
    assert e["path"] == f"/gemini/v1beta/models/{MODEL}:generateContent"
    assert e["request_headers"]["x-goog-api-key"] == "[REDACTED]"
    assert e["request_headers"]["x-goog-api-client"].startswith("google-genai-sdk/")
    assert resp.sdk_http_response is not None and resp.sdk_http_response.headers is not None
    assert not any("request-id" in h.lower() for h in resp.sdk_http_response.headers)


def test_default_api_version_is_v1(server: MockServer, sid: str) -> None:
    resp = client(server, sid, version=None).models.generate_content(model=MODEL, contents="Hi")
    (e,) = server.journal(sid)
    assert e["path"] == f"/gemini/v1/models/{MODEL}:generateContent"
    assert resp.text == e["text_sent"]


def test_usage_details_cached_and_thoughts(server: MockServer, sid: str) -> None:
    server.queue(sid, "usage_details")
    resp = client(server, sid).models.generate_content(model=MODEL, contents="Hi")
    (e,) = server.journal(sid)
    truth, usage = e["usage_truth"], resp.usage_metadata
    assert usage is not None
    assert usage.cached_content_token_count == truth["cached_tokens"] == 5
    assert usage.thoughts_token_count == truth["reasoning_tokens"] == 7
    # thoughts are billed as output but not counted as candidates; the total includes them
    assert usage.candidates_token_count == truth["output_tokens"] - truth["reasoning_tokens"]
    assert usage.total_token_count == truth["total_tokens"]


def test_stream_text_running_usage_and_finish(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "ok", "chunks": 5})
    chunks = list(client(server, sid).models.generate_content_stream(model=MODEL, contents="Hi"))
    (e,) = server.journal(sid)
    assert "".join(ch.text or "" for ch in chunks) == e["text_sent"]
    assert {ch.response_id for ch in chunks} == {e["request_id"]}
    finishes = [
        ch.candidates[0].finish_reason for ch in chunks if ch.candidates and ch.candidates[0].finish_reason
    ]
    assert finishes == [types.FinishReason.STOP]
    counts = [ch.usage_metadata.candidates_token_count or 0 for ch in chunks if ch.usage_metadata]
    assert counts == sorted(counts) and counts[-1] == e["usage_truth"]["output_tokens"]
    prompts = {ch.usage_metadata.prompt_token_count for ch in chunks if ch.usage_metadata}
    assert prompts == {e["usage_truth"]["input_tokens"]}  # a running snapshot: the prompt count repeats


def test_tool_call_whole_and_streamed(server: MockServer, sid: str) -> None:
    server.queue(sid, "tool_call", "tool_call")
    config = types.GenerateContentConfig(
        tools=[TOOL], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    c = client(server, sid)
    resp = c.models.generate_content(model=MODEL, contents="Look it up", config=config)
    chunks = list(c.models.generate_content_stream(model=MODEL, contents="Look it up", config=config))
    first, second = server.journal(sid)
    assert resp.function_calls is not None
    assert [(f.name, f.args) for f in resp.function_calls] == [
        (t["name"], json.loads(t["arguments"])) for t in first["tool_calls_sent"]
    ]
    streamed = [f for ch in chunks for f in ch.function_calls or []]
    assert [(f.name, f.args) for f in streamed] == [
        (t["name"], json.loads(t["arguments"])) for t in second["tool_calls_sent"]
    ]
    assert streamed[0].args and streamed[0].id is None  # whole arguments in one part, no call id


def test_empty_chunks_are_invisible(server: MockServer, sid: str) -> None:
    server.queue(sid, "empty_chunks")
    chunks = list(client(server, sid).models.generate_content_stream(model=MODEL, contents="Hi"))
    (e,) = server.journal(sid)
    assert "".join(ch.text or "" for ch in chunks) == e["text_sent"]
    assert e["frames_sent"] > e["chunks_sent"]


def test_blocked_prompt_is_a_200_without_candidates(server: MockServer, sid: str) -> None:
    server.queue(sid, "content_filter")
    resp = client(server, sid).models.generate_content(model=MODEL, contents="Hi")
    (e,) = server.journal(sid)
    assert e["status"] == 200 and e["error_kind"] == "content_filter"
    assert resp.candidates is None and resp.text is None
    assert (
        resp.prompt_feedback is not None and resp.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    )
    assert resp.response_id == e["request_id"]


def test_filtered_output_finishes_with_safety(server: MockServer, sid: str) -> None:
    server.queue(sid, "filtered_output", "filtered_output")
    c = client(server, sid)
    resp = c.models.generate_content(model=MODEL, contents="Hi")
    chunks = list(c.models.generate_content_stream(model=MODEL, contents="Hi"))
    whole, streamed = server.journal(sid)
    assert resp.candidates and resp.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert resp.text is None and whole["text_sent"] == ""  # a blocked candidate loses its parts
    assert "".join(ch.text or "" for ch in chunks) == streamed["text_sent"] != ""
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == types.FinishReason.SAFETY


async def test_async_completion_and_stream(server: MockServer, sid: str) -> None:
    c = client(server, sid)
    resp = await c.aio.models.generate_content(model=MODEL, contents="Hi")
    text = ""
    async for ch in await c.aio.models.generate_content_stream(model=MODEL, contents="Hi"):
        text += ch.text or ""
    first, second = server.journal(sid)
    assert resp.text == first["text_sent"] and resp.response_id == first["request_id"]
    assert text == second["text_sent"]


# --- errors: the SDK's own exception classes ------------------------------------------------------

ERROR_CLASSES: list[tuple[str, type[errors.APIError], int, str]] = [
    ("rate_limit", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    ("quota_exhausted", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    ("auth_error", errors.ClientError, 400, "INVALID_ARGUMENT"),
    ("permission_denied", errors.ClientError, 403, "PERMISSION_DENIED"),
    ("not_found", errors.ClientError, 404, "NOT_FOUND"),
    ("bad_request", errors.ClientError, 400, "INVALID_ARGUMENT"),
    ("context_length", errors.ClientError, 400, "INVALID_ARGUMENT"),
    ("server_error", errors.ServerError, 500, "INTERNAL"),
    ("service_unavailable", errors.ServerError, 503, "UNAVAILABLE"),
    ("gateway_timeout", errors.ServerError, 504, "DEADLINE_EXCEEDED"),
    ("overloaded", errors.ServerError, 503, "UNAVAILABLE"),
]


@pytest.mark.parametrize(("preset", "cls", "code", "status"), ERROR_CLASSES)
def test_faults_raise_the_sdk_exception(
    server: MockServer, sid: str, preset: str, cls: type[errors.APIError], code: int, status: str
) -> None:
    server.queue(sid, preset)
    with pytest.raises(cls) as info:
        client(server, sid).models.generate_content(model=MODEL, contents="Hi")
    (e,) = server.journal(sid)
    err, sent = info.value, body_error(e)
    assert err.code == code == e["status"] == sent["code"]
    assert err.status == status == sent["status"]
    assert err.message == sent["message"]
    assert FAKE_KEY not in str(err)


def test_bad_gateway_html_page_is_a_server_error(server: MockServer, sid: str) -> None:
    server.queue(sid, "bad_gateway")
    with pytest.raises(errors.ServerError) as info:
        client(server, sid).models.generate_content(model=MODEL, contents="Hi")
    (e,) = server.journal(sid)
    assert info.value.code == 502 == e["status"]
    assert info.value.status == "Bad Gateway"  # no JSON: the SDK falls back to the reason phrase
    assert info.value.message is not None and info.value.message.startswith("<!DOCTYPE html>")


def test_retry_info_is_in_the_error_details(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "rate_limit", "retry_after": 13})
    with pytest.raises(errors.ClientError) as info:
        client(server, sid).models.generate_content(model=MODEL, contents="Hi")
    details = info.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"} in details
    assert any(d["@type"].endswith("QuotaFailure") for d in details)


async def test_async_fault_raises_the_sdk_exception(server: MockServer, sid: str) -> None:
    server.queue(sid, "not_found")
    with pytest.raises(errors.ClientError) as info:
        await client(server, sid).aio.models.generate_content(model="gemini-x", contents="Hi")
    (e,) = server.journal(sid)
    assert info.value.code == 404 == e["status"] and info.value.status == "NOT_FOUND"
    assert "models/gemini-x is not found" in (info.value.message or "")


# --- mid-stream failures, as the SDK surfaces them against the real service ------------------------


@pytest.mark.parametrize(
    ("kind", "cls", "code"),
    [
        ("server_error", errors.ServerError, 500),
        ("overloaded", errors.ServerError, 503),
        ("rate_limit", errors.ClientError, 429),
    ],
)
def test_inband_error_raises_by_code(
    server: MockServer, sid: str, kind: str, cls: type[errors.APIError], code: int
) -> None:
    server.queue(sid, {"preset": "error_mid_stream", "error_after_kind": kind})
    got = ""
    with pytest.raises(cls) as info:
        for ch in client(server, sid).models.generate_content_stream(model=MODEL, contents="Hi"):
            got += ch.text or ""
    (e,) = server.journal(sid)
    assert info.value.code == code and e["status"] == 200 and e["inband_error"] == kind
    assert got == e["text_sent"] != ""


async def test_async_inband_error(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "error_mid_stream", "error_after_kind": "overloaded"})
    with pytest.raises(errors.ServerError) as info:
        async for _ in await client(server, sid).aio.models.generate_content_stream(
            model=MODEL, contents="Hi"
        ):
            pass
    assert info.value.code == 503 and info.value.message == "The model is overloaded. Please try again later."


def test_abort_raises_the_transport_error_after_partial_text(server: MockServer, sid: str) -> None:
    server.queue(sid, "abort_mid_stream")
    got = ""
    # the SDK lets its HTTP library's own error through (httpx2's when installed, else httpx's)
    with pytest.raises(Exception) as info:
        for ch in client(server, sid).models.generate_content_stream(model=MODEL, contents="Hi"):
            got += ch.text or ""
    (e,) = server.journal(sid)
    assert type(info.value).__name__ == "RemoteProtocolError"
    assert got == e["text_sent"] and e["aborted_after_chunks"] == 3


def test_malformed_chunk_is_unknown_api_response(server: MockServer, sid: str) -> None:
    server.queue(sid, "malformed_chunk")
    with pytest.raises(errors.UnknownApiResponseError):
        list(client(server, sid).models.generate_content_stream(model=MODEL, contents="Hi"))


def test_truncated_stream_ends_quietly_in_the_sdk(server: MockServer, sid: str) -> None:
    """Gemini has no terminator: the SDK cannot tell a cut stream from a finished one (only finishReason can)."""
    server.queue(sid, "truncated_stream")
    chunks = list(client(server, sid).models.generate_content_stream(model=MODEL, contents="Hi"))
    (e,) = server.journal(sid)
    assert "".join(ch.text or "" for ch in chunks) == e["text_sent"] and not e["terminated"]
    assert not any(ch.candidates and ch.candidates[0].finish_reason for ch in chunks)


def test_hang_raises_a_read_timeout(server: MockServer, sid: str) -> None:
    server.queue(sid, "timeout")
    # the SDK lets its HTTP library's own timeout through
    with pytest.raises(Exception) as info:
        client(server, sid, timeout=400).models.generate_content(model=MODEL, contents="Hi")
    assert type(info.value).__name__ == "ReadTimeout"
    (e,) = server.journal(sid)
    assert e["status"] is None and e["client_disconnected"]


# --- retries, counted in the journal --------------------------------------------------------------


@pytest.mark.parametrize("preset", ["rate_limit", "server_error", "overloaded"])
def test_no_retries_by_default(server: MockServer, sid: str, preset: str) -> None:
    server.queue(sid, {"preset": preset, "retry_after": 0.01, "times": 3})
    with pytest.raises(errors.APIError):
        client(server, sid).models.generate_content(model=MODEL, contents="Hi")
    assert len(server.journal(sid)) == 1


@pytest.mark.parametrize(
    ("preset", "attempts", "cls"),
    [
        ("rate_limit", 3, errors.ClientError),
        ("quota_exhausted", 3, errors.ClientError),  # the SDK retries every 429, quota or not
        ("server_error", 3, errors.ServerError),
        ("bad_gateway", 3, errors.ServerError),
        ("gateway_timeout", 3, errors.ServerError),
        ("overloaded", 3, errors.ServerError),
        ("bad_request", 1, errors.ClientError),
        ("auth_error", 1, errors.ClientError),
        ("not_found", 1, errors.ClientError),
    ],
)
def test_opt_in_retry_attempts(
    server: MockServer, sid: str, preset: str, attempts: int, cls: type[errors.APIError]
) -> None:
    server.queue(sid, {"preset": preset, "times": 5})
    with pytest.raises(cls):
        client(server, sid, retry_options=FAST_RETRIES).models.generate_content(model=MODEL, contents="Hi")
    assert len(server.journal(sid)) == attempts


def test_opt_in_retries_ignore_retry_info(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "rate_limit", "retry_after": 300, "times": 2}, "ok")
    started = time.monotonic()
    resp = client(server, sid, retry_options=FAST_RETRIES).models.generate_content(model=MODEL, contents="Hi")
    entries = server.journal(sid)
    assert time.monotonic() - started < 5, "the SDK waited for RetryInfo, which it should ignore"
    assert [e["status"] for e in entries] == [429, 429, 200]
    assert resp.response_id == entries[-1]["request_id"] and resp.text == entries[-1]["text_sent"]


def test_parallel_function_calls_whole_and_streamed(server: MockServer, sid: str) -> None:
    """Several functionCall parts in one candidate, and one per chunk when streamed: the SDK lists them all."""
    server.queue(sid, {"tool_calls": 3}, {"tool_calls": 3})
    config = types.GenerateContentConfig(
        tools=[TOOL], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    c = client(server, sid)
    resp = c.models.generate_content(model=MODEL, contents="Look it up", config=config)
    chunks = list(c.models.generate_content_stream(model=MODEL, contents="Look it up", config=config))
    first, second = server.journal(sid)
    assert [(f.name, f.args) for f in resp.function_calls or []] == [
        (t["name"], json.loads(t["arguments"])) for t in first["tool_calls_sent"]
    ]
    streamed = [f for ch in chunks for f in ch.function_calls or []]
    assert [(f.name, f.args) for f in streamed] == [
        (t["name"], json.loads(t["arguments"])) for t in second["tool_calls_sent"]
    ]
    assert len(streamed) == 3 and len({json.dumps(f.args, sort_keys=True) for f in streamed}) == 3
