"""Google Gemini Developer API as ``google-genai`` and plain REST clients see it (provider-wire-formats.md §5).

Routes: ``POST /gemini/{v1,v1beta}/models/{model}:generateContent`` and ``:streamGenerateContent`` (``?alt=sse``, or
without it the JSON-array stream). Auth is ``x-goog-api-key`` (the SDK) or ``?key=`` (REST); an OAuth
``Authorization: Bearer`` token is accepted too, as the real API does.

What each scenario looks like on this wire, and why:

* **Request id.** Google sends no request-id header. The id a caller can quote is the body's ``responseId``, so the
  engine's request id *is* the ``responseId`` of every success body and stream chunk (the journal picks it up from
  the body). Error bodies carry none, so errors have no request id, exactly as on the real service.
* **Errors** are ``{"error": {code, message, status, details}}``, pretty-printed with two spaces as Google's front end
  does, ``application/json; charset=UTF-8``: ``bad_request`` 400 ``INVALID_ARGUMENT`` (with ``BadRequest`` field
  violations), ``context_length`` 400 ``INVALID_ARGUMENT`` "The input token count (N) exceeds the maximum number of
  tokens allowed (M).", ``permission_denied`` 403 ``PERMISSION_DENIED``, ``not_found`` 404 ``NOT_FOUND`` (the
  recorded message), ``server_error`` 500 ``INTERNAL``, ``service_unavailable`` 503 ``UNAVAILABLE``, ``overloaded``
  503 ``UNAVAILABLE`` "The model is overloaded. Please try again later.", ``gateway_timeout`` 504
  ``DEADLINE_EXCEEDED``. ``bad_gateway`` 502 is the Google front end's HTML error page: the API itself never
  answers 502, the GFE in front of it does.
* **auth_error** is what the real service answers for a bad key: 400 ``INVALID_ARGUMENT`` "API key not valid" with
  ``ErrorInfo.reason: API_KEY_INVALID``. An explicit ``status`` picks the other real forms: 401 ``UNAUTHENTICATED``
  (a bad OAuth token) or 403 ``PERMISSION_DENIED`` "Method doesn't allow unregistered callers" (no key at all,
  which is also what :meth:`GeminiPersonality.authenticate` answers).
* **rate_limit / quota_exhausted**: both 429 ``RESOURCE_EXHAUSTED`` with the same "You exceeded your current quota"
  message, as the real service sends both. They differ in ``google.rpc.QuotaFailure``: a per-minute quota
  (``GenerateRequestsPerMinutePerProjectPerModel-FreeTier``) for a rate limit, a per-day one for an exhausted quota.
  No rate-limit headers exist: the only retry hint is ``google.rpc.RetryInfo.retryDelay`` in the body, a protobuf
  duration (``"7s"``, ``"0.010s"``), sent when the scenario has ``retry_after``.
* **content_filter** is a blocked prompt: HTTP 200 with no ``candidates``, only ``promptFeedback.blockReason:
  SAFETY`` (an SSE event of that body when streaming). ``filtered_output`` is ``finishReason: SAFETY`` with
  ``safetyRatings``: in a stream after the partial text, in a whole body with no content at all (the real API drops a
  blocked candidate's parts, which is why ``response.text`` fails in the SDK).
* **Streams** (``alt=sse``): every event is a whole ``GenerateContentResponse`` on one ``data:`` line, events
  separated by CRLF CRLF like the real service, no event names, no ``[DONE]``: the stream ends at EOF.
  ``usageMetadata`` is a running snapshot in every chunk (``promptTokenCount`` repeated, ``candidatesTokenCount``
  growing), never a delta. The last chunk carries ``finishReason`` and the final usage, so it is the frame marked
  ``terminator``: ``truncated_stream`` ends with content and no finish reason, which is how a cut Gemini stream looks.
  A function call arrives whole in one part (``args`` an object); Gemini has no argument deltas, so the engine's later
  tool fragments are zero-byte frames (the journal's ``chunks_sent`` counts them; the wire has one chunk). Parallel
  calls are several ``functionCall`` parts: all in one candidate of a whole body, one chunk per call in a stream
  (google-genai reads each chunk's parts; a client must collect calls across chunks, not keep the last).
  ``empty_chunks`` are chunks with an empty text part. Gemini has no keep-alives, so ``keepalives`` send nothing
  (the SDK's line parser would even choke on SSE comments). An in-band error is ``data: {"error": {...}}`` with
  ``error`` as the first key, which is how the SDK detects it. A malformed frame is a ``data:`` line cut mid-JSON.
* **Usage** omits zero counts (proto3 JSON): ``thoughtsTokenCount`` and ``cachedContentTokenCount`` appear only when
  non-zero; ``candidatesTokenCount`` excludes thoughts and ``totalTokenCount`` includes them. ``null_usage`` and
  ``missing_usage`` both omit ``usageMetadata``: proto3 JSON never writes a null.
* **Finish reasons**: ``stop`` and tool calls are ``STOP`` (Gemini has no tool-call finish reason), ``length``
  ``MAX_TOKENS``, ``content_filter`` ``SAFETY``. ``finish_reason_sent`` in the journal is the raw value.
* Function calls carry no ``id`` (the Developer API does not send one), so the journal's tool call id is null.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

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
from mockserver.plan import ChatRequest, Plan, ToolCallPlan, ToolDef
from mockserver.retry_hints import RetryHint
from mockserver.scenarios import DEFAULT_STATUS, Scenario
from mockserver.truth import UsageTruth, count_tokens, input_tokens

JSON = "application/json; charset=UTF-8"
SSE = "text/event-stream"
HTML = "text/html; charset=UTF-8"
ACTIONS = ("generateContent", "streamGenerateContent")
VERSIONS = ("v1", "v1beta")
CONTEXT_WINDOW = 1_048_576
RATE_LIMIT_PER_MINUTE = 10
REQUESTS_PER_DAY = 250
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
RATE_LIMITS_DOC = "https://ai.google.dev/gemini-api/docs/rate-limits"
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    f"error, head to: {RATE_LIMITS_DOC}. To monitor your current usage, head to: "
    "https://ai.dev/usage?tab=rate-limit. "
)
FREE_TIER_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"

#: google.rpc.Code names by HTTP status, as Google's JSON error mapping uses them.
STATUS_NAMES: dict[int, str] = {
    200: "OK",
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: Fault kind -> (natural HTTP code, message). Messages are the real service's wording.
MESSAGES: dict[str, tuple[int, str]] = {
    "permission_denied": (403, "The caller does not have permission"),
    "bad_request": (400, "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\""),
    "server_error": (
        500,
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "service_unavailable": (503, "The service is currently unavailable."),
    "overloaded": (503, "The model is overloaded. Please try again later."),
    "gateway_timeout": (504, "Deadline expired before operation could complete."),
}
API_KEY_INVALID = "API key not valid. Please pass a valid API key."
UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or "
    "other form of API consumer identity to call this API."
)
UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
GFE_502 = """<!DOCTYPE html>
<html lang=en>
  <meta charset=utf-8>
  <meta name=viewport content="initial-scale=1, minimum-scale=1, width=device-width">
  <title>Error 502 (Server Error)!!1</title>
  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>
  <p><b>502.</b> <ins>That\u2019s an error.</ins>
  <p>The server encountered a temporary error and could not complete your request.<p>Please try again in 30 \
