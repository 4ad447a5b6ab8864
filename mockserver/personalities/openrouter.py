"""OpenRouter chat completions as the official ``openai`` SDK sees it with ``base_url=.../api/v1`` (wire formats §8).

Rendered after the recorded traffic (``real-cassettes`` #41, #43, #44) where it exists, the docs elsewhere:

* **Ids**: every id is a generation id ``gen-<unix time>-<20 alphanumerics>``: the body ``id`` of completions and
  chunks, and the ``x-generation-id`` response header on answers (HTTP 200, streams included). Errors raised before a
  generation exists (every HTTP 4xx/5xx) carry no id at all, as in the recorded 429s: the body has only ``error`` and
  ``user_id``.
* **Headers**: OpenRouter sends no rate-limit headers; ``Retry-After`` (seconds; fractional only for sub-second
  scenarios) on 429/503 when the scenario sets a wait. The recorded ``permissions-policy``/``referrer-policy``/
  ``vary`` headers are sent too.
* **Errors**: ``{"error": {"code": <int = HTTP status>, "message", "metadata"?}, "user_id": "user_..."}``. Per preset:
  rate_limit 429 "Provider returned error" with ``metadata.provider_name``/``raw`` (as recorded); quota_exhausted
  **402** (insufficient credits); auth_error 401 "User not found." (missing key: "No auth credentials found");
  permission_denied 403 without moderation metadata; not_found 404 "No endpoints found for <model>."; bad_request 400;
  context_length 400 "This endpoint's maximum context length is N tokens..."; content_filter **403** moderation with
  ``metadata.reasons``/``flagged_input``/``provider_name``/``model_slug``; server_error 500; bad_gateway 502 "Provider
  returned error" (``provider_name``, ``raw``); service_unavailable and overloaded **503** (no provider with capacity:
  OpenRouter's overload signal); gateway_timeout 504 (OpenRouter documents 408 for its own timeouts, which is not a
  5xx; a 504 is what an edge timeout looks like). error_in_200: HTTP 200 whose body is the error object (errors after
  processing started), which the openai SDK returns as a completion with ``choices=None``.
* **Bodies** (as recorded): ``provider``, per-choice ``native_finish_reason`` (the upstream's own value), message
  ``reasoning: null``, usage with ``cost``, ``is_byok``, ``cost_details``, ``prompt_tokens_details.cached_tokens`` and
  ``completion_tokens_details.reasoning_tokens``.
* **Streams**: ``: OPENROUTER PROCESSING`` comment keep-alives (one always precedes the first chunk, as recorded; the
  keepalive slots send more); every delta repeats ``role`` and carries ``reasoning``/``reasoning_details``; usage comes
  on a final chunk **always** (no opt-in needed). The recording (Dec 2025) shows that chunk with one choice whose delta
  is empty and ``finish_reason: null``, not the ``choices: []`` of the docs; the mock follows the recording. Then
  ``data: [DONE]``.
* **In-band error**: HTTP stays 200; a data event with top-level ``error: {code: <int>, message}`` and
  ``choices: [{index: 0, delta: {content: ""}, finish_reason: "error"}]``; the stream then ends without [DONE]. (The
  docs' example shows a string code; the integer form matches the HTTP error bodies. The openai SDK raises APIError on
  either.)
"""

from __future__ import annotations

import json
import secrets
import time
from decimal import Decimal
from typing import Any

from mockserver.framing import sse_comment, sse_event
from mockserver.personalities.base import (
    Frame,
    Rendered,
    RequestContext,
    StreamState,
    ToolFragment,
    random_token,
)
from mockserver.personalities.openai import OpenAIPersonality
from mockserver.plan import Plan
from mockserver.retry_hints import header_hint
from mockserver.scenarios import Scenario

JSON = "application/json"
KEEPALIVE = "OPENROUTER PROCESSING"
CONTEXT_WINDOW = 128_000
PERMISSIONS_POLICY = (
    'payment=(self "https://checkout.stripe.com" "https://connect-js.stripe.com" "https://js.stripe.com" '
    '"https://*.js.stripe.com" "https://hooks.stripe.com")'
)
#: Illustrative per-1M prices (input, output) for the ``cost`` field; cosmetic, no client depends on them.
COST_PER_1M = (Decimal("0.15"), Decimal("0.60"))

