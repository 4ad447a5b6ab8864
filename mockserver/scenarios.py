"""The provider-neutral scenario language of the mock server.

A scenario says *what goes wrong* (or right) in terms every provider shares; each personality decides *how it
looks* on its wire. Scenarios arrive as a preset name, as a JSON object (``{"preset": "rate_limit",
"retry_after": 3}`` or a full spec), per request in the ``x-mock-scenario`` header, or queued per session
through the admin API.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: Provider-neutral error kinds a personality knows how to render as an HTTP error response.
FaultKind = Literal[
    "rate_limit",
    "quota_exhausted",
    "auth_error",
    "permission_denied",
    "not_found",
    "bad_request",
    "context_length",
    "content_filter",
    "server_error",
    "bad_gateway",
    "service_unavailable",
    "gateway_timeout",
    "overloaded",
]

#: The HTTP status a fault kind gets unless a personality says otherwise (e.g. Anthropic's 529 for
#: overloaded).
DEFAULT_STATUS: dict[str, int] = {
    "rate_limit": 429,
    "quota_exhausted": 429,
    "auth_error": 401,
    "permission_denied": 403,
    "not_found": 404,
    "bad_request": 400,
    "context_length": 400,
    "content_filter": 400,
    "server_error": 500,
    "bad_gateway": 502,
    "service_unavailable": 503,
    "gateway_timeout": 504,
    "overloaded": 503,
}

UsageMode = Literal["normal", "null", "missing"]


class ScenarioError(ValueError):
    """A scenario that cannot be understood; the message names the problem (served as a 400 by the mock)."""


class Scenario(BaseModel):
    """One fully resolved scenario. Every field has a neutral default: ``Scenario()`` is a plain success."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    # --- failure before any body ---
    error: FaultKind | None = Field(
        None, description="answer with this provider error instead of a completion"
    )
    status: int | None = Field(None, ge=100, le=599, description="override the status the fault kind implies")
    message: str | None = Field(None, description="override the error message")
    retry_after: float | None = Field(None, ge=0, description="seconds, rendered in the provider's own form")
    headers_delay: float = Field(0.0, ge=0, description="seconds to wait before sending headers")
    hang: bool = Field(False, description="never send headers; wait until the client gives up")
    reset: bool = Field(
        False, description="close the connection after reading the request, before any headers"
    )
    # --- content ---
    text: str | None = Field(
        None, description="explicit completion text (default: seeded deterministic text)"
    )
    chunks: int = Field(6, ge=1, le=10_000, description="number of content chunks the text is split into")
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] | None = None
    tool_call: bool = Field(False, description="answer with a tool call for the first declared tool")
    cached_tokens: int = Field(0, ge=0, description="report this many input tokens as served from cache")
    reasoning_tokens: int = Field(0, ge=0, description="report this many hidden reasoning tokens")
    usage: UsageMode = "normal"
    report_input_tokens: int | None = Field(
        None,
        ge=0,
        le=1_000_000_000,
        description="report (and bill) this many input tokens instead of the truth: a dishonest upstream",
    )
    report_output_tokens: int | None = Field(
        None,
        ge=0,
        le=1_000_000_000,
        description="report (and bill) this many output tokens, whatever max_tokens said: a dishonest upstream",
    )
    # --- stream timing ---
    ttft: float = Field(0.0, ge=0, description="seconds between headers and the first content chunk")
    chunk_delay: float = Field(0.0, ge=0, description="seconds between chunks")
    stall_after: int | None = Field(
        None, ge=0, description="after N content chunks, go silent until the client leaves"
    )
    # --- stream faults ---
    abort_after: int | None = Field(None, ge=0, description="drop the connection after N content chunks")
    error_after: int | None = Field(
        None, ge=0, description="send an in-band error event after N content chunks"
    )
    error_after_kind: FaultKind = Field("server_error", description="the kind of the in-band error")
    malformed_after: int | None = Field(
        None, ge=0, description="send a frame that is not valid JSON after N chunks"
    )
    omit_terminator: bool = Field(False, description="end the stream without its terminator event")
    empty_chunks: int = Field(0, ge=0, description="empty content deltas to interleave with the real ones")
    keepalives: int = Field(0, ge=0, description="keep-alive comments / pings to interleave")
    # --- body faults (non-stream and stream) ---
    content_type: str | None = Field(None, description="override the response Content-Type")
    malformed_body: bool = Field(
        False, description="send a success status with a body that is not valid JSON"
    )
    # --- queueing ---
    times: int = Field(1, ge=1, description="when queued: how many requests this scenario answers")

    @model_validator(mode="after")
    def _coherent(self) -> Scenario:
        stream_points = [
            v for v in (self.abort_after, self.error_after, self.malformed_after) if v is not None
        ]
        if len(stream_points) > 1:
            raise ValueError("choose at most one of abort_after, error_after, malformed_after")
        if self.error is not None and (self.hang or self.reset or stream_points):
            raise ValueError(
                "'error' answers before any body; it cannot be combined with hang, reset or stream faults"
            )
        return self

    def status_for_error(self) -> int | None:
        if self.error is None:
            return None
        return self.status or DEFAULT_STATUS[self.error]


