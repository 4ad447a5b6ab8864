"""Ollama's native chat API as ``ollama-python`` 0.6.3 sees it (provider-wire-formats.md §9), under ``/ollama``.

What is rendered, and why:

* ``POST /ollama/api/chat``. No auth (a local server): a bearer token (Ollama cloud, ``OLLAMA_API_KEY``) is
  accepted and ignored. ``stream`` defaults to **true** when absent, as on the real server.
* Whole bodies: ``{"model","created_at","message":{"role":"assistant","content",["tool_calls"]},"done_reason",
  "done":true,"total_duration","load_duration","prompt_eval_count","prompt_eval_duration","eval_count",
  "eval_duration"}``, durations in nanoseconds, ``application/json; charset=utf-8``, JSON compact and with
  ``<``/``>``/``&`` escaped as Go's encoder does.
* Streams: NDJSON (``application/x-ndjson``), one object per ``\\n``-terminated line, never a blank line (the SDK
  runs ``json.loads`` on every line and would crash). Content lines are ``done:false``; the last line is
  ``done:true`` with ``done_reason`` and the counters, and it is the terminator (``truncated_stream`` drops it:
  the stream just ends). ``empty_chunks`` renders ``"content":""`` lines; keep-alives do not exist (none sent).
* Usage: ``prompt_eval_count``/``eval_count``. Go omits empty counters (``omitempty``) and never writes null, so
  ``null_usage`` and ``missing_usage`` both render the done line without them.
* Tool calls arrive whole (``arguments`` an object, no id) in one ``done:false`` line; the engine's later
  argument fragments have nothing to add and go out as ``"content":""`` lines, as Ollama does while it buffers.
  Parallel calls come one whole call per line, in order (the message has no index: clients count them).
  ``done_reason`` stays ``"stop"`` for a tool call, and ``filtered_output`` also ends with ``"stop"``: Ollama has
  no content filter and no such reason (the registry declares ``content_filter: false``).
* Errors: ``{"error": "<text>"}`` with the status, in Ollama's own words: 404 ``model "x" not found, try pulling
  it first``; 400 ``prompt too long; exceeded max context length by N tokens`` (newer builds; older ones truncate
  silently); 503 ``server busy, please try again.  maximum pending requests exceeded`` for ``overloaded`` (the
  scheduler's full queue); 500 runner failures. Local Ollama never answers 429; Ollama cloud does, with usage-limit
  texts: ``rate_limit`` renders the hourly limit (``please wait``) and ``quota_exhausted`` the weekly one. The
  mock adds a standard ``Retry-After`` (whole seconds) to the 429 so clients that honour it can be tested; the
  real cloud's hint is undocumented. 401 ``unauthorized`` and 403 ``forbidden`` are Ollama cloud's. There is no
  content-filter error either: ``content_filter`` renders as a plain 400.
* No request-id and no rate-limit headers exist, so none are sent. A mid-stream failure is a line
  ``{"error": "..."}`` (the SDK raises ``ResponseError`` with ``status_code == -1``).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from mockserver.asked import Asked, integer, join_system, mapping, number, stop_list, text_of, turns
from mockserver.framing import dumps
from mockserver.personalities.base import (
    Frame,
    Personality,
    Rejected,
    Rendered,
    RequestContext,
    StreamState,
    ToolFragment,
    journal_tool_calls,
)
from mockserver.plan import ChatRequest, Plan, ToolCallPlan, ToolDef
from mockserver.retry_hints import header_hint
from mockserver.scenarios import Scenario
from mockserver.truth import input_tokens

JSON = "application/json; charset=utf-8"
NDJSON = "application/x-ndjson"
#: simulated load time of an already-loaded model, in nanoseconds
LOAD_NS = 18_500_000

#: Fault kind -> message template ({model}, {over}). Ollama's own texts where it has them (see module doc).
ERRORS: dict[str, str] = {
    "rate_limit": "you've reached your hourly usage limit, please wait or upgrade to continue",
    "quota_exhausted": (
        "you've reached your weekly usage limit, upgrade for higher limits: https://ollama.com/upgrade"
    ),
    "auth_error": "unauthorized",
    "permission_denied": "forbidden",
    "not_found": 'model "{model}" not found, try pulling it first',
    "bad_request": 'invalid format: expected "json" or a valid JSON schema',
    "context_length": "prompt too long; exceeded max context length by {over} tokens",
    "content_filter": "request blocked: the prompt was rejected",
    "server_error": "llama runner process has terminated: exit status 2",
    "bad_gateway": "bad gateway",
    "service_unavailable": "service unavailable",
    "gateway_timeout": "gateway timeout",
    "overloaded": "server busy, please try again.  maximum pending requests exceeded",
}

#: Ollama's done_reason for the neutral finish reasons (it has only stop and length for generation).
DONE_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop", "content_filter": "stop"}


def go_json(obj: Any) -> str:
    """Compact JSON as Go's encoder writes it: UTF-8 kept, ``<``, ``>`` and ``&`` escaped."""
    return dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def line(obj: Any) -> bytes:
    """One NDJSON record, ``\\n``-terminated."""
    return (go_json(obj) + "\n").encode()


