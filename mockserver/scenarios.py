"""The provider-neutral scenario language of the mock server.

A scenario says *what goes wrong* (or right) in terms every provider shares; each personality decides *how it
looks* on its wire. Scenarios arrive as a preset name, as a JSON object (``{"preset": "rate_limit",
"retry_after": 3}`` or a full spec), per request in the ``x-mock-scenario`` header, or queued per session
through the admin API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mockserver.retry_hints import RetryForm

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


@dataclass(frozen=True)
class Limit:
    """The documented upper bound of one scenario field (or of the spec as a whole).

    Every bound exists because one request (a 30-byte header, one enqueue) must not be able to make the mock
    allocate without limit: a chunk count becomes a list of frames, a text is copied into every journal entry,
    a delay pins a connection. The README's bounds table is generated from :data:`LIMITS` (a test keeps them in
    sync), and a spec over a bound is refused with a 400 naming the field, the value and the bound.
    """

    name: str
    high: float
    unit: str
    why: str
    low: float | None = None

    def describe(self) -> str:
        """``chunks`` is 1 .. 10000 chunks: how a 400 states the bound."""
        high = _number(self.high)
        span = f"at most {high}" if self.low is None else f"{_number(self.low)} .. {high}"
        return f"{self.name} is {span} {self.unit}".rstrip()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


#: Most content chunks (and fault points counted in chunks) one answer may have.
MAX_CHUNKS = 10_000
#: Most parallel tool calls one answer may have (real providers answer with a handful; 8 exercises any adapter).
MAX_TOOL_CALLS = 8
#: Longest wait any timing field may ask for (seconds); the engine caps hangs and stalls at the same value.
MAX_WAIT_SECONDS = 120.0

#: Every numeric and string field's bound, plus the bounds on a spec as a whole. Enumerated and boolean
#: fields (``error``, ``usage``, ``hang``, ...) are bounded by their type and need no entry.
LIMITS: dict[str, Limit] = {
    lim.name: lim
    for lim in [
        Limit(
            "spec_bytes", 262_144, "bytes", "one scenario spec (header value or JSON object), UTF-8 encoded"
        ),
        Limit("queue_length", 1_000, "scenarios", "scenarios queued for one session at any time"),
        Limit("session_id", 200, "characters", "a session id in the admin API path"),
        Limit("name", 64, "characters", "the scenario's name, copied into every journal entry"),
        Limit("status", 599, "", "an HTTP status that can carry a body", low=200),
        Limit("message", 4_096, "characters", "an error message, sent in every error body"),
        Limit("retry_after", 3_600, "seconds", "a retry hint no client should wait longer than", low=0),
        Limit("headers_delay", MAX_WAIT_SECONDS, "seconds", "a wait that pins a connection", low=0),
        Limit("text", 32_768, "characters", "explicit text, copied into the plan, the wire and the journal"),
        Limit("chunks", MAX_CHUNKS, "chunks", "each chunk is a frame built, sent and journaled", low=1),
        Limit("tool_calls", MAX_TOOL_CALLS, "calls", "each call is streamed as its own frames", low=1),
        Limit("cached_tokens", 1_000_000_000, "tokens", "a usage count clients must still represent", low=0),
        Limit(
            "reasoning_tokens", 1_000_000_000, "tokens", "a usage count clients must still represent", low=0
        ),
        Limit(
            "report_input_tokens",
            1_000_000_000,
            "tokens",
            "a usage count clients must still represent",
            low=0,
        ),
        Limit(
            "report_output_tokens",
            1_000_000_000,
            "tokens",
            "a usage count clients must still represent",
            low=0,
        ),
        Limit("ttft", MAX_WAIT_SECONDS, "seconds", "a wait that pins a connection", low=0),
        Limit("chunk_delay", 10, "seconds", "paid between every pair of chunks", low=0),
        Limit("stall_after", MAX_CHUNKS, "chunks", "a fault point counted in chunks", low=0),
        Limit("abort_after", MAX_CHUNKS, "chunks", "a fault point counted in chunks", low=0),
        Limit("error_after", MAX_CHUNKS, "chunks", "a fault point counted in chunks", low=0),
        Limit("malformed_after", MAX_CHUNKS, "chunks", "a fault point counted in chunks", low=0),
        Limit("empty_chunks", 1_000, "frames", "each is a frame built, sent and journaled", low=0),
        Limit("keepalives", 1_000, "frames", "each is a frame built, sent and journaled", low=0),
        Limit("content_type", 256, "characters", "a header value (printable ASCII only)"),
        Limit("times", 10_000, "requests", "how many requests one queued scenario answers", low=1),
    ]
}


def _ge(name: str) -> float | None:
    return LIMITS[name].low


def _le(name: str) -> float:
    return LIMITS[name].high


def _max_len(name: str) -> int:
    return int(LIMITS[name].high)


class Scenario(BaseModel):
    """One fully resolved scenario. Every field has a neutral default: ``Scenario()`` is a plain success."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field("custom", max_length=_max_len("name"))
    # --- failure before any body ---
    error: FaultKind | None = Field(
        None, description="answer with this provider error instead of a completion"
    )
    status: int | None = Field(
        None, ge=_ge("status"), le=_le("status"), description="override the status the fault kind implies"
    )
    message: str | None = Field(
        None, max_length=_max_len("message"), description="override the error message"
    )
    retry_after: float | None = Field(
        None,
        ge=_ge("retry_after"),
        le=_le("retry_after"),
        description="seconds, rendered in the provider's own form",
    )
    retry_after_form: RetryForm | None = Field(
        None,
        description="which of the provider's retry-hint forms carries retry_after (default: the personality's "
        "first declared form; a form its real provider never sends is a 400 listing the supported ones)",
    )
    headers_delay: float = Field(
        0.0,
        ge=_ge("headers_delay"),
        le=_le("headers_delay"),
        description="seconds to wait before sending headers",
    )
    hang: bool = Field(False, description="never send headers; wait until the client gives up")
    reset: bool = Field(
        False, description="close the connection after reading the request, before any headers"
    )
    # --- content ---
    text: str | None = Field(
        None,
        max_length=_max_len("text"),
        description="explicit completion text (default: seeded deterministic text)",
    )
    chunks: int = Field(
        6, ge=_ge("chunks"), le=_le("chunks"), description="number of content chunks the text is split into"
    )
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] | None = None
    tool_call: bool = Field(False, description="answer with a tool call for the first declared tool")
    tool_calls: int | None = Field(
        None,
        ge=_ge("tool_calls"),
        le=_le("tool_calls"),
        description="answer with this many parallel tool calls, drawn round-robin from the declared tools, each "
        "with its own id and arguments (implies a tool-call answer; tool_call alone means 1)",
    )
    cached_tokens: int = Field(
        0,
        ge=_ge("cached_tokens"),
        le=_le("cached_tokens"),
        description="report this many input tokens as served from cache",
    )
    reasoning_tokens: int = Field(
        0,
        ge=_ge("reasoning_tokens"),
        le=_le("reasoning_tokens"),
        description="report this many hidden reasoning tokens",
    )
    usage: UsageMode = "normal"
    report_input_tokens: int | None = Field(
        None,
        ge=_ge("report_input_tokens"),
        le=_le("report_input_tokens"),
        description="report (and bill) this many input tokens instead of the truth: a dishonest upstream",
    )
    report_output_tokens: int | None = Field(
        None,
        ge=_ge("report_output_tokens"),
        le=_le("report_output_tokens"),
        description="report (and bill) this many output tokens, whatever max_tokens said: a dishonest upstream",
    )
    # --- stream timing ---
    ttft: float = Field(
        0.0, ge=_ge("ttft"), le=_le("ttft"), description="seconds between headers and the first content chunk"
    )
    chunk_delay: float = Field(
        0.0, ge=_ge("chunk_delay"), le=_le("chunk_delay"), description="seconds between chunks"
    )
    stall_after: int | None = Field(
        None,
        ge=_ge("stall_after"),
        le=_le("stall_after"),
        description="after N content chunks, go silent until the client leaves",
    )
    # --- stream faults ---
    abort_after: int | None = Field(
        None,
        ge=_ge("abort_after"),
        le=_le("abort_after"),
        description="drop the connection after N content chunks",
    )
    error_after: int | None = Field(
        None,
        ge=_ge("error_after"),
        le=_le("error_after"),
        description="send an in-band error event after N content chunks",
    )
    error_after_kind: FaultKind = Field("server_error", description="the kind of the in-band error")
    malformed_after: int | None = Field(
        None,
        ge=_ge("malformed_after"),
        le=_le("malformed_after"),
        description="send a frame that is not valid JSON after N chunks",
    )
    omit_terminator: bool = Field(False, description="end the stream without its terminator event")
    empty_chunks: int = Field(
        0,
        ge=_ge("empty_chunks"),
        le=_le("empty_chunks"),
        description="empty content deltas to interleave with the real ones",
    )
    keepalives: int = Field(
        0, ge=_ge("keepalives"), le=_le("keepalives"), description="keep-alive comments / pings to interleave"
    )
    # --- body faults (non-stream and stream) ---
    content_type: str | None = Field(
        None,
        max_length=_max_len("content_type"),
        pattern=r"^[\x20-\x7e]*$",
        description="override the response Content-Type",
    )
    malformed_body: bool = Field(
        False, description="send a success status with a body that is not valid JSON"
    )
    # --- queueing ---
    times: int = Field(
        1,
        ge=_ge("times"),
        le=_le("times"),
        description="when queued: how many requests this scenario answers",
    )

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

    @property
    def tool_call_count(self) -> int:
        """How many tool calls the answer holds: ``tool_calls``, else 1 for ``tool_call``, else none."""
        if self.tool_calls is not None:
            return self.tool_calls
        return 1 if self.tool_call else 0

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
        _preset("parallel_tool_calls", tool_calls=2),
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
        _check_spec_size(len(text.encode("utf-8", errors="surrogatepass")))
        if not text.startswith("{"):
            return _lookup(text)
        spec = _loads(text)
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
        raise ScenarioError(f"invalid scenario: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """Each problem as ``field: what is wrong (got <value>; <the bound>)``, the value shortened so an attack's
    payload is never echoed back whole."""
    problems = []
    errors = exc.errors()
    for err in errors[:_MAX_PROBLEMS]:
        where = _shown(".".join(str(p) for p in err["loc"]) or "scenario", quote=False)
        detail = f"{where}: {err['msg']}"
        if err["type"] != "missing":
            detail += f" (got {_shown(err.get('input'))}"
            bound = LIMITS.get(str(err["loc"][0])) if err["loc"] else None
            detail += f"; {bound.describe()})" if bound is not None else ")"
        problems.append(detail)
    if len(errors) > _MAX_PROBLEMS:
        problems.append(f"and {len(errors) - _MAX_PROBLEMS} more problems")
    return "; ".join(problems)


#: A 400 lists at most this many problems (a spec with 10,000 unknown keys must not get a 1 MB answer).
_MAX_PROBLEMS = 5


def _shown(value: Any, quote: bool = True) -> str:
    """A value as a 400 shows it: short ones whole, long strings by length only."""
    if isinstance(value, str) and len(value) > 40:
        return f"a string of {len(value)} characters"
    shown = repr(value) if quote else str(value)
    return shown if len(shown) <= 80 else f"{shown[:60]}... ({type(value).__name__})"


def _check_spec_size(size: int) -> None:
    bound = LIMITS["spec_bytes"]
    if size > bound.high:
        raise ScenarioError(f"scenario spec is {size} bytes; {bound.describe()}")


def _loads(text: str) -> Any:
    """JSON, or a ScenarioError: also for what ``json`` raises besides JSONDecodeError (an integer of more than
    4300 digits is a ValueError, 2000 nested brackets a RecursionError), which would otherwise be a 500."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except (ValueError, RecursionError) as exc:
        raise ScenarioError(f"scenario is not usable JSON: {str(exc)[:120]}") from None


def parse_scenario_list(raw: Any) -> list[Scenario]:
    """Parse the admin API's queue body: a list of scenarios, or ``{"scenarios": [...]}``."""
    if isinstance(raw, dict) and "scenarios" in raw:
        raw = raw["scenarios"]
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ScenarioError("expected a non-empty list of scenarios")
    bound = LIMITS["queue_length"]
    if len(raw) > bound.high:
        raise ScenarioError(f"{len(raw)} scenarios in one request; {bound.describe()}")
    out: list[Scenario] = []
    for i, item in enumerate(raw):
        try:
            if isinstance(item, dict):
                _check_spec_size(len(json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass")))
            out.append(parse_scenario(item))
        except ScenarioError as exc:
            raise ScenarioError(f"scenarios[{i}]: {exc}") from None
    return out


def _lookup(name: str) -> Scenario:
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ScenarioError(f"unknown scenario preset {_shown(name)}; known presets: {known}") from None
