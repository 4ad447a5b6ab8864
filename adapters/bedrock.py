"""AWS Bedrock Runtime: Converse and ConverseStream.

Wire facts (botocore 1.44.5: ``data/bedrock-runtime/2023-09-30/service-2.json``, ``parsers.py``, ``auth.py``,
``eventstream.py``): ``POST /model/{modelId}/converse`` (and ``/converse-stream``) with the model id percent-encoded,
only ``-._~`` left alone (so ``:`` is ``%3A`` and an ARN's ``/`` is ``%2F``); errors are ``{"message": ...}`` with the
error code in ``x-amzn-ErrorType`` (``Code:http://internal...``); the request id is ``x-amzn-RequestId``; the only
retry hint is ``x-amz-retry-after`` in milliseconds (parsed by :func:`adapters.errors.parse_retry_after`); a stream is
binary AWS event-stream, decoded here with botocore's own ``EventStreamBuffer`` (a CRC failure is
``invalid_response``), with no terminator frame: EOF before ``messageStop`` is an interruption. Text blocks have no
``contentBlockStart``, so blocks are keyed by ``contentBlockIndex`` on every event. ``inputTokens`` excludes cached
input: normalized input is ``inputTokens + cacheReadInputTokens + cacheWriteInputTokens``.

Credentials (``credential_ref``, resolved at call time into one string), in one of three forms:

* a JSON object ``{"access_key_id", "secret_access_key", "session_token"?}`` (the ``credential_process`` spelling
  ``{"AccessKeyId", "SecretAccessKey", "SessionToken"?}`` works too): requests are SigV4-signed with botocore's signer,
  signing name ``bedrock``, region from the registry ``options.region``;
* ``ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]``: the same, more compact (an access key id is 16+ upper-case
  letters and digits);
* anything else is a Bedrock API key (what ``AWS_BEARER_TOKEN_BEDROCK`` holds), sent as ``Authorization: Bearer``.

The secret access key never leaves the process (only the derived signature does) and every resolved secret is
registered with :func:`adapters.errors.register_secret`, so no error message can carry it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import (
    EventStreamBuffer,
    EventStreamMessage,
    ParserError,
)

from adapters.base import Adapter, kind_for_status, token_count
from adapters.errors import ErrorKind, ProviderError, register_secret
from adapters.streaming import StreamAccumulator
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

SIGNING_NAME = "bedrock"
DEFAULT_REGION = "us-east-1"
EVENTSTREAM = "application/vnd.amazon.eventstream"

FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}

#: error code (``x-amzn-ErrorType`` or in-band ``:exception-type``, first letter upper-cased) -> kind
CODE_KINDS: dict[str, ErrorKind] = {
    "ThrottlingException": ErrorKind.RATE_LIMITED,
    "ServiceQuotaExceededException": ErrorKind.QUOTA_EXHAUSTED,
    "UnrecognizedClientException": ErrorKind.AUTH,
    "MissingAuthenticationTokenException": ErrorKind.AUTH,
    "IncompleteSignatureException": ErrorKind.AUTH,
    "InvalidSignatureException": ErrorKind.AUTH,
    "SignatureDoesNotMatch": ErrorKind.AUTH,
    "ExpiredTokenException": ErrorKind.AUTH,
    "InvalidClientTokenId": ErrorKind.AUTH,
    "AccessDeniedException": ErrorKind.PERMISSION,
    "ResourceNotFoundException": ErrorKind.NOT_FOUND,
    "ValidationException": ErrorKind.BAD_REQUEST,
    "ConflictException": ErrorKind.BAD_REQUEST,
    "ModelTimeoutException": ErrorKind.TIMEOUT,
    "ModelErrorException": ErrorKind.SERVER_ERROR,
    "ModelStreamErrorException": ErrorKind.SERVER_ERROR,
    "InternalServerException": ErrorKind.SERVER_ERROR,
    "ServiceUnavailableException": ErrorKind.OVERLOADED,
    "ModelNotReadyException": ErrorKind.OVERLOADED,
}

#: ValidationException messages that say more than "bad request"
_CONTEXT = re.compile(
    r"too long|context (?:window|length)|too many (?:input )?tokens|maximum (?:context|input)|exceeds? the "
    r"(?:maximum|max) (?:number of )?(?:input )?tokens",
    re.IGNORECASE,
)
_FILTER = re.compile(r"content filter|blocked by (?:our )?content|guardrail", re.IGNORECASE)
_BAD_MODEL = re.compile(r"model identifier is invalid|could not resolve the foundation model", re.IGNORECASE)
_DAILY = re.compile(r"per day", re.IGNORECASE)
_ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")


@dataclass(frozen=True)
class AwsKeys:
    """An access key pair (and optional session token) for SigV4; ``repr`` never shows the secret."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"AwsKeys(access_key_id={self.access_key_id[:4]}..., secret_access_key=[REDACTED])"


