"""The provider-neutral answer plan: what a request will be answered with, decided before any byte is sent.

A personality turns its provider's request body into a :class:`ChatRequest`; :func:`make_plan` combines it
with the scenario and the server seed into a :class:`Plan` (text, its chunks, an optional tool call, finish
reason, usage truth). Personalities then only *render* the plan, and the engine only *sends* it, so the truth
is computed in one place for every provider.
"""

from __future__ import annotations

import dataclasses
import json
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
    """The whole answer. ``pieces`` are the content chunks of the text (empty for a tool-call answer)."""

    text: str
    pieces: list[str]
    tool_call: ToolCallPlan | None
    finish_reason: str
    usage: UsageTruth

    @property
    def content_chunks(self) -> int:
        """Chunks the stream will send: text pieces, or the tool header fragment plus argument fragments."""
        if self.tool_call is not None:
            return 1 + len(self.tool_call.fragments)
        return len(self.pieces)


def make_plan(chat: ChatRequest, scenario: Scenario, seed: int, new_tool_id: Callable[[], str]) -> Plan:
    """Decide the answer: seeded (or explicit) text, an optional tool call, finish reason and usage truth."""
    rng = request_rng(seed, chat.messages)
    generated = seeded_text(rng)
    finish = scenario.finish_reason
    tool_call: ToolCallPlan | None = None
    if scenario.tool_call and chat.tools:
        tool = chat.tools[0]
        arguments = json.dumps(seeded_arguments(rng, tool.parameters), ensure_ascii=False)
        fragments = split_text(arguments, max(1, scenario.chunks - 1))
        tool_call = ToolCallPlan(new_tool_id(), tool.name, arguments, fragments)
        text = ""
        finish = finish or "tool_calls"
    else:
        text = scenario.text if scenario.text is not None else generated
        if finish == "content_filter" and scenario.text is None:
            text = partial_text(text)
        finish = finish or "stop"
    tool_tokens = count_tokens(tool_call.name) + count_tokens(tool_call.arguments) if tool_call else 0
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
    return Plan(text, split_text(text, scenario.chunks), tool_call, finish, usage)
