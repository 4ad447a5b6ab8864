"""STR: the stream contract holds whatever the wire does: order, no empty deltas, faults surface with partial text."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import pytest

from adapters.base import Timeouts
from adapters.errors import ErrorKind
from adapters.types import End, Start, TextDelta, ToolCallDelta, ToolSpec
from harness.assertions import FAULT_KINDS, WEATHER_TOOL, assert_error, chat_request, only, run_stream
from harness.checks import check, evidence, not_applicable


@pytest.fixture(autouse=True)
def _needs_streaming(entry):
    if not entry.capabilities.streaming:
        not_applicable(f"{entry.provider_id} declares no streaming capability")


async def _stream(make_adapter: Any, mock: Any, scenario: Any, *, tools: bool = False, **kw: Any):
    adapter = make_adapter(**kw)
    mock.queue(scenario)
    run = await run_stream(adapter.stream(chat_request(adapter.entry, tools=tools)))
    return run, only(mock.journal())


def _assert_partial(run, sent, what: str) -> None:
    assert not run.ends, f"{what}: the stream was reported complete (an End event was yielded)"
    assert run.error.partial_text == sent["text_sent"], (
        f"{what}: partial_text {run.error.partial_text!r}, the mock sent {sent['text_sent']!r} before failing"
    )
    assert run.text == sent["text_sent"], (
        f"{what}: deltas {run.text!r} differ from the text sent {sent['text_sent']!r}"
    )


def _clip(text: str, keep: int = 24) -> str:
    """A text as evidence: its start (quoted) and its length, enough to recognize it, short enough for a cell."""
    shown = text if len(text) <= keep else text[:keep] + "..."
    return f"{shown!r} ({len(text)} chars)"


def _partial(run: Any, sent: Mapping[str, Any]) -> str:
    """What :func:`_assert_partial` verified, as evidence: no End, and the partial text equal to the journal's."""
    rid = f", request id {run.error.request_id}" if sent.get("request_id") else ""
    return f"no End, partial {_clip(run.error.partial_text, 16)} == deltas == journal text_sent{rid}"


@check("STR-ORDER")
async def test_order(make_adapter, mock):
    run, sent = await _stream(make_adapter, mock, {"preset": "ok", "chunks": 9})
    assert run.error is None, f"stream failed: {run.error!r}"
    kinds = [type(e).__name__ for e in run.events]
    assert isinstance(run.events[0], Start) and kinds.count("Start") == 1, (
        f"expected one leading Start: {kinds}"
    )
    assert isinstance(run.events[-1], End) and kinds.count("End") == 1, f"expected one trailing End: {kinds}"
    assert run.text == sent["text_sent"], (
        f"deltas concatenate to {run.text!r}, the mock sent {sent['text_sent']!r}"
    )
    assert sum(isinstance(e, TextDelta) for e in run.events) >= 2, (
        "the text arrived in fewer deltas than chunks sent"
    )
    deltas = sum(isinstance(e, TextDelta) for e in run.events)
    evidence(
        f"{sent['chunks_sent']} chunks sent -> 1 Start, {deltas} text deltas, 1 End; "
        f"deltas {_clip(run.text)} == journal text_sent"
    )


@check("STR-EMPTY")
async def test_empty_chunks_not_forwarded(make_adapter, mock):
    run, sent = await _stream(
        make_adapter, mock, {"preset": "empty_chunks", "empty_chunks": 5, "keepalives": 3}
    )
    assert run.error is None, f"stream failed: {run.error!r}"
    empties = [e for e in run.events if isinstance(e, TextDelta) and not e.text]
    assert not empties, f"{len(empties)} empty deltas were forwarded"
    assert run.text == sent["text_sent"]
    assert sent["frames_sent"] > sent["chunks_sent"], (
        "the mock sent no extra empty frames; the check proved nothing"
    )
    deltas = sum(isinstance(e, TextDelta) for e in run.events)
    evidence(
        f"{sent['frames_sent']} frames for {sent['chunks_sent']} chunks (empty chunks, keep-alives) -> "
        f"{deltas} text deltas, none empty; text {_clip(run.text)} == journal text_sent"
    )


