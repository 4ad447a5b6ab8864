"""Azure OpenAI as the ``AzureOpenAI`` SDK (and the plain ``OpenAI`` SDK on the v1 surface) sees it (§3).

Mounted under ``/azure``, so ``AzureOpenAI(azure_endpoint=f"{url}/azure", ...)`` and
``OpenAI(base_url=f"{url}/azure/openai/v1")`` both work:

* ``POST /azure/openai/deployments/{deployment}/chat/completions?api-version=...`` (classic). The deployment in the
  path decides the model; the body's ``model`` may be absent and is ignored. A missing ``api-version`` is Azure's
  ``404 {"error":{"code":"404","message":"Resource not found"}}`` (not a 400: MicrosoftDocs/azure-docs#114602),
  checked after the key, as the gateway does. ``stream_options`` and
  ``max_completion_tokens`` with an ``api-version`` older than ``2024-09-01-preview`` are rejected with Azure's
  ``Unrecognized request argument supplied: <name>`` 400.
* ``POST /azure/openai/v1/chat/completions`` (v1): no ``api-version``; the body's ``model`` names the deployment.

Auth: ``api-key: <key>`` or ``Authorization: Bearer <key or Entra token>``; with neither, the recorded 401 (real
cassette #50). Two layers answer, as on the real service, and they differ in their request-id headers:

* the **gateway** (APIM) makes 401, 403, 404 (DeploymentNotFound, recorded in #49; missing api-version), 429,
  502 and 504. Its bodies are ``{"error":{"code":"<status as a string>","message":...}}`` (no ``type``) and its
  responses carry only ``apim-request-id`` (plus ``x-ms-region``), as the recordings show;
* the **model backend** makes 200s, 400s (validation, context length, content filter), 500 and 503. Its bodies are
  OpenAI's shape (``type``, ``param``, ``code``); it adds ``x-request-id`` (the id the SDK reads and the one Azure's
  500 message quotes), ``x-ms-client-request-id``, ``x-ms-deployment-name``, ``x-ms-rai-invoked`` and the only
  rate-limit headers Azure sends reliably: ``x-ratelimit-{limit,remaining}-{requests,tokens}`` (no reset headers).

The journal's request id is therefore ``x-request-id`` when present, else ``apim-request-id``.

Presets, as rendered here:

* ``rate_limit``: 429 ``{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under
  Azure OpenAI API version ... Please retry after N seconds. ..."}}`` with ``retry-after`` (whole seconds, rounded
  up), ``retry-after-ms``, ``policy-id: DeploymentRatelimit-Token`` and ``x-ratelimit-remaining-tokens: 0``.
* ``quota_exhausted``: Azure has no OpenAI-style ``insufficient_quota``; the service's quota answer is Cognitive
  Services' 403 ``Out of call volume quota for OpenAI API. Quota will be replenished in d.hh:mm:ss.`` (not retried
  by the SDK; the adapter maps it to ``quota_exhausted``). A scenario ``status`` overrides the 403.
* ``auth_error``: the recorded 401. ``permission_denied``: 403 ``PermissionDenied`` "Principal does not have access
  to API/Operation." (an Entra principal without the role). ``not_found``: the recorded 404 ``DeploymentNotFound``
  (pretty-printed with ``type`` first, as recorded).
* ``bad_request``: 400 ``Unrecognized request argument supplied: ...``. ``context_length``: 400
  ``context_length_exceeded`` (OpenAI's wording). ``content_filter``: 400 ``code: content_filter``,
  ``param: prompt``, ``status: 400`` and ``innererror: {code: ResponsibleAIPolicyViolation,
  content_filter_result}``.
* ``server_error``: 500 "The server had an error while processing your request. Sorry about that! ... (Please include
  the request ID <x-request-id> in your message.)". ``overloaded``: 503 "That model is currently overloaded with other
  requests. ...". ``service_unavailable``: 503 ``ServiceUnavailable``. ``bad_gateway``/``gateway_timeout``: gateway
  502/504 with string codes (no recording exists; the gateway's documented shape is used).
* ``error_in_200``: the backend's 500 body with status 200.
* Streams: data-only SSE, ``text/event-stream``. The first frame is always Azure's prompt-filter chunk
  ``{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[...]}``, then the role chunk.
  Every second text chunk is followed by an asynchronous-filter annotation chunk whose choice has no ``delta``, only
  ``content_filter_results`` and ``content_filter_offsets``; one more follows the finish chunk. With
  ``stream_options.include_usage`` the usage arrives on a trailing ``choices: []`` chunk. The stream ends with
  ``data: [DONE]`` (dropped by ``truncated_stream``).
* In-band errors (``error_mid_stream``): a ``data: {"error": ...}`` frame in the same body shape as the status error
  of that kind. ``filtered_output``: ``finish_reason: content_filter`` with the filtering category marked
  ``filtered: true``. ``malformed_chunk``: a truncated JSON chunk.
* Keep-alives: Azure sends no SSE comments, so ``keepalives`` renders nothing (empty deltas are still sent).
* Bodies: compact JSON in Azure's key order (``choices`` first, per-choice ``content_filter_results``, top-level
  ``prompt_filter_results``) and the served model's versioned name in ``model`` (e.g. ``gpt-4o-mini-2024-07-18``).

Known gaps: the recorded 404 carries no ``Content-Type``; the mock sends ``application/json`` (aiohttp would
otherwise label it ``application/octet-stream``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from typing import Any

from mockserver.asked import Asked
from mockserver.framing import dumps, sse_event
from mockserver.personalities.base import (
    Frame,
    Rejected,
    Rendered,
    RequestContext,
    StreamState,
    ToolFragment,
    journal_tool_calls,
)
from mockserver.personalities.openai import (
    CONTEXT_WINDOW,
    JSON,
    LIMIT_REQUESTS,
    LIMIT_TOKENS,
    OpenAIPersonality,
    read_chat_completions,
)
from mockserver.plan import ChatRequest, Plan
from mockserver.retry_hints import header_hint
from mockserver.scenarios import Scenario

REGION = "East US 2"
MODEL_SESSION = "d004-20250815200304"
SYSTEM_FINGERPRINT = "fp_mockazure01"
HSTS = "max-age=31536000; includeSubDomains; preload"
#: the first API version that accepts ``stream_options`` and ``max_completion_tokens``
STREAM_OPTIONS_SINCE = "2024-09-01"
#: deployment name -> the versioned model Azure reports in ``model`` (deployments named otherwise echo their name)
SERVED_MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-11-20",
}
SUPPORT = "https://go.microsoft.com/fwlink/?linkid=2213926"

ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, "
    "please wait a moment and try again."
)
PROMPT_FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify "
    "your prompt and retry. To learn more about our content filtering policies please read our documentation: "
    "https://go.microsoft.com/fwlink/?linkid=2198766"
)

#: Fault kinds answered by the gateway (apim-request-id only, string status codes) rather than the model backend.
GATEWAY_KINDS = frozenset(
    {
        "rate_limit",
        "quota_exhausted",
        "auth_error",
        "permission_denied",
        "not_found",
        "bad_gateway",
        "gateway_timeout",
    }
)
#: Statuses Azure uses where they differ from the neutral defaults.
AZURE_STATUS = {"quota_exhausted": 403}

SAFE = {"filtered": False, "severity": "safe"}
NOT_DETECTED = {"filtered": False, "detected": False}


def prompt_filter_results(blocked: str | None = None) -> dict[str, Any]:
    """The content-filter verdict on the prompt, with ``blocked`` (a category) marked filtered."""
    results: dict[str, Any] = {
        "hate": dict(SAFE),
        "jailbreak": dict(NOT_DETECTED),
        "self_harm": dict(SAFE),
        "sexual": dict(SAFE),
        "violence": dict(SAFE),
    }
    if blocked is not None:
        results[blocked] = {"filtered": True, "severity": "medium"}
    return results


def completion_filter_results(filtered: bool = False) -> dict[str, Any]:
    """The verdict on generated text; ``filtered`` marks violence as the category that stopped the output."""
    return {
        "hate": dict(SAFE),
        "protected_material_code": dict(NOT_DETECTED),
        "protected_material_text": dict(NOT_DETECTED),
        "self_harm": dict(SAFE),
        "sexual": dict(SAFE),
        "violence": {"filtered": True, "severity": "medium"} if filtered else dict(SAFE),
    }


def _replenish(seconds: float) -> str:
    """Cognitive Services' ``d.hh:mm:ss`` countdown."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{secs:02d}"


