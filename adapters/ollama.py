"""Ollama's native chat API (``POST /api/chat``), local or Ollama cloud.

Wire facts (ollama-python 0.6.3 ``_client.py``/``_types.py``, provider-wire-formats.md §9):

* no auth locally; Ollama cloud takes ``Authorization: Bearer <key>``, sent only when ``credential_ref`` is set;
* ``stream`` defaults to *true* on the server, so it is always sent explicitly;
* a stream is NDJSON (``application/x-ndjson``): ``done:false`` lines carry ``message.content`` fragments, the last
  line has ``done:true``, ``done_reason`` and the counters. There is no ``[DONE]``: a stream that ends without its
  ``done:true`` line was cut short. A ``{"error": "..."}`` line is an in-band error;
* usage is ``prompt_eval_count`` (input) and ``eval_count`` (output). A cached prompt made older servers omit
  ``prompt_eval_count`` (ollama#2068): that is *unknown*, estimated and marked so, never 0;
* tool calls arrive whole, ``arguments`` an object, usually without an id; ``done_reason`` stays ``"stop"`` when
  the model called a tool, so a reply that carries tool calls finishes as ``tool_calls``;
* errors are ``{"error": "<text>"}`` with an HTTP status, and no request id or rate-limit headers exist. The text
  is all there is to tell an overloaded queue, an exhausted cloud quota or an overlong prompt apart, so the few
  documented messages are matched here.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx

from adapters.base import Adapter, kind_for_status, token_count
from adapters.errors import ErrorKind, ProviderError
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
from adapters.usage import estimate_input_tokens, estimate_usage

FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length"}

#: (pattern over the error text, kind): the first match wins, the HTTP status decides otherwise.
MESSAGE_KINDS: tuple[tuple[re.Pattern[str], ErrorKind], ...] = (
    (
        re.compile(r"prompt too long|exceeds? (the )?(max(imum)? )?context length", re.I),
        ErrorKind.CONTEXT_LENGTH,
    ),
    (re.compile(r"server busy|maximum pending requests", re.I), ErrorKind.OVERLOADED),
    (re.compile(r"(weekly|monthly|session) usage limit|out of credits", re.I), ErrorKind.QUOTA_EXHAUSTED),
    (re.compile(r"usage limit|rate limit|too many requests", re.I), ErrorKind.RATE_LIMITED),
    (re.compile(r"model \S+ not found", re.I), ErrorKind.NOT_FOUND),
    (re.compile(r"^unauthorized", re.I), ErrorKind.AUTH),
)


def error_kind(message: str, status: int | None) -> ErrorKind:
    """The kind an Ollama error text means; a status (None for an in-band line) decides when the text does not."""
    for pattern, kind in MESSAGE_KINDS:
        if pattern.search(message):
            return kind
    if status is None or status == 200:
        return ErrorKind.SERVER_ERROR
    return kind_for_status(status)


class OllamaAdapter(Adapter):
    wire: ClassVar[str] = "ollama"

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
            "stream": stream,
        }
        options: dict[str, Any] = {}
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.top_p is not None:
            options["top_p"] = request.top_p
        if request.stop:
            options["stop"] = list(request.stop)
        if request.tool_choice not in (None, "auto"):
            raise self.unsupported(f"tool_choice {request.tool_choice!r} (/api/chat has no tool choice)")
        if options:
            body["options"] = options
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
        return body

    @staticmethod
    def _message(message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            out["tool_calls"] = [
                {"function": {"name": call.name, "arguments": dict(call.arguments)}}
                for call in message.tool_calls
            ]
        if message.role == "tool" and message.name:
            out["tool_name"] = message.name
        return out

    # ----- complete -----
    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await self.post_json("api/chat", self.body(request, stream=False), await self.headers())
        if response.status_code != 200:
            raise self.status_error(response)
        data = self.json_object(response)
        if data.get("error"):
            raise self.body_error(data["error"], status=200)
        return self.parse_completion(data, request)

    def parse_completion(self, data: Mapping[str, Any], request: ChatRequest) -> ChatResponse:
        """Normalize a ``done:true`` chat body; also used to check recorded traffic."""
        message = data.get("message")
        if not isinstance(message, dict):
            raise self.error(ErrorKind.INVALID_RESPONSE, "chat response has no message")
        text = message.get("content") or ""
        tool_calls = self.parse_tool_calls(message.get("tool_calls"))
        raw_finish = data.get("done_reason")
        return ChatResponse(
            text=text,
            tool_calls=tool_calls,
            finish_reason=self.finish_reason(raw_finish, bool(tool_calls)),
            raw_finish_reason=raw_finish if isinstance(raw_finish, str) else None,
            usage=self.parse_usage(data, request, text, tool_calls),
            request_id=None,
            model=data.get("model") or request.model,
            provider_id=self.provider_id,
        )

    @staticmethod
    def parse_tool_calls(raw: Any) -> tuple[ToolCall, ...]:
        calls = []
        for call in raw or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                continue
            calls.append(
                ToolCall(
                    id=call.get("id") if isinstance(call.get("id"), str) else None,
                    name=function.get("name") or "",
                    arguments=parse_arguments(function.get("arguments")),
                )
            )
        return tuple(calls)

    @staticmethod
    def finish_reason(raw: Any, has_tool_calls: bool) -> FinishReason:
        if has_tool_calls and raw in (None, "stop"):
            return "tool_calls"
        return FINISH_REASONS.get(raw, "other") if isinstance(raw, str) else "stop"

    @staticmethod
    def parse_usage(
        data: Mapping[str, Any], request: ChatRequest, text: str, tool_calls: tuple[ToolCall, ...] = ()
    ) -> Usage:
        """Counters as reported; a missing counter is estimated (and the whole Usage marked estimated)."""
        prompt = token_count(data.get("prompt_eval_count"), "prompt_eval_count")
        output = token_count(data.get("eval_count"), "eval_count")
        if prompt is not None and output is not None:
            return Usage(input_tokens=prompt, output_tokens=output, total_tokens=prompt + output)
        estimate = estimate_usage(request, text, tool_calls)
        input_tokens = prompt if prompt else estimate_input_tokens(request)
        output_tokens = output if output else estimate.output_tokens
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            source="estimated",
        )

    # ----- errors -----
    def status_error(self, response: httpx.Response) -> ProviderError:
        try:
            data = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        if error is None:
            snippet = response.text[:200] if response.content else "empty body"
            return self.error(
                kind_for_status(response.status_code),
                f"HTTP {response.status_code}: {snippet}",
                status=response.status_code,
                retry_after=self.retry_after(response),
            )
        return self.body_error(error, status=response.status_code, retry_after=self.retry_after(response))

    def body_error(
        self,
        error: Any,
        *,
        status: int | None,
        retry_after: float | None = None,
        partial_text: str = "",
    ) -> ProviderError:
        message = error if isinstance(error, str) else json.dumps(error)
        return self.error(
            error_kind(message, status),
            message,
            status=status,
            retry_after=retry_after,
            partial_text=partial_text,
        )

    # ----- stream -----
    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        acc = StreamAccumulator(request)
        async with self.post_stream(
            "api/chat", self.body(request, stream=True), await self.headers()
        ) as response:
            if response.status_code != 200:
                try:
                    await response.aread()
                except Exception as exc:
                    raise self.transport_error(exc) from None
                raise self.status_error(response)
            if "ndjson" not in response.headers.get("content-type", ""):
                raise await self.unexpected_body(response, expected="application/x-ndjson")
            yield Start(provider_id=self.provider_id, model=request.model)
            done = False
            async for line in self.read_stream(response.aiter_lines(), acc):
                if not line.strip():
                    continue
                for event in self._line_events(line, acc):
                    yield event
                if acc.finish_reason is not None:
                    done = True
                    break
            if not done:
                raise self.error(
                    ErrorKind.STREAM_INTERRUPTED,
                    "stream ended without its done:true line",
                    partial_text=acc.text,
                )
        yield acc.end()

    def _line_events(self, line: str, acc: StreamAccumulator) -> list[StreamEvent]:
        chunk = self.decode_frame(line, request_id=None, partial_text=acc.text, what="stream line")
        if chunk.get("error"):
            raise self.body_error(chunk["error"], status=None, partial_text=acc.text)
        events: list[StreamEvent] = []
        message = chunk.get("message") or {}
        if isinstance(message, dict):
            text_event = acc.text_delta(message.get("content"))
            if text_event is not None:
                events.append(text_event)
            for call in self.parse_tool_calls(message.get("tool_calls")):
                index = len(acc.tools)
                tool_event = acc.tool_fragment(
                    index, id=call.id, name=call.name, arguments=json.dumps(call.arguments)
                )
                if tool_event is not None:
                    events.append(tool_event)
        if chunk.get("done") is True:
            raw_finish = chunk.get("done_reason")
            acc.raw_finish_reason = raw_finish if isinstance(raw_finish, str) else None
            acc.finish_reason = self.finish_reason(raw_finish, bool(acc.tools))
            acc.set_usage(self.parse_usage(chunk, acc.request, acc.text, acc.tool_calls()))
        return events

    def disguised_error(
        self, data: Any, response: httpx.Response, request_id: str | None
    ) -> ProviderError | None:
        if isinstance(data, dict) and data.get("error"):
            return self.body_error(data["error"], status=200)
        return None
