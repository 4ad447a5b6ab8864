"""The official ``mistralai`` SDK (3.x) against the mock: it must not be able to tell the mock from the real API.

The SDK talks through its own ``httpx2`` client; the session header rides on a client we pass in (``client=``), the
scenario on ``http_headers=``. Expectations are read from the mock's journal. The SDK does not expose response headers
on success, so the request id is checked on errors (``e.headers``) and at the raw-HTTP level (test_mock_mistral_http).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from mistralai.client import Mistral, errors
from mistralai.client.utils import BackoffStrategy, RetryConfig

from mockserver.testing import MockServer

FAKE_KEY = "FAKEmistral0123456789abcdefABCDEF"
MESSAGES: list[Any] = [{"role": "user", "content": "Hello there, mock!"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]
#: fast retries: the mock's Retry-After hints are tiny, the fallback backoff starts at 1 ms
FAST_RETRIES = RetryConfig("backoff", BackoffStrategy(1, 5, 1.5, 2_000), False)


@pytest.fixture
def sdk(server: MockServer, sid: str) -> Iterator[Mistral]:
    http = httpx2.Client(headers={"x-mock-session": sid})
    with Mistral(
        api_key=FAKE_KEY, server_url=f"{server.url}/mistral", client=http, timeout_ms=5_000
    ) as client:
        yield client
    http.close()


def scenario(spec: str | dict[str, Any]) -> dict[str, str]:
    return {"x-mock-scenario": spec if isinstance(spec, str) else json.dumps(spec)}


# --- success --------------------------------------------------------------------------------------


def test_completion_text_and_usage(server: MockServer, sid: str, sdk: Mistral) -> None:
    resp = sdk.chat.complete(model="mistral-small-latest", messages=MESSAGES, max_tokens=64)
    (e,) = server.journal(sid)
    message = resp.choices[0].message
    assert message is not None and message.content == e["text_sent"]
    assert resp.choices[0].finish_reason == "stop"
    assert resp.id and resp.model == "mistral-small-latest"
    assert resp.usage.prompt_tokens == e["usage_truth"]["input_tokens"]
    assert resp.usage.completion_tokens == e["usage_truth"]["output_tokens"]
    assert resp.usage.total_tokens == e["usage_truth"]["total_tokens"]
    assert e["request_headers"]["authorization"] == "Bearer [REDACTED]"
    assert e["request_body"]["max_tokens"] == 64 and e["status"] == 200


def test_stream_usage_rides_on_the_final_content_chunk(server: MockServer, sid: str, sdk: Mistral) -> None:
    events = list(sdk.chat.stream(model="mistral-small-latest", messages=MESSAGES))
    (e,) = server.journal(sid)
    chunks = [ev.data for ev in events]
    assert "".join(str(c.choices[0].delta.content or "") for c in chunks) == e["text_sent"]
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.usage is not None
    assert last.usage.total_tokens == e["usage_truth"]["total_tokens"]
    assert all(c.usage is None for c in chunks[:-1]), "usage must come only with the finish chunk"
    assert e["terminated"] and "stream_options" not in e["request_body"]


async def test_async_completion_and_stream(server: MockServer, sid: str) -> None:
    http = httpx2.AsyncClient(headers={"x-mock-session": sid})
    async with Mistral(api_key=FAKE_KEY, server_url=f"{server.url}/mistral", async_client=http) as client:
        resp = await client.chat.complete_async(model="mistral-large-latest", messages=MESSAGES)
        stream = await client.chat.stream_async(model="mistral-large-latest", messages=MESSAGES)
        chunks = [ev.data async for ev in stream]
    await http.aclose()
    first, second = server.journal(sid)
    assert resp.choices[0].message is not None and resp.choices[0].message.content == first["text_sent"]
    assert "".join(str(c.choices[0].delta.content or "") for c in chunks) == second["text_sent"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == second["usage_truth"]["output_tokens"]


def test_streamed_tool_call_arrives_whole(server: MockServer, sid: str, sdk: Mistral) -> None:
    events = list(
        sdk.chat.stream(
            model="mistral-large-latest", messages=MESSAGES, tools=TOOLS, http_headers=scenario("tool_call")
        )
    )
    (e,) = server.journal(sid)
    calls = [call for ev in events for call in ev.data.choices[0].delta.tool_calls or []]
    assert len(calls) == 1, "Mistral streams a tool call whole, in one delta"
    assert calls[0].function.name == "lookup" and calls[0].id == e["tool_calls_sent"][0]["id"]
    assert calls[0].function.arguments == e["tool_calls_sent"][0]["arguments"]
    assert events[-1].data.choices[0].finish_reason == "tool_calls"


def test_completion_tool_call(server: MockServer, sid: str, sdk: Mistral) -> None:
    resp = sdk.chat.complete(
        model="mistral-large-latest", messages=MESSAGES, tools=TOOLS, http_headers=scenario("tool_call")
    )
    (e,) = server.journal(sid)
    message = resp.choices[0].message
    assert message is not None
    calls = message.tool_calls
    assert isinstance(calls, list) and len(calls) == 1
    assert calls[0].function.arguments == e["tool_calls_sent"][0]["arguments"]
    assert resp.choices[0].finish_reason == "tool_calls"


def test_empty_chunks_are_harmless_to_the_sdk(server: MockServer, sid: str, sdk: Mistral) -> None:
    events = list(sdk.chat.stream(model="m", messages=MESSAGES, http_headers=scenario("empty_chunks")))
    (e,) = server.journal(sid)
    assert "".join(str(ev.data.choices[0].delta.content or "") for ev in events) == e["text_sent"]


# --- errors: the SDK's own exception classes ------------------------------------------------------

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
def test_faults_raise_sdk_error_with_status(server: MockServer, sid: str, sdk: Mistral, preset: str) -> None:
    with pytest.raises(errors.SDKError) as info:
        sdk.chat.complete(model="mistral-small-latest", messages=MESSAGES, http_headers=scenario(preset))
    (e,) = server.journal(sid)
    err = info.value
    assert err.status_code == e["status"] >= 400
    assert err.body == e["wire"]
    assert err.headers["mistral-correlation-id"] == e["request_id"]
    assert FAKE_KEY not in str(err)


@pytest.mark.parametrize("preset", ["rate_limit", "server_error"])
def test_stream_faults_raise_sdk_error(server: MockServer, sid: str, sdk: Mistral, preset: str) -> None:
    with pytest.raises(errors.SDKError) as info:
        sdk.chat.stream(model="m", messages=MESSAGES, http_headers=scenario(preset))
    (e,) = server.journal(sid)
    assert info.value.status_code == e["status"]


def test_error_in_200_fails_response_validation(server: MockServer, sid: str, sdk: Mistral) -> None:
    with pytest.raises(errors.ResponseValidationError) as info:
        sdk.chat.complete(model="m", messages=MESSAGES, http_headers=scenario("error_in_200"))
    (e,) = server.journal(sid)
    assert info.value.status_code == 200 == e["status"]


def test_wrong_content_type_is_unexpected(server: MockServer, sid: str, sdk: Mistral) -> None:
    with pytest.raises(errors.SDKError) as info:
        sdk.chat.complete(model="m", messages=MESSAGES, http_headers=scenario("wrong_content_type"))
    assert "Unexpected response received" in str(info.value) and info.value.status_code == 200


def test_inband_error_is_a_validation_error_after_partial_text(
    server: MockServer, sid: str, sdk: Mistral
) -> None:
    got = ""
    with pytest.raises(errors.ResponseValidationError):
        for ev in sdk.chat.stream(model="m", messages=MESSAGES, http_headers=scenario("error_mid_stream")):
            got += str(ev.data.choices[0].delta.content or "")
    (e,) = server.journal(sid)
    assert got == e["text_sent"] != "" and e["inband_error"] == "server_error"


def test_malformed_chunk_is_a_validation_error(server: MockServer, sid: str, sdk: Mistral) -> None:
    with pytest.raises(errors.ResponseValidationError):
        list(sdk.chat.stream(model="m", messages=MESSAGES, http_headers=scenario("malformed_chunk")))


def test_abort_surfaces_as_a_transport_error(server: MockServer, sid: str, sdk: Mistral) -> None:
    got = ""
    with pytest.raises(httpx2.TransportError):
        for ev in sdk.chat.stream(model="m", messages=MESSAGES, http_headers=scenario("abort_mid_stream")):
            got += str(ev.data.choices[0].delta.content or "")
    (e,) = server.journal(sid)
    assert got == e["text_sent"] and e["aborted_after_chunks"] == 3


def test_hang_times_out(server: MockServer, sid: str, sdk: Mistral) -> None:
    with pytest.raises(httpx2.TimeoutException):
        sdk.chat.complete(model="m", messages=MESSAGES, timeout_ms=300, http_headers=scenario("timeout"))
    (e,) = server.journal(sid)
    assert e["status"] is None


# --- retries, counted in the journal --------------------------------------------------------------


@pytest.mark.parametrize("preset", ["rate_limit", "server_error", "service_unavailable", "overloaded"])
def test_no_retries_by_default(server: MockServer, sid: str, sdk: Mistral, preset: str) -> None:
    with pytest.raises(errors.SDKError):
        sdk.chat.complete(
            model="m", messages=MESSAGES, http_headers=scenario({"preset": preset, "retry_after": 0.01})
        )
    assert len(server.journal(sid)) == 1


def test_configured_retries_honour_retry_after_then_succeed(
    server: MockServer, sid: str, sdk: Mistral
) -> None:
    server.queue(sid, {"preset": "rate_limit", "retry_after": 0.01, "times": 2}, "ok")
    resp = sdk.chat.complete(model="m", messages=MESSAGES, retries=FAST_RETRIES)
    entries = server.journal(sid)
    assert [e["status"] for e in entries] == [429, 429, 200]
    assert entries[0]["response_headers"]["Retry-After"] == "0.01"
    assert resp.choices[0].message is not None and resp.choices[0].message.content == entries[-1]["text_sent"]


def test_configured_retries_skip_non_retryable_statuses(server: MockServer, sid: str, sdk: Mistral) -> None:
    server.queue(sid, {"preset": "bad_request", "times": 3})
    with pytest.raises(errors.SDKError):
        sdk.chat.complete(model="m", messages=MESSAGES, retries=FAST_RETRIES)
    assert len(server.journal(sid)) == 1


# --- parallel tool calls ---------------------------------------------------------------------------


def test_parallel_tool_calls_stream_whole_with_their_indexes(
    server: MockServer, sid: str, sdk: Mistral
) -> None:
    """Each call arrives whole in its own delta with its own id and index: the SDK validates every one."""
    spec = {"tool_calls": 3}
    events = list(
        sdk.chat.stream(
            model="mistral-large-latest", messages=MESSAGES, tools=TOOLS, http_headers=scenario(spec)
        )
    )
    (e,) = server.journal(sid)
    calls = [call for ev in events for call in ev.data.choices[0].delta.tool_calls or []]
    got = [(c.index, c.id, c.function.name, c.function.arguments) for c in calls]
    assert got == [(s["index"], s["id"], s["name"], s["arguments"]) for s in e["tool_calls_sent"]]
    assert len({c.id for c in calls}) == 3 and events[-1].data.choices[0].finish_reason == "tool_calls"


def test_parallel_tool_calls_completion(server: MockServer, sid: str, sdk: Mistral) -> None:
    resp = sdk.chat.complete(
        model="mistral-large-latest",
        messages=MESSAGES,
        tools=TOOLS,
        http_headers=scenario("parallel_tool_calls"),
    )
    (e,) = server.journal(sid)
    message = resp.choices[0].message
    assert message is not None and isinstance(message.tool_calls, list)
    got = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls]
    assert got == [(s["id"], s["name"], s["arguments"]) for s in e["tool_calls_sent"]] and len(got) == 2