#: Fault kind -> (status, message template, with upstream metadata?). Templates use {model}, {used}, {window}.
ERRORS: dict[str, tuple[int, str]] = {
    "rate_limit": (429, "Provider returned error"),
    "quota_exhausted": (
        402,
        "This request requires more credits, or fewer max_tokens. You requested up to {max_tokens} tokens, but can "
        "only afford 0. To increase, visit https://openrouter.ai/settings/credits and add more credits",
    ),
    "auth_error": (401, "User not found."),
    "permission_denied": (403, "This API key is disabled."),
    "not_found": (404, "No endpoints found for {model}."),
    "bad_request": (400, 'Input required: specify "prompt" or "messages"'),
    "context_length": (
        400,
        "This endpoint's maximum context length is {window} tokens. However, you requested about {used} tokens "
        '({used} of text input). Please reduce the length of either one, or use the "middle-out" transform to '
        "compress your prompt automatically.",
    ),
    "content_filter": (
        403,
        '{model} requires moderation on OpenAI. Your input was flagged for "violence". No credits were charged.',
    ),
    "server_error": (500, "Internal Server Error"),
    "bad_gateway": (502, "Provider returned error"),
    "service_unavailable": (503, "No allowed providers are available for the selected model."),
    "gateway_timeout": (504, "Gateway Timeout"),
    "overloaded": (503, "Provider returned error"),
}

