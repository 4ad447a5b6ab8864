"""The provider-neutral answer plan: what a request will be answered with, decided before any byte is sent.

A personality turns its provider's request body into a :class:`ChatRequest`; :func:`make_plan` combines it
with the scenario and the server seed into a :class:`Plan` (text, its chunks, the tool calls if any, finish
reason, usage truth). Personalities then only *render* the plan, and the engine only *sends* it, so the truth
is computed in one place for every provider.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mockserver.scenarios import Scenario
from mockserver.truth import (
    UsageTruth,
    count_tokens,
    input_tokens,
    partial_text,
    request_rng,
    seeded_arguments,
    seeded_text,
    split_text,
    usage_truth,
)


@dataclass(frozen=True)
class ToolDef:
    """A declared tool: name, JSON-schema parameters, and the raw definition (counted as input)."""

    name: str
    parameters: Any
    raw: Any


@dataclass
class ChatRequest:
    """A chat request reduced to what the truth needs; built by each personality from its own dialect."""

    model: str
    messages: Any
    contents: list[Any]
    tools: list[ToolDef] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    body: Any = None


@dataclass(frozen=True)
class ToolCallPlan:
    """A tool call to answer with; ``fragments``: argument pieces streamed after the header fragment."""

    id: str
    name: str
    arguments: str
    fragments: list[str]


@dataclass(frozen=True)
class Plan:
    """The whole answer. ``pieces`` are the content chunks of the text (empty for a tool-call answer).

    ``tool_calls`` holds every call of the answer (several are *parallel* tool calls: one assistant turn asking for
    all of them), each with its own id and arguments.
    """

    text: str
    pieces: list[str]
    tool_calls: tuple[ToolCallPlan, ...]
    finish_reason: str
    usage: UsageTruth

    @property
    def tool_call(self) -> ToolCallPlan | None:
        """The first tool call, for renderers of providers that never answer with more than one."""
        return self.tool_calls[0] if self.tool_calls else None

    @property
    def content_chunks(self) -> int:
        """Chunks the stream will send: text pieces, or per call its header fragment plus argument fragments."""
        if self.tool_calls:
            return sum(1 + len(call.fragments) for call in self.tool_calls)
        return len(self.pieces)

    def tool_schedule(self, interleave: bool) -> list[tuple[int, int]]:
        """The order tool fragments are streamed in, as ``(call index, fragment index)`` pairs; fragment 0 is a
        call's header (id and name), fragment ``k`` its ``k``-th piece of argument text.

        ``interleave=False`` sends each call whole before the next starts, which is what block-sequential
        protocols require (Anthropic's content blocks, Bedrock's contentBlockIndex: a block starts, gets its
        deltas and stops before the next one starts). ``interleave=True`` takes the calls round-robin (every
        header, then every call's first piece, ...), which index-keyed protocols allow (OpenAI's
        ``tool_calls[].index``): an adapter that appends a fragment to "the call seen last" instead of to the
        call its index names then reassembles the wrong arguments.
        """
        lengths = [1 + len(call.fragments) for call in self.tool_calls]
        if not interleave:
            return [(c, k) for c, n in enumerate(lengths) for k in range(n)]
        longest = max(lengths, default=0)
        return [(c, k) for k in range(longest) for c, n in enumerate(lengths) if k < n]


def _tool_calls(
    chat: ChatRequest, rng: random.Random, count: int, pieces: int, new_tool_id: Callable[[], str]
) -> tuple[ToolCallPlan, ...]:
    """``count`` calls drawn round-robin from the declared tools, each with its own id and seeded arguments.

    Two calls of one tool get different arguments where the tool's schema allows it (a few redraws from the same
    PRNG, so still deterministic): identical calls would let an adapter that merges or drops calls pass.
    """
    calls: list[ToolCallPlan] = []
    seen: set[tuple[str, str]] = set()
    for i in range(count):
        tool = chat.tools[i % len(chat.tools)]
        arguments = json.dumps(seeded_arguments(rng, tool.parameters), ensure_ascii=False)
        for _ in range(_REDRAWS):
            if (tool.name, arguments) not in seen:
                break
            arguments = json.dumps(seeded_arguments(rng, tool.parameters), ensure_ascii=False)
        seen.add((tool.name, arguments))
        calls.append(ToolCallPlan(new_tool_id(), tool.name, arguments, split_text(arguments, pieces)))
    return tuple(calls)


#: How often a call's arguments are redrawn to differ from an earlier call of the same tool.
_REDRAWS = 16


def make_plan(chat: ChatRequest, scenario: Scenario, seed: int, new_tool_id: Callable[[], str]) -> Plan:
    """Decide the answer: seeded (or explicit) text, or the scenario's tool calls, finish reason and usage truth."""
    rng = request_rng(seed, chat.messages)
    generated = seeded_text(rng)
    finish = scenario.finish_reason
    tool_calls: tuple[ToolCallPlan, ...] = ()
    count = scenario.tool_call_count
    if count and chat.tools:
        tool_calls = _tool_calls(chat, rng, count, max(1, scenario.chunks - 1), new_tool_id)
        text = ""
        finish = finish or "tool_calls"
    else:
        text = scenario.text if scenario.text is not None else generated
        if finish == "content_filter" and scenario.text is None:
            text = partial_text(text)
        finish = finish or "stop"
    tool_tokens = sum(count_tokens(call.name) + count_tokens(call.arguments) for call in tool_calls)
    usage = usage_truth(
        input_tokens(chat.contents, [t.raw for t in chat.tools]),
        text,
        tool_tokens=tool_tokens,
        cached=scenario.cached_tokens,
        reasoning=scenario.reasoning_tokens,
    )
    if scenario.report_input_tokens is not None or scenario.report_output_tokens is not None:
        # a dishonest or broken upstream: it reports (and bills) these counts, so they are the truth it serves
        reported_in = (
            usage.input_tokens if scenario.report_input_tokens is None else scenario.report_input_tokens
        )
        reported_out = (
            usage.output_tokens if scenario.report_output_tokens is None else scenario.report_output_tokens
        )
        usage = dataclasses.replace(
            usage,
            input_tokens=reported_in,
            output_tokens=reported_out,
            total_tokens=reported_in + reported_out,
            cached_tokens=min(usage.cached_tokens, reported_in),
            reasoning_tokens=min(usage.reasoning_tokens, reported_out),
        )
    return Plan(text, split_text(text, scenario.chunks), tool_calls, finish, usage)
