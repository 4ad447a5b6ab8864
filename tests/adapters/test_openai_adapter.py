"""The OpenAI adapter's error mapping for every status the openai SDK distinguishes (and the ones it lumps together),
over real HTTP to the mock server, which renders each status as an OpenAI error body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.base import Timeouts
from adapters.errors import ErrorKind, ProviderError
from adapters.openai import OpenAIAdapter
from adapters.registry import load_registry
from adapters.types import ChatRequest, Message
from mockserver.client import MockClient
from mockserver.testing import MockServer

REQUEST = ChatRequest(
    model="gpt-4o-mini", messages=(Message(role="user", content="hello there"),), max_tokens=16
)


class _Key:
    async def resolve(self, ref: str) -> str:
        return "sk-test-adapter-0123456789abcdef"


@pytest.fixture(scope="module")
def server() -> AsyncIterator[MockServer]:
    with MockServer() as srv:
        yield srv


@pytest.fixture
async def adapter(server: MockServer) -> AsyncIterator[tuple[OpenAIAdapter, str]]:
    session = MockClient.new_session()
    client = httpx.AsyncClient(headers={"x-mock-session": session})
    adapter = OpenAIAdapter(
        load_registry().get("openai"),
        base_url=server.openai_base_url,
        http_client=client,
        credentials=_Key(),  # type: ignore[arg-type]
        timeouts=Timeouts(connect=1, read=2, stream_idle=2),
    )
    yield adapter, session
    await client.aclose()


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (400, ErrorKind.BAD_REQUEST, False),
        (401, ErrorKind.AUTH, False),
        (403, ErrorKind.PERMISSION, False),
        (404, ErrorKind.NOT_FOUND, False),
        (408, ErrorKind.TIMEOUT, True),
        (409, ErrorKind.SERVER_ERROR, True),
        (413, ErrorKind.BAD_REQUEST, False),
        (418, ErrorKind.BAD_REQUEST, False),
        (422, ErrorKind.BAD_REQUEST, False),
        (429, ErrorKind.RATE_LIMITED, True),
        (500, ErrorKind.SERVER_ERROR, True),
        (501, ErrorKind.SERVER_ERROR, True),
        (502, ErrorKind.SERVER_ERROR, True),
        (529, ErrorKind.OVERLOADED, True),
    ],
)
async def test_status_mapping(
    server: MockServer, adapter: tuple[OpenAIAdapter, str], status: int, kind: ErrorKind, retryable: bool
) -> None:
    openai, session = adapter
    server.queue(session, {"error": "bad_request", "status": status, "message": "generic failure"})
    with pytest.raises(ProviderError) as info:
        await openai.complete(REQUEST)
    (sent,) = server.journal(session)
    assert sent["status"] == status
    assert (info.value.kind, info.value.retryable, info.value.status) == (kind, retryable, status)
    assert info.value.request_id == sent["request_id"]


async def test_quota_is_never_retryable_even_though_429(
    server: MockServer, adapter: tuple[OpenAIAdapter, str]
) -> None:
    openai, session = adapter
    server.queue(session, "quota_exhausted")
    with pytest.raises(ProviderError) as info:
        await openai.complete(REQUEST)
    assert info.value.kind == ErrorKind.QUOTA_EXHAUSTED and not info.value.retryable
    assert server.journal(session)[0]["response_headers"].get("x-should-retry") == "false"


async def test_unknown_error_body_falls_back_to_status(
    server: MockServer, adapter: tuple[OpenAIAdapter, str]
) -> None:
    openai, session = adapter
    server.queue(session, {"error": "server_error", "status": 503, "message": "upstream connect error"})
    with pytest.raises(ProviderError) as info:
        await openai.complete(REQUEST)
    assert info.value.kind == ErrorKind.SERVER_ERROR and info.value.retryable


async def test_tool_call_round_trip(server: MockServer, adapter: tuple[OpenAIAdapter, str]) -> None:
    from harness.assertions import WEATHER_TOOL

    openai, session = adapter
    server.queue(session, "tool_call", "tool_call")
    request = REQUEST.model_copy(update={"tools": (WEATHER_TOOL,)})
    response = await openai.complete(request)
    stream = [e async for e in openai.stream(request)]
    sent = server.journal(session)
    assert response.finish_reason == "tool_calls"
    assert [c.name for c in response.tool_calls] == [c["name"] for c in sent[0]["tool_calls_sent"]]
    end = stream[-1]
    assert end.type == "end" and [c.arguments for c in end.tool_calls] == [
        c.arguments for c in response.tool_calls
    ]
    assert sent[0]["request_body"]["tools"][0]["function"]["name"] == WEATHER_TOOL.name
