"""Stream assembly shared by every adapter.

Providers differ in framing, but the normalized stream contract is the same everywhere: one Start, non-empty deltas,
one End carrying finish reason, usage and request id. Keeping that bookkeeping here means each adapter only parses its
frames, and the contract (no empty deltas, tool fragments reassembled by index, usage kept rather than summed) is
enforced in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from adapters.types import ChatRequest, End, FinishReason, TextDelta, ToolCall, ToolCallDelta, Usage
from adapters.usage import estimate_usage


@dataclass
class _ToolParts:
    id: str | None = None
    name: str | None = None
    fragments: list[str] = field(default_factory=list)


@dataclass
class StreamAccumulator:
    request: ChatRequest
    request_id: str | None = None
    text_parts: list[str] = field(default_factory=list)
    tools: dict[int, _ToolParts] = field(default_factory=dict)
    finish_reason: FinishReason | None = None
    raw_finish_reason: str | None = None
    usage: Usage | None = None
    delivered: bool = False

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def text_delta(self, text: str | None) -> TextDelta | None:
        """Record text and return the event to yield, or None for an empty delta (never forwarded)."""
        if not text:
            return None
        self.text_parts.append(text)
        self.delivered = True
        return TextDelta(text=text)

    def tool_fragment(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None
    ) -> ToolCallDelta | None:
        parts = self.tools.setdefault(index, _ToolParts())
        if id:
            parts.id = id
        if name:
            parts.name = name
        if arguments:
            parts.fragments.append(arguments)
        if not (id or name or arguments):
            return None
        self.delivered = True
        return ToolCallDelta(
            index=index, id=id or None, name=name or None, arguments_fragment=arguments or ""
        )

    def set_usage(self, usage: Usage) -> None:
        """Keep the latest report: providers that repeat usage send running totals, never increments."""
        self.usage = usage

    def tool_calls(self) -> tuple[ToolCall, ...]:
        calls = []
        for index in sorted(self.tools):
            parts = self.tools[index]
            calls.append(
                ToolCall(
                    id=parts.id, name=parts.name or "", arguments=parse_arguments("".join(parts.fragments))
                )
            )
        return tuple(calls)

    def end(self, default_finish: FinishReason = "stop") -> End:
        usage = self.usage or estimate_usage(self.request, self.text, self.tool_calls())
        finish = self.finish_reason or default_finish
        return End(
            finish_reason=finish,
            usage=usage,
            request_id=self.request_id,
            tool_calls=self.tool_calls(),
            raw_finish_reason=self.raw_finish_reason,
        )


def parse_arguments(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Tool arguments as an object; a model's unparseable output is kept verbatim under ``_raw`` rather than lost."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}
