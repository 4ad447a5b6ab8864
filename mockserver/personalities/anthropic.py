"""Anthropic Messages as the official ``anthropic`` SDK sees it (provider-wire-formats.md §0 and §4).

Faithful where the SDK and adapters look:

* **Auth.** ``x-api-key: <key>`` (0.x/1.x SDKs, curl) or ``Authorization: Bearer <key>`` (the 2.x SDK); missing
  credentials are a 401 ``authentication_error``. ``anthropic-version`` is mandatory (any value): without it the
  real API answers 400 ``invalid_request_error`` "anthropic-version: header is required", and so does the mock.
* **Headers.** ``request-id: req_011C…`` on every response (the SDK's ``_request_id`` / ``e.request_id``), the body
  repeating it as ``request_id`` on errors; ``anthropic-organization-id``; the twelve
  ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`` headers with RFC 3339
  reset timestamps (input tokens exhausted on a rate limit); ``retry-after`` in seconds.
* **Errors.** ``{"type":"error","error":{"type","message"},"request_id"}`` with Anthropic's own types and wording:
  429 ``rate_limit_error``, 401 ``authentication_error``, 403 ``permission_error``, 404 ``not_found_error``
  ("model: <id>", as recorded), 400 ``invalid_request_error``, 500 ``api_error``, 504 ``timeout_error`` and
  **529** ``overloaded_error`` "Overloaded" for the ``overloaded`` preset (Anthropic's own status, not 503).
* **Faults with no native status**, rendered the way the real service does it:

  - *context_length*: 400 ``invalid_request_error`` "prompt is too long: N tokens > 200000 maximum"; only the
    message tells it apart from any other bad request.
  - *quota_exhausted*: Anthropic has no quota status. An exhausted prepaid balance is a 400
    ``invalid_request_error`` "Your credit balance is too low to access the Anthropic API. …" (what recorded
    client logs show), sent with ``x-should-retry: false``. Asked for status 429 it renders the spend-limit form
    instead (``rate_limit_error`` with ``details.error_code: "enforced_spend_limit_reached"``, which the 2.x SDK
    raises as ``EnforcedSpendLimitReachedError``) and for 402 a ``billing_error``; both forbid retries the same way.
  - *content_filter*: Anthropic's output classifier answers 400 ``invalid_request_error`` "Output blocked by
    content filtering policy" (and the same message as an in-band error mid-stream). A model that declines
    ends normally with ``stop_reason: "refusal"``: that is what the ``filtered_output`` preset renders, keeping
    the partial text.
  - *bad_gateway* / *service_unavailable*: JSON ``api_error`` bodies with their statuses (the real edge may send
    an HTML page instead; adapters must cope with both, and map either by status).
* **Bodies.** ``message`` objects with ``content`` blocks (``text``; ``tool_use`` whose ``input`` is an object;
  a ``thinking`` block with a signature when the scenario asks for reasoning tokens), ``stop_reason`` among
  ``end_turn``/``max_tokens``/``tool_use``/``refusal``, and ``usage`` whose ``input_tokens`` *excludes* the
  ``cache_read_input_tokens`` (so cached tokens are reported the way Anthropic does). Thinking is already counted
  in ``output_tokens``; Anthropic reports no separate reasoning count. Known model aliases are answered with their
  dated snapshot id, as the real API does (``claude-sonnet-4-5`` -> ``claude-sonnet-4-5-20250929``).
* **Streams.** Named SSE events, each ``event:`` line followed by its ``data:`` line: ``message_start`` (input usage,
  ``output_tokens: 1``), ``content_block_start``, one ``ping`` right after it (as the live API does), then
  ``content_block_delta`` (``text_delta`` / ``input_json_delta`` with ``partial_json`` string fragments, the first
  one empty), ``content_block_stop`` (parallel tool calls: one ``tool_use`` block each, one after the other, block
  indexes counting up), ``message_delta`` with the stop reason and *cumulative* usage,
  and ``message_stop``: the terminator the engine drops for ``omit_terminator``; there is no ``[DONE]``.
  Keep-alives are ``event: ping`` / ``data: {"type": "ping"}``; empty deltas are ``text_delta`` with ``""`` (or an
  empty ``partial_json``). An in-band error is ``event: error`` with ``{"type":"error","error":{"details":null,
  "type":…,"message":…},"request_id":…}`` on the 200 response, which the SDK raises as a plain ``APIStatusError``
  with ``status_code == 200``. Null usage is ``"usage": null`` in ``message_start`` and ``message_delta``; missing
  usage leaves the key out of both (the real API always sends it: these presets test estimation only).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import string
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from mockserver.asked import Asked, integer, join_system, mapping, number, stop_list, text_of, turns
from mockserver.framing import dumps, sse_event
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
from mockserver.retry_hints import RetryHint, deadline_after
from mockserver.scenarios import Scenario
from mockserver.truth import input_tokens

JSON = "application/json"
ORGANIZATION_ID = "5e0c1f3a-7b2d-4c8e-9a61-0d4f2b7c9e13"
CONTEXT_WINDOW = 200_000
LIMIT_REQUESTS = 4_000
LIMIT_INPUT_TOKENS = 400_000
LIMIT_OUTPUT_TOKENS = 80_000
#: Base58-like alphabet of Anthropic's ids (``req_011CRb7b5b9MWofEnfaAHTBu``, ``msg_0138UNF3YbNp49KkqZtUBWqz``)
ID_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0OIl")

#: Aliases the real API answers with a dated snapshot id.
SNAPSHOTS = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}

#: The counters a ``message_delta`` repeats (cumulative, like the live API since 2025).
DELTA_USAGE_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)

#: Neutral finish reason -> ``stop_reason``.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

CREDIT_BALANCE = (
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or "
    "purchase credits."
)

#: Fault kind -> (status, error type, message template). Templates use {model}, {used}, {window}, {limit}.
ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "This request would exceed your organization's rate limit of {limit} input tokens per minute (org: "
        f"{ORGANIZATION_ID}, model: {{model}}). For details, refer to: https://docs.claude.com/en/api/rate-limits. "
        "You can see the response headers for current usage. Please reduce the prompt length or the maximum "
        "tokens requested, or try again later. You may also contact sales at "
        "https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.",
    ),
    "quota_exhausted": (400, "invalid_request_error", CREDIT_BALANCE),
    "auth_error": (401, "authentication_error", "invalid x-api-key"),
    "permission_denied": (
        403,
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    "not_found": (404, "not_found_error", "model: {model}"),
    "bad_request": (400, "invalid_request_error", "temperature: Input should be less than or equal to 1"),
    "context_length": (400, "invalid_request_error", "prompt is too long: {used} tokens > {window} maximum"),
    "content_filter": (400, "invalid_request_error", "Output blocked by content filtering policy"),
    "server_error": (500, "api_error", "Internal server error"),
    "bad_gateway": (502, "api_error", "Bad gateway"),
    "service_unavailable": (503, "api_error", "Service unavailable"),
    "gateway_timeout": (504, "timeout_error", "Request timeout"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
}

#: Quota faults asked for with a specific status: (error type, message, details).
QUOTA_VARIANTS: dict[int, tuple[str, str, dict[str, Any] | None]] = {
    429: (
        "rate_limit_error",
        "You have reached your specified API usage limits. You will regain access on {reset}.",
        {"error_code": "enforced_spend_limit_reached"},
    ),
    402: (
        "billing_error",
        "Your organization has an issue with its billing or payment information. Please visit Plans & Billing "
        "to resolve it.",
        None,
    ),
}


def anthropic_id(prefix: str, length: int = 22) -> str:
    return prefix + random_token(length, ID_ALPHABET)


def rfc3339(moment: datetime) -> str:
    """Anthropic's reset timestamps: UTC, whole seconds, ``Z`` suffix (``2025-07-29T09:59:33Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after_value(seconds: float) -> str:
    """``retry-after`` as the real service sends it (whole seconds); fractional test values are kept as decimals
    (``0.01``) so SDK retries stay instant; the SDKs accept decimal seconds."""
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


