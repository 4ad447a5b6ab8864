"""Google Gemini Developer API (``generateContent`` / ``streamGenerateContent?alt=sse``).

Wire facts (google-genai 3.4 source and recorded traffic; provider-wire-formats.md §5):

* Auth is the ``x-goog-api-key`` header. The REST-only ``?key=`` form is never used: a key in a URL ends up in access
  logs and proxies.
* There is no request-id header. The only id a caller can quote to Google is the body's ``responseId``, so that is the
  ``request_id`` of responses and streams (Start and End). Error bodies carry no id, so errors have none.
* Errors are ``{"error": {code, message, status, details}}`` (a one-element list around it in JSON-array streams).
  ``status`` (the google.rpc code name) decides the kind, refined by ``details``: ``ErrorInfo.reason ==
  API_KEY_INVALID`` is ``auth`` although the HTTP status is 400; a 403 "unregistered callers" (no key at all) is
  ``auth`` too; "The input token count (N) exceeds the maximum ..." is ``context_length``. Both a rate limit and an
  exhausted quota are 429 ``RESOURCE_EXHAUSTED`` with the same message: a ``QuotaFailure`` violation on a per-day
  quota (or a quota of 0, a tier without access) is ``quota_exhausted`` and not retryable, anything else is
  ``rate_limited``. The only retry hint is ``RetryInfo.retryDelay`` (``"13s"``) in the body; there are no headers.
  ``UNAVAILABLE`` saying "overloaded" is ``overloaded``, ``DEADLINE_EXCEEDED`` is ``timeout``, ``FAILED_PRECONDITION``
  (billing or region) is ``permission``. Like the SDK, any status other than 200 is an error.
* A blocked prompt is HTTP 200 with no ``candidates`` and ``promptFeedback.blockReason``: raised as
  ``content_filter`` (there is no answer to return). A candidate stopped by ``SAFETY``, ``PROHIBITED_CONTENT``,
  ``BLOCKLIST``, ``SPII``, ``RECITATION`` (and the image variants) finishes with ``content_filter``, text kept.
* Function calls have no finish reason of their own (``STOP``): a response that carries calls finishes ``tool_calls``.
  Calls arrive whole (``args`` an object), so each is one ToolCallDelta with the whole arguments JSON.
* Parts flagged ``"thought": true`` are thinking summaries, not output text. Usage: ``output_tokens`` is
  ``candidatesTokenCount + thoughtsTokenCount`` because thoughts are billed as output (``totalTokenCount`` includes
  them), ``reasoning_tokens`` is ``thoughtsTokenCount``, ``cached_tokens`` is ``cachedContentTokenCount``; proto3
  JSON omits zero counts, so a reported usage with no such field means 0.
* A stream is ``data:`` events (CRLF framed), each a whole response; ``usageMetadata`` is a running snapshot, so the
  latest wins and nothing is summed. There is no terminator: the last chunk carries ``finishReason``, and EOF without
  one is ``stream_interrupted``. A mid-stream error is ``data: {"error": ...}``. Start is yielded with the first chunk,
  because that is where the ``responseId`` is.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import httpx
from httpx_sse import EventSource

from adapters.base import Adapter, Timeouts, kind_for_status, token_count
from adapters.errors import ErrorKind, ProviderError
from adapters.retry_hints import parse_retry_after
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

if TYPE_CHECKING:
    from adapters.credentials import CredentialResolver
    from adapters.registry import ProviderEntry

FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
FINISH_REASONS: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **{reason: "content_filter" for reason in FILTERED},
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}

#: Candidate.FinishReason numbers, for clients that ask for ``$alt=json;enum-encoding=int`` (the Vertex AI SDK does;
#: INDEX.md #117, #118). 0-9 are the same in every published proto (generativelanguage and aiplatform v1/v1beta1);
#: later numbers differ between them, so they stay numbers (and map to "other").
FINISH_REASON_NUMBERS = (
    "FINISH_REASON_UNSPECIFIED",
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "RECITATION",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "MALFORMED_FUNCTION_CALL",
)

#: google.rpc status names whose meaning does not depend on the message or details.
STATUS_KINDS: dict[str, ErrorKind] = {
    "INVALID_ARGUMENT": ErrorKind.BAD_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.PERMISSION,
    "OUT_OF_RANGE": ErrorKind.BAD_REQUEST,
    "UNAUTHENTICATED": ErrorKind.AUTH,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMITED,
    "INTERNAL": ErrorKind.SERVER_ERROR,
    "UNKNOWN": ErrorKind.SERVER_ERROR,
    "UNAVAILABLE": ErrorKind.SERVER_ERROR,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "UNIMPLEMENTED": ErrorKind.UNSUPPORTED,
}
CONTEXT_OVERFLOW = re.compile(r"input token count.*exceeds the maximum", re.IGNORECASE | re.DOTALL)
UNREGISTERED = "unregistered callers"
RPC = "type.googleapis.com/google.rpc."
RESPONSE_ID = re.compile(rb'"responseId"\s*:\s*"([A-Za-z0-9_-]+)"')


class GeminiAdapter(Adapter):
    wire: ClassVar[str] = "gemini"

    def __init__(
        self,
        entry: ProviderEntry,
        *,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        credentials: CredentialResolver | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        super().__init__(
            entry, base_url=base_url, http_client=http_client, credentials=credentials, timeouts=timeouts
        )
        # options.api_version supplies the version segment when base_url is the bare host; a base_url with a
        # path (the registered .../v1beta, a Vertex resource path) is used as is.
        version = str(entry.options.get("api_version") or "")
        if version and urlsplit(self.base_url).path in ("", "/"):
            self.base_url = f"{self.base_url.rstrip('/')}/{version}"

    # ----- request -----
    async def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = await self.credential()
        if key:
            headers["x-goog-api-key"] = key
        return headers

    @staticmethod
    def path(model: str, action: str) -> str:
        resource = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        return f"{resource}:{action}"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        system = [m.content for m in request.messages if m.role == "system" and m.content]
        body: dict[str, Any] = {"contents": self._contents(request.messages)}
        if system:
            body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
        if request.tools:
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {"name": t.name, "description": t.description, "parametersJsonSchema": t.parameters}
                        for t in request.tools
                    ]
                }
            ]
        if request.tool_choice is not None:
            choice = request.tool_choice
            modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
            calling: dict[str, Any] = {"mode": modes.get(choice, "ANY")}
            if choice not in modes:
                calling["allowedFunctionNames"] = [choice]
            body["toolConfig"] = {"functionCallingConfig": calling}
        config: dict[str, Any] = {}
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.top_p is not None:
            config["topP"] = request.top_p
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if config:
            body["generationConfig"] = config
        return body

    @staticmethod
    def _contents(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
        """Gemini turns: user/model roles, tool results as ``functionResponse`` parts of a user turn."""
        names = {c.id: c.name for m in messages for c in m.tool_calls if c.id}
        contents: list[dict[str, Any]] = []
        for message in messages:
            if message.role == "system":
                continue
            parts: list[dict[str, Any]] = []
            if message.role == "tool":
                response = parse_arguments(message.content) if message.content.startswith("{") else {}
                if "_raw" in response or not response:
                    response = {"result": message.content}
                call: dict[str, Any] = {
                    "name": message.name or names.get(message.tool_call_id or "", "") or "tool",
                    "response": response,
                }
                if message.tool_call_id:
                    call["id"] = message.tool_call_id
                parts.append({"functionResponse": call})
            else:
                if message.content:
                    parts.append({"text": message.content})
                for tool_call in message.tool_calls:
                    function: dict[str, Any] = {"name": tool_call.name, "args": tool_call.arguments}
                    if tool_call.id:
                        function["id"] = tool_call.id
                    parts.append({"functionCall": function})
            if not parts:
                continue
            role = "model" if message.role == "assistant" else "user"
            previous = contents[-1] if contents else None
            if (
                message.role == "tool"
                and previous is not None
                and all("functionResponse" in p for p in previous["parts"])
            ):
                previous["parts"].extend(parts)  # parallel call results go back in one turn
                continue
            contents.append({"role": role, "parts": parts})
        return contents

    # ----- complete -----
    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await self.post_json(
            self.path(request.model, "generateContent"), self.body(request), await self.headers()
        )
        if response.status_code != 200:
            raise self.status_error(response)
        try:
            data = self.parse_json_body(response)
        except ValueError as exc:
            rid = _response_id_in(response.content)
            raise self.error(ErrorKind.INVALID_RESPONSE, str(exc), status=200, request_id=rid) from None
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if not isinstance(data, dict):
            raise self.error(ErrorKind.INVALID_RESPONSE, "body is not a JSON object", status=200)
        if data.get("error"):
            raise self.body_error(data["error"], status=200)
        return self.parse_response(data, request)

    def parse_response(self, data: Mapping[str, Any], request: ChatRequest) -> ChatResponse:
        """Normalize a GenerateContentResponse; also used to check recorded traffic."""
        request_id = _str_or_none(data.get("responseId"))
        candidate = self._candidate(data, request_id)
        text, tool_calls = self._parts(candidate)
        raw_finish = _finish_name(candidate.get("finishReason"))
        usage = self.parse_usage(data.get("usageMetadata")) or estimate_usage(request, text, tool_calls)
        return ChatResponse(
            text=text,
            tool_calls=tool_calls,
            finish_reason=_finish(raw_finish, bool(tool_calls)),
            raw_finish_reason=raw_finish,
            usage=usage,
            request_id=request_id,
            model=_str_or_none(data.get("modelVersion")) or request.model,
            provider_id=self.provider_id,
        )

    def _candidate(self, data: Mapping[str, Any], request_id: str | None) -> Mapping[str, Any]:
        candidates = data.get("candidates")
        if isinstance(candidates, list):
            for candidate in candidates:
                if isinstance(candidate, dict) and candidate.get("index", 0) == 0:
                    return candidate
        raise self._no_candidates(data, request_id)

    def _no_candidates(
        self, data: Mapping[str, Any], request_id: str | None, partial_text: str = ""
    ) -> ProviderError:
        """A response without candidates: a blocked prompt (content_filter) or a broken body."""
        feedback = data.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if reason:
            detail = feedback.get("blockReasonMessage") if isinstance(feedback, dict) else None
            return self.error(
                ErrorKind.CONTENT_FILTER,
                f"the prompt was blocked ({reason})" + (f": {detail}" if detail else ""),
                status=200,
                request_id=request_id,
                provider_code=str(reason),
                partial_text=partial_text,
            )
        return self.error(
            ErrorKind.INVALID_RESPONSE,
            "response has no candidates",
            status=200,
            request_id=request_id,
            partial_text=partial_text,
        )

    @staticmethod
    def _parts(candidate: Mapping[str, Any]) -> tuple[str, tuple[ToolCall, ...]]:
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        texts: list[str] = []
        calls: list[ToolCall] = []
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str) and not part.get("thought"):
                texts.append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, dict):
                calls.append(
                    ToolCall(
                        id=_str_or_none(call.get("id")),
                        name=call.get("name") or "",  # a non-string name is refused, never str()-ed
                        arguments=parse_arguments(call.get("args")),
                    )
                )
        return "".join(texts), tuple(calls)

    @staticmethod
    def parse_usage(raw: Any) -> Usage | None:
        """Usage from a usageMetadata object (a snapshot, never a delta); None when there is none."""
        if not isinstance(raw, dict) or not any(
            isinstance(raw.get(k), int)
            for k in ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")
        ):
            return None
        prompt = (token_count(raw.get("promptTokenCount"), "promptTokenCount") or 0) + (
            token_count(raw.get("toolUsePromptTokenCount"), "toolUsePromptTokenCount") or 0
        )
        thoughts = token_count(raw.get("thoughtsTokenCount"), "thoughtsTokenCount") or 0
        output = (token_count(raw.get("candidatesTokenCount"), "candidatesTokenCount") or 0) + thoughts
        return Usage(
            input_tokens=prompt,
            output_tokens=output,
            total_tokens=token_count(raw.get("totalTokenCount"), "totalTokenCount") or prompt + output,
            cached_tokens=token_count(raw.get("cachedContentTokenCount"), "cachedContentTokenCount") or 0,
            reasoning_tokens=thoughts,
            source="reported",
        )

    # ----- errors -----
    def status_error(self, response: httpx.Response) -> ProviderError:
        try:
            data = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if isinstance(data, list) and len(data) == 1:
            data = data[0]  # a JSON-array stream's error
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            kind = kind_for_status(response.status_code)
            snippet = response.text[:200] if response.content else "empty body"
            return self.error(kind, f"HTTP {response.status_code}: {snippet}", status=response.status_code)
        return self.body_error(error, status=response.status_code)

    def body_error(
        self,
        error: Any,
        *,
        status: int | None,
        request_id: str | None = None,
        partial_text: str = "",
        in_band: bool = False,
    ) -> ProviderError:
        if not isinstance(error, dict):
            error = {"message": str(error)}
        message = error.get("message")
        if not isinstance(message, str):
            message = json.dumps(message) if message is not None else "no message"
        rpc_status = error.get("status") if isinstance(error.get("status"), str) else None
        details = [d for d in error.get("details") or [] if isinstance(d, dict)]
        code = _int_or_none(error.get("code"))
        kind = self._kind(rpc_status, message, details)
        if kind is None:
            effective = status if status and status != 200 else code
            if effective:
                kind = kind_for_status(effective)
            else:
                kind = ErrorKind.SERVER_ERROR if in_band else ErrorKind.INVALID_RESPONSE
        reason = next((d.get("reason") for d in details if d.get("@type") == RPC + "ErrorInfo"), None)
        return self.error(
            kind,
            message,
            status=status,
            request_id=request_id,
            retry_after=_retry_delay(details),
            partial_text=partial_text,
            provider_code=rpc_status or (str(reason) if reason else None),
        )

    @staticmethod
    def _kind(rpc_status: str | None, message: str, details: list[dict[str, Any]]) -> ErrorKind | None:
        reasons = {d.get("reason") for d in details if d.get("@type") == RPC + "ErrorInfo"}
        if "API_KEY_INVALID" in reasons:
            return ErrorKind.AUTH
        if rpc_status == "PERMISSION_DENIED" and UNREGISTERED in message:
            return ErrorKind.AUTH
        if rpc_status == "INVALID_ARGUMENT" and CONTEXT_OVERFLOW.search(message):
            return ErrorKind.CONTEXT_LENGTH
        if rpc_status == "RESOURCE_EXHAUSTED" and _quota_exhausted(message, details):
            return ErrorKind.QUOTA_EXHAUSTED
        if rpc_status == "UNAVAILABLE" and "overloaded" in message.lower():
            return ErrorKind.OVERLOADED
        return STATUS_KINDS.get(rpc_status or "")

    # ----- stream -----
    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        acc = StreamAccumulator(request)
        headers = await self.headers()
        headers["accept"] = "text/event-stream"
        path = self.path(request.model, "streamGenerateContent")
        async with self.post_stream(path, self.body(request), headers, params={"alt": "sse"}) as response:
            if response.status_code != 200:
                try:
                    await response.aread()
                except Exception as exc:
                    raise self.transport_error(exc) from None
                raise self.status_error(response)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                raise await self._unexpected_body(response)
            started = False
            async for sse in self.read_stream(EventSource(response).aiter_sse(), acc):
                if not sse.data.strip():
                    continue
                chunk = self._chunk(sse.data, acc)
                if not started:
                    if not chunk.get("candidates") and chunk.get("promptFeedback"):
                        raise self._no_candidates(chunk, acc.request_id)
                    started = True
                    yield Start(provider_id=self.provider_id, model=request.model, request_id=acc.request_id)
                for event in self._chunk_events(chunk, acc):
                    yield event
            if acc.raw_finish_reason is None:
                raise self.error(
                    ErrorKind.STREAM_INTERRUPTED,
                    "stream ended without a finishReason (Gemini streams end with it; the connection just closed)",
                    request_id=acc.request_id,
                    partial_text=acc.text,
                )
        yield acc.end(default_finish="other")

    def _chunk(self, data: str, acc: StreamAccumulator) -> dict[str, Any]:
        """Parse one event; an error event is raised, a response chunk is returned (its responseId kept)."""
        chunk = self.decode_frame(data, request_id=acc.request_id, partial_text=acc.text)
        if "error" in chunk:
            raise self.body_error(
                chunk["error"], status=None, request_id=acc.request_id, partial_text=acc.text, in_band=True
            )
        if acc.request_id is None:
            acc.request_id = _str_or_none(chunk.get("responseId"))
        return chunk

    def _chunk_events(self, chunk: Mapping[str, Any], acc: StreamAccumulator) -> list[StreamEvent]:
        usage = self.parse_usage(chunk.get("usageMetadata"))
        if usage is not None:
            acc.set_usage(usage)
        events: list[StreamEvent] = []
        for candidate in chunk.get("candidates") or []:
            if not isinstance(candidate, dict) or candidate.get("index", 0) != 0:
                continue
            text, calls = self._parts(candidate)
            text_event = acc.text_delta(text)
            if text_event is not None:
                events.append(text_event)
            for call in calls:
                tool_event = acc.tool_fragment(
                    len(acc.tools), id=call.id, name=call.name, arguments=json.dumps(call.arguments)
                )
                if tool_event is not None:
                    events.append(tool_event)
            raw_finish = _finish_name(candidate.get("finishReason"))
            if raw_finish:
                acc.raw_finish_reason = raw_finish
                acc.finish_reason = _finish(raw_finish, bool(acc.tools))
        return events

    async def _unexpected_body(self, response: httpx.Response) -> ProviderError:
        """A 200 that is not an event stream: an error body in disguise, or garbage."""
        try:
            await response.aread()
        except Exception as exc:
            return self.transport_error(exc)
        try:
            data = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if isinstance(data, dict) and data.get("error"):
            return self.body_error(data["error"], status=200)
        ctype = response.headers.get("content-type") or "none"
        return self.error(
            ErrorKind.INVALID_RESPONSE,
            f"expected text/event-stream, got content-type {ctype!r}",
            status=response.status_code,
            request_id=_response_id_in(response.content),
        )


def _finish(raw: str | None, has_calls: bool) -> FinishReason:
    finish = FINISH_REASONS.get(raw or "", "other")
    return "tool_calls" if has_calls and finish == "stop" else finish


def _quota_exhausted(message: str, details: list[dict[str, Any]]) -> bool:
    """A daily quota, or a quota of zero (a tier or model without access): waiting seconds will not help."""
    for detail in details:
        if detail.get("@type") != RPC + "QuotaFailure":
            continue
        for violation in detail.get("violations") or []:
            if not isinstance(violation, dict):
                continue
            quota_id = str(violation.get("quotaId") or "")
            if "PerDay" in quota_id or str(violation.get("quotaValue")) == "0":
                return True
    return "limit: 0," in message


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """RetryInfo's delay, read by the shared parser every adapter uses (:mod:`adapters.retry_hints`)."""
    return parse_retry_after(None, {"details": details})


def _response_id_in(content: bytes) -> str | None:
    """The responseId of a body that cannot be used (mislabelled, cut short), so the failure can still be quoted."""
    match = RESPONSE_ID.search(content)
    return match.group(1).decode() if match else None


def _finish_name(value: Any) -> str | None:
    """A finishReason by name, whether it came as its name or (enum-encoding=int) as its number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return FINISH_REASON_NUMBERS[value] if 0 <= value < len(FINISH_REASON_NUMBERS) else str(value)
    return _str_or_none(value)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
