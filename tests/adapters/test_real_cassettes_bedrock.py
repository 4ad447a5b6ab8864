"""The Bedrock adapter on real recorded Bedrock Runtime traffic (../shared/real-cassettes): every Converse and
ConverseStream file parses, and what it reports matches what the recording says, read independently here (stream
bodies are decoded with botocore's own event-stream parser, not the adapter's code path).

Recordings are chosen by endpoint from INDEX.md: Converse and ConverseStream. InvokeModel and
InvokeModelWithResponseStream (``/invoke``, ``/invoke-with-response-stream``) are other operations whose bodies are the
model vendor's own JSON (base64 ``chunk`` events when streamed); the adapter does not speak them yet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from botocore.eventstream import EventStreamBuffer

from adapters.bedrock import BedrockAdapter
from adapters.errors import ErrorKind, ProviderError
from adapters.registry import load_registry
from adapters.types import ChatRequest, End, Message, Start, TextDelta, ToolCallDelta
from harness.real_cassettes import Interaction, load, recordings, replay_transport
from harness.schemas import request_schema_errors

CONVERSE_ROWS = recordings("AWS Bedrock", r"/converse(-stream)?$")
CONVERSE = [r.path for r in CONVERSE_ROWS]
#: recorded error bodies -> the kind their message means (a model id that does not exist is not_found)
ERROR_KINDS = {"The provided model identifier is invalid.": ErrorKind.NOT_FOUND}


def test_the_converse_recordings_cover_both_operations_and_an_error() -> None:
    """A guard against a selection that matches nothing: INDEX.md's Converse rows hold both operations and an error."""
    assert {r.endpoint.rsplit("/", 1)[1] for r in CONVERSE_ROWS} == {"converse", "converse-stream"}
    assert any(status >= 400 for r in CONVERSE_ROWS for status in r.statuses)


def _model(recorded: Interaction) -> str:
    return unquote(recorded.uri.split("/model/", 1)[1].rsplit("/", 1)[0])


def _request(recorded: Interaction) -> ChatRequest:
    body = recorded.request_json() or {}
    messages = []
    for message in body.get("messages", []):
        text = "".join(b.get("text", "") for b in message.get("content", []) if isinstance(b, dict))
        messages.append(Message(role=message["role"], content=text or "hi"))
    return ChatRequest(
        model=_model(recorded), messages=tuple(messages) or (Message(role="user", content="hi"),)
    )


def _decoded(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    return [(m.headers[":event-type"], json.loads(m.payload)) for m in buffer]


def _expected_stream(body: bytes) -> dict[str, Any]:
    text, tools, stop, usage = "", {}, None, None
    for event_type, payload in _decoded(body):
        if event_type == "contentBlockStart" and "toolUse" in payload["start"]:
            use = payload["start"]["toolUse"]
            tools[payload["contentBlockIndex"]] = [use["name"], use["toolUseId"], ""]
        elif event_type == "contentBlockDelta":
            delta = payload["delta"]
            text += delta.get("text", "")
            if "toolUse" in delta:
                tools[payload["contentBlockIndex"]][2] += delta["toolUse"]["input"]
        elif event_type == "messageStop":
            stop = payload["stopReason"]
        elif event_type == "metadata":
            usage = payload["usage"]
    calls = [(name, uid, json.loads(args or "{}")) for name, uid, args in (tools[k] for k in sorted(tools))]
    return {"text": text, "calls": calls, "stop": stop, "usage": usage}


class _Key:
    async def resolve(self, ref: str) -> str:
        return "AKIAREPLAYEXAMPLE0001:replay/Secret+Key0000000000000000000000000"


async def _adapter(recorded: list[Interaction]) -> tuple[BedrockAdapter, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=replay_transport(recorded))
    entry = load_registry().get("bedrock")
    return BedrockAdapter(entry, http_client=client, credentials=_Key()), client  # type: ignore[arg-type]


def _expected_input(usage: dict[str, Any]) -> int:
    return (
        int(usage["inputTokens"])
        + int(usage.get("cacheReadInputTokens", 0))
        + int(usage.get("cacheWriteInputTokens", 0))
    )


@pytest.mark.parametrize("path", CONVERSE, ids=lambda p: p.stem)
async def test_adapter_reads_real_recording(path: Path) -> None:
    interactions = load(path)
    adapter, client = await _adapter(interactions)
    try:
        for recorded in interactions:
            request = _request(recorded)
            request_id = recorded.response_headers.get("x-amzn-requestid")
            streaming = recorded.uri.endswith("/converse-stream")
            # drift check: what real clients sent validates against the schema GLD-REQUEST holds the adapter to
            assert not request_schema_errors("bedrock", recorded.request_json())
            if recorded.status != 200:
                body = recorded.response_json()
                with pytest.raises(ProviderError) as info:
                    if streaming:
                        [e async for e in adapter.stream(request)]
                    else:
                        await adapter.complete(request)
                assert info.value.kind == ERROR_KINDS[body["message"]], info.value
                assert info.value.status == recorded.status and not info.value.retryable
                assert info.value.message == body["message"]
                assert info.value.request_id == request_id
            elif streaming:
                events = [e async for e in adapter.stream(request)]
                want = _expected_stream(recorded.response_body)
                assert isinstance(events[0], Start) and events[0].request_id == request_id
                assert "".join(e.text for e in events if isinstance(e, TextDelta)) == want["text"]
                assert all(not (isinstance(e, TextDelta) and not e.text) for e in events)
                end = events[-1]
                assert isinstance(end, End) and end.raw_finish_reason == want["stop"]
                assert [(c.name, c.id, c.arguments) for c in end.tool_calls] == want["calls"]
                fragments = "".join(e.arguments_fragment for e in events if isinstance(e, ToolCallDelta))
                if want["calls"]:
                    assert json.loads(fragments) == want["calls"][0][2]
                    assert end.finish_reason == "tool_calls"
                usage = want["usage"]
                assert (end.usage.input_tokens, end.usage.output_tokens, end.usage.total_tokens) == (
                    _expected_input(usage),
                    usage["outputTokens"],
                    usage["totalTokens"],
                )
                assert end.usage.source == "reported" and end.request_id == request_id
            else:
                response = await adapter.complete(request)
                body = recorded.response_json()
                content = body["output"]["message"]["content"]
                assert response.text == "".join(b.get("text", "") for b in content)
                assert [(c.name, c.arguments) for c in response.tool_calls] == [
                    (b["toolUse"]["name"], b["toolUse"]["input"]) for b in content if "toolUse" in b
                ]
                assert response.raw_finish_reason == body["stopReason"]
                usage = body["usage"]
                assert response.usage.input_tokens == _expected_input(usage)
                assert response.usage.output_tokens == usage["outputTokens"]
                assert response.usage.total_tokens == usage["totalTokens"]
                assert response.usage.cached_tokens == usage.get("cacheReadInputTokens")
                assert response.request_id == request_id
                assert response.model == _model(recorded)
                if body["stopReason"] == "guardrail_intervened":
                    assert response.finish_reason == "content_filter"
        sent = client._transport.sent  # type: ignore[attr-defined]
        assert [str(r.url).split("amazonaws.com", 1)[1] for r in sent] == [
            i.uri.split("amazonaws.com", 1)[1] for i in interactions
        ], "the adapter did not request the recorded (percent-encoded) paths"
        assert all(
            r.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAREPLAY") for r in sent
        )
    finally:
        await adapter.aclose()
        await client.aclose()
