"""The Acme API as the mock server plays it, mounted under ``/acme`` (advertised as a ``provcert.personalities``
entry point, so the mock server finds it without any change to provcert).

What each preset looks like on Acme's wire: errors are ``{"fault":{"code","detail","retry_in_ms"}}`` with the
status (rate limits carry the retry hint in the body, in milliseconds, and no header); every response carries
``acme-request-id``; a stream is SSE with named events (``delta``, ``call``, ``stop``, ``done``, ``fault``) and
``: ping`` keep-alives; ``done`` is the terminator; ``null_usage`` sends ``"tokens": null`` and ``missing_usage``
leaves ``tokens`` out; content filtering is ``stop: "blocked"`` or a ``BLOCKED`` fault.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any

from mockserver.framing import dumps, sse_comment, sse_event
from mockserver.personalities.base import (
    Frame,
    Personality,
    Rejected,
    Rendered,
    RequestContext,
    StreamState,
    ToolFragment,
)
from mockserver.plan import ChatRequest, Plan, ToolDef
from mockserver.scenarios import Scenario

JSON = "application/json"

#: fault kind -> (Acme fault code, detail)
FAULTS: dict[str, tuple[str, str]] = {
    "rate_limit": ("RATE_LIMITED", "Too many requests for this key; retry later."),
    "quota_exhausted": ("QUOTA_EXCEEDED", "The monthly token quota of this account is used up."),
    "auth_error": ("UNAUTHENTICATED", "Missing or invalid Acme key."),
    "permission_denied": ("FORBIDDEN", "This key may not use the requested model."),
    "not_found": ("NO_SUCH_MODEL", "No model named {model}."),
    "bad_request": ("INVALID_ARGUMENT", "sampling.temperature must be between 0 and 2."),
    "context_length": ("CONTEXT_TOO_LONG", "The input does not fit the model's context window."),
    "content_filter": ("BLOCKED", "The input was blocked by the safety policy."),
    "server_error": ("INTERNAL", "Internal error."),
    "bad_gateway": ("UPSTREAM", "Bad gateway."),
    "service_unavailable": ("UNAVAILABLE", "Service temporarily unavailable."),
    "gateway_timeout": ("UPSTREAM_TIMEOUT", "Upstream timed out."),
    "overloaded": ("BUSY", "All capacity is in use; retry later."),
}
STOPS = {"stop": "end", "length": "max_tokens", "tool_calls": "function_call", "content_filter": "blocked"}


class AcmePersonality(Personality):
    name = "acme"
    prefix = "/acme"

    def routes(self) -> list[tuple[str, str]]:
        return [("POST", "/v2/generate")]

    def new_request_id(self) -> str:
        return f"acme-{secrets.token_hex(12)}"

    def new_response_id(self) -> str:
        return f"gen_{secrets.token_hex(10)}"

    def new_tool_call_id(self) -> str:
        return f"fn_{secrets.token_hex(8)}"

    # --- request side
    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        scheme, _, key = ctx.request.headers.get("Authorization", "").partition(" ")
        if scheme == "Acme" and key.strip():
            return None
        return dataclasses.replace(self._fault(ctx, 401, "auth_error", None), error_kind="auth_error")

    def parse_chat(self, ctx: RequestContext, raw: bytes) -> ChatRequest:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._invalid(ctx, "The body is not JSON.") from None
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise self._invalid(ctx, "model is required.")
        turns = body.get("input")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, dict) for t in turns):
            raise self._invalid(ctx, "input must be a non-empty list of turns.")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise self._invalid(ctx, "stream must be a boolean.")
        functions = body.get("functions") or []
        tools = [
            ToolDef(name=f["name"], parameters=f.get("schema"), raw=f)
            for f in functions
            if isinstance(f, dict) and isinstance(f.get("name"), str)
        ]
        return ChatRequest(
            model=body["model"],
            messages=turns,
            contents=[t.get("text") for t in turns],
            tools=tools,
            stream=stream,
            include_usage=True,
            body=body,
        )

    def _invalid(self, ctx: RequestContext, detail: str) -> Rejected:
        body = {"fault": {"code": "INVALID_ARGUMENT", "detail": detail}}
        headers = {**self.base_headers(ctx, 400, None), "Content-Type": JSON}
        return Rejected(Rendered(400, headers, dumps(body).encode(), error_kind="bad_request"))

    # --- whole responses
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        return {"acme-request-id": ctx.request_id}

    def _fault_body(self, ctx: RequestContext, kind: str, scenario: Scenario | None) -> dict[str, Any]:
        code, detail = FAULTS.get(kind, FAULTS["server_error"])
        fault: dict[str, Any] = {
            "code": code,
            "detail": detail.format(model=ctx.chat.model if ctx.chat else "?"),
        }
        if scenario is not None and scenario.message:
            fault["detail"] = scenario.message
        if scenario is not None and scenario.retry_after is not None and kind in ("rate_limit", "overloaded"):
            fault["retry_in_ms"] = round(scenario.retry_after * 1000)
        return {"fault": fault}

    def _fault(self, ctx: RequestContext, status: int, kind: str, scenario: Scenario | None) -> Rendered:
        headers = {**self.base_headers(ctx, status, scenario), "Content-Type": JSON}
        return Rendered(
            status, headers, dumps(self._fault_body(ctx, kind, scenario)).encode(), error_kind=kind
        )

    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        return self._fault(ctx, status, kind, scenario)

    def _tokens(self, ctx: RequestContext, plan: Plan) -> tuple[bool, dict[str, int] | None]:
        """(whether ``tokens`` is present, its value) for the scenario's usage mode."""
        assert ctx.scenario is not None
        if ctx.scenario.usage == "missing":
            return False, None
        if ctx.scenario.usage == "null":
            return True, None
        return True, {"in": plan.usage.input_tokens, "out": plan.usage.output_tokens}

    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        assert ctx.chat is not None
        # every call of the answer (several when the scenario asks for parallel tool calls), in order
        calls = [{"id": c.id, "name": c.name, "args": json.loads(c.arguments)} for c in plan.tool_calls]
        body: dict[str, Any] = {
            "id": ctx.response_id,
            "model": ctx.chat.model,
            "output": {"text": plan.text, "calls": calls},
            "stop": STOPS[plan.finish_reason],
        }
        present, tokens = self._tokens(ctx, plan)
        if present:
            body["tokens"] = tokens
        headers = {**self.base_headers(ctx, 200, ctx.scenario), "Content-Type": JSON}
        return Rendered(
            200,
            headers,
            dumps(body).encode(),
            text=plan.text,
            tool_calls=[
                {"index": i, "id": c.id, "name": c.name, "arguments": c.arguments}
                for i, c in enumerate(plan.tool_calls)
            ],
            usage=tokens,
            finish_reason=body["stop"],
        )

    # --- streams
    def stream_headers(self, ctx: RequestContext) -> dict[str, str]:
        return {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        return []

    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        return Frame(sse_event({"text": piece}, event="delta"), "content", text=piece)

    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        data: dict[str, Any] = {"index": fragment.index, "args_part": fragment.arguments}
        if fragment.id is not None:
            data.update(id=fragment.id, name=fragment.name)
        return Frame(sse_event(data, event="call"), "tool", tool=fragment)

    def stream_empty(self, ctx: RequestContext, plan: Plan) -> Frame | None:
        return Frame(sse_event({"text": ""}, event="delta"), "empty")

    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        return Frame(sse_comment("ping"), "keepalive")

    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        stop = STOPS[plan.finish_reason]
        present, tokens = self._tokens(ctx, plan)
        data: dict[str, Any] = {"stop": stop}
        if present:
            data["tokens"] = tokens
        return [
            Frame(sse_event(data, event="stop"), "finish", usage=tokens, finish_reason=stop),
            Frame(sse_event({}, event="done"), "terminator"),
        ]

    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        return [Frame(sse_event(self._fault_body(ctx, kind, None), event="fault"), "error")]

    def stream_malformed(self, ctx: RequestContext, plan: Plan) -> Frame:
        return Frame(b'event: delta\ndata: {"text": \n\n', "malformed")
