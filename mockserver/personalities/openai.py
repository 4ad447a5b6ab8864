"""OpenAI Chat Completions as the official ``openai`` SDK sees it (provider-wire-formats.md §0-§1).

Faithful where the SDK and adapters look: ``x-request-id: req_<32 hex>`` (the SDK's ``_request_id`` and
``APIStatusError.request_id``), error bodies ``{"error": {message, type, param, code}}`` with OpenAI's own
messages, ``retry-after`` + ``retry-after-ms`` (the SDK prefers the latter), ``x-should-retry: false`` on
quota errors (or the SDK retries pointlessly), Go-duration ``x-ratelimit-reset-*`` headers, data-only SSE with
the role chunk first, tool-call fragments keyed by ``index``, the ``choices: []`` usage chunk when
``stream_options.include_usage`` is set, ``data: [DONE]``, and in-band ``data: {"error": ...}`` frames (which
the SDK raises as a plain ``APIError``).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any

from mockserver.asked import Asked, integer, join_system, number, stop_list, text_of, turns
from mockserver.framing import dumps, sse_comment, sse_event, sse_raw_data
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
from mockserver.truth import input_tokens

SYSTEM_FINGERPRINT = "fp_mock7e1b2c"
ORGANIZATION = "user-mockorg0000000000000000"
LIMIT_REQUESTS = 10_000
LIMIT_TOKENS = 30_000_000
CONTEXT_WINDOW = 128_000
JSON = "application/json"

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
    "have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)

#: Fault kind → (message template, type, param, code). Templates use {model}, {retry}, {key}, {used},
#: {window}, {limit}. Messages are OpenAI's own wording (platform.openai.com/docs/guides/error-codes and
#: observed bodies).
ERRORS: dict[str, tuple[str, str, str | None, str | None]] = {
    "rate_limit": (
        "Rate limit reached for {model} in organization org-mock on tokens per min (TPM): Limit {limit}, "
        "Used {used}, Requested 419. Please try again in {retry}. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        "tokens",
        None,
        "rate_limit_exceeded",
    ),
    "quota_exhausted": (
        "You exceeded your current quota, please check your plan and billing details. For more information "
        "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        None,
        "insufficient_quota",
    ),
    "auth_error": (
        "Incorrect API key provided: {key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        None,
        "invalid_api_key",
    ),
    "permission_denied": (
        "You have insufficient permissions for this operation. Missing scopes: model.request. Check that you "
        "have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and "
        "if you're using a restricted API key, that it has the necessary scopes.",
        "invalid_request_error",
        None,
        None,
    ),
    "not_found": (
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        None,
        "model_not_found",
    ),
    "bad_request": (
        "Invalid value for 'temperature': expected a number between 0 and 2.",
        "invalid_request_error",
        "temperature",
        "invalid_value",
    ),
    "context_length": (
        "This model's maximum context length is {window} tokens. However, your messages resulted in {used} "
        "tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
    ),
    # The real Chat Completions answer to a flagged prompt (error bodies quoted verbatim in
    # github.com/BeehiveInnovations/pal-mcp-server/issues/178 with the full response headers, and in
    # github.com/alan-turing-institute/t0-1/issues/69): 400, code ``invalid_prompt``, param null. Azure's
    # ``content_filter`` code is Azure's own (mockserver/personalities/azure_openai.py).
    "content_filter": (
        "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again "
        "with a different prompt: https://platform.openai.com/docs/guides/reasoning#advice-on-prompting",
        "invalid_request_error",
        None,
        "invalid_prompt",
    ),
    "server_error": (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
        None,
    ),
    "bad_gateway": ("Bad gateway.", "cf_bad_gateway", None, None),
    "service_unavailable": ("Slow Down", "server_error", None, None),
    "gateway_timeout": ("Gateway timeout.", "cf_gateway_timeout", None, None),
    "overloaded": ("The engine is currently overloaded, please try again later", "server_error", None, None),
}


def go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String()``: ``12ms``, ``1s``, ``1.5s``, ``6m0s``, ``1h0m0s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = round(seconds * 1000, 3)
        return f"{_trim(ms)}ms" if ms >= 1 else f"{_trim(round(seconds * 1e6, 3))}µs"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    sec = f"{_trim(round(secs, 3))}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec}"
    if minutes:
        return f"{int(minutes)}m{sec}"
    return sec


def _trim(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _mask_key(key: str) -> str:
    """OpenAI shows a prefix and the last four characters; the mock shows only the last four."""
    return f"{'*' * 12}{key[-4:]}" if len(key) > 8 else "*" * 8


#: Where each fault body comes from (the error-code guide is platform.openai.com/docs/guides/error-codes, quoted in
#: provider-wire-formats.md §1; "§1" below means that section's table of typical bodies).
FAULT_SOURCES: dict[str, str] = {
    "rate_limit": "provider-wire-formats.md §1 (429 rate_limit_exceeded, type tokens|requests); error-codes guide",
    "quota_exhausted": "provider-wire-formats.md §1 (429 insufficient_quota, x-should-retry: false)",
    "auth_error": "provider-wire-formats.md §1 (401 invalid_api_key); error-codes guide",
    "not_found": "real recording, real-cassettes INDEX.md #32 (404 model_not_found, 'The model `...` does not "
    "exist or you do not have access to it.')",
    "context_length": "provider-wire-formats.md §1 (400 context_length_exceeded, param messages; "
    "github.com/chathub-dev/chathub/issues/126)",
    "content_filter": "github.com/BeehiveInnovations/pal-mcp-server/issues/178 and "
    "github.com/alan-turing-institute/t0-1/issues/69 (400 invalid_prompt, verbatim bodies)",
    "server_error": "provider-wire-formats.md §1 (500 server_error)",
    "service_unavailable": "provider-wire-formats.md §1 (503 'Slow Down')",
    "overloaded": "provider-wire-formats.md §1 (503 'overloaded'); the OpenAI SDK's overload message",
}

#: Fault bodies with no recording and no public source behind them: kind -> why.
UNVERIFIED_FAULTS: dict[str, str] = {
    "permission_denied": "403 body wording is reconstructed from client logs, no recording or docs quote",
    "bad_request": "the temperature-range message is reconstructed; the real one (INDEX.md #38) is "
    "decimal_below_min_value",
    "bad_gateway": "Cloudflare's 502 in OpenAI's error envelope is assumed; the real edge may send HTML",
    "gateway_timeout": "Cloudflare's 504 in OpenAI's error envelope is assumed; the real edge may send HTML",
    "retry:http_date": "the SDK reads an HTTP-date retry-after (RFC 9110 allows it), but no recording or doc shows "
    "OpenAI sending one",
}

#: The retry-hint forms, each read by the openai SDK: ``_parse_retry_after_header`` in openai/_base_client.py
#: (openai 3.54, lines 849-896) reads ``retry-after-ms`` first, then ``retry-after`` as (float) seconds, then as an
#: HTTP-date; provider-wire-formats.md §0.
RETRY_HINT_FORMS: dict[str, str] = {
    "ms": "retry-after-ms + whole-second retry-after: openai/_base_client.py:859 reads retry-after-ms first "
    "(provider-wire-formats.md §0, §5 for Azure)",
    "seconds": "retry-after delta-seconds: openai/_base_client.py:859-872; provider-wire-formats.md §12 "
    "(OpenAI: retry-after/retry-after-ms)",
    "http_date": "retry-after as an HTTP-date: openai/_base_client.py:874-884 (email.utils.parsedate_tz); unverified",
}


class OpenAIPersonality(Personality):
    #: Parallel calls stream as ``tool_calls[].index``-keyed deltas (real-cassettes #127: index 0 then index 1; the
    #: SDK's ChatCompletionStreamState accumulates by index, openai/lib/streaming/chat/_completions.py), so the mock
    #: interleaves their fragments, which the protocol allows, to catch adapters that do not key by index.
    interleaves_tool_calls = True
    name = "openai"
    prefix = "/openai"
    retry_hint_forms = RETRY_HINT_FORMS
    fault_sources = FAULT_SOURCES
    unverified_faults = UNVERIFIED_FAULTS

    def routes(self) -> list[tuple[str, str]]:
        return [("POST", "/v1/chat/completions")]

    # --- ids
    # -----------------------------------------------------------------------------------------------------
    def new_request_id(self) -> str:
        return f"req_{secrets.token_hex(16)}"

    def new_response_id(self) -> str:
        return f"chatcmpl-{random_token(29)}"

    def new_tool_call_id(self) -> str:
        return f"call_{random_token(24)}"

    # --- request side
    # --------------------------------------------------------------------------------------------
    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        scheme, _, key = ctx.request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return None
        rendered = self._error_response(
            ctx, 401, MISSING_KEY, "invalid_request_error", None, None, rate_limits=False
        )
        return dataclasses.replace(rendered, error_kind="auth_error")

    def asked(self, ctx: RequestContext, chat: ChatRequest) -> Asked:
        """Chat Completions: ``system``/``developer`` messages are the system prompt; ``max_completion_tokens``
        or the older ``max_tokens``; ``stop`` a string or an array; ``tool_choice`` a string or
        ``{"type": "function", "function": {"name": ...}}``."""
        return read_chat_completions(chat.body, chat.model)

    def parse_chat(self, ctx: RequestContext, raw: bytes) -> ChatRequest:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._reject(ctx, BAD_JSON, None, None) from None
        if not isinstance(body, dict):
            got = _json_type(body)
            raise self._reject(
                ctx,
                f"Invalid type for body: expected an object, but got {got} instead.",
                None,
                "invalid_type",
            )
        model = body.get("model")
        if model is None:
            raise self._reject(ctx, "you must provide a model parameter", None, None)
        if not isinstance(model, str):
            raise self._invalid_type(ctx, "model", "a string", model)
        messages = body.get("messages")
        if messages is None:
            raise self._missing(ctx, "messages")
        if not isinstance(messages, list):
            raise self._invalid_type(ctx, "messages", "an array", messages)
        if not messages:
            raise self._reject(
                ctx,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
                "array instead.",
                "messages",
                "empty_array",
            )
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise self._invalid_type(ctx, f"messages[{i}]", "an object", message)
            if "role" not in message:
                raise self._missing(ctx, f"messages[{i}].role")
        stream = body.get("stream", False)
        if stream is not None and not isinstance(stream, bool):
            raise self._invalid_type(ctx, "stream", "a boolean", stream)
        options = body.get("stream_options")
        if options is not None and not stream:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            raise self._reject(ctx, message, "stream_options", None)
        include_usage = bool(stream) and isinstance(options, dict) and options.get("include_usage") is True
        return ChatRequest(
            model=model,
            messages=messages,
            contents=[m.get("content") for m in messages],
            tools=self._tools(ctx, body.get("tools")),
            stream=bool(stream),
            include_usage=include_usage,
            body=body,
        )

    def _tools(self, ctx: RequestContext, tools: Any) -> list[ToolDef]:
        if tools is None:
            return []
        if not isinstance(tools, list):
            raise self._invalid_type(ctx, "tools", "an array", tools)
        out: list[ToolDef] = []
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(name, str) or not name:
                raise self._missing(ctx, f"tools[{i}].function.name")
            assert isinstance(function, dict)
            out.append(ToolDef(name=name, parameters=function.get("parameters"), raw=tool))
        return out

    def _reject(self, ctx: RequestContext, message: str, param: str | None, code: str | None) -> Rejected:
        rendered = self._error_response(ctx, 400, message, "invalid_request_error", param, code)
        return Rejected(dataclasses.replace(rendered, error_kind="bad_request"))

    def _missing(self, ctx: RequestContext, param: str) -> Rejected:
        return self._reject(
            ctx, f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
        )

    def _invalid_type(self, ctx: RequestContext, param: str, expected: str, got: Any) -> Rejected:
        message = f"Invalid type for '{param}': expected {expected}, but got {_json_type(got)} instead."
        return self._reject(ctx, message, param, "invalid_type")

    # --- headers
    # -------------------------------------------------------------------------------------------------
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        return {
            "x-request-id": ctx.request_id,
            "openai-organization": ORGANIZATION,
            "openai-processing-ms": str(ctx.elapsed_ms()),
            "openai-version": "2020-10-01",
            "x-content-type-options": "nosniff",
            **self.rate_limit_headers(ctx, scenario),
        }

    def rate_limit_headers(self, ctx: RequestContext, scenario: Scenario | None) -> dict[str, str]:
        """All six ``x-ratelimit-*`` headers; exhausted token budget when the scenario is a rate limit."""
        used = self._input_tokens(ctx)
        limited = scenario is not None and scenario.error == "rate_limit"
        reset = go_duration(scenario.retry_after if limited and scenario and scenario.retry_after else 1.0)
        return {
            "x-ratelimit-limit-requests": str(LIMIT_REQUESTS),
            "x-ratelimit-limit-tokens": str(LIMIT_TOKENS),
            "x-ratelimit-remaining-requests": str(LIMIT_REQUESTS - 1),
            "x-ratelimit-remaining-tokens": "0" if limited else str(max(LIMIT_TOKENS - used, 0)),
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": reset if limited else "0s",
        }

    # --- errors
    # --------------------------------------------------------------------------------------------------
    def error_fields(
        self, kind: str, ctx: RequestContext, scenario: Scenario | None
    ) -> tuple[str, str, str | None, str | None]:
        """(message, type, param, code) OpenAI uses for a fault kind, filled in for this request."""
        template, etype, param, code = ERRORS.get(kind, ERRORS["server_error"])
        retry = scenario.retry_after if scenario is not None and scenario.retry_after is not None else 1.0
        _, _, key = ctx.request.headers.get("Authorization", "").partition(" ")
        message = template.format(
            model=ctx.chat.model if ctx.chat is not None else "gpt-4o",
            retry=go_duration(retry),
            key=_mask_key(key.strip()),
            used=(CONTEXT_WINDOW + max(self._input_tokens(ctx), 1))
            if kind == "context_length"
            else LIMIT_TOKENS - 120,
            window=CONTEXT_WINDOW,
            limit=LIMIT_TOKENS,
        )
        return message, etype, param, code

    def _input_tokens(self, ctx: RequestContext) -> int:
        if ctx.chat is None:
            return 0
        return input_tokens(ctx.chat.contents, [t.raw for t in ctx.chat.tools])

    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        message, etype, param, code = self.error_fields(kind, ctx, scenario)
        rendered = self._error_response(
            ctx,
            status,
            scenario.message or message,
            etype,
            param,
            code,
            scenario=scenario,
            rate_limits=kind != "auth_error",
        )
        headers = dict(rendered.headers)
        hint = None
        form = self.retry_form(scenario)
        if scenario.retry_after is not None and form is not None:
            hint_headers, sent = header_hint(form, scenario.retry_after)
            headers.update(hint_headers)
            hint = sent.as_dict()
        if kind == "quota_exhausted":
            headers["x-should-retry"] = "false"
        return Rendered(status, headers, rendered.body, error_kind=kind, retry_hint=hint)

    def _error_response(
        self,
        ctx: RequestContext,
        status: int,
        message: str,
        etype: str,
        param: str | None,
        code: Any,
        *,
        scenario: Scenario | None = None,
        rate_limits: bool = True,
    ) -> Rendered:
        headers = self.base_headers(ctx, status, scenario)
        if not rate_limits:
            headers = {k: v for k, v in headers.items() if not k.startswith("x-ratelimit-")}
        headers["Content-Type"] = JSON
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return Rendered(status, headers, (json.dumps(body, indent=4) + "\n").encode())

    # --- non-streamed
    # --------------------------------------------------------------------------------------------
    def usage_object(self, plan: Plan) -> dict[str, Any]:
        u = plan.usage
        return {
            "prompt_tokens": u.input_tokens,
            "completion_tokens": u.output_tokens,
            "total_tokens": u.total_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": u.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        assert ctx.chat is not None and ctx.scenario is not None
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if plan.tool_calls else plan.text,
            "refusal": None,
        }
        if plan.tool_calls:  # every call, in order (real-cassettes #126: two parallel calls in one message)
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in plan.tool_calls
            ]
        tool_calls = journal_tool_calls(plan)
        body: dict[str, Any] = {
            "id": ctx.response_id,
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.chat.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": plan.finish_reason}
            ],
        }
        usage: dict[str, Any] | None = None
        if ctx.scenario.usage == "normal":
            usage = self.usage_object(plan)
            body["usage"] = usage
        elif ctx.scenario.usage == "null":
            body["usage"] = None
        body["service_tier"] = "default"
        body["system_fingerprint"] = SYSTEM_FINGERPRINT
        headers = {**self.base_headers(ctx, 200, ctx.scenario), "Content-Type": JSON}
        return Rendered(
            200,
            headers,
            (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode(),
            text=plan.text,
            tool_calls=tool_calls,
            usage=usage,
            finish_reason=plan.finish_reason,
        )

    # --- streamed
    # ------------------------------------------------------------------------------------------------
    def stream_headers(self, ctx: RequestContext) -> dict[str, str]:
        return {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}

    def _chunk(self, ctx: RequestContext, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        assert ctx.chat is not None
        chunk: dict[str, Any] = {
            "id": ctx.response_id,
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.chat.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._usage_on_chunks(ctx):
            chunk["usage"] = None
        return chunk

    def _usage_on_chunks(self, ctx: RequestContext) -> bool:
        assert ctx.chat is not None and ctx.scenario is not None
        return ctx.chat.include_usage and ctx.scenario.usage != "missing"

    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        content = None if plan.tool_calls else ""
        delta = {"role": "assistant", "content": content, "refusal": None}
        return [Frame(sse_event(self._chunk(ctx, delta)), "open")]

    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        return Frame(sse_event(self._chunk(ctx, {"content": piece})), "content", text=piece)

    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        call: dict[str, Any] = {"index": fragment.index}
        if fragment.id is not None:
            call.update(
                id=fragment.id,
                type="function",
                function={"name": fragment.name, "arguments": fragment.arguments},
            )
        else:
            call["function"] = {"arguments": fragment.arguments}
        return Frame(sse_event(self._chunk(ctx, {"tool_calls": [call]})), "tool", tool=fragment)

    def stream_empty(self, ctx: RequestContext, plan: Plan) -> Frame | None:
        return Frame(sse_event(self._chunk(ctx, {"content": ""})), "empty")

    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        return Frame(sse_comment("keep-alive"), "keepalive")

    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        assert ctx.chat is not None and ctx.scenario is not None
        frames = [
            Frame(
                sse_event(self._chunk(ctx, {}, plan.finish_reason)),
                "finish",
                finish_reason=plan.finish_reason,
            )
        ]
        if self._usage_on_chunks(ctx):
            usage = self.usage_object(plan) if ctx.scenario.usage == "normal" else None
            chunk = {**self._chunk(ctx, {}), "choices": [], "usage": usage}
            frames.append(Frame(sse_event(chunk), "usage", usage=usage))
        frames.append(Frame(sse_event("[DONE]"), "terminator"))
        return frames

    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        message, etype, param, code = self.error_fields(kind, ctx, ctx.scenario)
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return [Frame(sse_event(body), "error")]

    def stream_malformed(self, ctx: RequestContext, plan: Plan) -> Frame:
        assert ctx.chat is not None
        head = dumps({"id": ctx.response_id, "object": "chat.completion.chunk", "created": ctx.created})
        return Frame(sse_raw_data(head[:-1] + ',"choices":['), "malformed")


def read_chat_completions(body: Any, model: str | None, *, required: str = "required") -> Asked:
    """Read a Chat Completions body (OpenAI's dialect, also spoken by Azure, OpenRouter and Mistral).

    ``required`` is the dialect's word for "must call some tool" (Mistral also says ``any``).
    """
    body = body if isinstance(body, dict) else {}
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    system = [text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        function = choice.get("function")
        choice = function.get("name") if isinstance(function, dict) else None
    elif choice in ("required", required):
        choice = "required"
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return Asked(
        model=model,
        system=join_system(system),
        messages=turns(messages, skip=("system", "developer")),
        max_tokens=integer(max_tokens),
        temperature=number(body.get("temperature")),
        top_p=number(body.get("top_p")),
        stop=stop_list(body.get("stop")),
        tools=[
            str((t.get("function") or {}).get("name"))
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ],
        tool_choice=choice if isinstance(choice, str) else None,
    )
