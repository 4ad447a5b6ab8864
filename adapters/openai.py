"""OpenAI Chat Completions, and every OpenAI-compatible API by configuration alone.

Wire facts (from the openai SDK source): errors are ``{"error": {message, type, param, code}}``; the request id is the
``x-request-id`` header; ``x-should-retry`` overrides the retry decision; a stream is data-only SSE ending in
``data: [DONE]``, with usage on a trailing ``choices: []`` chunk when ``stream_options.include_usage`` is set, and a
mid-stream failure arrives as a data object with a top-level ``error``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx
from httpx_sse import EventSource

from adapters.base import Adapter, kind_for_status, token_count
from adapters.errors import ErrorKind, ProviderError
from adapters.streaming import StreamAccumulator, parse_arguments
from adapters.types import (
    TOOL_CHOICE_MODES,
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

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",  # older Together models
    "length": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}

#: error ``code``/``type`` values that say more than the status does
CODE_KINDS: dict[str, ErrorKind] = {
    "insufficient_quota": ErrorKind.QUOTA_EXHAUSTED,
    "billing_hard_limit_reached": ErrorKind.QUOTA_EXHAUSTED,
    "context_length_exceeded": ErrorKind.CONTEXT_LENGTH,
    "string_above_max_length": ErrorKind.CONTEXT_LENGTH,
    "content_filter": ErrorKind.CONTENT_FILTER,  # Azure's prompt filter (400, innererror ResponsibleAIPolicyViolation)
    "content_policy_violation": ErrorKind.CONTENT_FILTER,
    # OpenAI's own answer to a flagged prompt: 400 invalid_request_error, code invalid_prompt ("Invalid prompt: your
    # prompt was flagged as potentially violating our usage policy", github.com/BeehiveInnovations/pal-mcp-server#178)
    "invalid_prompt": ErrorKind.CONTENT_FILTER,
    "invalid_api_key": ErrorKind.AUTH,
    "authentication_error": ErrorKind.AUTH,
    "model_not_found": ErrorKind.NOT_FOUND,
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "server_error": ErrorKind.SERVER_ERROR,
    "overloaded": ErrorKind.OVERLOADED,
    "overloaded_error": ErrorKind.OVERLOADED,
    "service_unavailable": ErrorKind.OVERLOADED,
    "timeout": ErrorKind.TIMEOUT,
}


class OpenAIAdapter(Adapter):
    wire: ClassVar[str] = "openai"
    request_id_header: ClassVar[str] = "x-request-id"
    #: OpenAI's current name; compatible APIs mostly still take ``max_tokens``
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    #: ask for the trailing usage chunk; some compatible APIs reject ``stream_options``
    stream_usage_option: ClassVar[bool] = True

    def request_id_of(self, headers: httpx.Headers) -> str | None:
        """The provider's request id from response headers; a hook for providers that name it differently."""
        value: str | None = headers.get(self.request_id_header)
        return value

    # ----- request -----
    async def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = await self.credential()
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [self._message(m) for m in request.messages],
        }
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
        if request.tool_choice is not None:
            body["tool_choice"] = self.tool_choice(request.tool_choice)
        if stream:
            body["stream"] = True
            if self.stream_usage_option:
                body["stream_options"] = {"include_usage": True}
        return body

    #: the dialect's word for "call some tool" (Mistral's is ``any``)
    required_tool_choice: ClassVar[str] = "required"

    def tool_choice(self, choice: str) -> str | dict[str, Any]:
        """``auto``/``none``/``required`` as words, one named tool as ``{"type": "function", ...}``."""
        if choice == "required":
            return self.required_tool_choice
        if choice in TOOL_CHOICE_MODES:
            return choice
        return {"type": "function", "function": {"name": choice}}

    @staticmethod
    def _message(message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ]
        if message.tool_call_id:
            out["tool_call_id"] = message.tool_call_id
        if message.name:
            out["name"] = message.name
        return out

    # ----- complete -----
    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await self.post_json(
            "chat/completions", self.body(request, stream=False), await self.headers()
        )
        request_id = self.request_id_of(response.headers)
        if response.status_code != 200:
            raise self.status_error(response)
        data = self.json_object(response, request_id=request_id)
        if data.get("error"):
            raise self.body_error(data["error"], status=200, request_id=request_id, headers=response.headers)
        return self.parse_completion(data, request, request_id)

    def parse_completion(
        self, data: Mapping[str, Any], request: ChatRequest, request_id: str | None
    ) -> ChatResponse:
        """Normalize a chat.completion body; also used to check recorded traffic."""
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self.error(ErrorKind.INVALID_RESPONSE, "completion has no choices", request_id=request_id)
        choice = choices[0]
        message = choice.get("message") or {}
        text = self.content_text(message.get("content"), request_id=request_id)
        tool_calls = tuple(
            ToolCall(
                id=call.get("id"),
                name=(call.get("function") or {}).get("name", ""),
                arguments=parse_arguments((call.get("function") or {}).get("arguments")),
            )
            for call in message.get("tool_calls") or []
            if isinstance(call, dict)
        )
        raw_finish = choice.get("finish_reason")
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
    def parse_usage(raw: Any) -> Usage | None:
        if not isinstance(raw, dict) or raw.get("prompt_tokens") is None:
            return None
        prompt = token_count(raw.get("prompt_tokens"), "prompt_tokens") or 0
        completion = token_count(raw.get("completion_tokens"), "completion_tokens") or 0
        prompt_details = raw.get("prompt_tokens_details") or {}
        completion_details = raw.get("completion_tokens_details") or {}
        cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
        reasoning = (
            completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else None
        )
        return Usage(
            input_tokens=prompt,
            output_tokens=completion,
            total_tokens=token_count(raw.get("total_tokens"), "total_tokens") or prompt + completion,
            cached_tokens=token_count(cached, "cached_tokens"),
            reasoning_tokens=token_count(reasoning, "reasoning_tokens"),
            source="reported",
        )

    # ----- errors -----
    def status_error(self, response: httpx.Response) -> ProviderError:
        request_id = self.request_id_of(response.headers)
        try:
            data = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(data, dict) and error is None and data.get("message"):
            error = data  # flat error bodies (Mistral-style compatible APIs)
        if not isinstance(error, dict):
            snippet = response.text[:200] if response.content else "empty body"
            return self.error(
                kind_for_status(response.status_code),
                f"HTTP {response.status_code}: {snippet}",
                status=response.status_code,
                request_id=request_id,
                retry_after=self.retry_after(response),
                retryable=self._should_retry(response, kind_for_status(response.status_code)),
            )
        return self.body_error(
            error, status=response.status_code, request_id=request_id, headers=response.headers
        )

    def dialect_kind(self, error: dict[str, Any], status: int | None) -> ErrorKind | None:
        """Hook for OpenAI-shaped dialects: the kind their own codes, metadata or messages imply, or None."""
        return None

    def body_error(
        self,
        error: Any,
        *,
        status: int | None,
        request_id: str | None,
        headers: httpx.Headers | None = None,
        partial_text: str = "",
        in_band: bool = False,
    ) -> ProviderError:
        if not isinstance(error, dict):
            error = {"message": str(error)}
        code = error.get("code")
        etype = error.get("type")
        message = error.get("message")
        if not isinstance(message, str):
            message = json.dumps(message) if message is not None else "no message"
        # the dialect's own codes first, then OpenAI's specific code, then the message (OpenAI's overload 503
        # says so only in prose), then the type
        kind = self.dialect_kind(error, status)
        if kind is None and code is not None:
            kind = CODE_KINDS.get(str(code))
        if kind is None and "overloaded" in message.lower():
            kind = ErrorKind.OVERLOADED
        if kind is None and isinstance(etype, str):
            kind = CODE_KINDS.get(etype)
        effective_status = status if status and status != 200 else _int_or_none(code)
        if kind is None:
            if effective_status:
                kind = kind_for_status(effective_status)
            else:
                kind = ErrorKind.SERVER_ERROR if in_band else ErrorKind.INVALID_RESPONSE
        retry_after = None
        retryable: bool | None = None
        if headers is not None:
            from adapters.errors import parse_retry_after

            retry_after = parse_retry_after(headers)
            retryable = self._should_retry_headers(headers, kind)
        return self.error(
            kind,
            message,
            status=status,
            request_id=request_id,
            retry_after=retry_after,
            retryable=retryable,
            partial_text=partial_text,
            provider_code=str(code) if code is not None else (etype if isinstance(etype, str) else None),
        )

    def _should_retry(self, response: httpx.Response, kind: ErrorKind) -> bool | None:
        return self._should_retry_headers(response.headers, kind)

    @staticmethod
    def _should_retry_headers(headers: httpx.Headers, kind: ErrorKind) -> bool | None:
        """Honour ``x-should-retry`` only to forbid a retry: a quota error must never be retried, whatever it says."""
        flag = headers.get("x-should-retry")
        if flag == "false":
            return False
        return None

    # ----- stream -----
    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        acc = StreamAccumulator(request)
        headers = await self.headers()
        headers["accept"] = "text/event-stream"
        async with self.post_stream("chat/completions", self.body(request, stream=True), headers) as response:
            acc.request_id = self.request_id_of(response.headers)
            if response.status_code != 200:
                try:
                    await response.aread()
                except Exception as exc:
                    raise self.transport_error(exc, request_id=acc.request_id) from None
                raise self.status_error(response)
            ctype = response.headers.get("content-type", "")
            if "text/event-stream" not in ctype:
                raise await self.unexpected_body(
                    response, expected="text/event-stream", request_id=acc.request_id
                )
            yield Start(provider_id=self.provider_id, model=request.model, request_id=acc.request_id)
            done = False
            async for sse in self.read_stream(EventSource(response).aiter_sse(), acc):
                data = sse.data
                if data.startswith("[DONE]"):
                    done = True
                    break
                if not data.strip():
                    continue
                for event in self._chunk_events(data, acc):
                    yield event
            if not done:
                raise self.error(
                    ErrorKind.STREAM_INTERRUPTED,
                    "stream ended without its [DONE] terminator",
                    request_id=acc.request_id,
                    partial_text=acc.text,
                )
        yield acc.end(default_finish="other")

    def _chunk_events(self, data: str, acc: StreamAccumulator) -> list[StreamEvent]:
        chunk = self.decode_frame(data, request_id=acc.request_id, partial_text=acc.text)
        if chunk.get("error"):
            raise self.body_error(
                chunk["error"], status=None, request_id=acc.request_id, partial_text=acc.text, in_band=True
            )
        events: list[StreamEvent] = []
        usage = self.parse_usage(chunk.get("usage"))
        if usage is not None:
            acc.set_usage(usage)
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text_event = acc.text_delta(
                self.content_text(delta.get("content"), request_id=acc.request_id, partial_text=acc.text)
            )
            if text_event is not None:
                events.append(text_event)
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                tool_event = acc.tool_fragment(
                    int(call.get("index", 0)),
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=function.get("arguments"),
                )
                if tool_event is not None:
                    events.append(tool_event)
            raw_finish = choice.get("finish_reason")
            if raw_finish:
                acc.raw_finish_reason = raw_finish
                acc.finish_reason = FINISH_REASONS.get(raw_finish, "other")
                if raw_finish == "error":
                    raise self.error(
                        ErrorKind.SERVER_ERROR,
                        "provider ended the stream with finish_reason 'error'",
                        request_id=acc.request_id,
                        partial_text=acc.text,
                    )
        return events

    def disguised_error(
        self, data: Any, response: httpx.Response, request_id: str | None
    ) -> ProviderError | None:
        if isinstance(data, dict) and data.get("error"):
            return self.body_error(data["error"], status=200, request_id=request_id, headers=response.headers)
        return None


class OpenAICompatibleAdapter(OpenAIAdapter):
    """Any API that speaks OpenAI Chat Completions (Groq, Together, Fireworks, DeepSeek, ...): configuration only."""

    max_tokens_field: ClassVar[str] = "max_tokens"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
