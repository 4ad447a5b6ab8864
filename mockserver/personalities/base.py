"""The personality interface: how one provider's dialect is rendered, with no control over timing or faults.

The engine (:mod:`mockserver.engine`) owns *when* and *whether* things are sent: delays, hangs, aborts,
stalls, in-band errors, empty chunks, keep-alives, omitted terminators, journaling. A personality only answers
questions of the form "what bytes does your provider send for X?":

* request side: its routes, :meth:`Personality.authenticate`, :meth:`Personality.parse_chat` (its body dialect
  → a neutral :class:`~mockserver.plan.ChatRequest`), id formats;
* response side: :meth:`Personality.render_error`, :meth:`Personality.render_completion` (whole bodies), and
  for streams one method per kind of :class:`Frame` (open, content, tool fragment, empty, keep-alive,
  finish+usage+ terminator, in-band error, malformed).

A :class:`Frame` carries its exact wire bytes plus what they mean (kind, text, tool fragment, usage, finish
reason), so the engine can count chunks and journal the truth without parsing any provider's format. A frame's
bytes are anything: an SSE event (``event:`` + ``data:``), an NDJSON line, or a binary AWS event-stream
message. A personality that has no such thing as a keep-alive or an empty delta returns ``None`` for it and
the engine skips it.
"""

from __future__ import annotations

import functools
import secrets
import string
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from aiohttp import web

from mockserver.asked import Asked
from mockserver.plan import ChatRequest, Plan
from mockserver.retry_hints import unsupported_form
from mockserver.scenarios import Scenario

FrameKind = Literal[
    "open",  # stream preamble (OpenAI role chunk, Anthropic message_start, Bedrock messageStart)
    "content",  # carries completion text: counts as a chunk
    "tool",  # carries a tool-call fragment: counts as a chunk
    "empty",  # an empty content delta (must never be forwarded by adapters)
    "keepalive",  # comment / ping (must be ignored)
    "finish",  # finish reason (may carry usage too, e.g. Gemini, Mistral)
    "usage",  # a usage-only frame (OpenAI include_usage chunk, Bedrock metadata)
    "terminator",  # the stream's end marker ([DONE], message_stop); dropped when the scenario omits it
    "error",  # an in-band error event
    "malformed",  # a frame that is deliberately not parseable
]


@dataclass(frozen=True)
class ToolFragment:
    """One streamed piece of a tool call: the header has id and name, later ones only argument text.

    ``index`` is the call's position in the answer (0, 1, ... for parallel calls); the journal keys
    ``tool_calls_sent`` by it."""

    index: int
    arguments: str
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Frame:
    """Exact wire bytes plus their meaning, so the engine can count and journal without parsing."""

    data: bytes
    kind: FrameKind
    text: str = ""
    tool: ToolFragment | None = None
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class Rendered:
    """A whole HTTP response (errors, non-streamed completions) plus what it means for the journal."""

    status: int
    headers: dict[str, str]
    body: bytes
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    error_kind: str | None = None
    #: what the response's retry hint means (:meth:`mockserver.retry_hints.RetryHint.as_dict`), journaled so checks
    #: compare an adapter's ``retry_after`` with what was really sent
    retry_hint: dict[str, Any] | None = None


@dataclass
class StreamState:
    """What has been sent so far (cumulative-usage providers like Gemini render it into every chunk)."""

    chunks_sent: int = 0
    text_sent: str = ""


@dataclass
class RequestContext:
    """Per-request values a personality needs to render frames consistently (ids, timestamps, model)."""

    request: web.Request
    request_id: str
    response_id: str
    created: int = field(default_factory=lambda: int(time.time()))
    started: float = field(default_factory=time.monotonic)
    chat: ChatRequest | None = None
    scenario: Scenario | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


class Rejected(Exception):
    """Raised by :meth:`Personality.parse_chat` to answer with the provider's own validation error."""

    def __init__(self, rendered: Rendered) -> None:
        super().__init__(rendered.status)
        self.rendered = rendered


