"""Response-side schemas of the anthropic, bedrock and mistral wires (drift checks).

Every real recording of the wire validates (the shared real-cassettes and the golden cassettes made from them), and a
body that drifted from the dialect (tokens as strings, a required field gone, an unknown stop reason) fails with a
message naming the JSON path. Also the two harness fixes the checks needed: Bedrock's real content type
``application/vnd.amazon.eventstream`` is a stream, and an SSE stream the adapter closes at its terminator event is
still captured for the drift check.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from adapters.registry import Registry
from harness import cassettes as fmt
from harness import real_cassettes
from harness.assertions import chat_request
from harness.budget import Ledger
from harness.frames import framing
from harness.live import live_call
from harness.schemas import response_errors
from mockserver import aws_eventstream as es
from mockserver.testing import MockServer

WIRES = ("anthropic", "bedrock", "mistral")
JSON = "application/json"
SSE = "text/event-stream; charset=utf-8"
AWS = es.CONTENT_TYPE


def _real(wire: str) -> list[tuple[str, real_cassettes.Interaction]]:
    """Every interaction of the wire's chat endpoint in INDEX.md's recordings. For Bedrock that is Converse and
    ConverseStream: InvokeModel's ``{"bytes": base64(provider JSON)}`` chunks are another API, not the bedrock wire."""
    return [
        (f"{row.id}#{n}", item)
        for row in real_cassettes.chat_recordings(wire)
        for n, item in enumerate(row.interactions())
    ]


@pytest.mark.parametrize("wire", WIRES)
def test_every_real_recording_of_the_wire_validates(wire: str) -> None:
    if not real_cassettes.SHARED_REAL_CASSETTES.is_dir():
        pytest.skip("the shared real-cassettes folder is not here")
    recorded = _real(wire)
    kinds = {(item.status >= 400, item.is_stream) for _, item in recorded}
    assert (False, False) in kinds and (False, True) in kinds  # a completion and a stream, at least
    for where, item in recorded:
        errors = response_errors(
            wire, item.status, item.response_headers.get("content-type", JSON), item.response_body
        )
        assert errors == [], f"{where}: {errors}"


@pytest.mark.parametrize("provider", WIRES)
def test_every_golden_cassette_of_the_provider_validates(registry: Registry, provider: str) -> None:
    wire = registry.get(provider).wire
    checked = 0
    for cassette in fmt.iter_golden(provider):
        for n, interaction in enumerate(cassette.interactions):
            resp = interaction.response
            errors = response_errors(wire, resp.status, resp.content_type, resp.body)
            assert errors == [], f"{cassette.path.name} #{n}: {errors}"
            checked += 1
    assert checked, f"no golden cassette interaction of {provider} was checked"


def test_the_bedrock_invoke_model_stream_is_not_the_converse_wire() -> None:
    """Why the filter above leaves InvokeModelWithResponseStream out: its chunks fail the ConverseStream schema."""
    invoke = [
        item
        for row in real_cassettes.recordings("AWS Bedrock", r"/invoke-with-response-stream$")
        for item in row.interactions()
        if item.status == 200
    ]
    if not invoke:
        pytest.skip("no InvokeModel recording here")
    assert response_errors("bedrock", 200, AWS, invoke[0].response_body)


# ---------------------------------------------------------------- drifted bodies fail, naming the path
def _first(wire: str, pred: Callable[[real_cassettes.Interaction], bool]) -> real_cassettes.Interaction:
    found = [item for _, item in _real(wire) if pred(item)]
    if not found:
        pytest.skip(f"no such real {wire} recording here")
    return found[0]


def _ok_body(wire: str, *, tool: bool = False) -> dict[str, Any]:
    def pred(item: real_cassettes.Interaction) -> bool:
        return item.status == 200 and not item.is_stream and (not tool or b"tool" in item.response_body)

    body: dict[str, Any] = json.loads(_first(wire, pred).response_body)
    return body


def _problems(wire: str, body: Any, status: int = 200) -> list[str]:
    return response_errors(wire, status, JSON, json.dumps(body).encode())


def _names(problems: list[str], *paths: str) -> bool:
    return all(any(f": {path}:" in p or p.endswith(path) for p in problems) for path in paths)