#: Where each fault body comes from ("#N" is a row of the real-cassettes INDEX.md; §3 is provider-wire-formats.md).
FAULT_SOURCES: dict[str, str] = {
    "rate_limit": "§3 (429 {code: '429', message: '... Please retry after 6 seconds ...'}, no type)",
    "auth_error": "real recording #50 (401 Access denied due to invalid subscription key)",
    "not_found": "real recording #49 (404 DeploymentNotFound)",
    "context_length": "§3 / §1 (OpenAI's context_length_exceeded body, relayed by the backend)",
    "content_filter": "§3 (400 code content_filter, param prompt, innererror ResponsibleAIPolicyViolation; "
    "learn.microsoft.com/azure/ai-services/openai/concepts/content-filter)",
}

#: Fault bodies with no recording and no public source behind them: kind -> why.
UNVERIFIED_FAULTS: dict[str, str] = {
    "quota_exhausted": "Cognitive Services' 403 'Out of call volume quota' is quoted from forum posts, not recorded",
    "permission_denied": "the 403 PermissionDenied body is reconstructed, not recorded",
    "bad_request": "the 'Unrecognized request argument supplied' 400 is recorded only for other arguments",
    "bad_gateway": "no recording of a gateway 502 exists; the gateway's documented shape is used",
    "gateway_timeout": "no recording of a gateway 504 exists; the gateway's documented shape is used",
    "service_unavailable": "the 503 ServiceUnavailable body is reconstructed, not recorded",
    "overloaded": "the backend's overloaded 503 wording is reconstructed, not recorded",
    "server_error": "the backend's 500 wording (quoting the request id) is reconstructed, not recorded",
    "retry:http_date": "the openai SDK reads an HTTP-date retry-after, but no recording or doc shows Azure "
    "sending one",
}