def journal_tool_calls(plan: Plan, ids: bool = True) -> list[dict[str, Any]]:
    """What the journal's ``tool_calls_sent`` says a whole body carried: every call with its index, id (None when
    the provider sends none), name and arguments."""
    return [
        {"index": i, "id": call.id if ids else None, "name": call.name, "arguments": call.arguments}
        for i, call in enumerate(plan.tool_calls)
    ]


def random_token(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    """``length`` characters drawn uniformly and independently from ``alphabet`` by the OS's CSPRNG.

    Ids are made on every request, so an ASCII alphabet takes one ``secrets.token_bytes`` call per token (not
    one per character) mapped in C by ``bytes.translate``: byte ``b`` becomes ``alphabet[b % n]``, and bytes at
    or above the largest multiple of ``n`` are dropped, which keeps every character equally likely.
    """
    if not alphabet or len(alphabet) > 256 or not alphabet.isascii():
        return "".join(secrets.choice(alphabet) for _ in range(length))
    table, dropped = _token_table(alphabet)
    out = b""
    while len(out) < length:
        out += secrets.token_bytes(length + length // 4 + 8).translate(table, dropped)
    return out[:length].decode("ascii")


@functools.cache
def _token_table(alphabet: str) -> tuple[bytes, bytes]:
    """``bytes.translate`` arguments for :func:`random_token`: the byte mapping and the bytes to drop."""
    n = len(alphabet)
    limit = 256 - 256 % n
    return bytes(ord(alphabet[b % n]) for b in range(256)), bytes(range(limit, 256))


class Personality(ABC):
    """One provider's dialect. Subclasses set ``name`` and ``prefix`` and implement the abstract methods."""

    #: Whether the provider's stream keys tool fragments by call index so that fragments of parallel calls may
    #: interleave (OpenAI's ``tool_calls[].index``): the engine then streams the calls round-robin
    #: (:meth:`mockserver.plan.Plan.tool_schedule`). False: each call is streamed whole before the next starts
    #: (block-sequential protocols, and providers that send every call whole).
    interleaves_tool_calls: ClassVar[bool] = False
    #: Registry key and journal ``provider`` value, e.g. ``"openai"``.
    name: ClassVar[str]
    #: Path prefix under which the provider's real paths are mounted, e.g. ``"/openai"``.
    prefix: ClassVar[str]
    #: The retry-hint forms (:data:`mockserver.retry_hints.RetryForm`) the real provider sends, each with the source
    #: it was taken from (SDK source lines, provider docs, a real recording). The first is the default; a scenario
    #: asking for a form not listed is refused, so the mock never teaches an adapter a form the provider never sends.
    #: Empty: the provider sends no retry hint at all.
    retry_hint_forms: ClassVar[Mapping[str, str]] = {}
    #: Fault kinds (and ``retry:<form>`` hints) whose rendering rests on no real recording and no public source:
    #: kind -> why. The certificate lists the checks that rest on them
    #: (:func:`harness.fault_provenance.unverified_checks`).
    unverified_faults: ClassVar[Mapping[str, str]] = {}
    #: Fault kinds whose rendering traces to a real recording or a public source: kind -> that source. Together with
    #: :attr:`unverified_faults` it covers every fault kind (a test keeps it so).
    fault_sources: ClassVar[Mapping[str, str]] = {}

    def retry_form(self, scenario: Scenario | None) -> str | None:
        """The form this response's retry hint takes: the scenario's choice, else the provider's default (its first
        declared form), else None when the provider sends no hint."""
        if scenario is not None and scenario.retry_after_form is not None:
            return scenario.retry_after_form
        return next(iter(self.retry_hint_forms), None)

    def scenario_problem(self, scenario: Scenario) -> str | None:
        """Why this personality cannot play ``scenario`` (answered as the mock's 400), or None."""
        form = scenario.retry_after_form
        if form is not None and form not in self.retry_hint_forms:
            return unsupported_form(self.name, form, tuple(self.retry_hint_forms))
        return None

    @abstractmethod
    def routes(self) -> list[tuple[str, str]]:
        """(method, path below the prefix) pairs answered by the engine, e.g. ``("POST",
        "/v1/chat/completions")``."""

    # --- ids
    # -----------------------------------------------------------------------------------------------------
    @abstractmethod
    def new_request_id(self) -> str:
        """A request id in the provider's format (sent in its request-id header)."""

    @abstractmethod
    def new_response_id(self) -> str:
        """The id of the completion/message object in the body."""

    @abstractmethod
    def new_tool_call_id(self) -> str:
        """A tool-call id in the provider's format."""

    # --- request side
    # --------------------------------------------------------------------------------------------
    @abstractmethod
    def authenticate(self, ctx: RequestContext) -> Rendered | None:
        """The provider's auth error if the request's credentials are missing or malformed, else None."""

    def asked(self, ctx: RequestContext, chat: ChatRequest) -> Asked | None:
        """What the caller asked for, read from this dialect (REQ-FIELDS compares it with the normalized request).

        None means this personality does not say; the certification then reports REQ-FIELDS as not checkable.
        """
        return None

    @abstractmethod
    def parse_chat(self, ctx: RequestContext, raw: bytes) -> ChatRequest:
        """Validate the body like the provider does; raise :class:`Rejected` with its 4xx if invalid."""

    # --- whole responses
    # -----------------------------------------------------------------------------------------
    @abstractmethod
    def base_headers(self, ctx: RequestContext, status: int, scenario: Scenario | None) -> dict[str, str]:
        """Headers on every response: request id, rate-limit headers, processing time, server."""

    @abstractmethod
    def render_error(self, kind: str, status: int, scenario: Scenario, ctx: RequestContext) -> Rendered:
        """The provider's error response for a fault kind (body, status, retry hints)."""

    @abstractmethod
    def render_completion(self, ctx: RequestContext, plan: Plan) -> Rendered:
        """A complete non-streamed answer."""

    # --- streams
    # -------------------------------------------------------------------------------------------------
    @abstractmethod
    def stream_headers(self, ctx: RequestContext) -> dict[str, str]:
        """Extra headers of a streamed response (content type at least)."""

    @abstractmethod
    def stream_open(self, ctx: RequestContext, plan: Plan) -> list[Frame]:
        """Frames before the first content chunk."""

    @abstractmethod
    def stream_content(self, ctx: RequestContext, plan: Plan, piece: str, state: StreamState) -> Frame:
        """A frame carrying one piece of text."""

    @abstractmethod
    def stream_tool(
        self, ctx: RequestContext, plan: Plan, fragment: ToolFragment, state: StreamState
    ) -> Frame:
        """A frame carrying one tool-call fragment."""

    @abstractmethod
    def stream_empty(self, ctx: RequestContext, plan: Plan) -> Frame | None:
        """An empty content delta, or None if the provider never sends one."""

    @abstractmethod
    def stream_keepalive(self, ctx: RequestContext) -> Frame | None:
        """A keep-alive comment or ping, or None if the provider has none."""

    @abstractmethod
    def stream_finish(self, ctx: RequestContext, plan: Plan, state: StreamState) -> list[Frame]:
        """Finish reason, usage (per the scenario's usage mode), terminator frames (kind ``terminator``)."""

    @abstractmethod
    def stream_error(self, ctx: RequestContext, plan: Plan, kind: str, state: StreamState) -> list[Frame]:
        """The provider's in-band error event(s) for a fault kind; the engine ends the stream after them."""

    @abstractmethod
    def stream_malformed(self, ctx: RequestContext, plan: Plan) -> Frame:
        """A frame a client cannot parse; the engine ends the stream after it."""