def parse_credential(raw: str) -> AwsKeys | str:
    """The documented credential formats: JSON keys, ``AKID:SECRET[:TOKEN]``, else a Bedrock API key (a str)."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("the Bedrock credential looks like JSON but does not parse") from None
        if not isinstance(data, dict):
            raise ValueError("the Bedrock credential JSON must be an object")
        akid = data.get("access_key_id") or data.get("AccessKeyId")
        secret = data.get("secret_access_key") or data.get("SecretAccessKey")
        token = data.get("session_token") or data.get("SessionToken")
        if not isinstance(akid, str) or not isinstance(secret, str) or not akid or not secret:
            raise ValueError("the Bedrock credential JSON needs access_key_id and secret_access_key")
        return AwsKeys(akid, secret, token if isinstance(token, str) and token else None)
    parts = text.split(":")
    if len(parts) in (2, 3) and _ACCESS_KEY_ID.match(parts[0]) and parts[1]:
        return AwsKeys(parts[0], parts[1], parts[2] if len(parts) == 3 and parts[2] else None)
    return text


def error_code(raw: str | None) -> str | None:
    """``ThrottlingException:http://internal...`` -> ``ThrottlingException``; lowerCamel members upper-cased."""
    if not raw:
        return None
    code = raw.split(":", 1)[0].strip()
    return code[:1].upper() + code[1:] if code else None


