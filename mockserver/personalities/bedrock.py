"""AWS Bedrock Runtime Converse and ConverseStream, as botocore/boto3 see it (provider-wire-formats.md §6).

Routes: ``POST /bedrock/model/{modelId}/converse`` and ``/converse-stream``. The model id arrives percent-encoded
(``-._~`` safe only: ``...-v1%3A0``, ARNs with ``%2F``); aiohttp routes on the escaped path, so ``%2F`` stays inside
the one segment, and the id is decoded for the plan and the journal.

Auth. A request must carry either a SigV4 header of the right *shape* (``AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/
region/bedrock/aws4_request, SignedHeaders=...host..., Signature=<64 hex>`` plus ``X-Amz-Date``) or a Bedrock API key
(``Authorization: Bearer ...``). The signature is **not** verified cryptographically (the mock has no secret to verify
it with); a missing, garbled or wrongly scoped header gets the front end's own 403 (``MissingAuthenticationToken
Exception``, ``IncompleteSignatureException``, ``InvalidSignatureException``).

What each preset renders (JSON body ``{"message": ...}``, ``x-amzn-ErrorType: <Code>:http://internal.amazon.com/
coral/...`` from which botocore takes the error code, ``x-amzn-RequestId`` (a UUID) on every response):

* ``rate_limit``: 429 ``ThrottlingException`` "Too many requests, please wait before trying again.".
* ``quota_exhausted``: 400 ``ServiceQuotaExceededException`` (its modelled status; botocore does not retry it).
* ``auth_error``: 403 ``UnrecognizedClientException`` "The security token included in the request is invalid.".
* ``permission_denied``: 403 ``AccessDeniedException``; ``not_found``: 404 ``ResourceNotFoundException``.
* ``bad_request``: 400 ``ValidationException`` in AWS's "1 validation error detected" form; ``context_length``: 400
  ``ValidationException`` "Input is too long for requested model.".
* ``content_filter``: Bedrock has no content-filter *error* of its own: its filters and guardrails answer 200 with
  ``stopReason`` ``content_filtered``/``guardrail_intervened`` (that is how ``filtered_output`` renders, partial text
  kept). The error preset renders what Anthropic models relay through Bedrock when their output policy blocks a
  reply: 400 ``ValidationException`` "The model returned the following errors: Output blocked by content filtering
  policy".
* ``server_error``: 500 ``InternalServerException``; ``service_unavailable`` and ``overloaded``: 503
  ``ServiceUnavailableException`` "Bedrock is unable to process your request." (what Bedrock sends when model
  capacity is short; the 429 ``ModelNotReadyException`` is about a model still loading, not load).
* ``bad_gateway``/``gateway_timeout``: 502/504 from the front end, a ``{"message": ...}`` body with no modelled
  error type (botocore reports ``Code`` as the status).
* ``error_in_200``: the error's body and ``x-amzn-ErrorType`` with status 200.

Retry hints: Bedrock sends no rate-limit headers at all, and usually no retry hint. The only hint botocore's standard
retry mode reads is ``x-amz-retry-after`` (integer milliseconds), so when a scenario gives ``retry_after`` the mock
sends exactly that header, and nothing else.

Usage: ``inputTokens`` counts *uncached* input (Anthropic semantics, as Bedrock reports it); cached input is
``cacheReadInputTokens`` and ``totalTokens`` includes it. Non-streamed bodies carry the cache counters always (as the
recorded Claude answers do); stream ``metadata`` only when non-zero (as recorded). ``usage: null`` renders as
``"usage": null``, ``missing`` omits the member.

ConverseStream: 200 ``application/vnd.amazon.eventstream``, binary frames (:mod:`mockserver.aws_eventstream`) with
``:event-type``/``:content-type``/``:message-type`` headers and JSON payloads padded with a ``"p"`` field, keys
sorted, as the real service sends them. Order: ``messageStart``; text blocks get **no** ``contentBlockStart``, only
``contentBlockDelta{text}``; a tool block gets ``contentBlockStart{start.toolUse{toolUseId,name}}`` and then
``contentBlockDelta{toolUse{input: <partial JSON>}}``; ``contentBlockStop`` (parallel tool calls: one block each,
started, filled and stopped before the next ``contentBlockIndex`` starts, as botocore's ConverseStream events
key every delta by ``contentBlockIndex``; provider-wire-formats.md §6); ``messageStop{stopReason}``;
``metadata{usage, metrics}`` after ``messageStop``. There is no terminator frame: the stream ends at EOF, so
``omit_terminator`` drops ``messageStop`` and ``metadata`` (marked ``terminator``), and a client must treat EOF
before ``messageStop`` as an interruption. There are no keep-alives (``keepalive`` renders nothing); an empty delta
is a ``contentBlockDelta`` with empty text (or empty tool input, as recorded). An in-band error is an exception
message (``:message-type exception``, lowerCamel ``:exception-type`` such as ``throttlingException``, payload
``{"message": ...}``); a malformed frame is a message whose CRC does not match.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import string
import uuid
from typing import Any

from mockserver import aws_eventstream as es
from mockserver.asked import Asked, integer, join_system, mapping, number, stop_list, text_of, turns
from mockserver.personalities.base import (
    Frame,
    Personality,
    Rejected,
    Rendered,
    RequestContext,
    StreamState,
    ToolFragment,
    journal_tool_calls,
    random_token,
)
from mockserver.plan import ChatRequest, Plan, ToolDef
from mockserver.retry_hints import header_hint
from mockserver.scenarios import Scenario

JSON = "application/json"
SERVICE = "bedrock"
CORAL = "http://internal.amazon.com/coral/com.amazon.bedrock/"
CORAL_AUTH = "http://internal.amazon.com/coral/com.amazon.coral.service/"
PAD_ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits

#: neutral finish reason -> Converse ``stopReason``
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "content_filtered",
}

#: fault kind -> (status, error code, message). The status is the modelled one for the code.
ERRORS: dict[str, tuple[int, str | None, str]] = {
    "rate_limit": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "quota_exhausted": (
        400,
        "ServiceQuotaExceededException",
        "Your request exceeds the service quota for your account. You can view your quotas at "
        "https://docs.aws.amazon.com/bedrock/latest/userguide/quotas.html. You can request an increase "
        "through the Service Quotas console.",
    ),
    "auth_error": (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    "permission_denied": (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    "not_found": (
        404,
        "ResourceNotFoundException",
        "Could not resolve the foundation model from the provided model identifier.",
    ),
    "bad_request": (
        400,
        "ValidationException",
        "1 validation error detected: Value '2.5' at 'inferenceConfig.temperature' failed to satisfy "
        "constraint: Member must have value less than or equal to 1",
    ),
    "context_length": (400, "ValidationException", "Input is too long for requested model."),
    "content_filter": (
        400,
        "ValidationException",
        "The model returned the following errors: Output blocked by content filtering policy",
    ),
    "server_error": (
        500,
        "InternalServerException",
        "The system encountered an unexpected error during processing. Try your request again.",
    ),
    "bad_gateway": (502, None, "Bad Gateway"),
    "service_unavailable": (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
    "gateway_timeout": (504, None, "Gateway Timeout"),
    "overloaded": (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
}

#: fault kind -> the ConverseStream exception member sent in-band (lowerCamel, as botocore requires)
STREAM_EXCEPTIONS: dict[str, str] = {
    "rate_limit": "throttlingException",
    "quota_exhausted": "throttlingException",
    "server_error": "internalServerException",
    "bad_gateway": "internalServerException",
    "gateway_timeout": "modelStreamErrorException",
    "service_unavailable": "serviceUnavailableException",
    "overloaded": "serviceUnavailableException",
}
STREAM_MESSAGES: dict[str, str] = {
    "quota_exhausted": "Too many tokens per day, please wait before trying again.",
    "gateway_timeout": "The model timed out while streaming the response.",
}

_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[A-Za-z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


def dumps_sorted(obj: Any) -> bytes:
    """Compact JSON with sorted keys, the way Bedrock serializes its bodies and event payloads."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def padded(obj: dict[str, Any]) -> bytes:
    """An event payload with the real service's ``"p"`` padding field (random length), which clients ignore."""
    return dumps_sorted({**obj, "p": PAD_ALPHABET[: secrets.randbelow(len(PAD_ALPHABET)) + 1]})


