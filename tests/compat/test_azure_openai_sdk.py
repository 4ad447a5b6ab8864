"""The official ``openai`` SDK's Azure clients against the mock's Azure personality.

``AzureOpenAI``/``AsyncAzureOpenAI`` on the classic deployments surface and the plain ``OpenAI`` client on the v1
surface must not be able to tell the mock from Azure. Expectations are read from the journal, never from constants.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import AsyncAzureOpenAI, AzureOpenAI, OpenAI

from mockserver.testing import MockServer

FAKE_KEY = "azure-test-FAKE0123456789abcdef"
API_VERSION = "2024-10-21"
MESSAGES: list[Any] = [{"role": "user", "content": "Hello there, Azure mock!"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]


def client(server: MockServer, sid: str, **kw: Any) -> AzureOpenAI:
    kw.setdefault("max_retries", 2)
    return AzureOpenAI(
        azure_endpoint=f"{server.url}/azure",
        api_key=FAKE_KEY,
        api_version=API_VERSION,
        default_headers={"x-mock-session": sid},
        **kw,
    )


def aclient(server: MockServer, sid: str, **kw: Any) -> AsyncAzureOpenAI:
    kw.setdefault("max_retries", 2)
    return AsyncAzureOpenAI(
        azure_endpoint=f"{server.url}/azure",
        api_key=FAKE_KEY,
        api_version=API_VERSION,
        default_headers={"x-mock-session": sid},
        **kw,
    )


def v1_client(server: MockServer, sid: str, **kw: Any) -> OpenAI:
    return OpenAI(
        base_url=f"{server.url}/azure/openai/v1",
        api_key=FAKE_KEY,
        default_headers={"x-mock-session": sid},
        **kw,
    )


def scenario(spec: str | dict[str, Any]) -> dict[str, str]:
    return {"x-mock-scenario": spec if isinstance(spec, str) else json.dumps(spec)}


def text_of(chunks: list[Any]) -> str:
    """Stream text the way Azure-aware code must read it: skip empty ``choices`` and ``delta``-less choices."""
    return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices and ch.choices[0].delta)


# --- success --------------------------------------------------------------------------------------


def test_completion_routes_by_deployment_with_api_key_and_api_version(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        resp = c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (e,) = server.journal(sid)
    assert e["path"] == "/azure/openai/deployments/gpt-4o-mini/chat/completions"
    assert e["query"] == {"api-version": API_VERSION}
    assert e["request_headers"]["api-key"] == "[REDACTED]" and "authorization" not in e["request_headers"]
    assert e["request_body"]["model"] == "gpt-4o-mini"  # the SDK keeps it; Azure routes by the path
    assert resp.choices[0].message.content == e["text_sent"]
    assert resp._request_id == e["request_id"] == e["response_headers"]["x-request-id"]
    assert resp.model == json.loads(e["wire"])["model"]
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (
        e["usage_truth"]["input_tokens"],
        e["usage_truth"]["output_tokens"],
        e["usage_truth"]["total_tokens"],
    )
    # Azure's annotations survive as extra fields
    extra = resp.model_extra or {}
    assert extra["prompt_filter_results"][0]["prompt_index"] == 0
    assert (resp.choices[0].model_extra or {})["content_filter_results"]["violence"]["filtered"] is False


def test_usage_details_are_parsed(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        resp = c.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers=scenario("usage_details")
        )
    (e,) = server.journal(sid)
    assert resp.usage is not None and resp.usage.prompt_tokens_details is not None
    assert resp.usage.prompt_tokens_details.cached_tokens == e["usage_truth"]["cached_tokens"] == 5
    assert resp.usage.completion_tokens_details is not None
    assert resp.usage.completion_tokens_details.reasoning_tokens == e["usage_truth"]["reasoning_tokens"] == 7


def test_stream_carries_azure_filter_chunks_and_usage(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        stream = c.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        request_id = stream.response.headers["x-request-id"]
    (e,) = server.journal(sid)
    assert request_id == e["request_id"]
    first = chunks[0]
    assert first.choices == [] and first.id == "" and first.model == ""
    assert (first.model_extra or {})["prompt_filter_results"][0]["content_filter_results"]
    annotations = [ch for ch in chunks if ch.choices and ch.choices[0].delta is None]
    assert annotations, "no asynchronous-filter chunk (a choice without delta) was sent"
    assert all((ch.choices[0].model_extra or {}).get("content_filter_offsets") for ch in annotations)
    assert text_of(chunks) == e["text_sent"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == e["usage_truth"]["total_tokens"]


def test_stream_helper_breaks_on_async_filter_chunks_as_against_azure(server: MockServer, sid: str) -> None:
    """openai-python #1677/#2313: the SDK's accumulator calls ``choice.delta.to_dict()`` and fails on Azure's
    ``delta``-less filter chunks; the mock reproduces it rather than hiding it."""
    with (
        client(server, sid) as c,
        pytest.raises(AttributeError, match="to_dict"),
        c.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream,
    ):
        for _ in stream:
            pass


def test_stream_tool_call_fragments(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        chunks = list(
            c.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                tools=TOOLS,
                stream=True,
                extra_headers=scenario("tool_call"),
            )
        )
    (e,) = server.journal(sid)
    fragments = [
        call
        for ch in chunks
        if ch.choices and ch.choices[0].delta and ch.choices[0].delta.tool_calls
        for call in ch.choices[0].delta.tool_calls
    ]
    assert fragments[0].function is not None and fragments[0].function.name == "lookup"
    assert (
        "".join(f.function.arguments or "" for f in fragments if f.function)
        == e["tool_calls_sent"][0]["arguments"]
    )
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


def test_filtered_output_keeps_partial_text(server: MockServer, sid: str) -> None:
    with client(server, sid) as c:
        resp = c.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers=scenario("filtered_output")
        )
    (e,) = server.journal(sid)
    assert resp.choices[0].finish_reason == "content_filter"
    assert resp.choices[0].message.content == e["text_sent"] != ""
    assert (resp.choices[0].model_extra or {})["content_filter_results"]["violence"]["filtered"] is True


async def test_async_completion_and_stream(server: MockServer, sid: str) -> None:
    async with aclient(server, sid) as c:
        resp = await c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        stream = await c.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [ch async for ch in stream]
    first, second = server.journal(sid)
    assert resp.choices[0].message.content == first["text_sent"] and resp._request_id == first["request_id"]
    assert text_of(chunks) == second["text_sent"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == second["usage_truth"]["output_tokens"]


def test_v1_surface_with_the_plain_openai_client(server: MockServer, sid: str) -> None:
    with v1_client(server, sid, max_retries=0) as c:
        resp = c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (e,) = server.journal(sid)
    assert e["path"] == "/azure/openai/v1/chat/completions" and e["query"] == {}
    assert e["request_headers"]["authorization"] == "Bearer [REDACTED]"
    assert resp.choices[0].message.content == e["text_sent"] and resp._request_id == e["request_id"]


def test_entra_token_is_accepted(server: MockServer, sid: str) -> None:
    with AzureOpenAI(
        azure_endpoint=f"{server.url}/azure",
        azure_ad_token="eyJ0eXAiOiJKV1QiLCJhbGciOi.FAKE.TOKEN",
        api_version=API_VERSION,
        default_headers={"x-mock-session": sid},
    ) as c:
        resp = c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (e,) = server.journal(sid)
    assert e["request_headers"]["authorization"] == "Bearer [REDACTED]" and resp.choices[0].message.content


# --- errors: the SDK's own exception classes ------------------------------------------------------

#: (preset, exception class, status, whether the response carries x-request-id: only backend-made answers do)
ERROR_CLASSES: list[tuple[str, type[openai.APIStatusError], int, bool]] = [
    ("rate_limit", openai.RateLimitError, 429, False),
    ("quota_exhausted", openai.PermissionDeniedError, 403, False),
    ("auth_error", openai.AuthenticationError, 401, False),
    ("permission_denied", openai.PermissionDeniedError, 403, False),
    ("not_found", openai.NotFoundError, 404, False),
    ("bad_request", openai.BadRequestError, 400, True),
    ("context_length", openai.BadRequestError, 400, True),
    ("content_filter", openai.BadRequestError, 400, True),
    ("server_error", openai.InternalServerError, 500, True),
    ("bad_gateway", openai.InternalServerError, 502, False),
    ("service_unavailable", openai.InternalServerError, 503, True),
    ("gateway_timeout", openai.InternalServerError, 504, False),
    ("overloaded", openai.InternalServerError, 503, True),
]


@pytest.mark.parametrize(("preset", "cls", "status", "backend"), ERROR_CLASSES)
def test_faults_raise_the_sdk_exception(
    server: MockServer, sid: str, preset: str, cls: type[openai.APIStatusError], status: int, backend: bool
) -> None:
    with client(server, sid, max_retries=0) as c, pytest.raises(cls) as info:
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=scenario(preset))
    (e,) = server.journal(sid)
    err = info.value
    assert type(err) is cls and err.status_code == status == e["status"]
    body = json.loads(e["wire"])["error"]
    assert err.code == body.get("code") and err.type == body.get("type") and err.param == body.get("param")
    assert body["message"] in err.message and FAKE_KEY not in err.message
    # the SDK reads only x-request-id; gateway answers carry the id as apim-request-id alone
    assert err.request_id == (e["request_id"] if backend else None)
    assert err.response.headers.get("x-request-id" if backend else "apim-request-id") == e["request_id"]


def test_content_filter_error_body(server: MockServer, sid: str) -> None:
    with client(server, sid, max_retries=0) as c, pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=scenario("content_filter"))
    err = info.value
    assert err.code == "content_filter" and err.param == "prompt"
    assert isinstance(err.body, dict)
    inner = err.body["innererror"]
    assert (
        inner["code"] == "ResponsibleAIPolicyViolation"
        and inner["content_filter_result"]["violence"]["filtered"]
    )


def test_missing_api_version_is_azures_404(server: MockServer, sid: str) -> None:
    with (
        OpenAI(
            base_url=f"{server.url}/azure/openai/deployments/gpt-4o",
            api_key="unused",
            default_headers={"x-mock-session": sid, "api-key": FAKE_KEY},
            max_retries=0,
        ) as c,
        pytest.raises(openai.NotFoundError) as info,
    ):
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.code == "404" and "Resource not found" in info.value.message


def test_missing_key_is_the_recorded_401(server: MockServer, sid: str) -> None:
    with OpenAI(
        base_url=f"{server.url}/azure/openai/v1", api_key="unused", default_headers={"x-mock-session": sid},
        max_retries=0,
    ) as c, pytest.raises(openai.AuthenticationError) as info:  # fmt: skip
        c.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"Authorization": openai.Omit()}
        )
    assert info.value.code == "401" and "Access denied" in info.value.message


def test_inband_error_raises_api_error(server: MockServer, sid: str) -> None:
    got: list[Any] = []
    with client(server, sid) as c, pytest.raises(openai.APIError) as info:
        for ch in c.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, extra_headers=scenario("error_mid_stream")
        ):
            got.append(ch)
    (e,) = server.journal(sid)
    assert not isinstance(info.value, openai.APIStatusError)
    assert info.value.message.startswith("The server had an error while processing your request.")
    assert text_of(got) == e["text_sent"] and e["inband_error"] == "server_error"


def test_abort_raises_connection_error_after_partial_text(server: MockServer, sid: str) -> None:
    got: list[Any] = []
    with client(server, sid) as c, pytest.raises(openai.APIConnectionError):
        for ch in c.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, extra_headers=scenario("abort_mid_stream")
        ):
            got.append(ch)
    (e,) = server.journal(sid)
    assert text_of(got) == e["text_sent"] and e["aborted_after_chunks"] == 3


def test_malformed_chunk_is_a_raw_decode_error_in_the_sdk(server: MockServer, sid: str) -> None:
    with client(server, sid) as c, pytest.raises(json.JSONDecodeError):
        list(c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                       extra_headers=scenario("malformed_chunk")))  # fmt: skip


def test_hang_raises_api_timeout_error(server: MockServer, sid: str) -> None:
    with client(server, sid, timeout=0.3, max_retries=0) as c, pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=scenario("timeout"))
    (e,) = server.journal(sid)
    assert e["status"] is None and e["client_disconnected"]


# --- retries, counted in the journal --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "attempts", "cls"),
    [
        ({"preset": "rate_limit", "retry_after": 0.01}, 3, openai.RateLimitError),
        ({"preset": "quota_exhausted", "retry_after": 0.01}, 1, openai.PermissionDeniedError),
        ("content_filter", 1, openai.BadRequestError),
        ({"preset": "server_error", "retry_after": 0.01}, 3, openai.InternalServerError),
        ({"preset": "overloaded", "retry_after": 0.01}, 3, openai.InternalServerError),
        ({"preset": "gateway_timeout", "retry_after": 0.01}, 3, openai.InternalServerError),
    ],
)
def test_sdk_retry_attempts(
    server: MockServer, sid: str, spec: str | dict[str, Any], attempts: int, cls: type[Exception]
) -> None:
    with client(server, sid) as c, pytest.raises(cls):
        c.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=scenario(spec))
    entries = server.journal(sid)
    assert len(entries) == attempts
    assert [e["request_headers"]["x-stainless-retry-count"] for e in entries] == [
        str(i) for i in range(attempts)
    ]


def test_queued_429s_then_success(server: MockServer, sid: str) -> None:
    server.queue(sid, {"preset": "rate_limit", "retry_after": 0.01, "times": 2}, "ok")
    with client(server, sid) as c:
        resp = c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    entries = server.journal(sid)
    assert [e["status"] for e in entries] == [429, 429, 200]
    assert entries[0]["response_headers"]["retry-after-ms"] == "10"
    assert resp._request_id == entries[-1]["request_id"]
    assert resp.choices[0].message.content == entries[-1]["text_sent"]


def test_stream_parallel_tool_call_fragments_keyed_by_index(server: MockServer, sid: str) -> None:
    """Interleaved fragments of three calls, each rebuilt from its own ``index`` (the accumulator helper cannot read
    Azure streams, see above, so the chunks are folded here as a client would)."""
    with client(server, sid) as c:
        chunks = list(
            c.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                tools=TOOLS,
                stream=True,
                extra_headers=scenario({"tool_calls": 3}),
            )
        )
    (e,) = server.journal(sid)
    calls: dict[int, list[str]] = {}
    ids: dict[int, str | None] = {}
    for ch in chunks:
        if ch.choices and ch.choices[0].delta and ch.choices[0].delta.tool_calls:
            for f in ch.choices[0].delta.tool_calls:
                calls.setdefault(f.index, []).append((f.function.arguments or "") if f.function else "")
                ids[f.index] = f.id or ids.get(f.index)
    got = [(ids[i], "".join(calls[i])) for i in sorted(calls)]
    assert got == [(s["id"], s["arguments"]) for s in e["tool_calls_sent"]] and len(got) == 3
