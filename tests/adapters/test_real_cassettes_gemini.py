"""The Gemini adapter on real recorded Gemini traffic (../shared/real-cassettes): every file parses, and what it
reports matches what the recording says, read independently here.

Recordings are chosen by endpoint from INDEX.md: ``:generateContent`` and ``:streamGenerateContent`` of the Developer
API and of Vertex AI. Vertex AI recordings (``aiplatform.googleapis.com/v1beta1/projects/...``) are a different URL
surface with the same body format; they are replayed through the adapter with a base_url that matches the recorded
resource path. Clients of the Vertex AI SDK ask for ``enum-encoding=int``, so those bodies carry enums as numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from adapters.errors import ErrorKind, ProviderError
from adapters.gemini import GeminiAdapter
from adapters.registry import load_registry
from adapters.types import ChatRequest, End, Message, Start, TextDelta, ToolCallDelta
from harness.real_cassettes import Interaction, load, recordings, replay_transport
from harness.schemas import request_schema_errors, response_errors

GENERATE = recordings(["Google Gemini API", "Google Vertex AI (Gemini)"], r":(stream)?[gG]enerateContent$")
FILES = [r.path for r in GENERATE]
#: Candidate.FinishReason numbers in aiplatform v1 (google/cloud/aiplatform/v1/content.proto), for enum-encoding=int
VERTEX_FINISH = {1: "STOP", 2: "MAX_TOKENS", 3: "SAFETY", 5: "OTHER"}
#: google.rpc status of a recorded error -> the kind it must map to
ERROR_KINDS = {"NOT_FOUND": ErrorKind.NOT_FOUND, "INVALID_ARGUMENT": ErrorKind.BAD_REQUEST}
KEY = "AIza-replay-key-0000000000000000000"


def test_the_generate_recordings_cover_both_surfaces_streams_and_errors() -> None:
    """A guard against a selection that matches nothing."""
    assert {r.provider for r in GENERATE} == {"Google Gemini API", "Google Vertex AI (Gemini)"}
    assert any(r.stream == "yes" for r in GENERATE) and any(r.stream == "no" for r in GENERATE)
    assert any(status >= 400 for r in GENERATE for status in r.statuses)


def _raw_finish(value: Any) -> Any:
    return VERTEX_FINISH[value] if isinstance(value, int) else value


def _split(uri: str) -> tuple[str, str, str]:
    """(base_url, model, action) of a recorded generateContent URI."""
    parts = urlsplit(uri)
    root, _, rest = parts.path.partition("/models/")
    model, _, action = rest.partition(":")
    return f"{parts.scheme}://{parts.netloc}{root}", model, action


def _request(recorded: Interaction, model: str) -> ChatRequest:
    body = recorded.request_json() or {}
    messages: list[Message] = []
    for part in (body.get("systemInstruction") or {}).get("parts") or []:
        messages.append(Message(role="system", content=part.get("text", "")))
    for content in body.get("contents") or []:
        text = "".join(p.get("text", "") for p in content.get("parts") or [])
        messages.append(Message(role="assistant" if content.get("role") == "model" else "user", content=text))
    return ChatRequest(model=model, messages=tuple(messages) or (Message(role="user", content="hi"),))


def _text_of(response: dict[str, Any]) -> str:
    parts = ((response.get("candidates") or [{}])[0].get("content") or {}).get("parts") or []
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))


def _calls_of(response: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    parts = ((response.get("candidates") or [{}])[0].get("content") or {}).get("parts") or []
    return [
        (p["functionCall"]["name"], p["functionCall"].get("args") or {}) for p in parts if "functionCall" in p
    ]


def _sse_chunks(body: bytes) -> list[dict[str, Any]]:
    events = body.decode().replace("\r\n", "\n").split("\n\n")
    return [json.loads(e[len("data:") :]) for e in events if e.startswith("data:")]


def _expected_usage(meta: dict[str, Any]) -> tuple[int, int, int, int]:
    """(input, output, reasoning, cached): thoughts are billed as output."""
    thoughts = meta.get("thoughtsTokenCount", 0)
    output = meta.get("candidatesTokenCount", 0) + thoughts
    return meta.get("promptTokenCount", 0), output, thoughts, meta.get("cachedContentTokenCount", 0)


class _Key:
    async def resolve(self, ref: str) -> str:
        return KEY


def _assert_sent(sent: httpx.Request, recorded: Interaction, *, stream: bool) -> None:
    """The adapter's request hits the recorded resource, with the header key and never a key in the URL."""
    assert sent.url.path == urlsplit(recorded.uri).path
    assert sent.headers["x-goog-api-key"] == KEY
    assert "key" not in sent.url.params
    assert (sent.url.params.get("alt") == "sse") is stream
    assert not request_schema_errors("gemini", json.loads(sent.content))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_recorded_requests_fit_the_request_schema(path: Path) -> None:
    """Real traffic that the service accepted validates against the same schema GLD-REQUEST holds the adapter to
    (a request the service refused, like #115's invalid role, is allowed not to)."""
    for recorded in load(path):
        if recorded.status >= 400:
            continue
        errors = request_schema_errors("gemini", recorded.request_json())
        assert not errors, f"{path.name}: {errors[:3]}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_recorded_responses_fit_the_response_schemas(path: Path) -> None:
    """The schemas the mock's output is held to (GLD drift check) accept what the real service sent."""
    for recorded in load(path):
        ctype = recorded.response_headers.get("content-type", "")
        errors = response_errors("gemini", recorded.status, ctype, recorded.response_body)
        assert not errors, f"{path.name}: {errors[:3]}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_adapter_reads_real_recording(path: Path) -> None:
    interactions = load(path)
    base_url, model, _ = _split(interactions[0].uri)
    transport = replay_transport(interactions)
    client = httpx.AsyncClient(transport=transport)
    adapter = GeminiAdapter(
        load_registry().get("gemini"),
        base_url=base_url,
        http_client=client,
        credentials=_Key(),  # type: ignore[arg-type]
    )
    try:
        for n, recorded in enumerate(interactions):
            _, model, action = _split(recorded.uri)
            request = _request(recorded, model)
            stream = action == "streamGenerateContent"
            if recorded.status != 200:
                with pytest.raises(ProviderError) as info:
                    await adapter.complete(request)
                error = recorded.response_json()["error"]
                assert info.value.kind == ERROR_KINDS[error["status"]], (info.value, error)
                assert info.value.status == recorded.status == error["code"]
                assert not info.value.retryable
                assert info.value.message == error["message"]
                assert info.value.provider_code == error["status"]
                assert info.value.request_id is None  # Gemini error bodies carry no id
            elif stream:
                events = [e async for e in adapter.stream(request)]
                chunks = _sse_chunks(recorded.response_body)
                assert isinstance(events[0], Start) and isinstance(events[-1], End)
                text = "".join(_text_of(c) for c in chunks)
                assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text
                end = events[-1]
                finishes = [
                    c["candidates"][0]["finishReason"]
                    for c in chunks
                    if c["candidates"][0].get("finishReason")
                ]
                assert end.raw_finish_reason == _raw_finish(finishes[-1])
                assert events[0].request_id == end.request_id == chunks[0]["responseId"]
                # the last snapshot wins: promptTokenCount even changes between chunks in #18, and is never summed
                inp, out, thoughts, cached = _expected_usage(chunks[-1]["usageMetadata"])
                usage = end.usage
                assert (usage.input_tokens, usage.output_tokens) == (inp, out)
                assert usage.total_tokens == chunks[-1]["usageMetadata"]["totalTokenCount"]
                assert (usage.reasoning_tokens, usage.cached_tokens, usage.source) == (
                    thoughts,
                    cached,
                    "reported",
                )
                calls = [call for c in chunks for call in _calls_of(c)]
                assert [(c.name, c.arguments) for c in end.tool_calls] == calls
                assert bool(calls) == any(isinstance(e, ToolCallDelta) for e in events)
            else:
                response = await adapter.complete(request)
                body = recorded.response_json()
                assert response.text == _text_of(body)
                assert [(c.name, c.arguments) for c in response.tool_calls] == _calls_of(body)
                raw = _raw_finish(body["candidates"][0]["finishReason"])
                assert response.raw_finish_reason == raw
                assert response.finish_reason == ("tool_calls" if _calls_of(body) else "stop")
                inp, out, thoughts, cached = _expected_usage(body["usageMetadata"])
                usage = response.usage
                assert (usage.input_tokens, usage.output_tokens) == (inp, out)
                assert usage.total_tokens == body["usageMetadata"]["totalTokenCount"]
                assert (usage.reasoning_tokens, usage.cached_tokens, usage.source) == (
                    thoughts,
                    cached,
                    "reported",
                )
                assert response.request_id == body["responseId"]
                assert response.model == body["modelVersion"]
            _assert_sent(transport.sent[n], recorded, stream=stream)  # type: ignore[attr-defined]
    finally:
        await adapter.aclose()
        await client.aclose()


def test_thoughts_are_counted_as_output_in_the_gzip_recording() -> None:
    """#52 (gemini-2.5-flash) reports 1058 thought tokens: output = candidates + thoughts = total - prompt."""
    (path,) = [p for p in FILES if p.stem == "test_client_spans"]
    (recorded,) = load(path)
    meta = recorded.response_json()["usageMetadata"]
    usage = GeminiAdapter.parse_usage(meta)
    assert usage is not None and meta["thoughtsTokenCount"] > 0
    assert usage.output_tokens == meta["totalTokenCount"] - meta["promptTokenCount"]
    assert usage.reasoning_tokens == meta["thoughtsTokenCount"]