#: Where each fault body comes from (§6 is provider-wire-formats.md §6; "#N" a row of the real-cassettes INDEX.md).
#: Every Bedrock error is ``{"message": ...}`` with its code in ``x-amzn-ErrorType`` (§6.2, recordings #2, #6, #111).
FAULT_SOURCES: dict[str, str] = {
    "rate_limit": "§6 (ThrottlingException, retried by botocore: verified); the AWS Bedrock API reference's "
    "Converse errors",
    "quota_exhausted": "the AWS Bedrock API reference's Converse errors (ServiceQuotaExceededException, 400)",
    "permission_denied": "the AWS Bedrock API reference's Converse errors (AccessDeniedException, 403)",
    "not_found": "the AWS Bedrock API reference's Converse errors (ResourceNotFoundException, 404)",
    "bad_request": "real recordings #2, #6, #111 (400 ValidationException, x-amzn-ErrorType)",
    "server_error": "the AWS Bedrock API reference's Converse errors (InternalServerException, 500)",
    "service_unavailable": "§6 (ServiceUnavailableException, retried by botocore: verified)",
    "overloaded": "§6 (ServiceUnavailableException, retried by botocore: verified)",
}

#: Fault bodies with no recording and no public source behind them: kind -> why.
UNVERIFIED_FAULTS: dict[str, str] = {
    "auth_error": "the UnrecognizedClientException 403 wording is from client reports, not recorded",
    "context_length": "the 'input is too long' ValidationException wording is from client reports, not recorded",
    "content_filter": "the relayed 'Output blocked by content filtering policy' 400 is from client reports",
    "bad_gateway": "a front-end 502 with a bare message body is assumed, not recorded",
    "gateway_timeout": "a front-end 504 with a bare message body is assumed, not recorded",
    "retry:amz_ms": "Bedrock usually sends no retry hint at all (§6.2); x-amz-retry-after is what botocore reads",
}