#: Azure's retry hints (§3: "A 429 carries retry-after in seconds, and Azure commonly also sends retry-after-ms"),
#: all read by the AzureOpenAI client's base (openai/_base_client.py:849-884).
RETRY_HINT_FORMS: dict[str, str] = {
    "ms": "retry-after-ms beside retry-after: provider-wire-formats.md §3; openai/_base_client.py:859",
    "seconds": "retry-after delta-seconds: provider-wire-formats.md §3; openai/_base_client.py:859-872",
    "http_date": "retry-after as an HTTP-date: openai/_base_client.py:874-884; unverified",
}


class AzureOpenAIPersonality(OpenAIPersonality):
    name = "azure-openai"
    prefix = "/azure"
    retry_hint_forms = RETRY_HINT_FORMS
    fault_sources = FAULT_SOURCES
    unverified_faults = UNVERIFIED_FAULTS

    def routes(self) -> list[tuple[str, str]]:
        return [
            ("POST", "/openai/deployments/{deployment}/chat/completions"),
            ("POST", "/openai/v1/chat/completions"),
        ]

    # --- ids
    # -----------------------------------------------------------------------------------------------------
    def new_request_id(self) -> str:
        return str(uuid.uuid4())

    @staticmethod
    def _apim_id(ctx: RequestContext) -> str:
        """The gateway's id of a backend-made response (a second UUID, stable for the request)."""
        value: str = ctx.extra.setdefault("apim_request_id", str(uuid.uuid4()))
        return value

    # --- request side
    # --------------------------------------------------------------------------------------------
    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        headers = ctx.request.headers
        if headers.get("api-key", "").strip():
            return None
        scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return None
        return self._gateway(ctx, 401, {"code": "401", "message": ACCESS_DENIED}, "auth_error")

    def asked(self, ctx: RequestContext, chat: ChatRequest) -> Asked:
        """As OpenAI's, but the model asked for is the deployment in the path (v1 surface: the body's model)."""
        return read_chat_completions(chat.body, ctx.extra.get("deployment", chat.model))

    def parse_chat(self, ctx: RequestContext, raw: bytes) -> ChatRequest:
        deployment = ctx.request.match_info.get("deployment")
        version = ctx.request.query.get("api-version", "").strip()
        if deployment is not None:
            if not version:
                rendered = self._gateway(
                    ctx, 404, {"code": "404", "message": "Resource not found"}, "not_found"
                )
                raise Rejected(rendered)
            raw = _with_model(raw, deployment)
        chat = super().parse_chat(ctx, raw)
        if deployment is not None and version[:10] < STREAM_OPTIONS_SINCE:
            for name in ("stream_options", "max_completion_tokens"):
                if name in chat.body:
                    raise self._reject(ctx, f"Unrecognized request argument supplied: {name}", None, None)
        ctx.extra["deployment"] = chat.model
        ctx.extra["api_version"] = version or "v1"
        chat.model = SERVED_MODELS.get(chat.model, chat.model)
        return chat

    # --- headers
    # -------------------------------------------------------------------------------------------------
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        """Headers of a backend-made response: both request ids, deployment, RAI and rate-limit headers."""
        apim = self._apim_id(ctx)
        headers = {
            "apim-request-id": apim,
            "azureml-model-session": MODEL_SESSION,
            "Strict-Transport-Security": HSTS,
            "x-accel-buffering": "no",
            "x-content-type-options": "nosniff",
            "x-ms-client-request-id": apim,
            "x-ms-rai-invoked": "true",
            "x-ms-region": REGION,
            "x-request-id": ctx.request_id,
            **self.rate_limit_headers(ctx, scenario),
        }
        deployment = ctx.extra.get("deployment")
        if deployment:
            headers["x-ms-deployment-name"] = str(deployment)
        return headers

    def gateway_headers(self, ctx: RequestContext) -> dict[str, str]:
        """Headers of a gateway-made response: the planned id as ``apim-request-id``, no ``x-request-id``."""
        return {
            "apim-request-id": ctx.request_id,
            "Strict-Transport-Security": HSTS,
            "x-content-type-options": "nosniff",
            "x-ms-region": REGION,
            "Content-Type": JSON,
        }

    def rate_limit_headers(self, ctx: RequestContext, scenario: Scenario | None) -> dict[str, str]:
        used = self._input_tokens(ctx)
        limited = scenario is not None and scenario.error == "rate_limit"
        return {
            "x-ratelimit-limit-requests": str(LIMIT_REQUESTS),
            "x-ratelimit-limit-tokens": str(LIMIT_TOKENS),
            "x-ratelimit-remaining-requests": str(LIMIT_REQUESTS - 1),
            "x-ratelimit-remaining-tokens": "0" if limited else str(max(LIMIT_TOKENS - used, 0)),
        }

    # --- errors
    # --------------------------------------------------------------------------------------------------
    def _gateway(
        self, ctx: RequestContext, status: int, error: dict[str, Any], kind: str, *, indent: int | None = None
    ) -> Rendered:
        body = json.dumps({"error": error}, indent=indent) if indent else dumps({"error": error})
        return Rendered(status, self.gateway_headers(ctx), body.encode(), error_kind=kind)

    def azure_error(self, kind: str, ctx: RequestContext, scenario: Scenario | None) -> dict[str, Any]:
        """The inner ``error`` object Azure sends for a fault kind, filled in for this request."""
        retry = scenario.retry_after if scenario is not None and scenario.retry_after is not None else 1.0
        version = ctx.extra.get("api_version", "2024-10-21")
        support = f"contact us through an Azure support request at: {SUPPORT} if the error persists"
        please = f"(Please include the request ID {ctx.request_id} in your message.)"
        if kind == "rate_limit":
            message = (
                f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {version} have "
                "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after "
                f"{math.ceil(retry)} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like "
                "to further increase the default rate limit."
            )
            return {"code": "429", "message": message}
        if kind == "quota_exhausted":
            message = (
                f"Out of call volume quota for OpenAI API. Quota will be replenished in {_replenish(retry)}."
            )
            return {"code": "403", "message": message}
        if kind == "auth_error":
            return {"code": "401", "message": ACCESS_DENIED}
        if kind == "permission_denied":
            return {"code": "PermissionDenied", "message": "Principal does not have access to API/Operation."}
        if kind == "not_found":
            return {
                "type": "invalid_request_error",
                "code": "DeploymentNotFound",
                "message": DEPLOYMENT_NOT_FOUND,
            }
        if kind == "bad_gateway":
            return {"code": "502", "message": "Bad gateway"}
        if kind == "gateway_timeout":
            return {"code": "504", "message": "Gateway timeout"}
        if kind == "content_filter":
            return {
                "message": PROMPT_FILTERED,
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": prompt_filter_results(blocked="violence"),
                },
            }
        if kind == "service_unavailable":
            return {
                "code": "ServiceUnavailable",
                "message": "The service is temporarily unable to process your request. Please try again later.",
            }
        if kind == "overloaded":
            message = (
                "That model is currently overloaded with other requests. You can retry your request, or "
                f"{support}. {please}"
            )
            return {"message": message, "type": "server_error", "param": None, "code": None}
        if kind in ("bad_request", "context_length"):
            if kind == "bad_request":
                message, param, code = "Unrecognized request argument supplied: temperatures", None, None
            else:
                used = CONTEXT_WINDOW + max(self._input_tokens(ctx), 1)
                message = (
                    f"This model's maximum context length is {CONTEXT_WINDOW} tokens. However, your messages "
                    f"resulted in {used} tokens. Please reduce the length of the messages."
                )
                param, code = "messages", "context_length_exceeded"
            return {"message": message, "type": "invalid_request_error", "param": param, "code": code}
        message = (
            "The server had an error while processing your request. Sorry about that! You can retry your "
            f"request, or {support}. {please}"
        )
        return {"message": message, "type": "server_error", "param": None, "code": None}

    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        status = scenario.status or AZURE_STATUS.get(kind, status)
        error = self.azure_error(kind, ctx, scenario)
        if scenario.message:
            error["message"] = scenario.message
        if kind in GATEWAY_KINDS:
            rendered = self._gateway(ctx, status, error, kind, indent=2 if kind == "not_found" else None)
            headers = dict(rendered.headers)
        else:
            headers = {**self.base_headers(ctx, status, scenario), "Content-Type": JSON}
            rendered = Rendered(status, headers, dumps({"error": error}).encode(), error_kind=kind)
        if kind == "rate_limit":
            headers.update(
                {
                    "policy-id": "DeploymentRatelimit-Token",
                    **{k: v for k, v in self.rate_limit_headers(ctx, scenario).items() if "remaining" in k},
                }
            )
        hint = None
        form = self.retry_form(scenario)
        if scenario.retry_after is not None and kind != "quota_exhausted" and form is not None:
            hint_headers, sent = header_hint(form, scenario.retry_after)
            headers.update(hint_headers)
            hint = sent.as_dict()
        return dataclasses.replace(rendered, headers=headers, retry_hint=hint)

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
        """Request validation errors (the OpenAI parser's rejections) as the Azure backend sends them."""
        headers = {**self.base_headers(ctx, status, scenario), "Content-Type": JSON}
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return Rendered(status, headers, dumps(body).encode())

    # --- non-streamed
    # --------------------------------------------------------------------------------------------
    def usage_object(self, plan: Plan) -> dict[str, Any]:
        u = plan.usage
        return {
            "completion_tokens": u.output_tokens,
            "completion_tokens_details": {
                "accepted_prediction_tokens": 0,
                "audio_tokens": 0,
                "reasoning_tokens": u.reasoning_tokens,
                "rejected_prediction_tokens": 0,
            },
            "prompt_tokens": u.input_tokens,
            "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": u.cached_tokens},
            "total_tokens": u.total_tokens,
        }

    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        assert ctx.chat is not None and ctx.scenario is not None
        message: dict[str, Any] = {
            "annotations": [],
            "content": None if plan.tool_calls else plan.text,
            "refusal": None,
            "role": "assistant",
        }
        if plan.tool_calls:
            message["tool_calls"] = [
                {
                    "function": {"arguments": call.arguments, "name": call.name},
                    "id": call.id,
                    "type": "function",
                }
                for call in plan.tool_calls
            ]
        tool_calls = journal_tool_calls(plan)
        choice = {
            "content_filter_results": completion_filter_results(plan.finish_reason == "content_filter"),
            "finish_reason": plan.finish_reason,
            "index": 0,
            "logprobs": None,
            "message": message,
        }
        body: dict[str, Any] = {
            "choices": [choice],
            "created": ctx.created,
            "id": ctx.response_id,
            "model": ctx.chat.model,
            "object": "chat.completion",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": prompt_filter_results()}],
            "system_fingerprint": SYSTEM_FINGERPRINT,
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
            (dumps(body) + "\n").encode(),
            text=plan.text,
            tool_calls=tool_calls,
            usage=usage,
            finish_reason=plan.finish_reason,
        )

    # --- streamed
    # ------------------------------------------------------------------------------------------------
    def _chunk(self, ctx: RequestContext, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        assert ctx.chat is not None
        chunk: dict[str, Any] = {
            "choices": [
                {
                    "content_filter_results": {},
                    "delta": delta,
                    "finish_reason": finish,
                    "index": 0,
                    "logprobs": None,
                }
            ],
            "created": ctx.created,
            "id": ctx.response_id,
            "model": ctx.chat.model,
            "object": "chat.completion.chunk",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        if self._usage_on_chunks(ctx):
            chunk["usage"] = None
        return chunk

    def _annotation(self, ctx: RequestContext, checked: int, *, filtered: bool = False) -> bytes:
        """An asynchronous-filter chunk: a choice with no ``delta``, only results and the offsets they cover."""
        start: int = ctx.extra.get("filter_checked", 0)
        ctx.extra["filter_checked"] = checked
        chunk = self._chunk(ctx, {})
        chunk["choices"] = [
            {
                "content_filter_offsets": {
                    "check_offset": start,
                    "start_offset": start,
                    "end_offset": checked,
                },
                "content_filter_results": completion_filter_results(filtered),
                "finish_reason": None,
                "index": 0,
            }
        ]
        return sse_event(chunk)

    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        prompt_chunk = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": prompt_filter_results()}],
        }
        content = None if plan.tool_calls else ""
        role = self._chunk(ctx, {"content": content, "refusal": None, "role": "assistant"})
        return [Frame(sse_event(prompt_chunk), "open"), Frame(sse_event(role), "open")]

    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        data = sse_event(self._chunk(ctx, {"content": piece}))
        if state.chunks_sent % 2 == 1:
            data += self._annotation(ctx, len(state.text_sent) + len(piece))
        return Frame(data, "content", text=piece)

    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        call: dict[str, Any] = {"index": fragment.index}
        if fragment.id is not None:
            call.update(
                function={"arguments": fragment.arguments, "name": fragment.name},
                id=fragment.id,
                type="function",
            )
        else:
            call["function"] = {"arguments": fragment.arguments}
        return Frame(sse_event(self._chunk(ctx, {"tool_calls": [call]})), "tool", tool=fragment)

    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        return None

    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        assert ctx.scenario is not None
        filtered = plan.finish_reason == "content_filter"
        finish = self._chunk(ctx, {}, plan.finish_reason)
        finish["choices"][0]["content_filter_results"] = completion_filter_results(filtered)
        frames = [
            Frame(sse_event(finish), "finish", finish_reason=plan.finish_reason),
            Frame(self._annotation(ctx, len(state.text_sent), filtered=filtered), "keepalive"),
        ]
        if self._usage_on_chunks(ctx):
            usage = self.usage_object(plan) if ctx.scenario.usage == "normal" else None
            chunk = {**self._chunk(ctx, {}), "choices": [], "usage": usage}
            frames.append(Frame(sse_event(chunk), "usage", usage=usage))
        frames.append(Frame(sse_event("[DONE]"), "terminator"))
        return frames

    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        return [Frame(sse_event({"error": self.azure_error(kind, ctx, ctx.scenario)}), "error")]


def _with_model(raw: bytes, deployment: str) -> bytes:
    """The body with ``model`` set to the path's deployment (Azure routes by the path); unparseable bodies unchanged."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
    if not isinstance(body, dict):
        return raw
    return json.dumps({**body, "model": deployment}).encode()