@check("STR-ABORT")
async def test_abort(make_adapter, mock, provider_id):
    run, sent = await _stream(make_adapter, mock, {"preset": "abort_mid_stream", "abort_after": 3})
    assert sent["aborted"], "the mock did not abort; the scenario was not exercised"
    assert_error(
        run.error, sent, kinds={ErrorKind.STREAM_INTERRUPTED}, retryable=None, provider_id=provider_id
    )
    _assert_partial(run, sent, "abort")
    evidence(
        f"dropped after {sent['aborted_after_chunks']} chunks -> {run.error.kind.value}, "
        + _partial(run, sent)
    )


@check("STR-INBAND")
@pytest.mark.parametrize("fault", ["server_error", "rate_limit", "overloaded"])
async def test_inband_error(make_adapter, mock, provider_id, fault):
    run, sent = await _stream(make_adapter, mock, {"preset": "error_mid_stream", "error_after_kind": fault})
    assert sent["inband_error"], "the mock sent no in-band error; the scenario was not exercised"
    kinds, _ = FAULT_KINDS[fault]
    assert_error(run.error, sent, kinds=kinds, retryable=None, provider_id=provider_id)
    _assert_partial(run, sent, "in-band error")
    evidence(
        f"in-band {sent['inband_error']} after {sent['chunks_sent']} chunks -> {run.error.kind.value}, "
        + _partial(run, sent)
    )


@check("STR-TRUNCATED")
async def test_truncated(make_adapter, mock, provider_id):
    run, sent = await _stream(make_adapter, mock, "truncated_stream")
    assert not sent["terminated"], "the mock sent its terminator; the scenario was not exercised"
    assert_error(
        run.error, sent, kinds={ErrorKind.STREAM_INTERRUPTED}, retryable=None, provider_id=provider_id
    )
    _assert_partial(run, sent, "truncated stream")
    evidence(
        f"no terminator after {sent['chunks_sent']} chunks -> {run.error.kind.value}, " + _partial(run, sent)
    )


@check("STR-MALFORMED")
async def test_malformed_frame(make_adapter, mock, provider_id):
    run, sent = await _stream(
        make_adapter, mock, "malformed_chunk", timeouts=Timeouts(connect=1, read=2, stream_idle=2)
    )
    assert_error(run.error, sent, kinds={ErrorKind.INVALID_RESPONSE}, retryable=None, provider_id=provider_id)
    assert not run.ends, "a stream with a malformed frame was reported complete"
    rid = f", request id {run.error.request_id}" if sent.get("request_id") else ""
    evidence(
        f"malformed frame after {sent['chunks_sent']} chunks -> {run.error.kind.value}, no End, "
        f"{len(run.deltas)} deltas before it{rid}"
    )


@check("STR-STALL")
async def test_stall(make_adapter, mock, provider_id):
    bound = Timeouts(connect=1, read=2, stream_idle=0.2)
    started = time.monotonic()
    run, sent = await _stream(
        make_adapter,
        mock,
        {"preset": "stall_mid_stream", "stall_after": 2},
        timeouts=bound,
    )
    elapsed = time.monotonic() - started
    assert_error(run.error, sent, kinds={ErrorKind.TIMEOUT}, retryable=None, provider_id=provider_id)
    _assert_partial(run, sent, "stall")
    evidence(
        f"stall after {sent['chunks_sent']} chunks, idle bound {bound.stream_idle}s -> {run.error.kind.value} "
        f"after {elapsed:.2f}s, " + _partial(run, sent)
    )


@check("STR-END")
async def test_end_event(make_adapter, mock, entry):
    run, sent = await _stream(make_adapter, mock, "ok")
    assert run.error is None, f"stream failed: {run.error!r}"
    assert len(run.ends) == 1, f"{len(run.ends)} End events"
    end = run.ends[0]
    assert end.finish_reason == "stop", f"finish_reason {end.finish_reason!r} (raw {end.raw_finish_reason!r})"
    assert end.raw_finish_reason == sent["finish_reason_sent"], (
        f"raw finish reason {end.raw_finish_reason!r}, the mock sent {sent['finish_reason_sent']!r}"
    )
    assert end.request_id == sent["request_id"], (
        f"End.request_id {end.request_id!r}, sent {sent['request_id']!r}"
    )
    assert end.usage.output_tokens > 0 and end.usage.input_tokens > 0, f"End usage is empty: {end.usage}"
    evidence(
        f"1 End: finish_reason stop (raw {end.raw_finish_reason} == journal), usage in {end.usage.input_tokens}/"
        f"out {end.usage.output_tokens}, "
        + (
            f"request id {end.request_id} == journal"
            if sent["request_id"]
            else "no request id sent, End has none"
        )
    )


