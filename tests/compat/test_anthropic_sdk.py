"""The official ``anthropic`` SDK (2.12) against the mock: it must not be able to tell the mock from the real API.

Every expectation is read from the mock's journal (what was really sent), never from constants. What the SDK does on
the real service and therefore here too (provider-wire-formats.md §0, §4): Bearer auth plus ``anthropic-version``;
2 retries (3 attempts) on 408/409/429/5xx including 529, honouring ``retry-after`` and ``x-should-retry``; the request
id from the ``request-id`` header; an in-band ``event: error`` raised as a plain ``APIStatusError`` with status 200 and
never retried; and transport failures in the middle of a stream surfacing as the raw ``httpx2`` exception, because
the SDK only wraps errors raised before the response starts.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic import Anthropic, AsyncAnthropic

from mockserver.testing import MockServer

FAKE_KEY = "sk-ant-api03-FAKE0123456789abcdef0123"
MODEL = "claude-haiku-4-5"
MESSAGES: list[Any] = [{"role": "user", "content": "Hello there, mock!"}]
TOOLS: list[Any] = [
    {
        "name": "lookup",
        "description": "Look something up",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    }
]


@pytest.fixture(autouse=True)
def _quiet_model_deprecations() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def base_url(server: MockServer) -> str:
    return f"{server.url}/anthropic"


def client(server: MockServer, sid: str, **kw: Any) -> Anthropic:
    kw.setdefault("max_retries", 2)
    return Anthropic(
        base_url=base_url(server), api_key=FAKE_KEY, default_headers={"x-mock-session": sid}, **kw
    )


def aclient(server: MockServer, sid: str, **kw: Any) -> AsyncAnthropic:
    kw.setdefault("max_retries", 2)
    return AsyncAnthropic(
        base_url=base_url(server), api_key=FAKE_KEY, default_headers={"x-mock-session": sid}, **kw
    )


def scenario(spec: str | dict[str, Any]) -> dict[str, str]:
    return {"x-mock-scenario": spec if isinstance(spec, str) else json.dumps(spec)}


def create(c: Anthropic, spec: str | dict[str, Any] | None = None, **kw: Any) -> Any:
    kw.setdefault("messages", MESSAGES)
    return c.messages.create(
        model=MODEL, max_tokens=256, extra_headers=scenario(spec) if spec else None, **kw
    )


def stream_text(events: Any) -> str:
    return "".join(
        e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )


# --- success --------------------------------------------------------------------------------------


def test_sync_message_text_usage_and_request_id(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        msg = create(c)
    (e,) = server.journal(sid)
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == e["text_sent"]
    assert msg.stop_reason == "end_turn" == e["finish_reason_sent"]
    assert msg._request_id == e["request_id"] and e["request_id"].startswith("req_011C")
    assert msg.model == "claude-haiku-4-5-20251001"  # the alias answered with its snapshot, as live
    truth = e["usage_truth"]
    assert msg.usage.input_tokens == truth["input_tokens"] and msg.usage.cache_read_input_tokens == 0
    assert msg.usage.output_tokens == truth["output_tokens"]
    headers = e["request_headers"]
    assert headers["authorization"] == "Bearer [REDACTED]" and headers["anthropic-version"]
    assert headers["x-stainless-retry-count"] == "0"


def test_cached_tokens_and_thinking_are_parsed(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        msg = create(c, {"preset": "usage_details", "cached_tokens": 6, "reasoning_tokens": 9})
    (e,) = server.journal(sid)
    truth = e["usage_truth"]
    assert msg.usage.cache_read_input_tokens == truth["cached_tokens"] == 6
    # Anthropic's input_tokens excludes cache reads; thinking is inside output_tokens
    assert msg.usage.input_tokens + msg.usage.cache_read_input_tokens == truth["input_tokens"]
    assert msg.usage.output_tokens == truth["output_tokens"]
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[1].text == e["text_sent"]


def test_null_and_missing_usage_parse_leniently(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        a = create(c, "null_usage")
        b = create(c, "missing_usage")
    assert a.usage is None and b.usage is None
    assert all(e["usage_truth"]["total_tokens"] > 0 and e["usage_sent"] is None for e in server.journal(sid))


def test_raw_stream_events_text_usage_and_request_id(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        stream = create(c, {"preset": "ok", "chunks": 8}, stream=True)
        events = list(stream)
        request_id = stream.response.headers["request-id"]
    (e,) = server.journal(sid)
    assert request_id == e["request_id"]
    types = [ev.type for ev in events]
    assert types[0] == "message_start" and types[-1] == "message_stop" and types.count("message_stop") == 1
    assert "ping" not in types  # the SDK skips pings
    assert stream_text(events) == e["text_sent"]
    delta = next(ev for ev in events if ev.type == "message_delta")
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == e["usage_truth"]["output_tokens"]
    start = events[0]
    assert start.message.usage.input_tokens == e["usage_truth"]["input_tokens"]


def test_stream_helper_accumulates_tool_call(server: MockServer, sid: str) -> None:
    with (
        client(server, sid) as c,
        c.messages.stream(
            model=MODEL, max_tokens=256, messages=MESSAGES, tools=TOOLS, extra_headers=scenario("tool_call")
        ) as stream,
    ):
        final = stream.get_final_message()
    (e,) = server.journal(sid)
    (block,) = final.content
    assert block.type == "tool_use" and block.name == "lookup" and block.id == e["tool_calls_sent"][0]["id"]
    assert block.input == json.loads(e["tool_calls_sent"][0]["arguments"]) and block.input["q"]
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == e["usage_truth"]["output_tokens"]


def test_stream_helper_accumulates_text_and_usage(server: MockServer, sid: str) -> None:
    with (
        client(server, sid) as c,
        c.messages.stream(
            model=MODEL, max_tokens=256, messages=MESSAGES, extra_headers=scenario("usage_details")
        ) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    (e,) = server.journal(sid)
    assert text == e["text_sent"]
    assert final.usage.cache_read_input_tokens == e["usage_truth"]["cached_tokens"]
    assert final.usage.output_tokens == e["usage_truth"]["output_tokens"]
    assert [b.type for b in final.content] == ["thinking", "text"]


def test_empty_deltas_and_pings_are_invisible_to_the_sdk(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        events = list(create(c, "empty_chunks", stream=True))
    (e,) = server.journal(sid)
    assert stream_text(events) == e["text_sent"] and e["frames_sent"] > e["chunks_sent"]
    assert "ping" not in {ev.type for ev in events}


def test_refusal_keeps_partial_text(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        msg = create(c, "filtered_output")
        events = list(create(c, "filtered_output", stream=True))
    first, second = server.journal(sid)
    assert msg.stop_reason == "refusal" and msg.content[0].text == first["text_sent"] != ""
    assert stream_text(events) == second["text_sent"] != ""
    assert next(ev for ev in events if ev.type == "message_delta").delta.stop_reason == "refusal"


async def test_async_message_and_stream(server: MockServer, sid: str) -> None:
    async with aclient(server, sid) as c:
        msg = await c.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        stream = await c.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
        events = [ev async for ev in stream]
    first, second = server.journal(sid)
    assert msg.content[0].text == first["text_sent"] and msg._request_id == first["request_id"]
    assert stream_text(events) == second["text_sent"]


# --- errors: the SDK's own exception classes ------------------------------------------------------

ERROR_CLASSES: list[tuple[str | dict[str, Any], type[anthropic.APIStatusError], int]] = [
    ("rate_limit", anthropic.RateLimitError, 429),
    ("quota_exhausted", anthropic.BadRequestError, 400),  # "Your credit balance is too low ..."
    ({"preset": "quota_exhausted", "status": 402}, anthropic.PaymentRequiredError, 402),
    ("auth_error", anthropic.AuthenticationError, 401),
    ("permission_denied", anthropic.PermissionDeniedError, 403),
    ("not_found", anthropic.NotFoundError, 404),
    ("bad_request", anthropic.BadRequestError, 400),
    ("context_length", anthropic.BadRequestError, 400),
    ("content_filter", anthropic.BadRequestError, 400),
    ("server_error", anthropic.InternalServerError, 500),
    ("bad_gateway", anthropic.InternalServerError, 502),
    ("service_unavailable", anthropic.ServiceUnavailableError, 503),
    ("gateway_timeout", anthropic.GatewayTimeoutError, 504),
    ("overloaded", anthropic.OverloadedError, 529),
]


@pytest.mark.parametrize(("spec", "cls", "status"), ERROR_CLASSES, ids=[str(s) for s, _, _ in ERROR_CLASSES])
def test_faults_raise_the_sdk_exception(
    server: MockServer, sid: str, spec: str | dict[str, Any], cls: type[anthropic.APIStatusError], status: int
) -> None:
    with client(server, sid, max_retries=0) as c, pytest.raises(cls) as info:
        create(c, spec)
    (e,) = server.journal(sid)
    err = info.value
    assert type(err) is cls
    assert err.status_code == status == e["status"]
    assert err.request_id == e["request_id"]
    body = json.loads(e["wire"])
    assert body["type"] == "error" and body["request_id"] == e["request_id"]
    assert err.type == body["error"]["type"] and err.api_message == body["error"]["message"]
    assert FAKE_KEY not in str(err)


def test_context_overflow_says_so_in_the_message(server: MockServer, sid: str) -> None:
    with client(server, sid, max_retries=0) as c, pytest.raises(anthropic.BadRequestError) as info:
        create(c, "context_length")
    assert info.value.type == "invalid_request_error"
    assert info.value.api_message is not None and info.value.api_message.startswith("prompt is too long: ")


def test_spend_limit_raises_the_coded_2x_class_and_is_not_retried(server: MockServer, sid: str) -> None:
    from anthropic.types.shared.enforced_spend_limit_reached_error import EnforcedSpendLimitReachedError

    with client(server, sid) as c, pytest.raises(EnforcedSpendLimitReachedError) as info:
        create(c, {"preset": "quota_exhausted", "status": 429})
    (e,) = server.journal(sid)  # x-should-retry: false overrides the SDK's retry-on-429
    assert info.value.error_code == "enforced_spend_limit_reached" and info.value.status_code == 429
    assert e["response_headers"]["x-should-retry"] == "false"


async def test_async_fault_raises_the_sdk_exception(server: MockServer, sid: str) -> None:
    async with aclient(server, sid, max_retries=0) as c:
        with pytest.raises(anthropic.NotFoundError) as info:
            await c.messages.create(
                model="claude-nope", max_tokens=8, messages=MESSAGES, extra_headers=scenario("not_found")
            )
    (e,) = server.journal(sid)
    assert info.value.request_id == e["request_id"] and info.value.api_message == "model: claude-nope"


def test_inband_error_is_a_status_200_api_status_error_and_not_retried(server: MockServer, sid: str) -> None:
    got: list[Any] = []
    with client(server, sid) as c, pytest.raises(anthropic.APIStatusError) as info:
        for ev in create(c, {"preset": "error_mid_stream", "error_after_kind": "overloaded"}, stream=True):
            got.append(ev)
    (e,) = server.journal(sid)
    err = info.value
    assert type(err) is anthropic.APIStatusError and not isinstance(err, anthropic.OverloadedError)
    assert err.status_code == 200 and err.type == "overloaded_error" and err.api_message == "Overloaded"
    assert err.request_id == e["request_id"]
    assert stream_text(got) == e["text_sent"] and e["inband_error"] == "overloaded"


def test_abort_mid_stream_raises_the_raw_transport_error(server: MockServer, sid: str) -> None:
    got: list[Any] = []
    with client(server, sid) as c, pytest.raises(httpx2.RemoteProtocolError):
        for ev in create(c, "abort_mid_stream", stream=True):
            got.append(ev)
    (e,) = server.journal(sid)
    assert stream_text(got) == e["text_sent"] and e["aborted_after_chunks"] == 3


def test_malformed_event_is_a_raw_decode_error_in_the_sdk(server: MockServer, sid: str) -> None:
    with client(server, sid) as c, pytest.raises(json.JSONDecodeError):
        list(create(c, "malformed_chunk", stream=True))


def test_missing_message_stop_goes_unnoticed_by_the_sdk(server: MockServer, sid: str) -> None:
    """The SDK does not check for the terminator (adapters must): the raw stream simply ends."""
    with client(server, sid) as c:
        events = list(create(c, "truncated_stream", stream=True))
    (e,) = server.journal(sid)
    assert events[-1].type == "message_delta" and not e["terminated"]
    assert stream_text(events) == e["text_sent"]


def test_hang_raises_api_timeout_error(server: MockServer, sid: str) -> None:
    with client(server, sid, timeout=0.5, max_retries=0) as c, pytest.raises(anthropic.APITimeoutError):
        create(c, "timeout")
    (e,) = server.journal(sid)
    assert e["status"] is None and e["client_disconnected"]


def test_stall_mid_stream_raises_the_raw_read_timeout(server: MockServer, sid: str) -> None:
    with client(server, sid, timeout=0.3, max_retries=0) as c, pytest.raises(httpx2.ReadTimeout):
        list(create(c, "stall_mid_stream", stream=True))
    (e,) = server.journal(sid)
    assert e["stalled"] and e["chunks_sent"] == 2


def test_reset_raises_api_connection_error(server: MockServer, sid: str) -> None:
    with client(server, sid, max_retries=0) as c, pytest.raises(anthropic.APIConnectionError):
        create(c, "reset")


# --- retries, counted in the journal --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "attempts", "cls"),
    [
        ({"preset": "rate_limit", "retry_after": 0.01}, 3, anthropic.RateLimitError),
        ({"preset": "overloaded", "retry_after": 0.01}, 3, anthropic.OverloadedError),
        ({"preset": "server_error", "retry_after": 0.01}, 3, anthropic.InternalServerError),
        ({"preset": "service_unavailable", "retry_after": 0.01}, 3, anthropic.ServiceUnavailableError),
        ({"preset": "quota_exhausted", "retry_after": 0.01}, 1, anthropic.BadRequestError),
        ({"preset": "quota_exhausted", "status": 429, "retry_after": 0.01}, 1, anthropic.RateLimitError),
        ("bad_request", 1, anthropic.BadRequestError),
        ("auth_error", 1, anthropic.AuthenticationError),
    ],
)
def test_sdk_retry_attempts(
    server: MockServer, sid: str, spec: str | dict[str, Any], attempts: int, cls: type[Exception]
) -> None:
    with client(server, sid) as c, pytest.raises(cls):
        create(c, spec)
    entries = server.journal(sid)
    assert len(entries) == attempts
    assert [e["request_headers"]["x-stainless-retry-count"] for e in entries] == [
        str(i) for i in range(attempts)
    ]


def test_queued_sequence_succeeds_on_third_attempt(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "overloaded", "retry_after": 0.01, "times": 2}, "ok")
    with client(server, sid) as c:
        msg = create(c)
    entries = server.journal(sid)
    assert [e["status"] for e in entries] == [529, 529, 200]
    assert msg._request_id == entries[-1]["request_id"]
    assert msg.content[0].text == entries[-1]["text_sent"]


def test_rate_limit_headers_reach_the_sdk(server: MockServer, sid: str) -> None:
    with client(server, sid, max_retries=0) as c, pytest.raises(anthropic.RateLimitError) as info:
        create(c, {"preset": "rate_limit", "retry_after": 7})
    headers = info.value.response.headers
    assert headers["retry-after"] == "7"
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == "0"
    assert headers["anthropic-ratelimit-input-tokens-reset"].endswith("Z")


# --- parallel tool calls ---------------------------------------------------------------------------

TWO_TOOLS: list[Any] = [
    *TOOLS,
    {
        "name": "clock",
        "description": "The time in a zone",
        "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
]


@pytest.mark.parametrize("reasoning", [0, 5], ids=["tool-blocks-first", "after-a-thinking-block"])
def test_stream_helper_accumulates_parallel_tool_use_blocks(
    server: MockServer, sid: str, reasoning: int
) -> None:
    """One tool_use block per call, one after the other: the SDK's accumulator (which appends a block on
    content_block_start and routes deltas by block index) rebuilds every call with its own id and input."""
    spec = {"tool_calls": 3, "chunks": 4, "reasoning_tokens": reasoning}
    with (
        client(server, sid) as c,
        c.messages.stream(
            model=MODEL, max_tokens=256, messages=MESSAGES, tools=TWO_TOOLS, extra_headers=scenario(spec)
        ) as stream,
    ):
        final = stream.get_final_message()
    (e,) = server.journal(sid)
    sent = e["tool_calls_sent"]
    blocks = [b for b in final.content if b.type == "tool_use"]
    got = [(b.id, b.name, b.input) for b in blocks]
    assert got == [(s["id"], s["name"], json.loads(s["arguments"])) for s in sent]
    assert [s["name"] for s in sent] == ["lookup", "clock", "lookup"] and len({s["id"] for s in sent}) == 3
    assert len(final.content) == 3 + (1 if reasoning else 0)
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == e["usage_truth"]["output_tokens"]


def test_completion_carries_every_parallel_tool_use_block(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        msg = create(c, "parallel_tool_calls", tools=TWO_TOOLS)
    (e,) = server.journal(sid)
    got = [(b.id, b.name, b.input) for b in msg.content if b.type == "tool_use"]
    assert got == [(s["id"], s["name"], json.loads(s["arguments"])) for s in e["tool_calls_sent"]]
    assert len(got) == 2 and msg.stop_reason == "tool_use"
