"""The Acme adapter: Acme's own JSON dialect, mapped to provcert's normalized types.

Acme's wire (see :mod:`acme_provcert.personality`, which plays it): ``POST {base}/generate`` with
``Authorization: Acme <key>``; the request id is the ``acme-request-id`` header; a body is
``{"id","model","output":{"text","calls":[{id,name,args}]},"stop","tokens":{"in","out"}}``; errors are
``{"fault":{"code","detail","retry_in_ms"}}`` (the retry hint lives in the body, in milliseconds); a stream is SSE with
named events ``delta``, ``call`` (argument fragments keyed by ``index``), ``stop`` (reason and tokens), ``done``
(the terminator) and ``fault`` (an in-band error), with ``: ping`` comments as keep-alives.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx
from httpx_sse import EventSource

from adapters.base import Adapter, kind_for_status
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
from adapters.usage import estimate_usage

REQUEST_ID = "acme-request-id"
STOPS: dict[str, FinishReason] = {
    "end": "stop",
    "max_tokens": "length",
    "function_call": "tool_calls",
    "blocked": "content_filter",
}
FAULT_KINDS: dict[str, ErrorKind] = {
    "RATE_LIMITED": ErrorKind.RATE_LIMITED,
    "QUOTA_EXCEEDED": ErrorKind.QUOTA_EXHAUSTED,
    "UNAUTHENTICATED": ErrorKind.AUTH,
    "FORBIDDEN": ErrorKind.PERMISSION,
    "NO_SUCH_MODEL": ErrorKind.NOT_FOUND,
    "INVALID_ARGUMENT": ErrorKind.BAD_REQUEST,
    "CONTEXT_TOO_LONG": ErrorKind.CONTEXT_LENGTH,
    "BLOCKED": ErrorKind.CONTENT_FILTER,
    "INTERNAL": ErrorKind.SERVER_ERROR,
    "UPSTREAM": ErrorKind.SERVER_ERROR,
    "UNAVAILABLE": ErrorKind.SERVER_ERROR,
    "UPSTREAM_TIMEOUT": ErrorKind.SERVER_ERROR,
    "BUSY": ErrorKind.OVERLOADED,
}


class AcmeAdapter(Adapter):
    wire: ClassVar[str] = "acme"

    async def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = await self.credential()
        if key:
            headers["authorization"] = f"Acme {key}"
        return headers

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "input": [self._turn(m) for m in request.messages],
            "stream": stream,
        }
        if request.max_tokens is not None:
            body["limits"] = {"max_output_tokens": request.max_tokens}
        if request.temperature is not None:
            body["sampling"] = {"temperature": request.temperature}
        if request.tools:
            body["functions"] = [
                {"name": t.name, "description": t.description, "schema": t.parameters} for t in request.tools
            ]
        return body

    @staticmethod
    def _turn(message: Message) -> dict[str, Any]:
        turn: dict[str, Any] = {"speaker": message.role, "text": message.content}
        if message.tool_calls:
            turn["calls"] = [
                {"id": c.id, "name": c.name, "args": dict(c.arguments)} for c in message.tool_calls
            ]
        if message.tool_call_id:
            turn["call_id"] = message.tool_call_id
        return turn

    # ----- complete -----
    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await self.post_json("generate", self.body(request, stream=False), await self.headers())
        request_id = response.headers.get(REQUEST_ID)
        if response.status_code != 200:
            raise self.status_error(response)
        data = self.json_object(response, request_id=request_id)
        if data.get("fault"):
            raise self.fault(data["fault"], status=200, request_id=request_id)
        output = data.get("output")
        if not isinstance(output, dict):
            raise self.error(ErrorKind.INVALID_RESPONSE, "body has no output", request_id=request_id)
        text = output.get("text") or ""
        calls = tuple(
            ToolCall(id=c.get("id"), name=c.get("name", ""), arguments=parse_arguments(c.get("args")))
            for c in output.get("calls") or []
            if isinstance(c, dict)
        )
        stop = data.get("stop")
        return ChatResponse(
            text=text,
            tool_calls=calls,
            finish_reason=STOPS.get(stop, "other") if isinstance(stop, str) else "other",
            raw_finish_reason=stop if isinstance(stop, str) else None,
            usage=self.usage(data.get("tokens")) or estimate_usage(request, text, calls),
            request_id=request_id,
            model=data.get("model") or request.model,
            provider_id=self.provider_id,
        )

    @staticmethod
    def usage(tokens: Any) -> Usage | None:
        if not isinstance(tokens, dict) or not isinstance(tokens.get("in"), int):
            return None
        used_in, used_out = tokens["in"], int(tokens.get("out") or 0)
        return Usage(input_tokens=used_in, output_tokens=used_out, total_tokens=used_in + used_out)

    # ----- errors -----
    def status_error(self, response: httpx.Response) -> ProviderError:
        request_id = response.headers.get(REQUEST_ID)
        try:
            data = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        fault = data.get("fault") if isinstance(data, dict) else None
        if not isinstance(fault, dict):
            return self.error(
                kind_for_status(response.status_code),
                f"HTTP {response.status_code}: {response.text[:200] or 'empty body'}",
                status=response.status_code,
                request_id=request_id,
            )
        return self.fault(fault, status=response.status_code, request_id=request_id)

    def fault(
        self, fault: Any, *, status: int | None, request_id: str | None, partial_text: str = ""
    ) -> ProviderError:
        fault = fault if isinstance(fault, Mapping) else {"detail": str(fault)}
        code = str(fault.get("code") or "")
        kind = FAULT_KINDS.get(code)
        if kind is None:
            kind = kind_for_status(status) if status and status != 200 else ErrorKind.SERVER_ERROR
        retry_ms = fault.get("retry_in_ms")
        return self.error(
            kind,
            str(fault.get("detail") or code or "unknown fault"),
            status=status,
            request_id=request_id,
            retry_after=retry_ms / 1000 if isinstance(retry_ms, (int, float)) and retry_ms >= 0 else None,
            partial_text=partial_text,
            provider_code=code or None,
        )

    # ----- stream -----
    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        acc = StreamAccumulator(request)
        headers = {**await self.headers(), "accept": "text/event-stream"}
        async with self.post_stream("generate", self.body(request, stream=True), headers) as response:
            acc.request_id = response.headers.get(REQUEST_ID)
            if response.status_code != 200:
                try:
                    await response.aread()
                except Exception as exc:
                    raise self.transport_error(exc, request_id=acc.request_id) from None
                raise self.status_error(response)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                raise self.error(
                    ErrorKind.INVALID_RESPONSE,
                    f"expected text/event-stream, got {response.headers.get('content-type')!r}",
                    status=200,
                    request_id=acc.request_id,
                )
            yield Start(provider_id=self.provider_id, model=request.model, request_id=acc.request_id)
            done = False
            async for sse in self.read_stream(EventSource(response).aiter_sse(), acc):
                if sse.event == "done":
                    done = True
                    break
                for event in self._events(sse.event, sse.data, acc):
                    yield event
            if not done:
                raise self.error(
                    ErrorKind.STREAM_INTERRUPTED,
                    "stream ended without its done event",
                    request_id=acc.request_id,
                    partial_text=acc.text,
                )
        yield acc.end(default_finish="other")

    def _events(self, name: str, data: str, acc: StreamAccumulator) -> list[StreamEvent]:
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise self.error(
                ErrorKind.INVALID_RESPONSE,
                f"malformed {name} event ({exc.msg}): {data[:80]!r}",
                request_id=acc.request_id,
                partial_text=acc.text,
            ) from None
        if not isinstance(payload, dict):
            raise self.error(
                ErrorKind.INVALID_RESPONSE, f"{name} event is not an object", request_id=acc.request_id
            )
        events: list[StreamEvent] = []
        if name == "fault":
            raise self.fault(
                payload.get("fault"), status=None, request_id=acc.request_id, partial_text=acc.text
            )
        if name == "delta":
            text_event = acc.text_delta(payload.get("text"))
            if text_event is not None:
                events.append(text_event)
        elif name == "call":
            tool_event = acc.tool_fragment(
                int(payload.get("index", 0)),
                id=payload.get("id"),
                name=payload.get("name"),
                arguments=payload.get("args_part"),
            )
            if tool_event is not None:
                events.append(tool_event)
        elif name == "stop":
            stop = payload.get("stop")
            if isinstance(stop, str):
                acc.raw_finish_reason = stop
                acc.finish_reason = STOPS.get(stop, "other")
            usage = self.usage(payload.get("tokens"))
            if usage is not None:
                acc.set_usage(usage)
        return events
