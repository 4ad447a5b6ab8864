"""Shared fixtures for the adapters tests: registry builders, scripted fake adapters, a recording sleep and an
in-memory span exporter. No HTTP: the gateway is tested against in-process adapters."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.base import Adapter
from adapters.errors import ErrorKind, ProviderError
from adapters.registry import ProviderEntry, Registry, registry_from_data
from adapters.types import (
    ChatRequest,
    ChatResponse,
    End,
    Message,
    RequestMetadata,
    Start,
    StreamEvent,
    TextDelta,
    Usage,
)

BASE_ENTRY: dict[str, Any] = {
    "provider_id": "acme",
    "display_name": "Acme AI",
    "adapter": "adapters.openai:OpenAIAdapter",
    "wire": "openai",
    "base_url": "https://api.acme.test/v1",
    "credential_ref": "env://ACME_API_KEY",
    "capabilities": {"streaming": True, "tools": True},
    "timeouts": {"connect": 1, "read": 2, "stream_idle": 1},
    "retry": {"max_attempts": 3, "initial_backoff": 0.5, "max_backoff": 8, "retry_after_cap": 10},
    "models": [{"id": "m-1", "input_per_1m": "1.00", "output_per_1m": "2.00", "cached_input_per_1m": "0.50"}],
    "rollout": {"status": "enabled", "percentage": 100},
    "fallback": [],
}


def entry_data(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_ENTRY)
    data.update(overrides)
    return data


def make_registry(*entries: dict[str, Any]) -> Registry:
    return registry_from_data({"providers": list(entries)}, source="<test>")


def request(model: str = "m-1", **meta: str) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=(Message(role="user", content="hi"),),
        max_tokens=64,
        temperature=0.2,
        metadata=RequestMetadata(**meta),
    )


def err(kind: ErrorKind, pid: str = "acme", **kw: Any) -> ProviderError:
    return ProviderError(kind, f"scripted {kind.value}", provider_id=pid, **kw)


USAGE = Usage(input_tokens=1000, output_tokens=500, total_tokens=1500, cached_tokens=200)


def response(pid: str, text: str = "hello", model: str = "m-1") -> ChatResponse:
    return ChatResponse(
        text=text, finish_reason="stop", usage=USAGE, request_id=f"req-{pid}", model=model, provider_id=pid
    )


def stream_ok(pid: str, parts: Sequence[str] = ("hel", "lo")) -> list[Any]:
    return [
        Start(provider_id=pid, model="m-1", request_id=f"req-{pid}"),
        *[TextDelta(text=p) for p in parts],
        End(finish_reason="stop", usage=USAGE, request_id=f"req-{pid}"),
    ]


class Hang:
    """A script item: sleep this long (longer than any timeout in the test) instead of answering."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds


class FakeAdapter(Adapter):
    """An adapter playing a script: one item per call, a response, an event list or an exception to raise.

    In a stream script, an exception inside the event list is raised at that point of the stream.
    """

    wire = "openai"

    def __init__(self, entry: ProviderEntry, script: Sequence[Any]) -> None:
        super().__init__(entry)
        self.script = list(script)
        self.calls = 0
        self.closed_streams = 0

    def _next(self) -> Any:
        self.calls += 1
        if not self.script:
            raise AssertionError(f"{self.provider_id}: script exhausted")
        return self.script.pop(0)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        item = self._next()
        if isinstance(item, Hang):
            await asyncio.sleep(item.seconds)
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, ChatResponse)
        return item

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        item = self._next()
        try:
            if isinstance(item, BaseException):
                raise item
            for event in item:
                if isinstance(event, Hang):
                    await asyncio.sleep(event.seconds)
                if isinstance(event, BaseException):
                    raise event
                yield event
        finally:
            self.closed_streams += 1


class RecordingSleep:
    """An injectable sleep that records the requested delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def kit() -> Any:
    """This module's helpers, so tests reach them without importing a conftest (tests/ is not a package)."""
    return SimpleNamespace(**globals())