PROVIDERS = {"openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "mistralai": "Mistral"}
#: The upstream's own finish reason, reported as ``native_finish_reason``.
NATIVE_FINISH = {
    "Anthropic": {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "content_filter": "refusal",
    },
    "Google": {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"},
}


def provider_name(model: str) -> str:
    return PROVIDERS.get(model.split("/", 1)[0], "OpenAI")


#: Where each fault body comes from (§8 is provider-wire-formats.md §8, after openrouter.ai/docs/api/reference/
#: errors-and-debugging; "#N" a row of the real-cassettes INDEX.md).
FAULT_SOURCES: dict[str, str] = {
    "rate_limit": "real recording #41 (429 'Provider returned error' with metadata.provider_name/raw)",
    "quota_exhausted": "§8 (402 insufficient credits)",
    "auth_error": "§8 (401 bad credentials)",
    "permission_denied": "§8 (403 moderation, guardrail or permissions)",
    "bad_request": "§8 (400 bad request)",
    "context_length": '§8 (400 "This endpoint\'s maximum context length is N tokens...")',
    "content_filter": "§8 (403 moderation with metadata.reasons, flagged_input, provider_name, model_slug)",
    "bad_gateway": "§8 (502 upstream model down, metadata.provider_name/raw)",
    "service_unavailable": "§8 (503 no provider matches the routing requirements)",
    "overloaded": "§8 (503 no provider matches the routing requirements)",
}

#: Fault bodies with no recording and no public source behind them: kind -> why.
UNVERIFIED_FAULTS: dict[str, str] = {
    "not_found": "the 404 'No endpoints found for <model>.' wording is from client reports, not recorded",
    "server_error": "OpenRouter documents no 500 body; the error envelope is assumed",
    "gateway_timeout": "OpenRouter documents 408 for its own timeouts; the 504 edge answer is assumed",
}

#: §8: "429 and 503 may carry Retry-After in seconds" (openrouter.ai/docs/api/reference/errors-and-debugging); read
#: by the openai SDK used against OpenRouter (openai/_base_client.py:859-872).
RETRY_HINT_FORMS: dict[str, str] = {
    "seconds": "Retry-After delta-seconds on 429/503: provider-wire-formats.md §8; openai/_base_client.py:859-872",
}


class OpenRouterPersonality(OpenAIPersonality):
    name = "openrouter"
    prefix = "/openrouter"
    retry_hint_forms = RETRY_HINT_FORMS
    fault_sources = FAULT_SOURCES
    unverified_faults = UNVERIFIED_FAULTS

    def routes(self) -> list[tuple[str, str]]:
        return [("POST", "/api/v1/chat/completions")]

    # --- ids: one generation id, in the body and the x-generation-id header
    def new_request_id(self) -> str:
        return f"gen-{int(time.time())}-{random_token(20)}"

    def new_response_id(self) -> str:
        return self.new_request_id()

    def new_tool_call_id(self) -> str:
        return f"call_{random_token(24)}"

    # --- request side
    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        scheme, _, key = ctx.request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return None
        body = {"error": {"message": "No auth credentials found", "code": 401}}
        return Rendered(401, self._error_headers(), json.dumps(body).encode(), error_kind="auth_error")

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
        """Request validation failures (from the inherited parser) in OpenRouter's error shape."""
        body = {"error": {"message": message, "code": status}, "user_id": _user_id()}
        return Rendered(status, self._error_headers(), json.dumps(body).encode())

    # --- headers
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        headers = {
            "access-control-allow-origin": "*",
            "permissions-policy": PERMISSIONS_POLICY,
            "referrer-policy": "no-referrer, strict-origin-when-cross-origin",
            "vary": "Accept-Encoding",
        }
        if status == 200:
            headers["x-generation-id"] = ctx.request_id
        return headers

    def _error_headers(self) -> dict[str, str]:
        return {
            "access-control-allow-origin": "*",
            "permissions-policy": PERMISSIONS_POLICY,
            "referrer-policy": "no-referrer, strict-origin-when-cross-origin",
            "vary": "Accept-Encoding",
            "Content-Type": JSON,
        }

    # --- errors
    def error_object(self, kind: str, ctx: RequestContext, scenario: Scenario | None) -> dict[str, Any]:
        status, template = ERRORS.get(kind, ERRORS["server_error"])
        model = ctx.chat.model if ctx.chat is not None else "openai/gpt-4o-mini"
        body = ctx.chat.body if ctx.chat is not None and isinstance(ctx.chat.body, dict) else {}
        used = CONTEXT_WINDOW + max(self._input_tokens(ctx), 1)
        message = template.format(
            model=model, used=used, window=CONTEXT_WINDOW, max_tokens=body.get("max_tokens") or 4096
        )
        if scenario is not None and scenario.message:
            message = scenario.message
        error: dict[str, Any] = {"code": status, "message": message}
        upstream = provider_name(model)
        if kind == "rate_limit":
            error["metadata"] = {
                "provider_name": upstream,
                "raw": f"{model} is temporarily rate-limited upstream. Please retry shortly, or add your own key "
                "to accumulate your rate limits: https://openrouter.ai/settings/integrations",
            }
        elif kind in ("bad_gateway", "overloaded"):
            raw = (
                '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
                if kind == "overloaded"
                else "upstream connect error or disconnect/reset before headers"
            )
            error["metadata"] = {"provider_name": upstream, "raw": raw}
        elif kind == "content_filter":
            error["metadata"] = {
                "reasons": ["violence"],
                "flagged_input": _flagged(ctx),
                "provider_name": "OpenAI",
                "model_slug": model,
            }
        return error

    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        error = self.error_object(kind, ctx, scenario)
        status = scenario.status if scenario.status is not None else int(error["code"])
        headers = {**self.base_headers(ctx, status, scenario), "Content-Type": JSON}
        hint = None
        form = self.retry_form(scenario)
        if scenario.retry_after is not None and form is not None:
            hint_headers, sent = header_hint(form, scenario.retry_after, decimals=True, name="Retry-After")
            headers.update(hint_headers)
            hint = sent.as_dict()
        body = {"error": error, "user_id": _user_id()}
        return Rendered(status, headers, json.dumps(body).encode(), error_kind=kind, retry_hint=hint)

    # --- bodies
    def usage_object(self, plan: Plan) -> dict[str, Any]:
        u = plan.usage
        prompt_cost = Decimal(u.input_tokens) * COST_PER_1M[0] / 1_000_000
        completion_cost = Decimal(u.output_tokens) * COST_PER_1M[1] / 1_000_000
        return {
            "prompt_tokens": u.input_tokens,
            "completion_tokens": u.output_tokens,
            "total_tokens": u.total_tokens,
            "cost": float(prompt_cost + completion_cost),
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "audio_tokens": 0, "video_tokens": 0},
            "cost_details": {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": float(prompt_cost),
                "upstream_inference_completions_cost": float(completion_cost),
            },
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens, "image_tokens": 0},
        }

    def _native(self, ctx: RequestContext, finish: str | None) -> str | None:
        if finish is None or ctx.chat is None:
            return finish
        return NATIVE_FINISH.get(provider_name(ctx.chat.model), {}).get(finish, finish)

    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        rendered = super().render_completion(ctx, plan)
        assert ctx.chat is not None and ctx.scenario is not None
        parent = json.loads(rendered.body)
        choice = parent["choices"][0]
        message = {**choice["message"], "reasoning": None}
        if plan.tool_calls:
            message["content"] = ""
            message["tool_calls"] = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
        body: dict[str, Any] = {
            "id": ctx.request_id,
            "provider": provider_name(ctx.chat.model),
            "model": ctx.chat.model,
            "object": "chat.completion",
            "created": ctx.created,
            "choices": [
                {
                    "logprobs": None,
                    "finish_reason": plan.finish_reason,
                    "native_finish_reason": self._native(ctx, plan.finish_reason),
                    "index": 0,
                    "message": message,
                }
            ],
        }
        if "usage" in parent:
            body["usage"] = parent["usage"]
        headers = {**self.base_headers(ctx, 200, ctx.scenario), "Content-Type": JSON}
        return Rendered(
            200,
            headers,
            json.dumps(body, ensure_ascii=False).encode(),
            text=rendered.text,
            tool_calls=rendered.tool_calls,
            usage=rendered.usage,
            finish_reason=rendered.finish_reason,
        )

    # --- streams
    def stream_headers(self, ctx: RequestContext) -> dict[str, str]:
        return {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

    def _chunk(self, ctx: RequestContext, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        assert ctx.chat is not None
        return {
            "id": ctx.request_id,
            "provider": provider_name(ctx.chat.model),
            "model": ctx.chat.model,
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": finish,
                    "native_finish_reason": self._native(ctx, finish),
                    "logprobs": None,
                }
            ],
        }

    @staticmethod
    def _delta(content: str | None, **extra: Any) -> dict[str, Any]:
        return {"role": "assistant", "content": content, "reasoning": None, "reasoning_details": [], **extra}

    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        return [
            Frame(sse_comment(KEEPALIVE), "keepalive"),
            Frame(sse_event(self._chunk(ctx, self._delta(""))), "open"),
        ]

    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        return Frame(sse_event(self._chunk(ctx, self._delta(piece))), "content", text=piece)

    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        call: dict[str, Any] = {"index": fragment.index}
        if fragment.id is not None:
            call.update(id=fragment.id, type="function", function={"name": fragment.name, "arguments": ""})
        else:
            call["function"] = {"arguments": fragment.arguments}
        chunk = self._chunk(ctx, self._delta(None, tool_calls=[call]))
        return Frame(sse_event(chunk), "tool", tool=fragment)

    def stream_empty(self, ctx: RequestContext, plan: Plan) -> Frame | None:
        return Frame(sse_event(self._chunk(ctx, self._delta(""))), "empty")

    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        return Frame(sse_comment(KEEPALIVE), "keepalive")

    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        assert ctx.scenario is not None
        frames = [
            Frame(
                sse_event(self._chunk(ctx, self._delta(""), plan.finish_reason)),
                "finish",
                finish_reason=plan.finish_reason,
            )
        ]
        if ctx.scenario.usage != "missing":
            usage = self.usage_object(plan) if ctx.scenario.usage == "normal" else None
            chunk = {**self._chunk(ctx, {"role": "assistant", "content": ""}), "usage": usage}
            frames.append(Frame(sse_event(chunk), "usage", usage=usage))
        frames.append(Frame(sse_event("[DONE]"), "terminator"))
        return frames

    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        assert ctx.chat is not None
        error = self.error_object(kind, ctx, ctx.scenario)
        chunk = {
            "id": ctx.request_id,
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.chat.model,
            "provider": provider_name(ctx.chat.model),
            "error": {"code": error["code"], "message": error["message"]},
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": ""},
                    "finish_reason": "error",
                    "native_finish_reason": "error",
                }
            ],
        }
        return [Frame(sse_event(chunk), "error")]


def _user_id() -> str:
    return f"user_{secrets.token_hex(14)}"


def _flagged(ctx: RequestContext) -> str:
    if ctx.chat is None or not ctx.chat.contents:
        return ""
    last = ctx.chat.contents[-1]
    return (last if isinstance(last, str) else json.dumps(last))[:100]
