"""Assertions the certification checks share, each comparing the adapter's view with what the mock journal says it sent.

Every message names the provider, the check's expectation and the journal's truth, so a failing check explains itself
in the certificate's one-line evidence.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.errors import ErrorKind, ProviderError
from adapters.registry import ProviderEntry
from adapters.types import (
    ChatRequest,
    End,
    Message,
    RequestMetadata,
    Start,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)

#: How each of the mock's provider-neutral fault kinds must surface in the taxonomy (and whether it is retryable).
FAULT_KINDS: dict[str, tuple[set[ErrorKind], bool]] = {
    "rate_limit": ({ErrorKind.RATE_LIMITED}, True),
    "quota_exhausted": ({ErrorKind.QUOTA_EXHAUSTED}, False),
    "auth_error": ({ErrorKind.AUTH}, False),
    "permission_denied": ({ErrorKind.PERMISSION}, False),
    "not_found": ({ErrorKind.NOT_FOUND}, False),
    "bad_request": ({ErrorKind.BAD_REQUEST}, False),
    "context_length": ({ErrorKind.CONTEXT_LENGTH}, False),
    "content_filter": ({ErrorKind.CONTENT_FILTER}, False),
    "server_error": ({ErrorKind.SERVER_ERROR}, True),
    "bad_gateway": ({ErrorKind.SERVER_ERROR}, True),
    "service_unavailable": ({ErrorKind.SERVER_ERROR, ErrorKind.OVERLOADED}, True),
    "gateway_timeout": ({ErrorKind.SERVER_ERROR, ErrorKind.TIMEOUT}, True),
    "overloaded": ({ErrorKind.OVERLOADED}, True),
}

WEATHER_TOOL = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
)


def default_model(entry: ProviderEntry) -> str:
    return entry.models[0].id


def chat_request(entry: ProviderEntry, *, tools: bool = False, text: str | None = None) -> ChatRequest:
    return ChatRequest(
        model=default_model(entry),
        messages=(
            Message(role="system", content="You are a terse assistant used by a certification suite."),
            Message(role="user", content=text or "Say something short about the sea."),
        ),
        max_tokens=64,
        temperature=0.0,
        tools=(WEATHER_TOOL,) if tools else (),
        metadata=RequestMetadata(
            trace_id="trace-cert-1",
            tenant_id="tenant-acme",
            user_id="user-42@example.com",
            profile_id="default",
        ),
    )


@dataclass
class StreamRun:
    events: list[StreamEvent] = field(default_factory=list)
    error: ProviderError | None = None

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    @property
    def starts(self) -> list[Start]:
        return [e for e in self.events if isinstance(e, Start)]

    @property
    def ends(self) -> list[End]:
        return [e for e in self.events if isinstance(e, End)]

    @property
    def deltas(self) -> list[StreamEvent]:
        return [e for e in self.events if isinstance(e, (TextDelta, ToolCallDelta))]


async def run_stream(stream: AsyncIterator[StreamEvent]) -> StreamRun:
    """Drain a stream, keeping every event and the ProviderError that ended it; any other exception is a leak."""
    run = StreamRun()
    try:
        async for event in stream:
            run.events.append(event)
    except ProviderError as exc:
        run.error = exc
    return run


def only(entries: list[dict[str, Any]], what: str = "request") -> dict[str, Any]:
    assert len(entries) == 1, f"expected exactly one {what} at the mock, the journal shows {len(entries)}"
    return entries[0]


def assert_error(
    err: BaseException | None,
    sent: Mapping[str, Any],
    *,
    kinds: Iterable[ErrorKind],
    retryable: bool | None,
    provider_id: str,
    secret: str | None = None,
) -> ProviderError:
    assert err is not None, f"expected a ProviderError, got success (mock sent status {sent.get('status')})"
    assert isinstance(err, ProviderError), f"a raw {type(err).__name__} reached the caller: {err!r}"
    allowed = set(kinds)
    assert err.kind in allowed, (
        f"kind {err.kind.value!r}, expected {' or '.join(sorted(k.value for k in allowed))} "
        f"(mock sent status {sent.get('status')}, scenario {sent.get('scenario', {}).get('name')})"
    )
    if retryable is not None:
        assert err.retryable is retryable, (
            f"retryable={err.retryable} for {err.kind.value}, expected {retryable}"
        )
    assert err.provider_id == provider_id, f"provider_id {err.provider_id!r}, expected {provider_id!r}"
    if sent.get("status") not in (None, 200):
        assert err.status == sent["status"], f"status {err.status}, the mock sent {sent['status']}"
    if sent.get("request_id"):
        assert err.request_id == sent["request_id"], (
            f"request id {err.request_id!r}, the mock sent {sent['request_id']!r}"
        )
    if secret:
        for surface in (str(err), repr(err), json.dumps(err.to_dict())):
            assert secret not in surface, "the credential appears in the error's message, repr or dict"
    return err


def assert_usage_matches(usage: Any, truth: Mapping[str, Any], *, what: str) -> None:
    got = (usage.input_tokens, usage.output_tokens, usage.total_tokens)
    want = (truth["input_tokens"], truth["output_tokens"], truth["total_tokens"])
    assert got == want, f"{what} usage (input, output, total) = {got}, the mock's truth is {want}"
    assert usage.source == "reported", (
        f"{what} usage marked {usage.source!r} although the provider reported it"
    )