def _drift(body: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    drifted = copy.deepcopy(body)
    change(drifted)
    return drifted


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()

RESPONSE_DRIFTS = {
    "anthropic": [
        ("usage/input_tokens", "20"),
        ("usage/output_tokens", _DELETE),
        ("stop_reason", "stop"),
        ("role", "model"),
        ("content/0/type", "txt"),
        ("id", _DELETE),
    ],
    "bedrock": [
        ("usage/inputTokens", "7"),
        ("usage/totalTokens", _DELETE),
        ("stopReason", "stop"),
        ("output/message/role", "model"),
        ("metrics", _DELETE),
    ],
    "mistral": [
        ("usage/prompt_tokens", "28"),
        ("usage/total_tokens", _DELETE),
        ("choices/0/finish_reason", "done"),
        ("choices/0/message", _DELETE),
        ("object", "chat.completion.chunk"),
        ("created", _DELETE),
    ],
}


@pytest.mark.parametrize(
    ("wire", "path", "value"), [(w, p, v) for w, drifts in RESPONSE_DRIFTS.items() for p, v in drifts]
)
def test_a_drifted_response_fails_naming_the_path(wire: str, path: str, value: Any) -> None:
    body = _ok_body(wire)
    assert _problems(wire, body) == []
    problems = _problems(wire, _drift(body, _set(path, value)))
    assert problems, f"{wire}: {path} -> {value!r} was accepted"
    parent, _, leaf = path.rpartition("/")
    if value is _DELETE:  # "'<leaf>' is a required property", reported at the parent
        assert any(
            f"'{leaf}' is a required property" in p and f": {parent or '(body)'}:" in p for p in problems
        )
    else:
        assert _names(problems, path), problems


def test_a_drifted_tool_call_fails_naming_the_path() -> None:
    anthropic = _ok_body("anthropic", tool=True)
    problems = _problems("anthropic", _drift(anthropic, _set("content/0/input", '{"city": "Paris"}')))
    assert _names(problems, "content/0/input"), problems  # input is an object, not a JSON string
    bedrock = {
        "output": {
            "message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "f"}}]}
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        "metrics": {"latencyMs": 1},
    }
    problems = _problems("bedrock", bedrock)
    assert any("output/message/content/0/toolUse" in p and "'input'" in p for p in problems), problems
    mistral = _ok_body("mistral")
    mistral["choices"][0]["message"]["tool_calls"] = [{"id": "abc123XYZ", "function": {"arguments": "{}"}}]
    problems = _problems("mistral", mistral)
    assert any("choices/0/message/tool_calls/0/function" in p and "'name'" in p for p in problems), problems


def _sse(*payloads: dict[str, Any], named: bool) -> bytes:
    out = b""
    for payload in payloads:
        event = f"event: {payload['type']}\n" if named else ""
        out += f"{event}data: {json.dumps(payload)}\n\n".encode()
    return out


def test_a_drifted_anthropic_stream_fails_naming_the_frame_and_path() -> None:
    start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}
    good = _sse(start, {"type": "ping"}, delta, end, {"type": "message_stop"}, named=True)
    assert response_errors("anthropic", 200, SSE, good) == []
    drifts = [
        (_drift(end, _set("usage/output_tokens", "5")), "frame 0: usage/output_tokens"),
        (_drift(end, _set("delta/stop_reason", "finished")), "frame 0: delta/stop_reason"),
        (_drift(delta, _set("delta/type", "text")), "frame 0: delta/type"),
        (_drift(delta, _set("index", _DELETE)), "frame 0: (body): 'index' is a required property"),
        ({"type": "message_end"}, "frame 0: type"),
    ]
    for payload, where in drifts:
        problems = response_errors("anthropic", 200, SSE, _sse(payload, named=True))
        assert any(where in p for p in problems), (where, problems)


def test_a_drifted_mistral_stream_fails_naming_the_frame_and_path() -> None:
    chunk = {"id": "9f9d", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    first = {
        **chunk,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
    }
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    last = {
        **chunk,
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
        "usage": usage,
    }
    good = _sse(first, last, named=False) + b"data: [DONE]\n\n"
    assert response_errors("mistral", 200, SSE, good) == []
    drifts = [
        (_drift(last, _set("usage", _DELETE)), "frame 0: (body): 'usage' is a required property"),
        (_drift(last, _set("usage/completion_tokens", "2")), "frame 0: usage/completion_tokens"),
        (_drift(last, _set("choices/0/finish_reason", "end_turn")), "frame 0: choices/0/finish_reason"),
        (_drift(first, _set("choices/0/delta/role", "model")), "frame 0: choices/0/delta/role"),
        ({**chunk, "choices": [], "usage": usage}, "frame 0: choices"),  # no OpenAI-style usage-only chunk
    ]
    for payload, where in drifts:
        problems = response_errors("mistral", 200, SSE, _sse(payload, named=False))
        assert any(where in p for p in problems), (where, problems)


def _aws(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(
        es.event(name, json.dumps({**payload, "p": "abcdef"}).encode()) for name, payload in events
    )


def test_a_drifted_bedrock_stream_fails_naming_the_frame_and_path() -> None:
    usage = {"inputTokens": 2, "outputTokens": 3, "totalTokens": 5}
    events: list[tuple[str, dict[str, Any]]] = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        ("metadata", {"usage": usage, "metrics": {"latencyMs": 12}}),
    ]
    assert framing(AWS) == "aws-eventstream"
    assert response_errors("bedrock", 200, AWS, _aws(*events)) == []
    throttled = es.exception("throttlingException", b'{"message": "Too many requests"}')
    assert response_errors("bedrock", 200, AWS, _aws(*events[:2]) + throttled) == []
    drifts: list[tuple[tuple[str, dict[str, Any]], str]] = [
        (
            ("metadata", {"usage": {**usage, "outputTokens": "3"}, "metrics": {"latencyMs": 1}}),
            "usage/outputTokens",
        ),
        (("metadata", {"usage": usage}), "(body): 'metrics' is a required property"),
        (("messageStop", {"stopReason": "stop"}), "stopReason"),
        (("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": 5}}), "delta/text"),
        (("contentBlockDelta", {"contentBlockIndex": "0", "delta": {"text": "x"}}), "contentBlockIndex"),
        (("messageStart", {"role": "model"}), "role"),
        (
            ("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"name": "f"}}}),
            "start/toolUse",
        ),
    ]
    for event, where in drifts:
        problems = response_errors("bedrock", 200, AWS, _aws(event))
        assert any(f"frame 0: {where}" in p for p in problems), (event, problems)


ERRORS: dict[str, tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]] = {
    "anthropic": (
        [
            {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            },  # in-band, no id
            {
                "type": "error",
                "error": {"type": "request_too_large", "message": "x"},
                "request_id": "req_011C",
            },
        ],
        [
            ({"error": {"type": "api_error", "message": "x"}}, "(body): 'type' is a required property"),
            ({"type": "error", "error": {"type": "server_error", "message": "x"}}, "error/type"),
            ({"type": "error", "error": {"message": "x"}}, "error: 'type' is a required property"),
            (
                {"type": "error", "error": {"type": "api_error", "message": "x"}, "request_id": "abc"},
                "request_id",
            ),
        ],
    ),
    "bedrock": (
        [{"message": "The provided model identifier is invalid."}, {"Message": "Forbidden"}],
        [
            ({"msg": "x"}, "(body): 'message' is a required property"),
            ({"message": 5}, "message"),
        ],
    ),
    "mistral": (
        [
            {
                "object": "error",
                "message": "m",
                "type": "invalid_request_invalid_args",
                "param": None,
                "code": "3051",
            },
            {
                "object": "error",
                "message": {
                    "detail": [{"type": "extra_forbidden", "loc": ["body", "x"], "msg": "Extra", "input": 1}]
                },
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            },
            {"message": "Unauthorized", "request_id": "0f1e2d3c4b5a"},  # Kong's own body
        ],
        [
            ({"error": {"message": "x", "type": "invalid_request_error"}}, "(body)"),  # OpenAI's wrapped form
            ({"object": "error", "message": ["x"], "type": "t"}, "message"),
            ({"object": "error", "message": "x"}, "(body): 'type' is a required property"),
            ({"message": "Unauthorized"}, "(body)"),
        ],
    ),
}