#: §6.2: "There are no rate-limit headers. Standard retry mode honours only x-amz-retry-after (in milliseconds), not
#: Retry-After" (botocore/retries/standard.py:347 ``_RETRY_AFTER_HEADER``, read in ``_get_retry_after_delay``, :423).
RETRY_HINT_FORMS: dict[str, str] = {
    "amz_ms": "x-amz-retry-after milliseconds: provider-wire-formats.md §6.2; botocore/retries/standard.py:347,423",
}


class BedrockPersonality(Personality):
    name = "bedrock"
    prefix = "/bedrock"
    retry_hint_forms = RETRY_HINT_FORMS
    fault_sources = FAULT_SOURCES
    unverified_faults = UNVERIFIED_FAULTS

    def routes(self) -> list[tuple[str, str]]:
        return [("POST", "/model/{model_id}/converse"), ("POST", "/model/{model_id}/converse-stream")]

    # --- ids
    # -----------------------------------------------------------------------------------------------------
    def new_request_id(self) -> str:
        return str(uuid.uuid4())

    def new_response_id(self) -> str:
        return str(uuid.uuid4())  # Converse bodies carry no id of their own; kept for the interface

    def new_tool_call_id(self) -> str:
        return f"tooluse_{random_token(22, string.ascii_letters + string.digits + '-_')}"

    # --- request side
    # --------------------------------------------------------------------------------------------
    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        headers = ctx.request.headers
        auth = headers.get("Authorization", "").strip()
        if not auth:
            return self._auth_error(
                ctx, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        scheme, _, rest = auth.partition(" ")
        if scheme.lower() == "bearer":
            if rest.strip():
                return None
            return self._auth_error(ctx, "UnrecognizedClientException", "Invalid API Key format.")
        if scheme != "AWS4-HMAC-SHA256":
            return self._auth_error(
                ctx,
                "IncompleteSignatureException",
                f"Authorization header requires 'Credential' parameter. Authorization header requires "
                f"'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
                f"(Hashed with SHA-256 and encoded with Base64) Authorization={scheme}",
            )
        match = _SIGV4.match(auth)
        if match is None:
            return self._auth_error(
                ctx,
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
                "in the form Credential=AKID/date/region/service/aws4_request.",
            )
        if "X-Amz-Date" not in headers and "Date" not in headers:
            return self._auth_error(
                ctx,
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            )
        if match["service"] != SERVICE:
            return self._auth_error(
                ctx,
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{SERVICE}'. ",
            )
        if "host" not in match["signed"].split(";"):
            return self._auth_error(
                ctx,
                "InvalidSignatureException",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            )
        return None

    def _auth_error(self, ctx: RequestContext, code: str, message: str) -> Rendered:
        rendered = self._error(ctx, 403, code, message, namespace=CORAL_AUTH)
        return dataclasses.replace(rendered, error_kind="auth_error")

    def asked(self, ctx: RequestContext, chat: ChatRequest) -> Asked:
        """Converse: the model id is in the path; ``system`` text blocks; ``inferenceConfig`` (maxTokens,
        temperature, topP, stopSequences); ``toolConfig.toolChoice`` is ``{"auto": {}}``, ``{"any": {}}`` or
        ``{"tool": {"name": ...}}`` (Converse has no "none")."""
        body = chat.body if isinstance(chat.body, dict) else {}
        config = mapping(body.get("inferenceConfig"))
        tool_config = mapping(body.get("toolConfig"))
        choice = mapping(tool_config.get("toolChoice"))
        picked = "auto" if "auto" in choice else "required" if "any" in choice else None
        if isinstance(choice.get("tool"), dict):
            picked = choice["tool"].get("name")
        return Asked(
            model=chat.model,
            system=join_system([text_of(body.get("system"))]),
            messages=turns(body.get("messages")),
            max_tokens=integer(config.get("maxTokens")),
            temperature=number(config.get("temperature")),
            top_p=number(config.get("topP")),
            stop=stop_list(config.get("stopSequences")),
            tools=[
                str((t.get("toolSpec") or {}).get("name"))
                for t in tool_config.get("tools") or []
                if isinstance(t, dict) and isinstance(t.get("toolSpec"), dict)
            ],
            tool_choice=picked,
        )

    def parse_chat(self, ctx: RequestContext, raw: bytes) -> ChatRequest:
        try:
            body = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            raise self._reject(
                ctx, "Malformed input request, please reformat your input and try again."
            ) from None
        if not isinstance(body, dict):
            raise self._reject(ctx, "Malformed input request, please reformat your input and try again.")
        messages = body.get("messages")
        if messages is None:
            raise self._constraint(ctx, "null", "messages", "Member must not be null")
        if not isinstance(messages, list):
            raise self._reject(ctx, "Malformed input request, please reformat your input and try again.")
        if not messages:
            raise self._reject(
                ctx,
                "A conversation must start with a user message. Try again with a conversation that starts "
                "with a user message.",
            )
        contents: list[Any] = []
        system = body.get("system")
        if system is not None:
            if not isinstance(system, list):
                raise self._reject(ctx, "Malformed input request, please reformat your input and try again.")
            if system:
                contents.append(system)
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise self._reject(ctx, "Malformed input request, please reformat your input and try again.")
            role = message.get("role")
            if role not in ("user", "assistant"):
                raise self._constraint(
                    ctx, repr(role) if role is not None else "null", f"messages.{i + 1}.member.role",
                    "Member must satisfy enum value set: [user, assistant]" if role is not None
                    else "Member must not be null",
                )  # fmt: skip
            content = message.get("content")
            if not isinstance(content, list):
                raise self._constraint(
                    ctx, "null", f"messages.{i + 1}.member.content", "Member must not be null"
                )
            contents.append(content)
        if messages[0].get("role") != "user":
            raise self._reject(
                ctx,
                "A conversation must start with a user message. Try again with a conversation that starts "
                "with a user message.",
            )
        return ChatRequest(
            model=str(ctx.request.match_info.get("model_id", "")),
            messages=messages if system is None else [{"system": system}, *messages],
            contents=contents,
            tools=self._tools(ctx, body.get("toolConfig")),
            stream=ctx.request.path.endswith("/converse-stream"),
            include_usage=True,
            body=body,
        )

    def _tools(self, ctx: RequestContext, config: Any) -> list[ToolDef]:
        if config is None:
            return []
        tools = config.get("tools") if isinstance(config, dict) else None
        if not isinstance(tools, list) or not tools:
            raise self._constraint(
                ctx, "null", "toolConfig.tools", "Member must have length greater than or equal to 1"
            )
        out: list[ToolDef] = []
        for i, tool in enumerate(tools):
            spec = tool.get("toolSpec") if isinstance(tool, dict) else None
            name = spec.get("name") if isinstance(spec, dict) else None
            if not isinstance(name, str) or not name:
                raise self._constraint(
                    ctx, "null", f"toolConfig.tools.{i + 1}.member.toolSpec.name", "Member must not be null"
                )
            assert isinstance(spec, dict)
            schema = spec.get("inputSchema")
            parameters = schema.get("json") if isinstance(schema, dict) else None
            out.append(ToolDef(name=name, parameters=parameters, raw=tool))
        return out

    def _reject(self, ctx: RequestContext, message: str) -> Rejected:
        rendered = self._error(ctx, 400, "ValidationException", message)
        return Rejected(dataclasses.replace(rendered, error_kind="bad_request"))

    def _constraint(self, ctx: RequestContext, value: str, where: str, constraint: str) -> Rejected:
        return self._reject(
            ctx,
            f"1 validation error detected: Value {value} at '{where}' failed to satisfy constraint: {constraint}",
        )

    # --- headers and errors
    # --------------------------------------------------------------------------------------
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        return {"x-amzn-RequestId": ctx.request_id, "Connection": "keep-alive"}

    def _error(
        self,
        ctx: RequestContext,
        status: int,
        code: str | None,
        message: str,
        *,
        namespace: str = CORAL,
        scenario: Scenario | None = None,
    ) -> Rendered:
        headers = {**self.base_headers(ctx, status, scenario), "Content-Type": JSON}
        if code is not None:
            headers["x-amzn-ErrorType"] = f"{code}:{namespace}"
        hint = None
        form = self.retry_form(scenario)
        if scenario is not None and scenario.retry_after is not None and form is not None:
            hint_headers, sent = header_hint(form, scenario.retry_after)
            headers.update(hint_headers)
            hint = sent.as_dict()
        return Rendered(status, headers, dumps_sorted({"message": message}), retry_hint=hint)

    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        own_status, code, message = ERRORS.get(kind, ERRORS["server_error"])
        wire_status = scenario.status if scenario.status is not None else own_status
        namespace = CORAL_AUTH if kind == "auth_error" else CORAL
        rendered = self._error(
            ctx, wire_status, code, scenario.message or message, namespace=namespace, scenario=scenario
        )
        return dataclasses.replace(rendered, error_kind=kind)

    # --- non-streamed
    # --------------------------------------------------------------------------------------------
    def usage_object(self, plan: Plan, *, stream: bool) -> dict[str, Any]:
        u = plan.usage
        usage: dict[str, Any] = {
            "inputTokens": u.input_tokens - u.cached_tokens,
            "outputTokens": u.output_tokens,
            "serverToolUsage": {},
            "totalTokens": u.total_tokens,
        }
        if not stream or u.cached_tokens:
            usage["cacheReadInputTokens"] = u.cached_tokens
            usage["cacheWriteInputTokens"] = 0
            if not stream:
                usage["cacheReadInputTokenCount"] = u.cached_tokens
                usage["cacheWriteInputTokenCount"] = 0
        return usage

    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        assert ctx.chat is not None and ctx.scenario is not None
        content: list[dict[str, Any]] = []
        if plan.text:
            content.append({"text": plan.text})
        for call in plan.tool_calls:
            content.append(
                {"toolUse": {"input": json.loads(call.arguments), "name": call.name, "toolUseId": call.id}}
            )
        tool_calls = journal_tool_calls(plan)
        stop_reason = STOP_REASONS.get(plan.finish_reason, "end_turn")
        body: dict[str, Any] = {
            "metrics": {"latencyMs": max(ctx.elapsed_ms(), 1)},
            "output": {"message": {"content": content, "role": "assistant"}},
            "stopReason": stop_reason,
        }
        usage: dict[str, Any] | None = None
        if ctx.scenario.usage == "normal":
            usage = self.usage_object(plan, stream=False)
            body["usage"] = usage
        elif ctx.scenario.usage == "null":
            body["usage"] = None
        headers = {**self.base_headers(ctx, 200, ctx.scenario), "Content-Type": JSON}
        return Rendered(
            200,
            headers,
            dumps_sorted(body),
            text=plan.text,
            tool_calls=tool_calls,
            usage=usage,
            finish_reason=stop_reason,
        )

    # --- streamed
    # ------------------------------------------------------------------------------------------------
    def stream_headers(self, ctx: RequestContext) -> dict[str, str]:
        return {"Content-Type": es.CONTENT_TYPE}

    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        return [Frame(es.event("messageStart", padded({"role": "assistant"})), "open")]

    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        payload = padded({"contentBlockIndex": 0, "delta": {"text": piece}})
        return Frame(es.event("contentBlockDelta", payload), "content", text=piece)

    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        ctx.extra["block"] = fragment.index
        if fragment.id is not None:
            start = {"toolUse": {"name": fragment.name, "toolUseId": fragment.id}}
            payload = padded({"contentBlockIndex": fragment.index, "start": start})
            data = es.event("contentBlockStart", payload)
            if fragment.index > 0:  # the previous call's block ends before this one starts
                data = es.event("contentBlockStop", padded({"contentBlockIndex": fragment.index - 1})) + data
            return Frame(data, "tool", tool=fragment)
        delta = {"toolUse": {"input": fragment.arguments}}
        payload = padded({"contentBlockIndex": fragment.index, "delta": delta})
        return Frame(es.event("contentBlockDelta", payload), "tool", tool=fragment)

    def stream_empty(self, ctx: RequestContext, plan: Plan) -> Frame | None:
        delta: dict[str, Any] = {"toolUse": {"input": ""}} if plan.tool_calls else {"text": ""}
        block = int(ctx.extra.get("block", 0))
        return Frame(
            es.event("contentBlockDelta", padded({"contentBlockIndex": block, "delta": delta})), "empty"
        )

    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        return None  # ConverseStream has no keep-alives

    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        assert ctx.scenario is not None
        stop_reason = STOP_REASONS.get(plan.finish_reason, "end_turn")
        frames = []
        if state.chunks_sent:
            stop = es.event("contentBlockStop", padded({"contentBlockIndex": int(ctx.extra.get("block", 0))}))
            frames.append(Frame(stop, "finish"))
        message_stop = es.event("messageStop", padded({"stopReason": stop_reason}))
        frames.append(Frame(message_stop, "terminator", finish_reason=stop_reason))
        metadata: dict[str, Any] = {"metrics": {"latencyMs": max(ctx.elapsed_ms(), 1)}}
        usage: dict[str, Any] | None = None
        if ctx.scenario.usage == "normal":
            usage = self.usage_object(plan, stream=True)
            metadata["usage"] = usage
        elif ctx.scenario.usage == "null":
            metadata["usage"] = None
        frames.append(Frame(es.event("metadata", padded(metadata)), "terminator", usage=usage))
        return frames

    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        member = STREAM_EXCEPTIONS.get(kind, "validationException")
        message = STREAM_MESSAGES.get(kind) or ERRORS.get(kind, ERRORS["server_error"])[2]
        payload: dict[str, Any] = {"message": message}
        if member == "modelStreamErrorException":
            payload.update(originalMessage=message, originalStatusCode=504)
        return [Frame(es.exception(member, dumps_sorted(payload)), "error")]

    def stream_malformed(self, ctx: RequestContext, plan: Plan) -> Frame:
        payload = padded({"contentBlockIndex": 0, "delta": {"text": "corrupted"}})
        return Frame(es.corrupt(es.event("contentBlockDelta", payload)), "malformed")