#: Where each fault body comes from (§4 is provider-wire-formats.md §4; "#N" a row of the real-cassettes INDEX.md).
FAULT_SOURCES: dict[str, str] = {
    "rate_limit": "§4 (429 rate_limit_error; retry-after in seconds; RFC 3339 anthropic-ratelimit-*-reset); "
    "docs.claude.com/en/api/errors",
    "auth_error": "§4 (401 authentication_error); docs.claude.com/en/api/errors",
    "permission_denied": "§4 (403 permission_error); docs.claude.com/en/api/errors",
    "not_found": "real recording #7 (404 not_found_error 'model: claude-sonet-4-5')",
    "bad_request": "real recording #8 (400 invalid_request_error)",
    "server_error": "§4 (500 api_error); docs.claude.com/en/api/errors",
    "gateway_timeout": "§4 (504 timeout_error); docs.claude.com/en/api/errors",
    "overloaded": "§4 (529 overloaded_error 'Overloaded', verified against the SDK)",
}

#: Fault bodies with no recording and no public source behind them: kind -> why.
UNVERIFIED_FAULTS: dict[str, str] = {
    "quota_exhausted": "the credit-balance 400 is quoted from client logs; the spend-limit 429 from the 2.x SDK's "
    "error classes, neither recorded",
    "context_length": "the 'prompt is too long' wording is from client reports, not recorded",
    "content_filter": "'Output blocked by content filtering policy' is from client reports, not recorded",
    "bad_gateway": "a JSON api_error 502 is assumed; the real edge may send an HTML page",
    "service_unavailable": "a JSON api_error 503 is assumed; the real edge may send an HTML page",
}

