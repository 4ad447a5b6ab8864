"""Usage estimation for when a provider reports none (null or missing usage).

An estimate is better than zero for cost attribution, but it must never pass for the truth: every estimated Usage is
marked ``source="estimated"``. The heuristic is the common four-characters-per-token rule plus a small per-message
overhead, which tracks BPE tokenizers on English text to within a few tens of percent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from adapters.types import ChatRequest, ToolCall, Usage

CHARS_PER_TOKEN = 4
PER_MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def estimate_input_tokens(request: ChatRequest) -> int:
    total = REPLY_PRIMING
    for message in request.messages:
        total += estimate_tokens(message.content) + PER_MESSAGE_OVERHEAD
    for tool in request.tools:
        total += estimate_tokens(json.dumps(tool.model_dump()))
    return total


def estimate_usage(request: ChatRequest, output_text: str, tool_calls: Iterable[ToolCall] = ()) -> Usage:
    output = estimate_tokens(output_text)
    for call in tool_calls:
        output += estimate_tokens(call.name) + estimate_tokens(json.dumps(call.arguments))
    input_tokens = estimate_input_tokens(request)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output,
        total_tokens=input_tokens + output,
        source="estimated",
    )
