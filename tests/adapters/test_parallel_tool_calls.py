"""Every registered adapter that declares tools reassembles parallel tool calls (issue 8), whole and streamed, over real
HTTP to the mock, whatever form its wire gives them: OpenAI-style interleaved index-keyed fragments, Anthropic and
Bedrock content blocks, whole calls (Mistral, Gemini, Ollama). STR-TOOLS certifies the streamed side; the complete
side is checked here for every provider, since no certification check asks for more than one call in a whole body.

Expectations are the journal's ``tool_calls_sent``: what the mock really sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from adapters.base import Adapter, Timeouts
from adapters.registry import load_adapter_class, load_registry
from adapters.types import End, ToolCall, ToolCallDelta, ToolSpec
from harness.assertions import WEATHER_TOOL, chat_request
from mockserver.client import MockClient
from mockserver.testing import MockServer

CLOCK_TOOL = ToolSpec(
    name="get_time",
    description="Current time in a time zone",
    parameters={"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
)
PROVIDERS = sorted(e.provider_id for e in load_registry().entries if e.capabilities.tools)


class _Key:
    async def resolve(self, ref: str) -> str:
        return "sk-test-parallel-0123456789abcdef"


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer() as srv:
        yield srv


@pytest.fixture
async def made(server: MockServer, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Adapter, str]]:
    entry = load_registry().get(request.param)
    session = MockClient.new_session()
    client = httpx.AsyncClient(headers={"x-mock-session": session}, trust_env=False)
    adapter = load_adapter_class(entry)(
        entry,
        base_url=server.url + entry.mock_path,
        http_client=client,
        credentials=_Key(),  # type: ignore[arg-type]
        timeouts=Timeouts(connect=2, read=5, stream_idle=5),
    )
    yield adapter, session
    await client.aclose()


def _want(sent: list[dict[str, Any]]) -> list[tuple[str | None, str, Any]]:
    """(id, name, arguments) of each call sent; a wire without ids journals None, and then any id is accepted."""
    return [(c["id"], c["name"], json.loads(c["arguments"])) for c in sent]


def _got(calls: tuple[ToolCall, ...], sent: list[dict[str, Any]]) -> list[tuple[str | None, str, Any]]:
    return [
        (c.id if s["id"] is not None else None, c.name, c.arguments)
        for c, s in zip(calls, sent, strict=False)
    ]


@pytest.mark.parametrize("made", PROVIDERS, indirect=True)
async def test_complete_returns_every_parallel_call(server: MockServer, made: tuple[Adapter, str]) -> None:
    adapter, session = made
    server.queue(session, {"tool_calls": 3})
    request = chat_request(adapter.entry, tools=True).model_copy(update={"tools": (WEATHER_TOOL, CLOCK_TOOL)})
    response = await adapter.complete(request)
    (sent,) = server.journal(session)
    calls = sent["tool_calls_sent"]
    assert len(calls) == 3 and [c["name"] for c in calls] == ["get_weather", "get_time", "get_weather"]
    assert len(response.tool_calls) == 3, f"{len(response.tool_calls)} calls returned, 3 sent"
    assert _got(response.tool_calls, calls) == _want(calls)
    assert response.finish_reason == "tool_calls"


@pytest.mark.parametrize("made", PROVIDERS, indirect=True)
async def test_stream_reassembles_every_parallel_call(server: MockServer, made: tuple[Adapter, str]) -> None:
    adapter, session = made
    server.queue(session, {"tool_calls": 4, "chunks": 5})
    request = chat_request(adapter.entry, tools=True).model_copy(update={"tools": (WEATHER_TOOL, CLOCK_TOOL)})
    events = [e async for e in adapter.stream(request)]
    (sent,) = server.journal(session)
    calls = sent["tool_calls_sent"]
    end = events[-1]
    assert isinstance(end, End) and len(calls) == 4
    assert _got(end.tool_calls, calls) == _want(calls) and len(end.tool_calls) == 4
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    for number, index in enumerate(dict.fromkeys(e.index for e in deltas)):
        joined = "".join(e.arguments_fragment for e in deltas if e.index == index)
        assert json.loads(joined) == json.loads(calls[number]["arguments"])