class BedrockAdapter(Adapter):
    wire: ClassVar[str] = "bedrock"
    request_id_header: ClassVar[str] = "x-amzn-requestid"

    @property
    def region(self) -> str:
        return str(self.entry.options.get("region") or DEFAULT_REGION)

    # ----- request -----
    def path(self, request: ChatRequest, *, stream: bool) -> str:
        operation = "converse-stream" if stream else "converse"
        return f"model/{quote(request.model, safe='-._~')}/{operation}"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        system = [{"text": m.content} for m in request.messages if m.role == "system" and m.content]
        messages: list[dict[str, Any]] = []
        for message in request.messages:
            if message.role == "system":
                continue
            role = "assistant" if message.role == "assistant" else "user"
            content = self._content(message)
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"].extend(content)  # Converse requires alternating roles
            else:
                messages.append({"role": role, "content": content})
        body: dict[str, Any] = {"messages": messages}
        if system:
            body["system"] = system
        config: dict[str, Any] = {}
        if request.max_tokens is not None:
            config["maxTokens"] = request.max_tokens
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.top_p is not None:
            config["topP"] = request.top_p
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if config:
            body["inferenceConfig"] = config
        if request.tools:
            body["toolConfig"] = {
                "tools": [
                    {
                        "toolSpec": {
                            "name": t.name,
                            **({"description": t.description} if t.description else {}),
                            "inputSchema": {"json": t.parameters},
                        }
                    }
                    for t in request.tools
                ]
            }
        if request.tool_choice is not None:
            body.setdefault("toolConfig", {})["toolChoice"] = self._tool_choice(request.tool_choice)
        return body

    def _tool_choice(self, choice: str) -> dict[str, Any]:
        """Converse's ToolChoice is auto, any or one tool; it has no "none" (leave tools out instead)."""
        if choice == "none":
            raise self.unsupported("tool_choice 'none' (Converse's toolChoice is auto, any or one tool)")
        if choice == "auto":
            return {"auto": {}}
        return {"any": {}} if choice == "required" else {"tool": {"name": choice}}

    @staticmethod
    def _content(message: Message) -> list[dict[str, Any]]:
        if message.role == "tool":
            return [
                {
                    "toolResult": {
                        "toolUseId": message.tool_call_id or "",
                        "content": [{"text": message.content}],
                    }
                }
            ]
        content: list[dict[str, Any]] = [{"text": message.content}] if message.content else []
        content += [
            {"toolUse": {"toolUseId": call.id or "", "name": call.name, "input": call.arguments}}
            for call in message.tool_calls
        ]
        return content

    async def signed_headers(self, url: str, payload: bytes, accept: str) -> dict[str, str]:
        """Resolve the credential now (rotation) and authenticate: SigV4 over the exact bytes, or a Bearer key."""
        raw = await self.credential()
        headers = {"Content-Type": "application/json", "Accept": accept}
        if raw is None:
            return headers
        register_secret(raw)
        try:
            credential = parse_credential(raw)
        except ValueError as exc:
            raise self.error(ErrorKind.AUTH, str(exc), retryable=False) from None
        if isinstance(credential, str):
            headers["Authorization"] = f"Bearer {credential}"
            return headers
        register_secret(credential.secret_access_key)
        if credential.session_token:
            register_secret(credential.session_token)
        aws = AWSRequest(method="POST", url=url, data=payload, headers=headers)
        keys = Credentials(credential.access_key_id, credential.secret_access_key, credential.session_token)
        SigV4Auth(keys, SIGNING_NAME, self.region).add_auth(aws)
        return dict(aws.headers.items())

    @asynccontextmanager
    async def _post(self, request: ChatRequest, *, stream: bool) -> AsyncIterator[httpx.Response]:
        """Send the exact bytes that were signed (``post_json`` re-serializes, which would break a signature)."""
        url = self.url(self.path(request, stream=stream))
        self._check_egress(url)
        payload = json.dumps(self.body(request), separators=(",", ":"), ensure_ascii=False).encode()
        headers = await self.signed_headers(url, payload, EVENTSTREAM if stream else "application/json")
        built = self._client.build_request(
            "POST", url, content=payload, headers=headers, timeout=self.timeouts.httpx()
        )
        try:
            response = await self._client.send(built, stream=stream)
        except Exception as exc:
            raise self.transport_error(exc) from None
        try:
            yield response
        finally:
            await response.aclose()

    # ----- complete -----
    async def complete(self, request: ChatRequest) -> ChatResponse:
        async with self._post(request, stream=False) as response:
            pass
        request_id = response.headers.get(self.request_id_header)
        if response.status_code != 200 or response.headers.get("x-amzn-errortype"):
            raise self.status_error(response)
        data = self.json_object(response, request_id=request_id)
        if "output" not in data and isinstance(data.get("message"), str):
            raise self.status_error(response)  # an error body on a 200
        return self.parse_converse(data, request, request_id)

    def parse_converse(
        self, data: Mapping[str, Any], request: ChatRequest, request_id: str | None
    ) -> ChatResponse:
        """Normalize a Converse body; also used to check recorded traffic."""
        output = data.get("output")
        message = output.get("message") if isinstance(output, dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            raise self.error(
                ErrorKind.INVALID_RESPONSE, "Converse body has no output.message", request_id=request_id
            )
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in message["content"]:
            if not isinstance(block, dict):
                continue
            if isinstance(block.get("text"), str):
                texts.append(block["text"])
            use = block.get("toolUse")
            if isinstance(use, dict):
                arguments = use.get("input")
                calls.append(
                    ToolCall(
                        id=use.get("toolUseId"),
                        name=use.get("name") or "",  # a non-string name is refused, never str()-ed
                        arguments=arguments if isinstance(arguments, dict) else {},
                    )
                )
        text = "".join(texts)
        raw_finish = data.get("stopReason")
        usage = self.parse_usage(data.get("usage")) or estimate_usage(request, text, calls)
        return ChatResponse(
            text=text,
            tool_calls=tuple(calls),
            finish_reason=FINISH_REASONS.get(str(raw_finish), "other"),
            raw_finish_reason=raw_finish if isinstance(raw_finish, str) else None,
            usage=usage,
            request_id=request_id,
            model=request.model,
            provider_id=self.provider_id,
        )

    @staticmethod
    def parse_usage(raw: Any) -> Usage | None:
        if not isinstance(raw, dict) or raw.get("inputTokens") is None:
            return None
        read = raw.get("cacheReadInputTokens")
        write = raw.get("cacheWriteInputTokens")
        input_tokens = (
            (token_count(raw["inputTokens"], "inputTokens") or 0)
            + (token_count(read, "cacheReadInputTokens") or 0)
            + (token_count(write, "cacheWriteInputTokens") or 0)
        )
        output_tokens = token_count(raw.get("outputTokens"), "outputTokens") or 0
        total = token_count(raw.get("totalTokens"), "totalTokens")
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=total if total is not None else input_tokens + output_tokens,
            cached_tokens=token_count(read, "cacheReadInputTokens"),
            source="reported",
        )

    # ----- errors -----
    def status_error(self, response: httpx.Response) -> ProviderError:
        try:
            data = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        message = None
        code = error_code(response.headers.get("x-amzn-errortype"))
        if isinstance(data, dict):
            message = data.get("message") or data.get("Message")
            code = code or error_code(data.get("__type") or data.get("code") or data.get("Code"))
        if not isinstance(message, str):
            message = f"HTTP {response.status_code}: " + (
                response.text[:200] if response.content else "empty body"
            )
        return self.coded_error(
            code,
            message,
            status=response.status_code,
            request_id=response.headers.get(self.request_id_header),
            retry_after=self.retry_after(response),
        )

    def coded_error(
        self,
        code: str | None,
        message: str,
        *,
        status: int | None,
        request_id: str | None,
        retry_after: float | None = None,
        partial_text: str = "",
    ) -> ProviderError:
        kind = CODE_KINDS.get(code or "")
        if kind is None:
            kind = kind_for_status(status) if status and status != 200 else ErrorKind.SERVER_ERROR
        if kind in (ErrorKind.BAD_REQUEST, ErrorKind.NOT_FOUND):
            if _CONTEXT.search(message):
                kind = ErrorKind.CONTEXT_LENGTH
            elif _FILTER.search(message):
                kind = ErrorKind.CONTENT_FILTER
            elif _BAD_MODEL.search(message):
                kind = ErrorKind.NOT_FOUND
        if kind is ErrorKind.RATE_LIMITED and _DAILY.search(message):
            kind = ErrorKind.QUOTA_EXHAUSTED  # "Too many tokens per day": waiting seconds will not help
        return self.error(
            kind,
            message,
            status=status,
            request_id=request_id,
            retry_after=retry_after,
            partial_text=partial_text,
            provider_code=code,
        )

    # ----- stream -----
    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        acc = StreamAccumulator(request)
        async with self._post(request, stream=True) as response:
            acc.request_id = response.headers.get(self.request_id_header)
            if response.status_code != 200 or EVENTSTREAM not in response.headers.get("content-type", ""):
                try:
                    await response.aread()
                except Exception as exc:
                    raise self.transport_error(exc, request_id=acc.request_id) from None
                raise self._not_a_stream(response)
            yield Start(provider_id=self.provider_id, model=request.model, request_id=acc.request_id)
            decoder = _StreamDecoder(self, acc)
            buffer = EventStreamBuffer()
            #: bytes received minus bytes of whole frames decoded: what a cut left of a frame at EOF
            pending = 0
            try:
                async for data in self.idle_bounded(response.aiter_bytes()):
                    buffer.add_data(data)
                    pending += len(data)
                    for message in buffer:
                        pending -= message.prelude.total_length
                        for event in decoder.handle(message):
                            yield event
            except ProviderError:
                raise
            except ParserError as exc:
                raise self.error(
                    ErrorKind.INVALID_RESPONSE,
                    f"malformed event-stream frame: {type(exc).__name__}: {exc}",
                    request_id=acc.request_id,
                    partial_text=acc.text,
                ) from None
            except (httpx.HTTPError, TimeoutError) as exc:
                raise self.transport_error(
                    exc, request_id=acc.request_id, partial_text=acc.text, streaming=True
                ) from None
            if not decoder.stopped:
                raise self.error(
                    ErrorKind.STREAM_INTERRUPTED,
                    "stream ended before messageStop",
                    request_id=acc.request_id,
                    partial_text=acc.text,
                )
            if pending or not decoder.metadata_seen:
                # ConverseStream has no terminator: its last frame is ``metadata`` (usage, even when null), so a
                # stream that ends without it, or inside it, was cut, not finished; estimating usage here would
                # pass a truncation off as a success
                raise self.error(
                    ErrorKind.STREAM_INTERRUPTED,
                    f"stream cut inside an event-stream frame ({pending} bytes of it received)"
                    if pending
                    else "stream ended after messageStop without its metadata frame",
                    request_id=acc.request_id,
                    partial_text=acc.text,
                )
        yield acc.end(default_finish="other")

    def _not_a_stream(self, response: httpx.Response) -> ProviderError:
        if response.status_code != 200 or response.headers.get("x-amzn-errortype"):
            return self.status_error(response)
        try:
            data = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return self.status_error(response)
        ctype = response.headers.get("content-type") or "none"
        return self.error(
            ErrorKind.INVALID_RESPONSE,
            f"expected {EVENTSTREAM}, got content-type {ctype!r}",
            status=response.status_code,
            request_id=response.headers.get(self.request_id_header),
        )


