"""Anthropic Messages (``POST /v1/messages``).

Wire facts (anthropic SDK 2.12 source and provider-wire-formats.md §4) that shape this adapter:

* auth is ``x-api-key`` plus a mandatory ``anthropic-version`` header; the request id is the ``request-id``
  header, repeated as ``request_id`` in error bodies (recorded traffic often keeps only the body copy);
* errors are ``{"type": "error", "error": {"type", "message", "details"?}, "request_id"}``; the ``type`` names the
  class, but three cases are only told apart by the message or by ``details.error_code``: a context overflow is a
  400 "prompt is too long: N tokens > M maximum", an exhausted prepaid balance is a 400 "Your credit balance is
  too low ...", and output stopped by the policy classifier is a 400 "Output blocked by content filtering
  policy"; spend limits arrive as a 429 whose ``details.error_code`` says so (not worth retrying);
* the system prompt is a top-level ``system`` field, tool results are ``tool_result`` blocks in a user turn, and a
  tool call's ``input`` is already an object (never ``json.loads`` it);
* usage ``input_tokens`` excludes prompt-cache reads and writes, so the normalized input count adds
  ``cache_read_input_tokens`` and ``cache_creation_input_tokens`` back (the cache reads are the cached tokens);
  hidden thinking is already inside ``output_tokens`` and is not reported separately;
* a stream is SSE with named events: ``message_start`` (input usage), content blocks (``text_delta``,
  ``input_json_delta`` fragments, ``thinking_delta`` which is not output text), ``message_delta`` (stop reason and
  *cumulative* output usage: the last one wins, never summed), ``message_stop`` (the only terminator; there is no
  ``[DONE]``), ``ping`` keep-alives, and an in-band ``event: error`` on an HTTP 200.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from httpx_sse import EventSource

from adapters.base import Adapter, kind_for_status, token_count
from adapters.errors import ErrorKind, ProviderError, parse_retry_after
from adapters.streaming import StreamAccumulator, parse_arguments
from adapters.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    Start,
    StreamEvent,
    ToolCall,
    Usage,
)
from adapters.usage import estimate_usage

DEFAULT_API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "other",
}

#: ``error.type`` -> kind (the status table is the fallback for types this does not know)
TYPE_KINDS: dict[str, ErrorKind] = {
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "authentication_error": ErrorKind.AUTH,
    "billing_error": ErrorKind.QUOTA_EXHAUSTED,
    "permission_error": ErrorKind.PERMISSION,
    "not_found_error": ErrorKind.NOT_FOUND,
    "request_too_large": ErrorKind.BAD_REQUEST,  # a byte-size limit (32 MB), not a context overflow
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "api_error": ErrorKind.SERVER_ERROR,
    "timeout_error": ErrorKind.TIMEOUT,
    "overloaded_error": ErrorKind.OVERLOADED,
}

#: ``error.details.error_code`` values that change the kind the type implies (a spend limit is no rate limit)
CODE_KINDS: dict[str, ErrorKind] = {
    "enforced_spend_limit_reached": ErrorKind.QUOTA_EXHAUSTED,
    "contract_spend_limit_reached": ErrorKind.QUOTA_EXHAUSTED,
    "linked_organization_spend_limit_reached": ErrorKind.QUOTA_EXHAUSTED,
    "linked_organization_billing_unavailable": ErrorKind.QUOTA_EXHAUSTED,
}

#: message fragments (lower-case) for the cases Anthropic reports only in prose
MESSAGE_KINDS: tuple[tuple[str, ErrorKind], ...] = (
    ("prompt is too long", ErrorKind.CONTEXT_LENGTH),
    ("exceed context limit", ErrorKind.CONTEXT_LENGTH),
    ("credit balance is too low", ErrorKind.QUOTA_EXHAUSTED),
    ("content filtering policy", ErrorKind.CONTENT_FILTER),
)


@dataclass
class _StreamState:
    """What an Anthropic stream has said so far, beyond what the shared accumulator keeps."""

    start_usage: dict[str, Any] | None = None
    final_usage: dict[str, Any] | None = None
    #: content-block index -> ordinal of the tool call it carries (normalized indexes count tool calls only)
    tool_blocks: dict[int, int] = field(default_factory=dict)
    stopped: bool = False


class AnthropicAdapter(Adapter):
    wire: ClassVar[str] = "anthropic"
    request_id_header: ClassVar[str] = "request-id"

    # ----- request -----
    @property
    def api_version(self) -> str:
        return str(self.entry.options.get("api_version", DEFAULT_API_VERSION))

    async def headers(self) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": self.api_version,
        }
        key = await self.credential()
        if key:
            headers["x-api-key"] = key
        return headers

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system" and m.content)
        max_tokens = request.max_tokens or int(
            self.entry.options.get("default_max_tokens", DEFAULT_MAX_TOKENS)
        )
        body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens}
        if system:
            body["system"] = system
        body["messages"] = _turns(request.messages)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        if request.tool_choice is not None:
            choice = request.tool_choice
            modes = {"auto": "auto", "none": "none", "required": "any"}
            body["tool_choice"] = (
                {"type": modes[choice]} if choice in modes else {"type": "tool", "name": choice}
            )
        if stream:
            body["stream"] = True
        return body

    # ----- complete -----
    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await self.post_json("messages", self.body(request, stream=False), await self.headers())
        request_id = response.headers.get(self.request_id_header)
        if response.status_code != 200:
            raise self.status_error(response)
        data = self.json_object(response, request_id=request_id)
        if data.get("type") == "error" or "error" in data:
            raise self.body_error(data, status=200, headers=response.headers, request_id=request_id)
        return self.parse_message(data, request, request_id)

    def parse_message(
        self, data: Mapping[str, Any], request: ChatRequest, request_id: str | None
    ) -> ChatResponse:
        """Normalize a ``message`` body; also used to check recorded traffic."""
        content = data.get("content")
        if data.get("type") != "message" or not isinstance(content, list):
            raise self.error(ErrorKind.INVALID_RESPONSE, "body is not a message", request_id=request_id)
        blocks = [b for b in content if isinstance(b, dict)]
        text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
        tool_calls = tuple(
            ToolCall(id=b.get("id"), name=b.get("name") or "", arguments=parse_arguments(b.get("input")))
            for b in blocks
            if b.get("type") == "tool_use"
        )
        raw_finish = data.get("stop_reason")
        usage = self.parse_usage(data.get("usage")) or estimate_usage(request, text, tool_calls)
        return ChatResponse(
            text=text,
            tool_calls=tool_calls,
            finish_reason=FINISH_REASONS.get(raw_finish or "", "other"),
            raw_finish_reason=raw_finish,
            usage=usage,
            request_id=request_id,
            model=data.get("model") or request.model,
            provider_id=self.provider_id,
        )

    @staticmethod
    def parse_usage(raw: Any, fallback: Any = None) -> Usage | None:
        """Normalized usage from Anthropic's counters; ``fallback`` supplies fields ``raw`` lacks (a stream's
        ``message_start`` usage under its ``message_delta`` usage)."""
        merged: dict[str, Any] = {}
        for part in (fallback, raw):
            if isinstance(part, dict):
                merged.update({k: v for k, v in part.items() if v is not None})
        if merged.get("input_tokens") is None or merged.get("output_tokens") is None:
            return None
        cache_read = merged.get("cache_read_input_tokens")
        prompt = (
            (token_count(merged["input_tokens"], "input_tokens") or 0)
            + (token_count(cache_read, "cache_read_input_tokens") or 0)
            + (token_count(merged.get("cache_creation_input_tokens"), "cache_creation_input_tokens") or 0)
        )
        output = token_count(merged["output_tokens"], "output_tokens") or 0
        return Usage(
            input_tokens=prompt,
            output_tokens=output,
            total_tokens=prompt + output,
            cached_tokens=token_count(cache_read, "cache_read_input_tokens"),
            reasoning_tokens=None,
            source="reported",
        )

    # ----- errors -----
    def status_error(self, response: httpx.Response) -> ProviderError:
        try:
            data = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return self.body_error(data, status=response.status_code, headers=response.headers)
        kind = kind_for_status(response.status_code)
        snippet = response.text[:200] if response.content else "empty body"
        return self.error(
            kind,
            f"HTTP {response.status_code}: {snippet}",
            status=response.status_code,
            request_id=response.headers.get(self.request_id_header),
            retry_after=parse_retry_after(response.headers),
            retryable=_forbidden_retry(response.headers),
        )

    def body_error(
        self,
        data: Mapping[str, Any],
        *,
        status: int | None,
        headers: httpx.Headers | None = None,
        request_id: str | None = None,
        partial_text: str = "",
    ) -> ProviderError:
        """Map ``{"type": "error", "error": {...}, "request_id": ...}`` (an HTTP error, or in-band on a 200)."""
        error = data.get("error")
        if not isinstance(error, dict):
            error = {"message": str(error)}
        etype = error.get("type") if isinstance(error.get("type"), str) else None
        message = error.get("message")
        if not isinstance(message, str):
            message = json.dumps(message) if message is not None else "no message"
        details = error.get("details")
        code = details.get("error_code") if isinstance(details, dict) else None
        lowered = message.lower()
        kind = next((k for fragment, k in MESSAGE_KINDS if fragment in lowered), None)
        if kind is None and isinstance(code, str):
            kind = CODE_KINDS.get(code)
        if kind is None and etype is not None:
            kind = TYPE_KINDS.get(etype)
        if kind is None:
            kind = kind_for_status(status) if status and status != 200 else ErrorKind.SERVER_ERROR
        if request_id is None and headers is not None:
            request_id = headers.get(self.request_id_header)
        body_id = data.get("request_id")
        if request_id is None and isinstance(body_id, str):
            request_id = body_id
        return self.error(
            kind,
            message,
            status=status,
            request_id=request_id,
            retry_after=parse_retry_after(headers) if headers is not None else None,
            retryable=_forbidden_retry(headers) if headers is not None else None,
            partial_text=partial_text,
            provider_code=code if isinstance(code, str) else etype,
        )

    # ----- stream -----
    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        acc = StreamAccumulator(request)
        state = _StreamState()
        headers = await self.headers()
        headers["accept"] = "text/event-stream"
        async with self.post_stream("messages", self.body(request, stream=True), headers) as response:
            acc.request_id = response.headers.get(self.request_id_header)
            if response.status_code != 200:
                try:
                    await response.aread()
                except Exception as exc:
                    raise self.transport_error(exc, request_id=acc.request_id) from None
                raise self.status_error(response)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                raise await self.unexpected_body(
                    response, expected="text/event-stream", request_id=acc.request_id
                )
            yield Start(provider_id=self.provider_id, model=request.model, request_id=acc.request_id)
            async for sse in self.read_stream(EventSource(response).aiter_sse(), acc):
                for event in self._event(sse.event, sse.data, acc, state):
                    yield event
                if state.stopped:
                    break
            if not state.stopped:
                raise self.error(
                    ErrorKind.STREAM_INTERRUPTED,
                    "stream ended without its message_stop event",
                    request_id=acc.request_id,
                    partial_text=acc.text,
                )
        acc.usage = self.parse_usage(state.final_usage, state.start_usage)
        yield acc.end(default_finish="other")

    def _event(self, name: str, data: str, acc: StreamAccumulator, state: _StreamState) -> list[StreamEvent]:
        """One SSE event -> the normalized events to yield. Unknown names (and pings) are skipped, as the SDK does."""
        if name not in _HANDLED_EVENTS:
            return []
        payload = self._frame(data, acc)
        if name == "error":
            raise self.body_error(payload, status=None, request_id=acc.request_id, partial_text=acc.text)
        if name == "message_start":
            message = payload.get("message")
            if isinstance(message, dict) and isinstance(message.get("usage"), dict):
                state.start_usage = message["usage"]
            return []
        if name == "message_delta":
            delta = payload.get("delta")
            raw_finish = delta.get("stop_reason") if isinstance(delta, dict) else None
            if isinstance(raw_finish, str):
                acc.raw_finish_reason = raw_finish
                acc.finish_reason = FINISH_REASONS.get(raw_finish, "other")
            if isinstance(payload.get("usage"), dict):
                state.final_usage = payload["usage"]  # cumulative: the latest replaces, never adds
            return []
        if name == "message_stop":
            state.stopped = True
            return []
        index = payload.get("index")
        if not isinstance(index, int):
            return []
        if name == "content_block_start":
            return self._block_start(index, payload.get("content_block"), acc, state)
        if name == "content_block_delta":
            return self._block_delta(index, payload.get("delta"), acc, state)
        return []  # content_block_stop: arguments are parsed once, at the End

    @staticmethod
    def _block_start(
        index: int, block: Any, acc: StreamAccumulator, state: _StreamState
    ) -> list[StreamEvent]:
        if not isinstance(block, dict):
            return []
        out: list[StreamEvent] = []
        event: StreamEvent | None
        if block.get("type") == "text":
            event = acc.text_delta(block.get("text"))
        elif block.get("type") == "tool_use":
            ordinal = state.tool_blocks.setdefault(index, len(state.tool_blocks))
            initial = block.get("input")
            event = acc.tool_fragment(
                ordinal,
                id=block.get("id"),
                name=block.get("name"),
                arguments=json.dumps(initial) if isinstance(initial, dict) and initial else None,
            )
        else:
            event = None  # thinking, redacted_thinking, server tool blocks: not output text
        if event is not None:
            out.append(event)
        return out

    @staticmethod
    def _block_delta(
        index: int, delta: Any, acc: StreamAccumulator, state: _StreamState
    ) -> list[StreamEvent]:
        if not isinstance(delta, dict):
            return []
        event: StreamEvent | None = None
        if delta.get("type") == "text_delta":
            event = acc.text_delta(delta.get("text"))
        elif delta.get("type") == "input_json_delta" and index in state.tool_blocks:
            event = acc.tool_fragment(state.tool_blocks[index], arguments=delta.get("partial_json"))
        return [event] if event is not None else []

    def _frame(self, data: str, acc: StreamAccumulator) -> dict[str, Any]:
        return self.decode_frame(data, request_id=acc.request_id, partial_text=acc.text)

    def disguised_error(
        self, data: Any, response: httpx.Response, request_id: str | None
    ) -> ProviderError | None:
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return self.body_error(data, status=200, headers=response.headers, request_id=request_id)
        return None


_HANDLED_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "error",
    }
)


def _forbidden_retry(headers: httpx.Headers) -> bool | None:
    """``x-should-retry: false`` forbids a retry; it never makes a non-retryable kind retryable."""
    return False if headers.get("x-should-retry") == "false" else None


def _turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Anthropic turns: system messages lifted out (see :meth:`AnthropicAdapter.body`), tool results sent as
    ``tool_result`` blocks in a user turn, and consecutive turns of one role merged so roles alternate."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            if isinstance(previous, str):
                previous = [{"type": "text", "text": previous}] if previous else []
            turns[-1]["content"] = previous + (
                [{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks
            )
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: Message) -> str | list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}
        ]
    if not message.tool_calls:
        return message.content
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    blocks.extend(
        {"type": "tool_use", "id": call.id or "", "name": call.name, "input": call.arguments}
        for call in message.tool_calls
    )
    return blocks