def created_at() -> str:
    """RFC 3339 with sub-second digits and a ``Z``, as Ollama writes ``created_at``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


#: Where each fault body comes from (§9 is provider-wire-formats.md §9: ``{"error": "<text>"}``).
FAULT_SOURCES: dict[str, str] = {
    "not_found": "§9 (404 'model \"x\" not found, try pulling it first', verified against the SDK)",
    "bad_request": "§9 (400 for a bad request, {'error': text})",
    "context_length": "§9 ('prompt too long; exceeded max context length by N tokens', newer builds)",
    "server_error": "§9 (500 for runner failures)",
}

#: Fault bodies with no recording and no public source behind them: kind -> why.
UNVERIFIED_FAULTS: dict[str, str] = {
    "rate_limit": "local Ollama never answers 429; Ollama cloud's usage-limit text is from client reports",
    "quota_exhausted": "Ollama cloud's weekly usage-limit text is from client reports, not recorded",
    "auth_error": "Ollama cloud's 401 'unauthorized' is assumed, not recorded",
    "permission_denied": "Ollama cloud's 403 'forbidden' is assumed, not recorded",
    "content_filter": "Ollama has no content filter; the preset renders a plain 400",
    "bad_gateway": "a 502 {'error': text} is assumed (a proxy in front of Ollama would answer it)",
    "service_unavailable": "a 503 {'error': text} is assumed, not recorded",
    "gateway_timeout": "a 504 {'error': text} is assumed (a proxy in front of Ollama would answer it)",
    "overloaded": "the scheduler's 'server busy' 503 text is from the Ollama source, not recorded",
    "retry:seconds": "Ollama sends no retry hint (§9.2: no headers of note); the mock adds Retry-After so clients "
    "that honour it can be tested",
}

#: Ollama sends no retry hint (provider-wire-formats.md §9.2: "None of note"); the one form is the mock's own
#: addition (marked unverified above), kept so the gateway's retry path can still be exercised for Ollama cloud.
RETRY_HINT_FORMS: dict[str, str] = {
    "seconds": "Retry-After delta-seconds on a 429: the mock's addition, no source (unverified)",
}


class OllamaPersonality(Personality):
    name = "ollama"
    prefix = "/ollama"
    retry_hint_forms = RETRY_HINT_FORMS
    fault_sources = FAULT_SOURCES
    unverified_faults = UNVERIFIED_FAULTS

    def routes(self) -> list[tuple[str, str]]:
        return [("POST", "/api/chat")]

    # --- ids: Ollama has none on the wire; these only satisfy the engine's bookkeeping
    def new_request_id(self) -> str:
        return f"ollama-{secrets.token_hex(8)}"

    def new_response_id(self) -> str:
        return f"ollama-{secrets.token_hex(8)}"

    def new_tool_call_id(self) -> str:
        return f"call_{secrets.token_hex(8)}"

    # --- request side
    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        return None

    def asked(self, ctx: RequestContext, chat: ChatRequest) -> Asked:
        """/api/chat: ``system`` messages; sampling in ``options`` (num_predict, temperature, top_p, stop);
        Ollama has no tool choice field: with tools declared, the model always decides ("auto")."""
        body = chat.body if isinstance(chat.body, dict) else {}
        options = mapping(body.get("options"))
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        tools = [
            str((t.get("function") or {}).get("name"))
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        return Asked(
            model=chat.model,
            system=join_system([text_of(m.get("content")) for m in messages if m.get("role") == "system"]),
            messages=turns(messages, skip=("system",)),
            max_tokens=integer(options.get("num_predict")),
            temperature=number(options.get("temperature")),
            top_p=number(options.get("top_p")),
            stop=stop_list(options.get("stop")),
            tools=tools,
            tool_choice="auto" if tools else None,
        )

    def parse_chat(self, ctx: RequestContext, raw: bytes) -> ChatRequest:
        if not raw.strip():
            raise self._reject("missing request body")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._reject("invalid character looking for beginning of value") from None
        if not isinstance(body, dict):
            raise self._reject(
                f"json: cannot unmarshal {_go_type(body)} into Go value of type api.ChatRequest"
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            if model is not None and not isinstance(model, str):
                raise self._unmarshal(model, "model", "string")
            raise self._reject("model is required")
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise self._unmarshal(messages, "messages", "[]api.Message")
        for message in messages:
            if not isinstance(message, dict):
                raise self._unmarshal(message, "messages", "api.Message")
        stream = body.get("stream", True)
        if stream is None:
            stream = True
        if not isinstance(stream, bool):
            raise self._unmarshal(stream, "stream", "bool")
        return ChatRequest(
            model=model,
            messages=messages,
            contents=[m.get("content") for m in messages],
            tools=self._tools(body.get("tools")),
            stream=stream,
            include_usage=True,
            body=body,
        )

    def _tools(self, tools: Any) -> list[ToolDef]:
        if tools is None:
            return []
        if not isinstance(tools, list):
            raise self._unmarshal(tools, "tools", "api.Tools")
        out: list[ToolDef] = []
        for tool in tools:
            function = tool.get("function") if isinstance(tool, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if isinstance(name, str) and name and isinstance(function, dict):
                out.append(ToolDef(name=name, parameters=function.get("parameters"), raw=tool))
        return out

    def _reject(self, message: str) -> Rejected:
        return Rejected(dataclasses.replace(self._error(400, message), error_kind="bad_request"))

    def _unmarshal(self, value: Any, field: str, go_type: str) -> Rejected:
        return self._reject(
            f"json: cannot unmarshal {_go_type(value)} into Go struct field ChatRequest.{field} of type {go_type}"
        )

    # --- whole responses
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        return {}

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Rendered:
        return Rendered(
            status, {"Content-Type": JSON, **(headers or {})}, go_json({"error": message}).encode()
        )

    def error_message(self, kind: str, ctx: RequestContext) -> str:
        model = ctx.chat.model if ctx.chat is not None else "llama3.2"
        used = input_tokens(ctx.chat.contents, [t.raw for t in ctx.chat.tools]) if ctx.chat is not None else 0
        return ERRORS.get(kind, ERRORS["server_error"]).format(model=model, over=max(used, 1))

    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        headers: dict[str, str] = {}
        hint = None
        form = self.retry_form(scenario)
        if status == 429 and scenario.retry_after is not None and form is not None:
            headers, sent = header_hint(form, scenario.retry_after, name="Retry-After")
            hint = sent.as_dict()
        rendered = self._error(status, scenario.message or self.error_message(kind, ctx), headers)
        return dataclasses.replace(rendered, error_kind=kind, retry_hint=hint)

    def _counters(self, ctx: RequestContext, plan: Plan) -> dict[str, int] | None:
        assert ctx.scenario is not None
        if ctx.scenario.usage != "normal":
            return None
        return {"prompt_eval_count": plan.usage.input_tokens, "eval_count": plan.usage.output_tokens}

    def _done(self, ctx: RequestContext, plan: Plan, message: dict[str, Any]) -> dict[str, Any]:
        """The ``done:true`` object: reason, durations (ns) and, unless the scenario hides them, the counters."""
        assert ctx.chat is not None
        total = max(ctx.elapsed_ms(), 1) * 1_000_000 + LOAD_NS
        body: dict[str, Any] = {
            "model": ctx.chat.model,
            "created_at": created_at(),
            "message": message,
            "done_reason": DONE_REASONS.get(plan.finish_reason, "stop"),
            "done": True,
            "total_duration": total,
            "load_duration": LOAD_NS,
        }
        counters = self._counters(ctx, plan)
        prompt_ns, eval_ns = (total - LOAD_NS) // 4, (total - LOAD_NS) * 3 // 4
        if counters is not None:
            body["prompt_eval_count"] = counters["prompt_eval_count"]
        body["prompt_eval_duration"] = prompt_ns
        if counters is not None:
            body["eval_count"] = counters["eval_count"]
        body["eval_duration"] = eval_ns
        return body

    @staticmethod
    def _tool_call(call: ToolCallPlan) -> dict[str, Any]:
        """A call as ollama-python's Message.ToolCall reads it: no id, ``arguments`` an object."""
        return {"function": {"name": call.name, "arguments": json.loads(call.arguments)}}

    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        message: dict[str, Any] = {"role": "assistant", "content": plan.text}
        if plan.tool_calls:
            message["tool_calls"] = [self._tool_call(call) for call in plan.tool_calls]
        tool_calls = journal_tool_calls(plan, ids=False)
        body = self._done(ctx, plan, message)
        return Rendered(
            200,
            {"Content-Type": JSON},
            go_json(body).encode(),
            text=plan.text,
            tool_calls=tool_calls,
            usage=self._counters(ctx, plan),
            finish_reason=body["done_reason"],
        )

    # --- streams
    def stream_headers(self, ctx: RequestContext) -> dict[str, str]:
        return {"Content-Type": NDJSON}

    def _part(self, ctx: RequestContext, message: dict[str, Any]) -> bytes:
        assert ctx.chat is not None
        return line({"model": ctx.chat.model, "created_at": created_at(), "message": message, "done": False})

    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        return []

    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        return Frame(self._part(ctx, {"role": "assistant", "content": piece}), "content", text=piece)

    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        if fragment.id is None or not plan.tool_calls:
            return self.stream_empty(ctx, plan)
        planned = plan.tool_calls[fragment.index]
        whole = ToolFragment(index=fragment.index, arguments=planned.arguments, name=planned.name)
        data = self._part(ctx, {"role": "assistant", "content": "", "tool_calls": [self._tool_call(planned)]})
        return Frame(data, "tool", tool=whole)

    def stream_empty(self, ctx: RequestContext, plan: Plan) -> Frame:
        return Frame(self._part(ctx, {"role": "assistant", "content": ""}), "empty")

    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        return None

    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        body = self._done(ctx, plan, {"role": "assistant", "content": ""})
        return [
            Frame(
                line(body),
                "terminator",
                usage=self._counters(ctx, plan),
                finish_reason=body["done_reason"],
            )
        ]

    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        return [Frame(line({"error": self.error_message(kind, ctx)}), "error")]

    def stream_malformed(self, ctx: RequestContext, plan: Plan) -> Frame:
        assert ctx.chat is not None
        head = go_json({"model": ctx.chat.model, "created_at": created_at()})
        return Frame((head[:-1] + ',"message":{"role":"assistant","content":\n').encode(), "malformed")