def _preset(name: str, **fields: Any) -> Scenario:
    return Scenario(name=name, **fields)


#: Named presets; the README documents each one. Parameters given alongside a preset override its fields.
PRESETS: dict[str, Scenario] = {
    p.name: p
    for p in [
        _preset("ok"),
        _preset("rate_limit", error="rate_limit", retry_after=1.0),
        _preset("quota_exhausted", error="quota_exhausted"),
        _preset("auth_error", error="auth_error"),
        _preset("permission_denied", error="permission_denied"),
        _preset("not_found", error="not_found"),
        _preset("bad_request", error="bad_request"),
        _preset("context_length", error="context_length"),
        _preset("content_filter", error="content_filter"),
        _preset("server_error", error="server_error"),
        _preset("bad_gateway", error="bad_gateway"),
        _preset("service_unavailable", error="service_unavailable", retry_after=1.0),
        _preset("gateway_timeout", error="gateway_timeout"),
        _preset("overloaded", error="overloaded"),
        _preset("timeout", hang=True),
        _preset("reset", reset=True),
        _preset("abort_mid_stream", abort_after=3),
        _preset("error_mid_stream", error_after=3, error_after_kind="server_error"),
        _preset("truncated_stream", omit_terminator=True),
        _preset("malformed_chunk", malformed_after=2),
        _preset("empty_chunks", empty_chunks=4, keepalives=2),
        _preset("null_usage", usage="null"),
        _preset("missing_usage", usage="missing"),
        _preset("slow_stream", ttft=0.2, chunk_delay=0.05),
        _preset("stall_mid_stream", stall_after=2),
        _preset("filtered_output", finish_reason="content_filter", chunks=3),
        _preset("tool_call", tool_call=True),
        _preset("usage_details", cached_tokens=5, reasoning_tokens=7),
        _preset("malformed_body", malformed_body=True),
        _preset("wrong_content_type", content_type="text/html; charset=utf-8"),
        _preset("error_in_200", error="server_error", status=200),
    ]
}


def parse_scenario(raw: str | dict[str, Any]) -> Scenario:
    """Turn a header value or a JSON object into a Scenario, or raise ScenarioError naming what is wrong."""
    spec: Any
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            raise ScenarioError("empty scenario")
        if not text.startswith("{"):
            return _lookup(text)
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"scenario is not valid JSON: {exc.msg} at position {exc.pos}") from None
    else:
        spec = raw
    if not isinstance(spec, dict):
        raise ScenarioError(f"scenario must be a preset name or a JSON object, got {type(spec).__name__}")
    spec = dict(spec)
    preset_name = spec.pop("preset", None)
    base: dict[str, Any] = {}
    if preset_name is not None:
        if not isinstance(preset_name, str):
            raise ScenarioError("'preset' must be a string")
        base = _lookup(preset_name).model_dump(exclude_unset=True)
        base["name"] = preset_name
    base.update(spec)
    try:
        return Scenario(**base)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'scenario'}: {err['msg']}" for err in exc.errors()
        )
        raise ScenarioError(f"invalid scenario: {problems}") from None


def parse_scenario_list(raw: Any) -> list[Scenario]:
    """Parse the admin API's queue body: a list of scenarios, or ``{"scenarios": [...]}``."""
    if isinstance(raw, dict) and "scenarios" in raw:
        raw = raw["scenarios"]
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ScenarioError("expected a non-empty list of scenarios")
    out: list[Scenario] = []
    for i, item in enumerate(raw):
        try:
            out.append(parse_scenario(item))
        except ScenarioError as exc:
            raise ScenarioError(f"scenarios[{i}]: {exc}") from None
    return out


def _lookup(name: str) -> Scenario:
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ScenarioError(f"unknown scenario preset {name!r}; known presets: {known}") from None
