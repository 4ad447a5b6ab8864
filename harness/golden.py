"""Replaying golden cassettes through an adapter, and the reviewed snapshots of what it must make of them.

:class:`ReplayTransport` serves recorded responses to an adapter's ``httpx.AsyncClient`` chunk by chunk, as recorded
(optionally at the recorded pace), so stream parsing meets real chunk boundaries; it keeps the requests the adapter
sent for GLD-REQUEST. :func:`golden_results` replays every interaction of a cassette and gives the normalized outcome
of each (the response, the event sequence, or the error); the GLD checks compare them with
``<name>.expected.json``, which only changes when the run is given ``--update-golden`` (review the diff).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import httpx

from adapters.base import Timeouts, shared_ssl_context
from adapters.errors import ProviderError
from adapters.registry import ProviderEntry, load_adapter_class
from adapters.streaming import parse_arguments
from adapters.types import ChatRequest, Message, ToolCall
from harness import cassettes as fmt

Kind = Literal["complete", "stream"]
#: an adapter replaying a cassette never waits on a real network; short bounds keep a broken replay from hanging
REPLAY_TIMEOUTS = Timeouts(connect=2.0, read=10.0, stream_idle=10.0)
#: Bedrock ``/model/{id}/`` and Azure ``/deployments/{name}/`` take the whole segment (Bedrock ids contain ':');
#: Gemini ``/models/{id}:generateContent`` ends the id at the colon
_MODEL_IN_PATH = re.compile(r"/(?:model|deployments)/([^/]+)|/models/([^/:]+)")


class ReplayMismatch(AssertionError):
    """The adapter asked for something the cassette does not hold."""


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: Sequence[bytes], timings: Sequence[float] | None) -> None:
        self._chunks = chunks
        self._timings = timings

    async def __aiter__(self) -> AsyncIterator[bytes]:
        elapsed = 0.0
        for n, chunk in enumerate(self._chunks):
            if self._timings is not None:
                delay = self._timings[n] - elapsed
                if delay > 0:
                    await asyncio.sleep(delay)
                elapsed = self._timings[n]
            yield chunk


def response_headers(response: fmt.RecordedResponse) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, values in response.headers.items()
        if name not in fmt.TRANSFER_HEADERS
        for value in values
    ]


def paths_match(recorded_uri: str, sent_path: str) -> bool:
    recorded = unquote(urlsplit(recorded_uri).path).rstrip("/")
    sent = unquote(sent_path).rstrip("/")
    return recorded == sent or recorded.endswith(sent) or sent.endswith(recorded)


class ReplayTransport(httpx.AsyncBaseTransport):
    """Serves recorded interactions, each once, to requests of the same method and path, keeping chunking."""

    def __init__(
        self, interactions: Sequence[fmt.Interaction], *, timing: bool = False, source: str = "cassette"
    ):
        self._left = list(interactions)
        self.timing = timing
        self.source = source
        self.sent: list[httpx.Request] = []
        self.problems: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent.append(request)
        for n, recorded in enumerate(self._left):
            if recorded.request.method == request.method and paths_match(
                recorded.request.uri, request.url.path
            ):
                del self._left[n]
                return self.response(recorded.response)
        recorded_list = ", ".join(f"{i.request.method} {urlsplit(i.request.uri).path}" for i in self._left)
        problem = (
            f"{self.source}: no recorded interaction left for {request.method} {request.url.path} "
            f"(left: {recorded_list or 'none'})"
        )
        self.problems.append(problem)
        raise ReplayMismatch(problem)

    def response(self, recorded: fmt.RecordedResponse) -> httpx.Response:
        chunks = recorded.chunks if recorded.chunks is not None else [recorded.body]
        extensions = {"reason_phrase": recorded.reason.encode("ascii", "replace")} if recorded.reason else {}
        return httpx.Response(
            recorded.status,
            headers=response_headers(recorded),
            stream=_Chunks(chunks, recorded.timings if self.timing else None),
            extensions=extensions,
        )


# ---------------------------------------------------------------- what a replay means
def kind_of(interaction: fmt.Interaction) -> Kind:
    """A streamed response, or a request that asked for a stream (also when it was answered with an error)."""
    if interaction.response.is_stream:
        return "stream"
    try:
        body = interaction.request.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("stream"), bool):
        return "stream" if body["stream"] else "complete"
    return "stream" if "stream" in urlsplit(interaction.request.uri).path.lower() else "complete"


def model_of(interaction: fmt.Interaction) -> str | None:
    try:
        body = interaction.request.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        return str(body["model"])
    match = _MODEL_IN_PATH.search(unquote(urlsplit(interaction.request.uri).path))
    return (match.group(1) or match.group(2)) if match else None


def call_from_recording(interaction: fmt.Interaction, entry: ProviderEntry) -> ChatRequest:
    """The normalized request to replay with: the recorded ``call``, else one rebuilt from the recorded body."""
    if interaction.call is not None:
        return ChatRequest.model_validate(interaction.call)
    try:
        body = interaction.request.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    messages = []
    for raw in body.get("messages") or []:
        if not isinstance(raw, dict) or raw.get("role") not in ("system", "user", "assistant", "tool"):
            continue
        content = raw.get("content")
        calls = tuple(
            ToolCall(
                id=c.get("id"),
                name=c["function"]["name"],
                arguments=parse_arguments(c["function"].get("arguments")),
            )
            for c in raw.get("tool_calls") or []
            if isinstance(c, dict) and isinstance(c.get("function"), dict) and c["function"].get("name")
        )
        if raw["role"] == "tool" and not isinstance(raw.get("tool_call_id"), str):
            continue
        messages.append(
            Message(
                role=raw["role"],
                content=content if isinstance(content, str) else "",
                tool_calls=calls,
                tool_call_id=raw.get("tool_call_id") if raw["role"] == "tool" else None,
            )
        )
    max_tokens = next(
        (body[k] for k in ("max_tokens", "max_completion_tokens") if isinstance(body.get(k), int)), None
    )
    return ChatRequest(
        model=model_of(interaction) or entry.models[0].id,
        messages=tuple(messages) or (Message(role="user", content="(replayed)"),),
        max_tokens=max_tokens,
    )


def error_dict(exc: ProviderError) -> dict[str, Any]:
    return {
        "kind": exc.kind.value,
        "status": exc.status,
        "retryable": exc.retryable,
        "retry_after": exc.retry_after,
        "request_id": exc.request_id,
        "provider_code": exc.provider_code,
        "message": exc.message,
        "partial_text": exc.partial_text,
    }


class _ReplayKey:
    async def resolve(self, ref: str) -> str:
        return "replay-key-not-a-secret"


@dataclass
class Replayed:
    """One interaction replayed: its normalized outcome and the request bodies the adapter sent."""

    index: int
    kind: Kind
    outcome: dict[str, Any]
    sent: list[httpx.Request] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def replay_interaction(
    entry: ProviderEntry, cassette: fmt.Cassette, index: int, *, timing: bool = False
) -> Replayed:
    interaction = cassette.interactions[index]
    kind = kind_of(interaction)
    transport = ReplayTransport([interaction], timing=timing, source=f"{cassette.path} interactions[{index}]")
    client = httpx.AsyncClient(transport=transport, verify=shared_ssl_context())
    adapter = load_adapter_class(entry)(
        entry,
        http_client=client,
        credentials=_ReplayKey(),  # type: ignore[arg-type]
        timeouts=REPLAY_TIMEOUTS,
    )
    request = call_from_recording(interaction, entry)
    outcome: dict[str, Any] = {"interaction": index, "kind": kind}
    try:
        if kind == "complete":
            try:
                outcome["response"] = (await adapter.complete(request)).model_dump(mode="json")
            except ProviderError as exc:
                outcome["error"] = error_dict(exc)
        else:
            events: list[dict[str, Any]] = []
            outcome["events"] = events
            try:
                async for event in adapter.stream(request):
                    events.append(event.model_dump(mode="json"))
            except ProviderError as exc:
                outcome["error"] = error_dict(exc)
            outcome["text"] = "".join(e.get("text", "") for e in events if e.get("type") == "text")
    finally:
        await adapter.aclose()
        await client.aclose()
    return Replayed(index, kind, outcome, transport.sent, transport.problems)


async def golden_results(entry: ProviderEntry, cassette: fmt.Cassette) -> list[Replayed]:
    return [await replay_interaction(entry, cassette, i) for i in range(len(cassette.interactions))]


# ---------------------------------------------------------------- snapshots
def snapshot(cassette: fmt.Cassette, entry: ProviderEntry, results: Sequence[Replayed]) -> dict[str, Any]:
    return {
        "cassette": cassette.path.name,
        "provider": entry.provider_id,
        "note": "the adapter's normalized results on this cassette; reviewed; changed only with --update-golden",
        "results": [r.outcome for r in results],
    }


def read_snapshot(cassette: fmt.Cassette) -> dict[str, Any] | None:
    path = cassette.expected_path
    if not path.exists():
        return None
    data = fmt.read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise fmt.CassetteError(path, "not a snapshot (no 'results' list)")
    return data


def write_snapshot(cassette: fmt.Cassette, data: dict[str, Any]) -> Path:
    fmt.write_json(cassette.expected_path, data)
    return cassette.expected_path


def diff_outcomes(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Paths where two outcomes differ, with both values (short), for a readable failure."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key in sorted(set(expected) | set(actual), key=str):
            out += diff_outcomes(expected.get(key), actual.get(key), f"{where}.{key}" if where else str(key))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(expected)} items expected, got {len(actual)}"]
        out = []
        for n, (a, b) in enumerate(zip(expected, actual, strict=True)):
            out += diff_outcomes(a, b, f"{where}[{n}]")
        return out
    if expected != actual:
        return [f"{where}: expected {json.dumps(expected)[:80]}, got {json.dumps(actual)[:80]}"]
    return []