@pytest.mark.parametrize("wire", WIRES)
def test_error_bodies_of_the_wire(wire: str) -> None:
    accepted, drifted = ERRORS[wire]
    for status in (400, 429):
        for body in accepted:
            assert _problems(wire, body, status) == [], body
        for body, where in drifted:
            problems = _problems(wire, body, status)
            assert any(f"error body: {where}" in p for p in problems), (body, problems)


# ---------------------------------------------------------------- the harness fixes the drift checks rely on
def test_bedrocks_real_content_type_is_validated_as_a_stream() -> None:
    stream = _first("bedrock", lambda item: item.is_stream)
    assert stream.response_headers["content-type"] == AWS
    assert response_errors("bedrock", 200, AWS, stream.response_body) == []
    # before: taken for a JSON body, the binary frames failed as "not JSON"
    assert response_errors("bedrock", 200, JSON, stream.response_body)[0].startswith("not JSON")


@pytest.mark.parametrize("provider", ["anthropic", "mistral"])
async def test_an_sse_stream_closed_at_its_terminator_is_still_captured(
    server: MockServer, registry: Registry, tmp_path: Any, provider: str
) -> None:
    """The adapter stops reading at message_stop / [DONE]; the drift check must still see the stream it read."""
    entry = registry.get(provider)
    result = await live_call(
        entry,
        chat_request(entry),
        kind="stream",
        credential="sk-provcert-drift-not-a-secret-0000",
        ledger=Ledger.create(tmp_path / "ledger.json", Decimal(1)),
        cassette=tmp_path / "unused.cassette.json",
        record_mode="none",
        base_url=server.url + entry.mock_path,
    )
    assert result.error is None and result.events
    (wire,) = result.wire
    assert b"message_stop" in wire.body or b'finish_reason":"stop' in wire.body
    assert response_errors(entry.wire, wire.status, wire.headers["content-type"], wire.body) == []