class _StreamDecoder:
    """Turns decoded event-stream messages into normalized events, keeping per-block state."""

    def __init__(self, adapter: BedrockAdapter, acc: StreamAccumulator) -> None:
        self.adapter = adapter
        self.acc = acc
        self.stopped = False
        #: the trailing ``metadata`` frame (usage and metrics) arrived
        self.metadata_seen = False
        #: contentBlockIndex of each tool block -> the tool call's ordinal (text blocks take indexes too)
        self.tool_index: dict[int, int] = {}

    def _payload(self, message: EventStreamMessage) -> dict[str, Any]:
        try:
            payload = json.loads(message.payload) if message.payload else {}
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            raise self.adapter.error(
                ErrorKind.INVALID_RESPONSE,
                f"event-stream payload is not a JSON object: {bytes(message.payload[:80])!r}",
                request_id=self.acc.request_id,
                partial_text=self.acc.text,
            )
        return payload

    def handle(self, message: EventStreamMessage) -> list[StreamEvent]:
        headers = message.headers
        kind = headers.get(":message-type")
        if kind == "exception":
            payload = self._payload(message)
            raise self.adapter.coded_error(
                error_code(headers.get(":exception-type")),
                str(payload.get("message") or payload.get("Message") or "in-band exception"),
                status=None,
                request_id=self.acc.request_id,
                partial_text=self.acc.text,
            )
        if kind == "error":
            raise self.adapter.coded_error(
                error_code(headers.get(":error-code")),
                str(headers.get(":error-message") or "in-band error"),
                status=None,
                request_id=self.acc.request_id,
                partial_text=self.acc.text,
            )
        if kind != "event":
            return []
        payload = self._payload(message)
        event_type = headers.get(":event-type")
        acc = self.acc
        events: list[StreamEvent] = []
        if event_type == "contentBlockStart":
            use = (payload.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                index = self._tool(payload)
                event = acc.tool_fragment(index, id=use.get("toolUseId"), name=use.get("name"))
                if event is not None:
                    events.append(event)
        elif event_type == "contentBlockDelta":
            delta = payload.get("delta") or {}
            text_event = acc.text_delta(delta.get("text"))
            if text_event is not None:
                events.append(text_event)
            use = delta.get("toolUse")
            if isinstance(use, dict):
                event = acc.tool_fragment(self._tool(payload), arguments=use.get("input"))
                if event is not None:
                    events.append(event)
        elif event_type == "messageStop":
            raw = payload.get("stopReason")
            self.stopped = True
            if isinstance(raw, str):
                acc.raw_finish_reason = raw
                acc.finish_reason = FINISH_REASONS.get(raw, "other")
        elif event_type == "metadata":
            self.metadata_seen = True
            usage = BedrockAdapter.parse_usage(payload.get("usage"))
            if usage is not None:
                acc.set_usage(usage)
        return events

    def _tool(self, payload: Mapping[str, Any]) -> int:
        block = int(payload.get("contentBlockIndex") or 0)
        return self.tool_index.setdefault(block, len(self.tool_index))
