"""Normalized request, response and stream-event types shared by every adapter.

Product code talks to providers only through these types, so that swapping a provider never changes a call site and
the certification suite can check every adapter with the same assertions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "other"]
UsageSource = Literal["reported", "estimated"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Frozen):
    """A complete tool call; ``arguments`` is always the parsed object, whatever form the provider used."""

    id: str | None = None
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(_Frozen):
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


class ToolSpec(_Frozen):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class RequestMetadata(_Frozen):
    """Attribution carried to telemetry; never sent to the provider."""

    trace_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    profile_id: str | None = None


#: The tool choices every provider can express; any other value names the one declared tool the model must call.
TOOL_CHOICE_MODES = ("auto", "none", "required")


class ChatRequest(_Frozen):
    """What the caller asks for. Every field reaches the wire in the provider's form, or the adapter refuses the
    request as ``unsupported`` before sending (REQ-FIELDS checks both against what the mock server received)."""

    model: str
    messages: tuple[Message, ...]
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    #: stop sequences: generation ends before any of them
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    #: "auto" (the model decides), "none", "required" (some tool), or the name of a declared tool to call
    tool_choice: str | None = None
    metadata: RequestMetadata = Field(default_factory=RequestMetadata)

    @model_validator(mode="after")
    def _tool_choice_names_a_tool(self) -> ChatRequest:
        choice = self.tool_choice
        if choice is None or choice in ("auto", "none"):
            return self
        names = [t.name for t in self.tools]
        if choice == "required" and not names:
            raise ValueError("tool_choice 'required' needs at least one tool")
        if choice != "required" and choice not in names:
            raise ValueError(f"tool_choice {choice!r} names no declared tool (tools: {names})")
        return self


class Usage(_Frozen):
    """Token counts. ``source`` says whether the provider reported them or we estimated them."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    source: UsageSource = "reported"


class Cost(_Frozen):
    """Cost in USD. ``priced`` is False when no price is known: unpriced is never reported as $0."""

    priced: bool
    input_usd: Decimal = Decimal(0)
    output_usd: Decimal = Decimal(0)
    total_usd: Decimal = Decimal(0)
    price_source: str | None = None


class ChatResponse(_Frozen):
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason
    usage: Usage
    request_id: str | None
    model: str
    provider_id: str
    raw_finish_reason: str | None = None


class Start(_Frozen):
    type: Literal["start"] = "start"
    provider_id: str
    model: str
    request_id: str | None = None


class TextDelta(_Frozen):
    type: Literal["text"] = "text"
    text: str


class ToolCallDelta(_Frozen):
    """A fragment of a tool call's arguments; ``index`` keys fragments of the same call together."""

    type: Literal["tool_call"] = "tool_call"
    index: int
    id: str | None = None
    name: str | None = None
    arguments_fragment: str = ""


class End(_Frozen):
    type: Literal["end"] = "end"
    finish_reason: FinishReason
    usage: Usage
    request_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    raw_finish_reason: str | None = None


StreamEvent = Annotated[Start | TextDelta | ToolCallDelta | End, Field(discriminator="type")]