seconds.  <ins>That\u2019s all we know.</ins>
"""

#: Top-level request fields the API knows, in both proto JSON spellings (lowerCamel and the original snake_case).
KNOWN_FIELDS = frozenset(
    {
        "contents",
        "tools",
        "toolConfig",
        "tool_config",
        "safetySettings",
        "safety_settings",
        "systemInstruction",
        "system_instruction",
        "generationConfig",
        "generation_config",
        "cachedContent",
        "cached_content",
        "labels",
        "model",
        "serviceTier",
        "service_tier",
    }
)
FINISH_REASONS = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
)


def stream_dumps(obj: Any) -> str:
    """JSON the way the streaming endpoint writes it: ``", "``-less items but ``": "`` after keys."""
    return json.dumps(obj, separators=(",", ": "), ensure_ascii=False)


def proto_duration(seconds: float) -> str:
    """A google.protobuf.Duration in its JSON form: ``7s``, ``0.010s`` (0, 3, 6 or 9 fractional digits)."""
    nanos = round(seconds * 1e9)
    whole, frac = divmod(nanos, 1_000_000_000)
    if frac == 0:
        return f"{whole}s"
    digits = f"{frac:09d}"
    for width in (3, 6, 9):
        if digits[width:].strip("0") == "":
            return f"{whole}.{digits[:width]}s"
    return f"{whole}.{digits}s"


def _lower_types(schema: Any) -> Any:
    """OpenAPI-style ``"type": "OBJECT"`` to JSON Schema's lower case, so seeded arguments fit the schema."""
    if isinstance(schema, dict):
        return {
            k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


#: Where each fault body comes from (§5 is provider-wire-formats.md §5; "#N" a row of the real-cassettes INDEX.md).
FAULT_SOURCES: dict[str, str] = {
    "rate_limit": "§5 (429 RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo details, verbatim shape)",
    "quota_exhausted": "§5 (the same 429 RESOURCE_EXHAUSTED body with a per-day QuotaFailure)",
    "auth_error": "§5 (a bad API key is a 400 with ErrorInfo.reason API_KEY_INVALID)",
    "permission_denied": "§5 (403 PERMISSION_DENIED)",
    "not_found": "real recording #17 (404 'models/... is not found for API version v1beta, ...')",
    "bad_request": "§5 (400 INVALID_ARGUMENT); real recording #115 (Vertex AI's 400 INVALID_ARGUMENT)",
    "content_filter": "§3 (a blocked prompt returns no candidates, only promptFeedback.blockReason)",
    "overloaded": "§4 (503 UNAVAILABLE 'The model is overloaded. Please try again later.', verified in-band)",
}

#: Fault bodies with no recording and no public source behind them: kind -> why.
UNVERIFIED_FAULTS: dict[str, str] = {
    "context_length": "the 'input token count exceeds the maximum' wording is from client reports, not recorded",
    "server_error": "the 500 INTERNAL wording is reconstructed, not recorded",
    "bad_gateway": "the Google front end's HTML 502 page is reconstructed, not recorded",
    "service_unavailable": "the plain 503 UNAVAILABLE wording is reconstructed, not recorded",
    "gateway_timeout": "the 504 DEADLINE_EXCEEDED body is reconstructed, not recorded",
}

#: Gemini's only retry hint: provider-wire-formats.md §5 ("Retry hints come only in the error body, as
#: google.rpc.RetryInfo.retryDelay") and the §5 body example.
RETRY_HINT_FORMS: dict[str, str] = {
    "body": "error.details[] google.rpc.RetryInfo.retryDelay (protobuf duration): provider-wire-formats.md §5",
}


class GeminiPersonality(Personality):
    name = "gemini"
    prefix = "/gemini"
    retry_hint_forms = RETRY_HINT_FORMS
    fault_sources = FAULT_SOURCES
    unverified_faults = UNVERIFIED_FAULTS

    def routes(self) -> list[tuple[str, str]]:
        # one route per version, written out, so that tools reading routes (the cassette importer) see real paths
        return [("POST", f"/{version}/models/{{model_action}}") for version in VERSIONS]

    # --- ids
    # -----------------------------------------------------------------------------------------------------
    def new_request_id(self) -> str:
        """The body's ``responseId`` (Google's only per-response id)."""
        return random_token(23, ID_ALPHABET)

    def new_response_id(self) -> str:
        return self.new_request_id()

    def new_tool_call_id(self) -> str:
        # Never sent: the Developer API's functionCall parts carry no id.
        return f"fc_{random_token(16)}"

    # --- request side
    # --------------------------------------------------------------------------------------------
    @staticmethod
    def _path(ctx: RequestContext) -> tuple[str, str, str]:
        """(version, model, action) from the URL."""
        version = ctx.request.path[len(GeminiPersonality.prefix) :].strip("/").split("/", 1)[0]
        model, _, action = ctx.request.match_info.get("model_action", "").rpartition(":")
        return version, model, action

    def _sse(self, ctx: RequestContext) -> bool:
        return ctx.request.query.get("alt") == "sse"

    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        headers = ctx.request.headers
        if headers.get("x-goog-api-key", "").strip() or ctx.request.query.get("key", "").strip():
            return None
        scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return None
        return self._error(ctx, 403, UNREGISTERED, kind="auth_error")

    def asked(self, ctx: RequestContext, chat: ChatRequest) -> Asked:
        """generateContent: the model is in the path; ``systemInstruction`` parts; user/model turns;
        ``generationConfig`` (maxOutputTokens, temperature, topP, stopSequences); the tool choice is
        ``toolConfig.functionCallingConfig``: mode AUTO/NONE, or ANY (one allowed function: that tool)."""
        body = chat.body if isinstance(chat.body, dict) else {}
        config = mapping(body.get("generationConfig"))
        calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        mode, allowed = calling.get("mode"), calling.get("allowedFunctionNames") or []
        choice = (
            {"AUTO": "auto", "NONE": "none", "ANY": "required"}.get(mode) if isinstance(mode, str) else None
        )
        if mode == "ANY" and isinstance(allowed, list) and len(allowed) == 1:
            choice = str(allowed[0])
        roles = {"user": "user", "model": "assistant", "function": "tool"}
        system = mapping(body.get("systemInstruction"))
        return Asked(
            model=chat.model,
            system=join_system([text_of(system.get("parts"))]),
            messages=turns(body.get("contents"), content="parts", roles=roles),
            max_tokens=integer(config.get("maxOutputTokens")),
            temperature=number(config.get("temperature")),
            top_p=number(config.get("topP")),
            stop=stop_list(config.get("stopSequences")),
            tools=[
                str(d.get("name"))
                for t in body.get("tools") or []
                if isinstance(t, dict)
                for d in t.get("functionDeclarations") or []
                if isinstance(d, dict)
            ],
            tool_choice=choice,
        )

    def parse_chat(self, ctx: RequestContext, raw: bytes) -> ChatRequest:
        version, model, action = self._path(ctx)
        if action not in ACTIONS or not model:
            message = (
                f"models/{model or '?'} is not found for API version {version}, or is not supported for "
                f"{action or 'this method'}. Call ModelService.ListModels to see the list of available models "
                "and their supported methods."
            )
            raise Rejected(self._error(ctx, 404, message, kind="not_found"))
        try:
            body = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise self._invalid(ctx, "Invalid JSON payload received. Unexpected token.", field=None) from None
        if not isinstance(body, dict):
            raise self._invalid(
                ctx, "Invalid JSON payload received. Expected an object at the top level.", field=None
            )
        for name in body:
            if name not in KNOWN_FIELDS:
                message = f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
                raise self._invalid(ctx, message, field=None)
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise self._invalid(
                ctx, "* GenerateContentRequest.contents: contents is not specified\n", field="contents"
            )
        for i, content in enumerate(contents):
            parts = content.get("parts") if isinstance(content, dict) else None
            if not isinstance(parts, list) or not parts:
                message = f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
                raise self._invalid(ctx, message, field=f"contents[{i}].parts")
            role = content.get("role")
            if role is not None and role not in ("user", "model", "function"):
                raise self._invalid(ctx, "Please use a valid role: user, model.", field=f"contents[{i}].role")
        system = body.get("systemInstruction", body.get("system_instruction"))
        texts: list[Any] = []
        if isinstance(system, dict):
            texts.append(system.get("parts"))
        elif isinstance(system, str):
            texts.append(system)
        texts.extend(c.get("parts") for c in contents)
        ctx.extra["sse"] = self._sse(ctx)
        ctx.extra["version"] = version
        return ChatRequest(
            model=model.removeprefix("models/"),
            messages={"systemInstruction": system, "contents": contents},
            contents=texts,
            tools=self._tools(body.get("tools")),
            stream=action == "streamGenerateContent",
            body=body,
        )

    @staticmethod
    def _tools(tools: Any) -> list[ToolDef]:
        out: list[ToolDef] = []
        for tool in tools if isinstance(tools, list) else []:
            if not isinstance(tool, dict):
                continue
            declarations = tool.get("functionDeclarations", tool.get("function_declarations")) or []
            for decl in declarations:
                if isinstance(decl, dict) and isinstance(decl.get("name"), str):
                    # proto JSON takes either spelling, and google-genai sends ``parameters_json_schema``
                    schema = next(
                        (
                            decl[k]
                            for k in ("parametersJsonSchema", "parameters_json_schema", "parameters")
                            if k in decl
                        ),
                        None,
                    )
                    out.append(ToolDef(name=decl["name"], parameters=_lower_types(schema), raw=decl))
        return out

    def _invalid(self, ctx: RequestContext, message: str, *, field: str | None) -> Rejected:
        violation: dict[str, Any] = {"description": message}
        if field is not None:
            violation = {"field": field, "description": message}
        details = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}]
        return Rejected(self._error(ctx, 400, message, details=details, kind="bad_request"))

    # --- headers
    # -------------------------------------------------------------------------------------------------
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        """What Google's front end sends; deliberately no request-id and no rate-limit headers (it has none)."""
        return {
            "Vary": "Origin, X-Origin, Referer",
            "Server": "scaffolding on HTTPServer2",
            "Server-Timing": f"gfet4t7; dur={ctx.elapsed_ms()}",
            "X-XSS-Protection": "0",
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
        }

    # --- errors
    # --------------------------------------------------------------------------------------------------
    def error_object(self, kind: str, ctx: RequestContext, scenario: Scenario | None) -> dict[str, Any]:
        """The ``{"error": {...}}`` object for a fault kind at its natural status (429, 503, ...)."""
        code, message, details = self._fault_fields(kind, ctx, scenario)
        if scenario is not None and scenario.message:
            message = scenario.message
        error: dict[str, Any] = {
            "code": code,
            "message": message,
            "status": STATUS_NAMES.get(code, "UNKNOWN"),
        }
        if details:
            error["details"] = details
        return {"error": error}

    def _fault_fields(
        self, kind: str, ctx: RequestContext, scenario: Scenario | None
    ) -> tuple[int, str, list[dict[str, Any]]]:
        version, path_model, action = self._path(ctx)
        model = ctx.chat.model if ctx.chat is not None else path_model
        retry = scenario.retry_after if scenario is not None else None
        details: list[dict[str, Any]] = []
        if kind in ("rate_limit", "quota_exhausted"):
            return self._quota(kind, model, retry)
        if kind == "auth_error":
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": API_KEY_INVALID,
                },
            ]
            return 400, API_KEY_INVALID, details
        if kind == "not_found":
            message = (
                f"models/{model} is not found for API version {version}, or is not supported for "
                f"{action or 'generateContent'}. Call ModelService.ListModels to see the list of available "
                "models and their supported methods."
            )
            return 404, message, []
        if kind == "context_length":
            used = CONTEXT_WINDOW + max(self._input_tokens(ctx), 1)
            message = f"The input token count ({used}) exceeds the maximum number of tokens allowed ({CONTEXT_WINDOW})."
            return 400, message, []
        if kind == "bad_request":
            code, message = MESSAGES["bad_request"]
            violation = {"field": "generation_config.temperature", "description": message}
            details = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}]
            return code, message, details
        if kind == "content_filter":
            return 400, "The request was blocked by safety filters.", []
        code, message = MESSAGES.get(kind, MESSAGES["server_error"])
        if retry is not None and code in (429, 503):
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": proto_duration(retry)}
            )
        return code, message, details

    @staticmethod
    def _quota(kind: str, model: str, retry: float | None) -> tuple[int, str, list[dict[str, Any]]]:
        daily = kind == "quota_exhausted"
        limit = REQUESTS_PER_DAY if daily else RATE_LIMIT_PER_MINUTE
        quota_id = (
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
            if daily
            else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
        )
        message = f"{QUOTA_MESSAGE}\n* Quota exceeded for metric: {FREE_TIER_METRIC}, limit: {limit}, model: {model}"
        if retry is not None:
            message += f"\nPlease retry in {retry:g}s."
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": FREE_TIER_METRIC,
                        "quotaId": quota_id,
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": str(limit),
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_DOC}],
            },
        ]
        if retry is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": proto_duration(retry)}
            )
        return 429, message, details

    def _input_tokens(self, ctx: RequestContext) -> int:
        if ctx.chat is None:
            return 0
        return input_tokens(ctx.chat.contents, [t.raw for t in ctx.chat.tools])

    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        explicit = scenario.status is not None
        if kind == "content_filter" and not explicit:
            return self._blocked_prompt(ctx)
        if kind == "bad_gateway" and status == DEFAULT_STATUS["bad_gateway"]:
            headers = {**self.base_headers(ctx, status, scenario), "Content-Type": HTML}
            return Rendered(status, headers, GFE_502.encode(), error_kind=kind)
        if kind == "auth_error" and not explicit:
            status = 400
        if kind == "auth_error" and status == 401:
            return self._error(ctx, 401, scenario.message or UNAUTHENTICATED, kind=kind)
        if kind == "auth_error" and status == 403:
            return self._error(ctx, 403, scenario.message or UNREGISTERED, kind=kind)
        error = self.error_object(kind, ctx, scenario)["error"]
        if status != 200:
            # the body's code always agrees with the status line, except in a 200 that carries an error
            error = {**error, "code": status, "status": STATUS_NAMES.get(status, error["status"])}
        rendered = self._error(
            ctx, status, error["message"], details=error.get("details"), kind=kind, code=error["code"],
            status_name=error["status"],
        )  # fmt: skip
        delays = [
            d["retryDelay"]
            for d in error.get("details") or []
            if d.get("@type", "").endswith("rpc.RetryInfo")
        ]
        if not delays:
            return rendered
        # what the protobuf duration says, to the nanosecond it carries
        hint = RetryHint("body", round(float(delays[0][:-1]), 9))
        return dataclasses.replace(rendered, retry_hint=hint.as_dict())

    def _error(
        self,
        ctx: RequestContext,
        status: int,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        kind: str | None = None,
        code: int | None = None,
        status_name: str | None = None,
    ) -> Rendered:
        code = status if code is None else code
        error: dict[str, Any] = {
            "code": code,
            "message": message,
            "status": status_name or STATUS_NAMES.get(code, "UNKNOWN"),
        }
        if details:
            error["details"] = details
        body: Any = {"error": error}
        if ctx.chat is not None and ctx.chat.stream and not ctx.extra.get("sse"):
            body = [body]  # a JSON-array stream wraps its error in the array, too
        headers = {**self.base_headers(ctx, status, None), "Content-Type": JSON}
        return Rendered(
            status, headers, (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode(), error_kind=kind
        )

    def _blocked_prompt(self, ctx: RequestContext) -> Rendered:
        """A prompt the safety filters reject: HTTP 200, no candidates, only ``promptFeedback.blockReason``."""
        assert ctx.chat is not None
        prompt = self._input_tokens(ctx)
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "totalTokenCount": prompt,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        body = {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": self._safety_ratings(blocked=1)},
            "usageMetadata": usage,
            "modelVersion": ctx.chat.model,
            "responseId": ctx.request_id,
        }
        headers = self.base_headers(ctx, 200, ctx.scenario)
        if ctx.chat.stream:
            data = self._event(ctx, body)
            headers.update(self.stream_headers(ctx))
        else:
            data = (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()
            headers["Content-Type"] = JSON
        return Rendered(200, headers, data, usage=usage, error_kind="content_filter")

    # --- non-streamed
    # --------------------------------------------------------------------------------------------
    def usage_metadata(self, usage: UsageTruth, candidates: int | None = None) -> dict[str, Any]:
        """A usageMetadata snapshot; ``candidates`` defaults to the final count (output minus thoughts)."""
        final = usage.output_tokens - usage.reasoning_tokens
        cand = final if candidates is None else candidates
        meta: dict[str, Any] = {"promptTokenCount": usage.input_tokens}
        if cand:
            meta["candidatesTokenCount"] = cand
        meta["totalTokenCount"] = usage.input_tokens + cand + usage.reasoning_tokens
        if usage.cached_tokens:
            meta["cachedContentTokenCount"] = usage.cached_tokens
        meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.input_tokens}]
        if usage.cached_tokens:
            meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.cached_tokens}]
        if usage.reasoning_tokens:
            meta["thoughtsTokenCount"] = usage.reasoning_tokens
        return meta

    def _response(
        self, ctx: RequestContext, candidate: dict[str, Any] | None, usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        assert ctx.chat is not None
        body: dict[str, Any] = {}
        if candidate is not None:
            body["candidates"] = [candidate]
        if usage is not None:
            body["usageMetadata"] = usage
        body["modelVersion"] = ctx.chat.model
        body["responseId"] = ctx.request_id
        return body

    @staticmethod
    def _safety_ratings(blocked: int = 2) -> list[dict[str, Any]]:
        """Per-category ratings; the ``blocked`` one is rated HIGH and flagged, as the API reports a block."""
        ratings: list[dict[str, Any]] = [
            {"category": c, "probability": "NEGLIGIBLE"} for c in SAFETY_CATEGORIES
        ]
        ratings[blocked] = {"category": SAFETY_CATEGORIES[blocked], "probability": "HIGH", "blocked": True}
        return ratings

    @staticmethod
    def _function_call(call: ToolCallPlan) -> dict[str, Any]:
        return {"functionCall": {"name": call.name, "args": json.loads(call.arguments)}}

    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        assert ctx.chat is not None and ctx.scenario is not None
        raw_finish = FINISH_REASONS.get(plan.finish_reason, "OTHER")
        candidate: dict[str, Any] = {}
        text = plan.text
        tool_calls: list[dict[str, Any]] = []
        if raw_finish == "SAFETY":
            text = ""  # a blocked candidate comes back without its parts
        elif plan.tool_calls:
            parts = [self._function_call(call) for call in plan.tool_calls]
            candidate["content"] = {"parts": parts, "role": "model"}
            tool_calls = journal_tool_calls(plan, ids=False)
        else:
            candidate["content"] = {"parts": [{"text": text}], "role": "model"}
        candidate["finishReason"] = raw_finish
        if raw_finish == "SAFETY":
            candidate["safetyRatings"] = self._safety_ratings()
        candidate["index"] = 0
        usage = self.usage_metadata(plan.usage) if ctx.scenario.usage == "normal" else None
        body = self._response(ctx, candidate, usage)
        headers = {**self.base_headers(ctx, 200, ctx.scenario), "Content-Type": JSON}
        return Rendered(
            200,
            headers,
            (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode(),
            text=text,
            tool_calls=tool_calls,
            usage=usage,
            finish_reason=raw_finish,
        )

    # --- streamed
    # ------------------------------------------------------------------------------------------------
    def stream_headers(self, ctx: RequestContext) -> dict[str, str]:
        if ctx.extra.get("sse", True):
            return {"Content-Type": SSE, "Content-Disposition": "attachment"}
        return {"Content-Type": JSON}

    def _event(self, ctx: RequestContext, obj: Any, *, last: bool = False) -> bytes:
        """One stream element: an SSE event (CRLF CRLF, as recorded), or an element of the JSON-array stream."""
        if ctx.extra.get("sse", True):
            return f"data: {stream_dumps(obj)}\r\n\r\n".encode()
        first = not ctx.extra.get("array_open")
        ctx.extra["array_open"] = True
        lead = "[" if first else ",\r\n"
        return f"{lead}{json.dumps(obj, indent=2, ensure_ascii=False)}{']' if last else ''}".encode()

    def _snapshot(self, ctx: RequestContext, plan: Plan, candidates: int) -> dict[str, Any] | None:
        assert ctx.scenario is not None
        return self.usage_metadata(plan.usage, candidates) if ctx.scenario.usage == "normal" else None

    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        return []  # Gemini has no preamble: the first chunk already carries text

    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        usage = self._snapshot(ctx, plan, count_tokens(state.text_sent + piece))
        candidate = {"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}
        data = self._event(ctx, self._response(ctx, candidate, usage))
        return Frame(data, "content", text=piece, usage=usage)

    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        if fragment.name is None:
            return Frame(b"", "tool")  # the call already went out whole with its first fragment
        call = plan.tool_calls[fragment.index]
        sent = plan.tool_calls[: fragment.index + 1]  # calls are streamed in order, one per chunk
        usage = self._snapshot(ctx, plan, sum(count_tokens(c.name) + count_tokens(c.arguments) for c in sent))
        candidate = {"content": {"parts": [self._function_call(call)], "role": "model"}, "index": 0}
        whole = ToolFragment(index=fragment.index, arguments=call.arguments, name=call.name)
        return Frame(self._event(ctx, self._response(ctx, candidate, usage)), "tool", tool=whole, usage=usage)

    def stream_empty(self, ctx: RequestContext, plan: Plan) -> Frame | None:
        candidate = {"content": {"parts": [{"text": ""}], "role": "model"}, "index": 0}
        return Frame(self._event(ctx, self._response(ctx, candidate, None)), "empty")

    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        return None  # Gemini sends no keep-alives, and google-genai would not parse an SSE comment

    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        assert ctx.scenario is not None
        raw_finish = FINISH_REASONS.get(plan.finish_reason, "OTHER")
        candidate: dict[str, Any] = {}
        if raw_finish != "SAFETY":
            candidate["content"] = {"parts": [{"text": ""}], "role": "model"}
        candidate["finishReason"] = raw_finish
        if raw_finish == "SAFETY":
            candidate["safetyRatings"] = self._safety_ratings()
        candidate["index"] = 0
        usage = self.usage_metadata(plan.usage) if ctx.scenario.usage == "normal" else None
        data = self._event(ctx, self._response(ctx, candidate, usage), last=True)
        # The finish chunk is also the stream's end marker: without it the stream just stops, as a cut one does.
        return [Frame(data, "terminator", usage=usage, finish_reason=raw_finish)]

    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        return [Frame(self._event(ctx, self.error_object(kind, ctx, ctx.scenario), last=True), "error")]

    def stream_malformed(self, ctx: RequestContext, plan: Plan) -> Frame:
        head = stream_dumps({"candidates": [{"content": {"parts": [{"text": "x"}]}}]})
        cut = head[: head.index('"x"')]
        if ctx.extra.get("sse", True):
            return Frame(f"data: {cut}\r\n\r\n".encode(), "malformed")
        return Frame(
            ("[" if not ctx.extra.get("array_open") else ",\r\n").encode() + cut.encode(), "malformed"
        )
