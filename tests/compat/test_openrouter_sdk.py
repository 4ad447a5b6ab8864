"""The official ``openai`` SDK pointed at the mock's OpenRouter (``base_url=.../openrouter/api/v1``), the way OpenRouter
is used for real: it must not be able to tell the mock from openrouter.ai. Expectations come from the mock's journal.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from mockserver.testing import MockServer

FAKE_KEY = "sk-or-v1-FAKE0123456789abcdef0123456789abcdef"
MODEL = "anthropic/claude-sonnet-4.5"
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


def base_url(server: MockServer) -> str:
    return f"{server.url}/openrouter/api/v1"


def client(server: MockServer, sid: str, **kw: Any) -> OpenAI:
    kw.setdefault("max_retries", 2)
    headers = {"x-mock-session": sid, "X-Title": "provcert"}
    return OpenAI(base_url=base_url(server), api_key=FAKE_KEY, default_headers=headers, **kw)


def scenario(spec: str | dict[str, Any]) -> dict[str, str]:
    return {"x-mock-scenario": spec if isinstance(spec, str) else json.dumps(spec)}


# --- success --------------------------------------------------------------------------------------


def test_completion_text_usage_cost_and_generation_id(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        raw = c.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, extra_headers=scenario("usage_details")
        )
        resp = raw.parse()
    (e,) = server.journal(sid)
    assert resp.choices[0].message.content == e["text_sent"]
    assert resp.id == raw.headers["x-generation-id"] == e["request_id"] and resp.id.startswith("gen-")
    assert resp.choices[0].finish_reason == "stop"
    extra = resp.choices[0].model_extra or {}
    assert extra["native_finish_reason"] == "end_turn", "Anthropic's own finish reason"
    assert (resp.model_extra or {})["provider"] == "Anthropic"
    usage = resp.usage
    assert usage is not None and usage.total_tokens == e["usage_truth"]["total_tokens"]
    assert usage.prompt_tokens_details is not None and usage.completion_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == e["usage_truth"]["cached_tokens"] == 5
    assert usage.completion_tokens_details.reasoning_tokens == e["usage_truth"]["reasoning_tokens"] == 7
    assert (usage.model_extra or {})["cost"] > 0
    assert e["request_headers"]["x-title"] == "provcert"


def test_stream_keepalives_usage_and_done(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        stream = c.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, extra_headers=scenario("empty_chunks")
        )
        chunks = list(stream)
        generation = stream.response.headers["x-generation-id"]
    (e,) = server.journal(sid)
    assert ": OPENROUTER PROCESSING" in e["wire"] and e["terminated"]
    assert generation == e["request_id"] and all(ch.id == generation for ch in chunks)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == e["text_sent"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == e["usage_truth"]["total_tokens"]
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == [
        "stop"
    ]


def test_stream_helper_accumulates_tool_call(server: MockServer, sid: str) -> None:
    with (
        client(server, sid) as c,
        c.chat.completions.stream(
            model=MODEL, messages=MESSAGES, tools=TOOLS, extra_headers=scenario("tool_call")
        ) as stream,
    ):
        for _ in stream:
            pass
        final = stream.get_final_completion()
    (e,) = server.journal(sid)
    calls = final.choices[0].message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].function.arguments == e["tool_calls_sent"][0]["arguments"]
    assert final.choices[0].finish_reason == "tool_calls"


async def test_async_completion_and_stream(server: MockServer, sid: str) -> None:
    async with AsyncOpenAI(
        base_url=base_url(server), api_key=FAKE_KEY, default_headers={"x-mock-session": sid}
    ) as c:
        resp = await c.chat.completions.create(model=MODEL, messages=MESSAGES)
        stream = await c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        chunks = [ch async for ch in stream]
    first, second = server.journal(sid)
    assert resp.choices[0].message.content == first["text_sent"]
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == second["text_sent"]
    assert chunks[-1].usage is not None


# --- errors ---------------------------------------------------------------------------------------

ERROR_CLASSES: list[tuple[str, type[openai.APIStatusError], int]] = [
    ("rate_limit", openai.RateLimitError, 429),
    ("quota_exhausted", openai.APIStatusError, 402),
    ("auth_error", openai.AuthenticationError, 401),
    ("permission_denied", openai.PermissionDeniedError, 403),
    ("not_found", openai.NotFoundError, 404),
    ("bad_request", openai.BadRequestError, 400),
    ("context_length", openai.BadRequestError, 400),
    ("content_filter", openai.PermissionDeniedError, 403),
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
        c.chat.completions.create(model=MODEL, messages=MESSAGES, extra_headers=scenario(preset))
    (e,) = server.journal(sid)
    err = info.value
    body = json.loads(e["wire"])["error"]
    assert type(err) is cls and err.status_code == status == e["status"] == body["code"]
    assert err.code == str(body["code"]), "the SDK stringifies OpenRouter's integer code"
    assert body["message"] in err.message and FAKE_KEY not in err.message
    assert err.request_id is None and e["request_id"] is None, "errors before a generation carry no id"


def test_moderation_403_carries_metadata(server: MockServer, sid: str) -> None:
    with client(server, sid, max_retries=0) as c, pytest.raises(openai.PermissionDeniedError) as info:
        c.chat.completions.create(model=MODEL, messages=MESSAGES, extra_headers=scenario("content_filter"))
    body = info.value.body
    assert isinstance(body, dict) and body["metadata"]["reasons"] and body["metadata"]["flagged_input"]


def test_error_in_200_returns_a_completion_without_choices(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        resp = c.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers=scenario("error_in_200")
        )
    (e,) = server.journal(sid)
    assert e["status"] == 200 and len(server.journal(sid)) == 1
    assert resp.choices is None
    error = (resp.model_extra or {})["error"]
    assert error["code"] == 500 and error["message"] == json.loads(e["wire"])["error"]["message"]


def test_inband_error_raises_api_error_after_partial_text(server: MockServer, sid: str) -> None:
    got = ""
    with client(server, sid) as c, pytest.raises(openai.APIError) as info:
        for ch in c.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, extra_headers=scenario("error_mid_stream")
        ):
            got += ch.choices[0].delta.content or ""
    (e,) = server.journal(sid)
    assert not isinstance(info.value, openai.APIStatusError)
    assert got == e["text_sent"] != "" and e["inband_error"] == "server_error"
    assert len(server.journal(sid)) == 1, "in-band errors are never retried"


def test_abort_raises_connection_error(server: MockServer, sid: str) -> None:
    with client(server, sid) as c, pytest.raises(openai.APIConnectionError):
        list(c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True,
                                       extra_headers=scenario("abort_mid_stream")))  # fmt: skip


# --- retries, counted in the journal (openai SDK default: 2 retries) ------------------------------


@pytest.mark.parametrize(
    ("spec", "attempts"),
    [
        ({"preset": "rate_limit", "retry_after": 0.01}, 3),
        ({"preset": "quota_exhausted", "retry_after": 0.01}, 1),
        ({"preset": "content_filter"}, 1),
        ({"preset": "server_error", "retry_after": 0.01}, 3),
        ({"preset": "bad_gateway", "retry_after": 0.01}, 3),
        ({"preset": "overloaded", "retry_after": 0.01}, 3),
    ],
)
def test_sdk_retry_attempts(server: MockServer, sid: str, spec: dict[str, Any], attempts: int) -> None:
    with client(server, sid) as c, pytest.raises(openai.APIStatusError):
        c.chat.completions.create(model=MODEL, messages=MESSAGES, extra_headers=scenario(spec))
    entries = server.journal(sid)
    assert len(entries) == attempts
    assert [e["request_headers"]["x-stainless-retry-count"] for e in entries] == [
        str(i) for i in range(attempts)
    ]


def test_queued_429s_then_success(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "rate_limit", "retry_after": 0.01, "times": 2}, "ok")
    with client(server, sid) as c:
        resp = c.chat.completions.create(model=MODEL, messages=MESSAGES)
    entries = server.journal(sid)
    assert [e["status"] for e in entries] == [429, 429, 200]
    assert entries[0]["response_headers"]["Retry-After"] == "0.01"
    assert resp.id == entries[-1]["request_id"]


def test_stream_helper_reassembles_interleaved_parallel_tool_calls(server: MockServer, sid: str) -> None:
    """OpenRouter relays index-keyed fragments; the SDK's accumulator rebuilds every interleaved call."""
    with (
        client(server, sid) as c,
        c.chat.completions.stream(
            model=MODEL, messages=MESSAGES, tools=TOOLS, extra_headers=scenario({"tool_calls": 3})
        ) as stream,
    ):
        for _ in stream:
            pass
        final = stream.get_final_completion()
    (e,) = server.journal(sid)
    calls = final.choices[0].message.tool_calls or []
    got = [(c.id, c.function.name, c.function.arguments) for c in calls]
    assert got == [(s["id"], s["name"], s["arguments"]) for s in e["tool_calls_sent"]] and len(got) == 3
    assert final.choices[0].finish_reason == "tool_calls"
