"""Mistral chat completions as the official ``mistralai`` SDK (3.x) sees it (provider-wire-formats.md §7).

What is rendered, and why (recorded traffic in ``real-cassettes`` #28, #29, #55 and public error reports):

* **Request ids**: ``mistral-correlation-id`` and ``x-kong-request-id`` carry the same UUIDv7 on every response (Kong's
  correlation-id plugin runs before authentication, so errors carry it too). The body ``id`` is 32 hex digits.
* **Rate-limit headers** (cosmetic: no SDK reads them), as recorded: ``x-ratelimit-limit-req-10-second``,
  ``x-ratelimit-remaining-req-10-second``, ``x-ratelimit-{limit,remaining}-tokens-{minute,month}`` and
  ``x-ratelimit-tokens-query-cost``; plus Kong/Envoy timing headers. **Retry hint**: ``Retry-After`` in seconds
  (fractional only when a scenario asks for sub-second waits); the SDK reads it only when retries are configured.
* **Strict schema**: unknown top-level fields (``stream_options``, ``max_completion_tokens``, ...) are a 422 whose
  ``message`` is an object: ``{"detail": [{"type": "extra_forbidden", "loc": ["body", name], "msg": "Extra inputs are
  not permitted", "input": value}]}``; missing ``model``/``messages`` are 422 ``missing``.
* **Errors** are flat: ``{"object": "error", "message", "type", "param", "code", "raw_status_code"}``, except those the
  Kong gateway answers itself (401, 403, 502, 503, 504): ``{"message", "request_id"}``. Per preset:
  rate_limit 429 ``rate_limited``/1300; quota_exhausted 429 ``usage_limit_exceeded`` (Mistral's real quota body is
  undocumented: unverified); auth_error 401 Kong "Unauthorized"; permission_denied 403 Kong "You cannot consume this
  service"; not_found **400** ``invalid_model``/1500 (what the real API answers for an unknown model);
  bad_request 400 ``invalid_request_message_order``/3230; context_length 400 ``invalid_request_invalid_args``/3051
  "Prompt contains N tokens and 0 draft tokens, too large for model with M maximum context length"; content_filter 403
  ``guardrail_blocked`` (guardrails block with a 403 per the SDK's GuardrailConfig; the body is unverified);
  server_error 500 ``internal_server_error``; bad_gateway 502, service_unavailable 503 and gateway_timeout 504 are
  Kong's own bodies; overloaded 429 ``service_tier_capacity_exceeded``/3505 (Mistral signals capacity with a 429).
  error_in_200 sends the flat error object with status 200 (the SDK then fails response validation).
* **Non-streamed body** keys in the recorded order (id, created, model, usage, object, choices); message is
  ``{role, tool_calls, content}``; usage is ``{prompt_tokens, total_tokens, completion_tokens}`` (no cached or
  reasoning breakdown: Mistral reports none).
* **Streams**: data-only SSE, ``text/event-stream; charset=utf-8``; first chunk ``delta: {role, content: ""}``; usage
  rides on the final content chunk (the one with ``finish_reason``), with no opt-in and no ``choices: []`` chunk;
  terminator ``data: [DONE]``. Mistral has no keep-alives (the keepalive slots send nothing). Tool calls are streamed
  **whole** (the SDK's FunctionCall requires ``name`` on every tool-call delta), so the call's first fragment carries
  the complete arguments and its later fragments put nothing on the wire. Parallel calls go one whole call per
  chunk, in order, each with its own ``index`` (0, 1, ...).
* **In-band error**: the real service has no defined shape (the SDK validates every chunk as CompletionChunk and raises
  ResponseValidationError); the mock sends the flat error object as a data event and ends the stream without [DONE].
* **filtered_output**: Mistral's documented finish reasons do not include ``content_filter``; the mock renders it
  (the SDK's finish reason is an open enum) so the shared filter check can run. Unverified against the real service.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from mockserver.asked import Asked
from mockserver.framing import dumps, sse_event, sse_raw_data
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
from mockserver.personalities.openai import read_chat_completions
from mockserver.plan import ChatRequest, Plan, ToolDef
from mockserver.retry_hints import header_hint
from mockserver.scenarios import Scenario
from mockserver.truth import input_tokens

JSON = "application/json"
KONG_JSON = "application/json; charset=utf-8"
CONTEXT_WINDOW = 131_072
LIMIT_REQ_10S = 60
LIMIT_TOKENS_MINUTE = 2_000_000
LIMIT_TOKENS_MONTH = 10_000_000_000

#: Top-level request fields the API accepts (mistralai 3.7 ChatCompletionRequest / ChatCompletionStreamRequest).
ALLOWED_FIELDS = frozenset(
    {
        "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "metadata",
        "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "min_tokens",
        "repetition_penalty", "top_k", "logprobs", "top_logprobs", "prompt_logprobs", "top_prompt_logprobs", "n",
        "prediction", "parallel_tool_calls", "reasoning_effort", "prompt_mode", "guardrails", "prompt_cache_key",
        "service_tier", "safe_prompt",
    }
)  # fmt: skip

#: Fault kind -> (status, gateway body?, message template, type, code). Templates use {model}, {used}, {window}.
ERRORS: dict[str, tuple[int, bool, str, str | None, str | None]] = {
    "rate_limit": (429, False, "Rate limit exceeded", "rate_limited", "1300"),
    "quota_exhausted": (
        429,
        False,
        "Monthly usage limit exceeded for this workspace. Raise the limit in the admin console to continue.",
        "usage_limit_exceeded",
        None,
    ),
    "auth_error": (401, True, "Unauthorized", None, None),
    "permission_denied": (403, True, "You cannot consume this service", None, None),
    "not_found": (400, False, "Invalid model: {model}", "invalid_model", "1500"),
    "bad_request": (
        400,
        False,
        "Expected last role User or Tool (or Assistant with prefix True) for serving but got assistant",
        "invalid_request_message_order",
        "3230",
    ),
    "context_length": (
        400,
        False,
        "Prompt contains {used} tokens and 0 draft tokens, too large for model with {window} maximum context length",
        "invalid_request_invalid_args",
        "3051",
    ),
    "content_filter": (
        403,
        False,
        "Request blocked by guardrails: the input was flagged by moderation_llm_v2.",
        "guardrail_blocked",
        None,
    ),
    "server_error": (500, False, "Internal server error", "internal_server_error", None),
    "bad_gateway": (502, True, "An invalid response was received from the upstream server", None, None),
    "service_unavailable": (503, True, "failure to get a peer from the ring-balancer", None, None),
    "gateway_timeout": (504, True, "The upstream server is timing out", None, None),
    "overloaded": (
        429,
        False,
        "Service tier capacity exceeded for this model.",
        "service_tier_capacity_exceeded",
        "3505",
    ),
}


def uuid7() -> str:
    """A UUIDv7 string (millisecond timestamp first), the format of Mistral's correlation ids."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def seconds_header(seconds: float) -> str:
    """Retry-After in seconds: an integer when whole, else up to millisecond precision."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


#: Where each fault body comes from (§7 is provider-wire-formats.md §7; "#N" a row of the real-cassettes INDEX.md).
FAULT_SOURCES: dict[str, str] = {
    "bad_request": "§7 (400 invalid_request_message_order, code 3230; flat error body)",
    "context_length": "§7 (400 'Prompt contains N tokens and 0 draft tokens, too large for model with M maximum "
    "context length', invalid_request_invalid_args, code 3051; BerriAI/litellm#17761)",
}

#: Fault bodies with no recording and no public source behind them: kind -> why.
UNVERIFIED_FAULTS: dict[str, str] = {
    "rate_limit": "the 429 rate_limited/1300 body is reconstructed; Mistral documents no 429 body",
    "quota_exhausted": "Mistral's real quota body is undocumented",
    "auth_error": "Kong's 401 'Unauthorized' body is assumed from the gateway, not recorded",
    "permission_denied": "Kong's 403 body is assumed from the gateway, not recorded",
    "not_found": "the 400 invalid_model/1500 for an unknown model is from client reports, not recorded",
    "content_filter": "the 403 guardrail_blocked body is unverified (the SDK's GuardrailConfig implies only a 403)",
    "server_error": "the 500 internal_server_error body is reconstructed, not recorded",
    "bad_gateway": "Kong's own 502 body is assumed, not recorded",
    "service_unavailable": "Kong's own 503 body is assumed, not recorded",
    "gateway_timeout": "Kong's own 504 body is assumed, not recorded",
    "overloaded": "the 429 service_tier_capacity_exceeded/3505 body is from client reports, not recorded",
    "retry:seconds": "§7: no Mistral doc or recording names its retry header; Retry-After is what the SDK reads",
}

#: §7: "The SDK honours Retry-After and retry-after-ms only when retries are configured" (mistralai/client/utils/
#: retries.py:124-135 reads ``retry-after``); whether the real API sends either is not documented.
RETRY_HINT_FORMS: dict[str, str] = {
    "seconds": "Retry-After delta-seconds: mistralai/client/utils/retries.py:124-135; unverified for the real API",
}


class MistralPersonality(Personality):
    name = "mistral"
    prefix = "/mistral"
    retry_hint_forms = RETRY_HINT_FORMS
    fault_sources = FAULT_SOURCES
    unverified_faults = UNVERIFIED_FAULTS

    def routes(self) -> list[tuple[str, str]]:
        return [("POST", "/v1/chat/completions")]

    # --- ids
    def new_request_id(self) -> str:
        return uuid7()

    def new_response_id(self) -> str:
        return secrets.token_hex(16)

    def new_tool_call_id(self) -> str:
        return random_token(9)

    # --- request side
    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        scheme, _, key = ctx.request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return None
        return self._gateway_error(ctx, 401, "Unauthorized", "auth_error")

    def asked(self, ctx: RequestContext, chat: ChatRequest) -> Asked:
        """Mistral's chat dialect is OpenAI's for these fields; "must call a tool" is ``any`` (or ``required``)."""
        return read_chat_completions(chat.body, chat.model, required="any")

    def parse_chat(self, ctx: RequestContext, raw: bytes) -> ChatRequest:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._invalid(
                ctx, [_detail("json_invalid", ["body", 0], "JSON decode error", {})]
            ) from None
        if not isinstance(body, dict):
            detail = _detail("model_attributes_type", ["body"], "Input should be a valid dictionary", body)
            raise self._invalid(ctx, [detail])
        details = [
            _detail("missing", ["body", name], "Field required", body)
            for name in ("model", "messages")
            if name not in body
        ]
        details += [
            _detail("extra_forbidden", ["body", name], "Extra inputs are not permitted", value)
            for name, value in body.items()
            if name not in ALLOWED_FIELDS
        ]
        model, messages, stream = body.get("model"), body.get("messages"), body.get("stream", False)
        if "model" in body and not isinstance(model, str):
            details.append(_detail("string_type", ["body", "model"], "Input should be a valid string", model))
        if "messages" in body and not isinstance(messages, list):
            details.append(
                _detail("list_type", ["body", "messages"], "Input should be a valid list", messages)
            )
        if stream is not None and not isinstance(stream, bool):
            details.append(
                _detail("bool_type", ["body", "stream"], "Input should be a valid boolean", stream)
            )
        if details:
            raise self._invalid(ctx, details)
        assert isinstance(model, str) and isinstance(messages, list)
        return ChatRequest(
            model=model,
            messages=messages,
            contents=[m.get("content") if isinstance(m, dict) else m for m in messages],
            tools=_tools(body.get("tools")),
            stream=bool(stream),
            include_usage=bool(stream),
            body=body,
        )

    def _invalid(self, ctx: RequestContext, details: list[dict[str, Any]]) -> Rejected:
        body = {
            "object": "error",
            "message": {"detail": details},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        headers = {**self.base_headers(ctx, 422, None), "Content-Type": JSON}
        return Rejected(Rendered(422, headers, dumps(body).encode(), error_kind="bad_request"))

    # --- headers
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        used = self._input_tokens(ctx)
        limited = scenario is not None and scenario.error == "rate_limit"
        elapsed = str(ctx.elapsed_ms())
        return {
            "mistral-correlation-id": ctx.request_id,
            "x-kong-request-id": ctx.request_id,
            "access-control-allow-origin": "*",
            "x-envoy-upstream-service-time": elapsed,
            "x-kong-upstream-latency": elapsed,
            "x-kong-proxy-latency": "1",
            "x-ratelimit-limit-req-10-second": str(LIMIT_REQ_10S),
            "x-ratelimit-remaining-req-10-second": "0" if limited else str(LIMIT_REQ_10S - 1),
            "x-ratelimit-limit-tokens-minute": str(LIMIT_TOKENS_MINUTE),
            "x-ratelimit-remaining-tokens-minute": str(max(LIMIT_TOKENS_MINUTE - used, 0)),
            "x-ratelimit-limit-tokens-month": str(LIMIT_TOKENS_MONTH),
            "x-ratelimit-remaining-tokens-month": str(LIMIT_TOKENS_MONTH - used),
            "x-ratelimit-tokens-query-cost": str(used),
        }

    def _input_tokens(self, ctx: RequestContext) -> int:
        if ctx.chat is None:
            return 0
        return input_tokens(ctx.chat.contents, [t.raw for t in ctx.chat.tools])

    # --- errors
    def error_body(
        self, kind: str, ctx: RequestContext, scenario: Scenario | None
    ) -> tuple[int, bool, dict[str, Any]]:
        """(status, gateway?, body) Mistral sends for a fault kind."""
        status, gateway, template, etype, code = ERRORS.get(kind, ERRORS["server_error"])
        message = template.format(
            model=ctx.chat.model if ctx.chat is not None else "mistral-large-latest",
            used=CONTEXT_WINDOW + max(self._input_tokens(ctx), 1),
            window=CONTEXT_WINDOW,
        )
        if scenario is not None and scenario.message:
            message = scenario.message
        if gateway:
            return status, True, {"message": message, "request_id": ctx.request_id.replace("-", "")}
        body = {
            "object": "error",
            "message": message,
            "type": etype,
            "param": None,
            "code": code,
            "raw_status_code": status,
        }
        return status, False, body

    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        own_status, gateway, body = self.error_body(kind, ctx, scenario)
        status = scenario.status if scenario.status is not None else own_status
        if gateway and status in (401, 403):
            headers = self._gateway_headers(ctx)
        else:
            headers = {
                **self.base_headers(ctx, status, scenario),
                "Content-Type": KONG_JSON if gateway else JSON,
            }
        hint = None
        form = self.retry_form(scenario)
        if scenario.retry_after is not None and form is not None:
            hint_headers, sent = header_hint(form, scenario.retry_after, decimals=True, name="Retry-After")
            headers.update(hint_headers)
            hint = sent.as_dict()
        return Rendered(status, headers, dumps(body).encode(), error_kind=kind, retry_hint=hint)

    def _gateway_headers(self, ctx: RequestContext) -> dict[str, str]:
        """Kong rejects before the upstream: correlation ids, no upstream timing or rate-limit headers."""
        return {
            "mistral-correlation-id": ctx.request_id,
            "x-kong-request-id": ctx.request_id,
            "access-control-allow-origin": "*",
            "Content-Type": KONG_JSON,
        }

    def _gateway_error(self, ctx: RequestContext, status: int, message: str, kind: str) -> Rendered:
        body = {"message": message, "request_id": ctx.request_id.replace("-", "")}
        return Rendered(status, self._gateway_headers(ctx), dumps(body).encode(), error_kind=kind)

    # --- non-streamed
    @staticmethod
    def usage_object(plan: Plan) -> dict[str, Any]:
        u = plan.usage
        return {
            "prompt_tokens": u.input_tokens,
            "total_tokens": u.total_tokens,
            "completion_tokens": u.output_tokens,
        }

    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        assert ctx.chat is not None and ctx.scenario is not None
        wire_calls: list[dict[str, Any]] | None = None
        if plan.tool_calls:
            wire_calls = [_wire_call(i, c.id, c.name, c.arguments) for i, c in enumerate(plan.tool_calls)]
        tool_calls = journal_tool_calls(plan)
        body: dict[str, Any] = {"id": ctx.response_id, "created": ctx.created, "model": ctx.chat.model}
        usage: dict[str, Any] | None = None
        if ctx.scenario.usage == "normal":
            usage = self.usage_object(plan)
            body["usage"] = usage
        elif ctx.scenario.usage == "null":
            body["usage"] = None
        body["object"] = "chat.completion"
        body["choices"] = [
            {
                "index": 0,
                "finish_reason": plan.finish_reason,
                "message": {"role": "assistant", "tool_calls": wire_calls, "content": plan.text},
            }
        ]
        headers = {**self.base_headers(ctx, 200, ctx.scenario), "Content-Type": JSON}
        return Rendered(
            200,
            headers,
            dumps(body).encode(),
            text=plan.text,
            tool_calls=tool_calls,
            usage=usage,
            finish_reason=plan.finish_reason,
        )

    # --- streamed
    def stream_headers(self, ctx: RequestContext) -> dict[str, str]:
        return {"Content-Type": "text/event-stream; charset=utf-8"}

    def _chunk(self, ctx: RequestContext, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        assert ctx.chat is not None
        return {
            "id": ctx.response_id,
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.chat.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        return [Frame(sse_event(self._chunk(ctx, {"role": "assistant", "content": ""})), "open")]

    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        return Frame(sse_event(self._chunk(ctx, {"content": piece})), "content", text=piece)

    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        if fragment.id is None or not plan.tool_calls:
            return Frame(b"", "tool", tool=fragment)  # already sent whole with the call's first fragment
        call = plan.tool_calls[fragment.index]
        chunk = self._chunk(
            ctx, {"tool_calls": [_wire_call(fragment.index, call.id, call.name, call.arguments)]}
        )
        # the header fragment carries no argument text; the journal adds the later (wire-less) fragments' text
        return Frame(sse_event(chunk), "tool", tool=fragment)

    def stream_empty(self, ctx: RequestContext, plan: Plan) -> Frame | None:
        return Frame(sse_event(self._chunk(ctx, {"content": ""})), "empty")

    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        return None

    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        assert ctx.scenario is not None
        chunk = self._chunk(ctx, {"content": ""}, plan.finish_reason)
        usage: dict[str, Any] | None = None
        if ctx.scenario.usage == "normal":
            usage = self.usage_object(plan)
            chunk["usage"] = usage
        elif ctx.scenario.usage == "null":
            chunk["usage"] = None
        return [
            Frame(sse_event(chunk), "finish", usage=usage, finish_reason=plan.finish_reason),
            Frame(sse_event("[DONE]"), "terminator"),
        ]

    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        _, _, body = self.error_body(kind, ctx, ctx.scenario)
        if "object" not in body:  # gateway errors cannot happen mid-stream: send the service's form
            body = {"object": "error", "message": body["message"], "type": None, "param": None, "code": None}
        return [Frame(sse_event(body), "error")]

    def stream_malformed(self, ctx: RequestContext, plan: Plan) -> Frame:
        head = dumps({"id": ctx.response_id, "object": "chat.completion.chunk", "created": ctx.created})
        return Frame(sse_raw_data(head[:-1] + ',"choices":['), "malformed")


def _detail(etype: str, loc: list[Any], msg: str, value: Any) -> dict[str, Any]:
    return {"type": etype, "loc": loc, "msg": msg, "input": value}


def _wire_call(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One tool call as Mistral sends it, whole; ``index`` is its position among parallel calls (the SDK's
    ToolCall.index, mistralai/client/models/toolcall.py, default 0; provider-wire-formats.md: fragments keyed by
    ``tool_calls[].index``)."""
    return {"id": call_id, "function": {"name": name, "arguments": arguments}, "index": index}


def _tools(tools: Any) -> list[ToolDef]:
    out: list[ToolDef] = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            out.append(ToolDef(name=function["name"], parameters=function.get("parameters"), raw=tool))
    return out