#: Anthropic's retry hints. §4: "A 429 carries retry-after in seconds" and the -reset values are RFC 3339 timestamps;
#: the SDK reads retry-after (anthropic/_base_client.py:879-911); the reset headers are read by no SDK, only by
#: clients that plan their own waits, which is why a client must fall back to them when retry-after is absent.
RETRY_HINT_FORMS: dict[str, str] = {
    "seconds": "retry-after delta-seconds beside the reset headers: provider-wire-formats.md §4; "
    "anthropic/_base_client.py:896-903",
    "reset_headers": "anthropic-ratelimit-*-reset RFC 3339 timestamps alone: provider-wire-formats.md §4 "
    "(platform.claude.com/docs/en/api/rate-limits, response headers)",
}


#: ``tool_choice.type`` -> the neutral choice (``tool`` names the tool instead)
CHOICES = {"auto": "auto", "any": "required", "none": "none"}


class AnthropicPersonality(Personality):
    name = "anthropic"
    prefix = "/anthropic"
    retry_hint_forms = RETRY_HINT_FORMS
    fault_sources = FAULT_SOURCES
    unverified_faults = UNVERIFIED_FAULTS

    def routes(self) -> list[tuple[str, str]]:
        return [("POST", "/v1/messages")]

    # --- ids
    # -----------------------------------------------------------------------------------------------------
    def new_request_id(self) -> str:
        return anthropic_id("req_011C", 20)

    def new_response_id(self) -> str:
        return anthropic_id("msg_01")

    def new_tool_call_id(self) -> str:
        return anthropic_id("toolu_01")

    # --- request side
    # --------------------------------------------------------------------------------------------
    @staticmethod
    def credential(ctx: RequestContext) -> str:
        """The key from ``x-api-key`` or ``Authorization: Bearer`` (empty when neither carries one)."""
        key = ctx.request.headers.get("x-api-key", "").strip()
        if key:
            return key
        scheme, _, token = ctx.request.headers.get("Authorization", "").strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        if not self.credential(ctx):
            rendered = self._error_response(
                ctx, 401, "authentication_error", "x-api-key header is required", rate_limits=False
            )
            return dataclasses.replace(rendered, error_kind="auth_error")
        if not ctx.request.headers.get("anthropic-version", "").strip():
            rendered = self._error_response(
                ctx, 400, "invalid_request_error", "anthropic-version: header is required", rate_limits=False
            )
            return dataclasses.replace(rendered, error_kind="bad_request")
        return None

    def asked(self, ctx: RequestContext, chat: ChatRequest) -> Asked:
        """Messages API: top-level ``system`` (a string or text blocks), ``stop_sequences``, and ``tool_choice``
        as ``{"type": "auto" | "any" | "none"}`` or ``{"type": "tool", "name": ...}``."""
        body = chat.body if isinstance(chat.body, dict) else {}
        system = body.get("system")
        choice = mapping(body.get("tool_choice"))
        kind = choice.get("type")
        return Asked(
            model=chat.model,
            system=join_system([text_of(system)]),
            messages=turns(body.get("messages")),
            max_tokens=integer(body.get("max_tokens")),
            temperature=number(body.get("temperature")),
            top_p=number(body.get("top_p")),
            stop=stop_list(body.get("stop_sequences")),
            tools=[str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)],
            tool_choice=choice.get("name") if kind == "tool" else CHOICES.get(str(kind)),
        )

    def parse_chat(self, ctx: RequestContext, raw: bytes) -> ChatRequest:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._reject(ctx, "There was an error parsing the body of your request.") from None
        if not isinstance(body, dict):
            raise self._reject(ctx, "Input should be a valid dictionary")
        model = body.get("model")
        if model is None:
            raise self._reject(ctx, "model: Field required")
        if not isinstance(model, str):
            raise self._reject(ctx, "model: Input should be a valid string")
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise self._reject(ctx, "max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise self._reject(ctx, "max_tokens: Input should be a valid integer")
        messages = body.get("messages")
        if messages is None:
            raise self._reject(ctx, "messages: Field required")
        if not isinstance(messages, list):
            raise self._reject(ctx, "messages: Input should be a valid list")
        if not messages:
            raise self._reject(ctx, "messages: at least one message is required")
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise self._reject(ctx, f"messages.{i}: Input should be a valid dictionary")
            if message.get("role") not in ("user", "assistant", "system"):
                raise self._reject(ctx, f"messages.{i}.role: Input should be 'user' or 'assistant'")
            if "content" not in message:
                raise self._reject(ctx, f"messages.{i}.content: Field required")
        system = body.get("system")
        if system is not None and not isinstance(system, (str, list)):
            raise self._reject(ctx, "system: Input should be a valid string")
        stream = body.get("stream", False)
        if stream is not None and not isinstance(stream, bool):
            raise self._reject(ctx, "stream: Input should be a valid boolean")
        contents = ([system] if system else []) + [m.get("content") for m in messages]
        return ChatRequest(
            model=model,
            messages=messages,
            contents=contents,
            tools=self._tools(ctx, body.get("tools")),
            stream=bool(stream),
            include_usage=bool(stream),
            body=body,
        )

    def _tools(self, ctx: RequestContext, tools: Any) -> list[ToolDef]:
        if tools is None:
            return []
        if not isinstance(tools, list):
            raise self._reject(ctx, "tools: Input should be a valid list")
        out: list[ToolDef] = []
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
                raise self._reject(ctx, f"tools.{i}.custom.name: Field required")
            if "type" not in tool and not isinstance(tool.get("input_schema"), dict):
                raise self._reject(ctx, f"tools.{i}.custom.input_schema: Field required")
            out.append(ToolDef(name=tool["name"], parameters=tool.get("input_schema"), raw=tool))
        return out

    def _reject(self, ctx: RequestContext, message: str) -> Rejected:
        rendered = self._error_response(ctx, 400, "invalid_request_error", message)
        return Rejected(dataclasses.replace(rendered, error_kind="bad_request"))

    # --- headers
    # -------------------------------------------------------------------------------------------------
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        return {
            "request-id": ctx.request_id,
            "anthropic-organization-id": ORGANIZATION_ID,
            "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
            "x-robots-tag": "none",
            "via": "1.1 google",
            "cf-cache-status": "DYNAMIC",
            "cf-ray": f"{secrets.token_hex(8)}-SJC",
            "Server": "cloudflare",
            **self.rate_limit_headers(ctx, scenario),
        }

    def rate_limit_headers(self, ctx: RequestContext, scenario: Scenario | None) -> dict[str, str]:
        """The twelve ``anthropic-ratelimit-*`` headers; input tokens exhausted (and a later reset) on a rate limit."""
        now = datetime.now(UTC)
        limited = scenario is not None and scenario.error == "rate_limit"
        wait = self._retry_after(scenario) if limited else 0.0
        used = self._input_tokens(ctx)
        max_tokens = ctx.chat.body.get("max_tokens", 0) if ctx.chat is not None else 0
        out_limit = LIMIT_OUTPUT_TOKENS
        input_remaining = 0 if limited else max(LIMIT_INPUT_TOKENS - used, 0)
        output_remaining = max(out_limit - int(max_tokens or 0), 0)
        soon = rfc3339(now + timedelta(seconds=1))
        reset_input = soon
        if limited:
            # the exhausted buckets reset at the first whole second at or after the wait: what a client reading
            # only these headers (the reset_headers form) must wait for
            deadline = deadline_after(max(wait, 1.0), now.timestamp())
            ctx.extra["reset_deadline"] = deadline
            reset_input = rfc3339(datetime.fromtimestamp(deadline, UTC))
        values = {
            "requests": (LIMIT_REQUESTS, LIMIT_REQUESTS - 1, soon),
            "tokens": (
                LIMIT_INPUT_TOKENS + out_limit,
                input_remaining + output_remaining,
                reset_input,
            ),
            "input-tokens": (LIMIT_INPUT_TOKENS, input_remaining, reset_input),
            "output-tokens": (out_limit, output_remaining, soon),
        }
        headers: dict[str, str] = {}
        for name, (limit, remaining, reset) in values.items():
            headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{name}-remaining"] = str(remaining)
            headers[f"anthropic-ratelimit-{name}-reset"] = reset
        return headers

    @staticmethod
    def _retry_after(scenario: Scenario | None) -> float:
        if scenario is not None and scenario.retry_after is not None:
            return scenario.retry_after
        return 1.0

    def _input_tokens(self, ctx: RequestContext) -> int:
        if ctx.chat is None:
            return 0
        return input_tokens(ctx.chat.contents, [t.raw for t in ctx.chat.tools])

    # --- errors
    # --------------------------------------------------------------------------------------------------
    def error_fields(
        self, kind: str, status: int | None, ctx: RequestContext, scenario: Scenario | None
    ) -> tuple[int, str, str, dict[str, Any] | None]:
        """(status, type, message, details) Anthropic uses for a fault kind, filled in for this request."""
        native_status, etype, template = ERRORS.get(kind, ERRORS["server_error"])
        status = status or native_status
        details: dict[str, Any] | None = None
        if kind == "quota_exhausted" and status in QUOTA_VARIANTS:
            etype, template, details = QUOTA_VARIANTS[status]
        model = ctx.chat.model if ctx.chat is not None else "claude-sonnet-4-5"
        first_of_month = (datetime.now(UTC).replace(day=1) + timedelta(days=32)).replace(day=1)
        message = template.format(
            model=model,
            used=CONTEXT_WINDOW + max(self._input_tokens(ctx), 1),
            window=CONTEXT_WINDOW,
            limit=f"{LIMIT_INPUT_TOKENS:,}",
            reset=first_of_month.strftime("%Y-%m-%d at 00:00 UTC"),
        )
        if scenario is not None and scenario.message:
            message = scenario.message
        return status, etype, message, details

    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        # The engine passes the neutral default status; Anthropic's own one wins unless the scenario set one.
        wanted = scenario.status if scenario.status is not None and scenario.error == kind else None
        status, etype, message, details = self.error_fields(kind, wanted, ctx, scenario)
        rendered = self._error_response(
            ctx, status, etype, message, details=details, scenario=scenario, rate_limits=kind != "auth_error"
        )
        headers = dict(rendered.headers)
        hint: RetryHint | None = None
        form = self.retry_form(scenario)
        if form == "seconds" and (
            scenario.retry_after is not None or (status == 429 and kind == "rate_limit")
        ):
            headers["retry-after"] = retry_after_value(self._retry_after(scenario))
            hint = RetryHint(form, float(headers["retry-after"]))
        deadline = ctx.extra.get("reset_deadline")
        if form == "reset_headers" and kind == "rate_limit" and isinstance(deadline, float):
            hint = RetryHint(form, deadline - time.time(), deadline)
        if kind == "quota_exhausted":
            headers["x-should-retry"] = "false"
        return Rendered(
            status, headers, rendered.body, error_kind=kind, retry_hint=hint.as_dict() if hint else None
        )

    def _error_response(
        self,
        ctx: RequestContext,
        status: int,
        etype: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        scenario: Scenario | None = None,
        rate_limits: bool = True,
    ) -> Rendered:
        headers = self.base_headers(ctx, status, scenario)
        if not rate_limits:
            headers = {k: v for k, v in headers.items() if not k.startswith("anthropic-ratelimit-")}
        headers["Content-Type"] = JSON
        error: dict[str, Any] = {"type": etype, "message": message}
        if details is not None:
            error["details"] = details
        body = {"type": "error", "error": error, "request_id": ctx.request_id}
        return Rendered(status, headers, dumps(body).encode())

    # --- non-streamed
    # --------------------------------------------------------------------------------------------
    @staticmethod
    def usage_object(plan: Plan, *, output_tokens: int | None = None) -> dict[str, Any]:
        u = plan.usage
        return {
            "input_tokens": u.input_tokens - u.cached_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": u.cached_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": u.output_tokens if output_tokens is None else output_tokens,
            "service_tier": "standard",
        }

    @staticmethod
    def _model(ctx: RequestContext) -> str:
        assert ctx.chat is not None
        return SNAPSHOTS.get(ctx.chat.model, ctx.chat.model)

    @staticmethod
    def _thinking(plan: Plan) -> str:
        """Summarized thinking text for a plan with reasoning tokens (its length is not what is billed)."""
        return "Considering the request before answering." if plan.usage.reasoning_tokens else ""

    @staticmethod
    def _signature() -> str:
        return "Eq" + secrets.token_urlsafe(96)

    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        assert ctx.chat is not None and ctx.scenario is not None
        content: list[dict[str, Any]] = []
        if self._thinking(plan):
            content.append(
                {"type": "thinking", "thinking": self._thinking(plan), "signature": self._signature()}
            )
        for call in plan.tool_calls:
            content.append(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": json.loads(call.arguments)}
            )
        if not plan.tool_calls:
            content.append({"type": "text", "text": plan.text})
        tool_calls = journal_tool_calls(plan)
        stop_reason = STOP_REASONS.get(plan.finish_reason, plan.finish_reason)
        body: dict[str, Any] = {
            "model": self._model(ctx),
            "id": ctx.response_id,
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }
        usage: dict[str, Any] | None = None
        if ctx.scenario.usage == "normal":
            usage = self.usage_object(plan)
            body["usage"] = usage
        elif ctx.scenario.usage == "null":
            body["usage"] = None
        headers = {**self.base_headers(ctx, 200, ctx.scenario), "Content-Type": JSON}
        return Rendered(
            200,
            headers,
            dumps(body).encode(),
            text=plan.text,
            tool_calls=tool_calls,
            usage=usage,
            finish_reason=stop_reason,
        )

    # --- streamed
    # ------------------------------------------------------------------------------------------------
    def stream_headers(self, ctx: RequestContext) -> dict[str, str]:
        return {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}

    @staticmethod
    def _event(name: str, payload: dict[str, Any]) -> bytes:
        return sse_event(payload, event=name)

    @staticmethod
    def _block(ctx: RequestContext) -> int:
        index: int = ctx.extra.get("block", 0)
        return index

    def _delta(self, ctx: RequestContext, delta: dict[str, Any]) -> bytes:
        return self._event(
            "content_block_delta", {"type": "content_block_delta", "index": self._block(ctx), "delta": delta}
        )

    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        assert ctx.scenario is not None
        message: dict[str, Any] = {
            "model": self._model(ctx),
            "id": ctx.response_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        usage: dict[str, Any] | None = None
        if ctx.scenario.usage == "normal":
            # message_start carries the input side and a token-so-far output count; live streams add inference_geo
            usage = {**self.usage_object(plan, output_tokens=1), "inference_geo": "not_available"}
            message["usage"] = usage
        elif ctx.scenario.usage == "null":
            message["usage"] = None
        frames = [
            Frame(
                self._event("message_start", {"type": "message_start", "message": message}),
                "open",
                usage=usage,
            )
        ]
        block = 0
        thinking = self._thinking(plan)
        if thinking:
            frames.append(
                Frame(self._block_start(0, {"type": "thinking", "thinking": "", "signature": ""}), "open")
            )
            ctx.extra["block"] = 0
            frames.append(Frame(self._delta(ctx, {"type": "thinking_delta", "thinking": thinking}), "open"))
            frames.append(
                Frame(self._delta(ctx, {"type": "signature_delta", "signature": self._signature()}), "open")
            )
            frames.append(Frame(self._block_stop(0), "open"))
            block = 1
        ctx.extra["block"] = block
        ctx.extra["first_tool_block"] = block
        if not plan.tool_calls:
            frames.append(Frame(self._block_start(block, {"type": "text", "text": ""}), "open"))
        frames.append(self._ping())
        return frames

    def _block_start(self, index: int, block: dict[str, Any]) -> bytes:
        return self._event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
        )

    def _block_stop(self, index: int) -> bytes:
        return self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    @staticmethod
    def _ping() -> Frame:
        # the live API writes this one with a space after the colon
        return Frame(b'event: ping\ndata: {"type": "ping"}\n\n', "keepalive")

    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        return Frame(self._delta(ctx, {"type": "text_delta", "text": piece}), "content", text=piece)

    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        if fragment.id is not None:
            # Each parallel call is its own tool_use block, started, filled and stopped before the next one starts
            # (the SDK's accumulator appends a block on content_block_start and indexes deltas by block index:
            # anthropic/lib/streaming/_messages.py accumulate_event; provider-wire-formats.md §4).
            header: dict[str, Any] = {
                "type": "tool_use",
                "id": fragment.id,
                "name": fragment.name,
                "input": {},
            }
            block = int(ctx.extra.get("first_tool_block", 0)) + fragment.index
            data = b""
            if fragment.index > 0:
                data += self._block_stop(self._block(ctx))
            ctx.extra["block"] = block
            data += self._block_start(block, header) + self._delta(
                ctx, {"type": "input_json_delta", "partial_json": fragment.arguments}
            )
        else:
            data = self._delta(ctx, {"type": "input_json_delta", "partial_json": fragment.arguments})
        return Frame(data, "tool", tool=fragment)

    def stream_empty(self, ctx: RequestContext, plan: Plan) -> Frame | None:
        if plan.tool_calls:
            return Frame(self._delta(ctx, {"type": "input_json_delta", "partial_json": ""}), "empty")
        return Frame(self._delta(ctx, {"type": "text_delta", "text": ""}), "empty")

    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        return self._ping()

    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        assert ctx.scenario is not None
        stop_reason = STOP_REASONS.get(plan.finish_reason, plan.finish_reason)
        payload: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        }
        usage: dict[str, Any] | None = None
        if ctx.scenario.usage == "normal":
            full = self.usage_object(plan)
            usage = {k: full[k] for k in DELTA_USAGE_FIELDS}
            payload["usage"] = usage
        elif ctx.scenario.usage == "null":
            payload["usage"] = None
        return [
            Frame(self._block_stop(self._block(ctx)), "finish"),
            Frame(self._event("message_delta", payload), "finish", usage=usage, finish_reason=stop_reason),
            Frame(self._event("message_stop", {"type": "message_stop"}), "terminator"),
        ]

    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        _, etype, message, _ = self.error_fields(kind, None, ctx, ctx.scenario)
        body = {
            "type": "error",
            "error": {"details": None, "type": etype, "message": message},
            "request_id": ctx.request_id,
        }
        return [Frame(self._event("error", body), "error")]

    def stream_malformed(self, ctx: RequestContext, plan: Plan) -> Frame:
        head = dumps(
            {"type": "content_block_delta", "index": self._block(ctx), "delta": {"type": "text_delta"}}
        )
        return Frame(f"event: content_block_delta\ndata: {head[: len(head) // 2]}\n\n".encode(), "malformed")