#: A second declared tool, so the mock's round-robin answers with calls of different tools and two calls of one tool.
CLOCK_TOOL = ToolSpec(
    name="get_time",
    description="Current time in a time zone",
    parameters={"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
)
#: Three parallel calls over two tools: get_weather, get_time, get_weather (two calls of one tool with different
#: arguments, so an adapter that merges calls by name, or keeps one per tool, fails too).
PARALLEL_CALLS = 3


def _sent_arguments(call: dict[str, Any]) -> Any:
    raw = call["arguments"]
    return json.loads(raw) if isinstance(raw, str) else raw


@check("STR-TOOLS")
async def test_tool_fragments(make_adapter, mock, entry):
    """Parallel tool calls, streamed: every call the mock sent comes back as its own ToolCall (name, id, arguments)
    in End.tool_calls, and each call's ToolCallDelta fragments concatenate to its arguments. On index-keyed wires
    (OpenAI's) the mock interleaves the calls' fragments, so an adapter must key fragments by index, not by arrival."""
    if not entry.capabilities.tools:
        not_applicable(f"{entry.provider_id} declares no tool calling")
    adapter = make_adapter()
    mock.queue({"preset": "parallel_tool_calls", "tool_calls": PARALLEL_CALLS})
    request = chat_request(adapter.entry, tools=True).model_copy(update={"tools": (WEATHER_TOOL, CLOCK_TOOL)})
    run = await run_stream(adapter.stream(request))
    sent = only(mock.journal())
    assert run.error is None, f"stream failed: {run.error!r}"
    sent_calls = sent["tool_calls_sent"]
    assert len(sent_calls) == PARALLEL_CALLS, (
        f"the mock sent {len(sent_calls)} tool calls, not {PARALLEL_CALLS}; the scenario was not exercised"
    )
    assert len(run.ends) == 1, f"{len(run.ends)} End events"
    end = run.ends[0]
    assert end.finish_reason == "tool_calls", f"finish_reason {end.finish_reason!r}"
    want = [(c["name"], _sent_arguments(c)) for c in sent_calls]
    got = [(c.name, c.arguments) for c in end.tool_calls]
    assert got == want, f"reassembled {len(got)} tool calls {got}, the mock sent {len(want)}: {want}"
    sent_ids = [c["id"] for c in sent_calls]
    if all(sent_ids):
        got_ids = [c.id for c in end.tool_calls]
        assert got_ids == sent_ids, f"tool call ids {got_ids}, the mock sent {sent_ids}"
    deltas = [e for e in run.events if isinstance(e, ToolCallDelta)]
    order = [e.index for e in deltas]
    indexes = list(dict.fromkeys(order))
    if deltas:
        assert len(indexes) == len(sent_calls), (
            f"ToolCallDelta events carry indexes {indexes}: {len(sent_calls)} calls were sent"
        )
        for number, index in enumerate(indexes):
            fragments = "".join(e.arguments_fragment for e in deltas if e.index == index)
            assert json.loads(fragments or "{}") == want[number][1], (
                f"ToolCallDelta fragments of index {index} concatenate to {fragments!r}, "
                f"the mock sent {want[number][1]}"
            )
    interleaved = order != sorted(order)
    evidence(
        f"{len(got)} parallel tool calls ({', '.join(n for n, _ in got)}) reassembled with the names, "
        f"{'ids, ' if all(sent_ids) else ''}arguments the mock sent; {len(deltas)} fragments"
        f"{', interleaved across calls' if interleaved else ''} keyed to {len(indexes)} indexes"
    )
