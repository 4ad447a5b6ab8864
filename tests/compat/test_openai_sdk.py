"""The official ``openai`` SDK against the mock: it must not be able to tell the mock from the real API.

Every expectation is read from the mock's journal (what was really sent), never from constants.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from mockserver.testing import MockServer

FAKE_KEY = "sk-test-FAKE0123456789abcdef0123"
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


def client(server: MockServer, sid: str, **kw: Any) -> OpenAI:
    kw.setdefault("max_retries", 2)
    return OpenAI(
        base_url=server.openai_base_url, api_key=FAKE_KEY, default_headers={"x-mock-session": sid}, **kw
    )


def aclient(server: MockServer, sid: str, **kw: Any) -> AsyncOpenAI:
    kw.setdefault("max_retries", 2)
    return AsyncOpenAI(
        base_url=server.openai_base_url, api_key=FAKE_KEY, default_headers={"x-mock-session": sid}, **kw
    )


def scenario(spec: str | dict[str, Any]) -> dict[str, str]:
    return {"x-mock-scenario": spec if isinstance(spec, str) else json.dumps(spec)}


# --- success --------------------------------------------------------------------------------------


def test_sync_completion_text_usage_and_request_id(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        resp = c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (e,) = server.journal(sid)
    assert resp.choices[0].message.content == e["text_sent"]
    assert resp.choices[0].finish_reason == "stop"
    assert resp._request_id == e["request_id"]
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == e["usage_truth"]["input_tokens"]
    assert resp.usage.completion_tokens == e["usage_truth"]["output_tokens"]
    assert resp.usage.total_tokens == e["usage_truth"]["total_tokens"]
    assert e["request_headers"]["authorization"] == "Bearer [REDACTED]"
    assert e["request_headers"]["x-stainless-retry-count"] == "0"


def test_usage_details_are_parsed(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        resp = c.chat.completions.create(
            model="o3", messages=MESSAGES, extra_headers=scenario("usage_details")
        )
    (e,) = server.journal(sid)
    assert resp.usage is not None
    assert resp.usage.prompt_tokens_details is not None and resp.usage.completion_tokens_details is not None
    assert resp.usage.prompt_tokens_details.cached_tokens == e["usage_truth"]["cached_tokens"] == 5
    assert resp.usage.completion_tokens_details.reasoning_tokens == e["usage_truth"]["reasoning_tokens"] == 7


def test_null_and_missing_usage(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        a = c.chat.completions.create(model="m", messages=MESSAGES, extra_headers=scenario("null_usage"))
        b = c.chat.completions.create(model="m", messages=MESSAGES, extra_headers=scenario("missing_usage"))
    assert a.usage is None and b.usage is None
    assert all(e["usage_truth"]["total_tokens"] > 0 for e in server.journal(sid))


def test_stream_with_include_usage(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        stream = c.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        request_id = stream.response.headers["x-request-id"]
    (e,) = server.journal(sid)
    assert request_id == e["request_id"]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == e["text_sent"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == e["usage_truth"]["total_tokens"]
    assert all(ch.usage is None for ch in chunks[:-1])
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == ["stop"]


def test_stream_helper_accumulates_tool_call(server: MockServer, sid: str) -> None:
    with (
        client(server, sid) as c,
        c.chat.completions.stream(
            model="gpt-4o", messages=MESSAGES, tools=TOOLS, extra_headers=scenario("tool_call")
        ) as stream,
    ):
        for _ in stream:
            pass
        final = stream.get_final_completion()
    (e,) = server.journal(sid)
    call = final.choices[0].message.tool_calls
    assert call is not None and len(call) == 1
    fn = call[0].function  # type: ignore[union-attr]
    assert fn.name == "lookup" and fn.arguments == e["tool_calls_sent"][0]["arguments"]
    assert json.loads(fn.arguments)["q"]
    assert final.choices[0].finish_reason == "tool_calls"


def test_empty_chunks_and_keepalives_are_invisible_to_the_sdk(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        chunks = list(
            c.chat.completions.create(
                model="m", messages=MESSAGES, stream=True, extra_headers=scenario("empty_chunks")
            )
        )
    (e,) = server.journal(sid)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == e["text_sent"]


def test_filtered_output_keeps_partial_text(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        resp = c.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers=scenario("filtered_output")
        )
    (e,) = server.journal(sid)
    assert resp.choices[0].finish_reason == "content_filter"
    assert resp.choices[0].message.content == e["text_sent"] != ""


async def test_async_completion_and_stream(server: MockServer, sid: str) -> None:
    async with aclient(server, sid) as c:
        resp = await c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        stream = await c.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [ch async for ch in stream]
    first, second = server.journal(sid)
    assert resp.choices[0].message.content == first["text_sent"] and resp._request_id == first["request_id"]
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == second["text_sent"]
    assert (
        chunks[-1].usage is not None
        and chunks[-1].usage.completion_tokens == second["usage_truth"]["output_tokens"]
    )


# --- errors: the SDK's own exception classes ------------------------------------------------------

ERROR_CLASSES: list[tuple[str, type[openai.APIStatusError], int]] = [
    ("rate_limit", openai.RateLimitError, 429),
    ("quota_exhausted", openai.RateLimitError, 429),
    ("auth_error", openai.AuthenticationError, 401),
    ("permission_denied", openai.PermissionDeniedError, 403),
    ("not_found", openai.NotFoundError, 404),
    ("bad_request", openai.BadRequestError, 400),
    ("context_length", openai.BadRequestError, 400),
    ("content_filter", openai.BadRequestError, 400),
    ("server_error", openai.InternalServerError, 500),
    ("bad_gateway", openai.InternalServerError, 502),
    ("service_unavailable", openai.InternalServerError, 503),
    ("gateway_timeout", openai.InternalServerError, 504),
    ("overloaded", openai.InternalServerError, 503),
]


@pytest.mark.parametrize(("preset", "cls", "status"), ERROR_CLASSES)
def test_faults_raise_the_sdk_exception(
    server: MockServer, sid: str, preset: str, cls: type[openai.APIStatusError], status: int
) -> None:
    with client(server, sid, max_retries=0) as c, pytest.raises(cls) as info:
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=scenario(preset))
    (e,) = server.journal(sid)
    err = info.value
    assert err.status_code == status == e["status"]
    assert err.request_id == e["request_id"]
    body = json.loads(e["wire"])["error"]
    assert err.code == body["code"] and err.type == body["type"] and err.param == body["param"]
    assert body["message"] in err.message
    assert FAKE_KEY not in err.message


async def test_async_fault_raises_the_sdk_exception(server: MockServer, sid: str) -> None:
    async with aclient(server, sid, max_retries=0) as c:
        with pytest.raises(openai.NotFoundError) as info:
            await c.chat.completions.create(
                model="gpt-x", messages=MESSAGES, extra_headers=scenario("not_found")
            )
    (e,) = server.journal(sid)
    assert info.value.request_id == e["request_id"] and info.value.code == "model_not_found"


def test_inband_error_raises_api_error(server: MockServer, sid: str) -> None:
    got = ""
    with client(server, sid) as c, pytest.raises(openai.APIError) as info:
        for ch in c.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, extra_headers=scenario("error_mid_stream")
        ):
            got += ch.choices[0].delta.content or ""
    (e,) = server.journal(sid)
    assert not isinstance(info.value, openai.APIStatusError)
    assert info.value.message == "The server had an error while processing your request. Sorry about that!"
    assert got == e["text_sent"] and e["inband_error"] == "server_error"


def test_abort_raises_connection_error_after_partial_text(server: MockServer, sid: str) -> None:
    got = ""
    with client(server, sid) as c, pytest.raises(openai.APIConnectionError):
        for ch in c.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, extra_headers=scenario("abort_mid_stream")
        ):
            got += ch.choices[0].delta.content or ""
    (e,) = server.journal(sid)
    assert got == e["text_sent"] and e["aborted_after_chunks"] == 3


def test_malformed_chunk_is_a_raw_decode_error_in_the_sdk(server: MockServer, sid: str) -> None:
    with client(server, sid) as c, pytest.raises(json.JSONDecodeError):
        list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                       extra_headers=scenario("malformed_chunk")))  # fmt: skip


def test_hang_raises_api_timeout_error(server: MockServer, sid: str) -> None:
    with client(server, sid, timeout=0.5, max_retries=0) as c, pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(model="m", messages=MESSAGES, extra_headers=scenario("timeout"))
    (e,) = server.journal(sid)
    assert e["status"] is None and e["client_disconnected"]


def test_stall_raises_api_timeout_error(server: MockServer, sid: str) -> None:
    with client(server, sid, timeout=0.3, max_retries=0) as c, pytest.raises(openai.APITimeoutError):
        list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                       extra_headers=scenario("stall_mid_stream")))  # fmt: skip
    (e,) = server.journal(sid)
    assert e["stalled"] and e["chunks_sent"] == 2


# --- retries, counted in the journal --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "attempts", "cls"),
    [
        ({"preset": "rate_limit", "retry_after": 0.01}, 3, openai.RateLimitError),
        ({"preset": "quota_exhausted", "retry_after": 0.01}, 1, openai.RateLimitError),
        ("bad_request", 1, openai.BadRequestError),
        ({"preset": "server_error", "retry_after": 0.01}, 3, openai.InternalServerError),
        ({"preset": "service_unavailable", "retry_after": 0.01}, 3, openai.InternalServerError),
        ({"preset": "overloaded", "retry_after": 0.01}, 3, openai.InternalServerError),
    ],
)
def test_sdk_retry_attempts(
    server: MockServer, sid: str, spec: str | dict[str, Any], attempts: int, cls: type[Exception]
) -> None:
    with client(server, sid) as c, pytest.raises(cls):
        c.chat.completions.create(model="m", messages=MESSAGES, extra_headers=scenario(spec))
    entries = server.journal(sid)
    assert len(entries) == attempts
    assert [e["request_headers"]["x-stainless-retry-count"] for e in entries] == [
        str(i) for i in range(attempts)
    ]


def test_queued_sequence_succeeds_on_third_attempt(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "rate_limit", "retry_after": 0.01, "times": 2}, "ok")
    with client(server, sid) as c:
        resp = c.chat.completions.create(model="m", messages=MESSAGES)
    entries = server.journal(sid)
    assert [e["status"] for e in entries] == [429, 429, 200]
    assert resp._request_id == entries[-1]["request_id"]
    assert resp.choices[0].message.content == entries[-1]["text_sent"]


def test_retry_after_above_sdk_cap_is_not_retried(server: MockServer, sid: str) -> None:
    with client(server, sid) as c, pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="m", messages=MESSAGES, extra_headers=scenario(
            {"preset": "rate_limit", "retry_after": 300}))  # fmt: skip
    (e,) = server.journal(sid)
    assert e["response_headers"]["retry-after"] == "300"


# --- parallel tool calls ---------------------------------------------------------------------------

TWO_TOOLS: list[Any] = [
    *TOOLS,
    {
        "type": "function",
        "function": {
            "name": "clock",
            "parameters": {
                "type": "object",
                "properties": {"zone": {"type": "string"}},
                "required": ["zone"],
            },
        },
    },
]


def test_stream_helper_reassembles_interleaved_parallel_tool_calls(server: MockServer, sid: str) -> None:
    """The SDK's own accumulator (ChatCompletionStreamState, keyed by ``tool_calls[].index``) rebuilds every call
    from the mock's interleaved fragments: the interleaving is a form the real protocol allows."""
    spec = {"tool_calls": 3, "chunks": 4}
    with (
        client(server, sid) as c,
        c.chat.completions.stream(
            model="gpt-4o", messages=MESSAGES, tools=TWO_TOOLS, extra_headers=scenario(spec)
        ) as stream,
    ):
        for _ in stream:
            pass
        final = stream.get_final_completion()
    (e,) = server.journal(sid)
    sent = e["tool_calls_sent"]
    calls = final.choices[0].message.tool_calls or []
    got = [(c.id, c.function.name, c.function.arguments) for c in calls]
    assert got == [(s["id"], s["name"], s["arguments"]) for s in sent]
    assert [s["name"] for s in sent] == ["lookup", "clock", "lookup"]  # round-robin over the declared tools
    assert len({s["id"] for s in sent}) == 3 and sent[0]["arguments"] != sent[2]["arguments"]
    chunks = [
        json.loads(line[len("data: ") :]) for line in e["wire"].splitlines() if line.startswith("data: {")
    ]
    indexes = [
        tc["index"]
        for chunk in chunks
        for choice in chunk.get("choices", [])
        for tc in choice["delta"].get("tool_calls") or []
    ]
    assert indexes[:3] == [0, 1, 2] and indexes != sorted(indexes), f"fragments not interleaved: {indexes}"
    assert final.choices[0].finish_reason == "tool_calls"


def test_completion_carries_every_parallel_tool_call(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        resp = c.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, tools=TWO_TOOLS, extra_headers=scenario("parallel_tool_calls")
        )
    (e,) = server.journal(sid)
    calls = resp.choices[0].message.tool_calls or []
    got = [(c.id, c.function.name, c.function.arguments) for c in calls]  # type: ignore[union-attr]
    assert got == [(s["id"], s["name"], s["arguments"]) for s in e["tool_calls_sent"]]
    assert len(got) == 2 and resp.choices[0].finish_reason == "tool_calls"
