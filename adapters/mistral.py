"""Mistral chat completions (provider-wire-formats.md §7): OpenAI-shaped, with Mistral's own edges.

Why this is more than configuration:

* the schema is strict: unknown fields are a 422 ``extra_forbidden``, so the adapter sends ``max_tokens`` and never
  ``stream_options`` (usage already rides on the final content chunk, the one with ``finish_reason``);
* error bodies are flat, ``{"object": "error", "message", "type", "param", "code"}`` (the Kong gateway in front answers
  401/502/503/504 with ``{"message", "request_id"}``), and the kind lives in ``type``/``code`` rather than in the
  status: an unknown model is a **400** ``invalid_model`` (code 1500), a context overflow a 400 with code 3051;
* the request id is the ``mistral-correlation-id`` header (``x-kong-request-id`` carries the same value);
* a message's ``content`` may be a list of parts (``text`` and, for Magistral, ``thinking``): only ``text`` parts are
  the answer; thinking is not forwarded as text;
* a mid-stream error has no defined shape: any data frame that is an error object is mapped like an HTTP error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from adapters.errors import ErrorKind
from adapters.openai import OpenAIAdapter
from adapters.streaming import StreamAccumulator
from adapters.types import ChatRequest, ChatResponse, StreamEvent

#: Mistral error ``type`` / ``code`` values that say more than the HTTP status does.
MISTRAL_KINDS: dict[str, ErrorKind] = {
    "rate_limited": ErrorKind.RATE_LIMITED,
    "1300": ErrorKind.RATE_LIMITED,
    "service_tier_capacity_exceeded": ErrorKind.OVERLOADED,
    "3505": ErrorKind.OVERLOADED,
    "invalid_model": ErrorKind.NOT_FOUND,
    "1500": ErrorKind.NOT_FOUND,
    "3051": ErrorKind.CONTEXT_LENGTH,
    "usage_limit_exceeded": ErrorKind.QUOTA_EXHAUSTED,
    "guardrail_blocked": ErrorKind.CONTENT_FILTER,
    "internal_server_error": ErrorKind.SERVER_ERROR,
    "service_unavailable": ErrorKind.OVERLOADED,
}

#: Phrases in a message that identify the error when ``type``/``code`` are absent or generic.
MESSAGE_KINDS: tuple[tuple[str, ErrorKind], ...] = (
    ("too large for model with", ErrorKind.CONTEXT_LENGTH),
    ("maximum context length", ErrorKind.CONTEXT_LENGTH),
    ("capacity exceeded", ErrorKind.OVERLOADED),
    ("rate limit exceeded", ErrorKind.RATE_LIMITED),
)


def part_text(content: Any) -> str | None:
    """The answer text of a ``content`` value: a string, or the ``text`` parts of a list (thinking parts skipped)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text") or ""
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return None


class MistralAdapter(OpenAIAdapter):
    wire: ClassVar[str] = "mistral"
    request_id_header: ClassVar[str] = "mistral-correlation-id"
    max_tokens_field: ClassVar[str] = "max_tokens"
    required_tool_choice: ClassVar[str] = "any"
    #: Mistral rejects ``stream_options`` (422 extra_forbidden) and reports usage in streams unasked
    stream_usage_option: ClassVar[bool] = False

    def request_id_of(self, headers: httpx.Headers) -> str | None:
        """``mistral-correlation-id``; Kong's ``x-kong-request-id`` carries the same value when it is missing."""
        value: str | None = headers.get(self.request_id_header) or headers.get("x-kong-request-id")
        return value

    # ----- responses -----
    def parse_completion(
        self, data: Mapping[str, Any], request: ChatRequest, request_id: str | None
    ) -> ChatResponse:
        if _is_error_object(data):
            raise self.body_error(dict(data), status=200, request_id=request_id)
        return super().parse_completion(_normalized(data, "message"), request, request_id)

    def _chunk_events(self, data: str, acc: StreamAccumulator) -> list[StreamEvent]:
        try:
            chunk = json.loads(data)
        except (json.JSONDecodeError, RecursionError):
            return super()._chunk_events(data, acc)  # reports the malformed (or too deeply nested) frame
        if isinstance(chunk, dict) and _is_error_object(chunk):
            raise self.body_error(
                chunk, status=None, request_id=acc.request_id, partial_text=acc.text, in_band=True
            )
        if isinstance(chunk, dict) and _has_part_lists(chunk, "delta"):
            data = json.dumps(_normalized(chunk, "delta"))
        return super()._chunk_events(data, acc)

    # ----- errors -----
    def dialect_kind(self, error: dict[str, Any], status: int | None) -> ErrorKind | None:
        return _mistral_kind(error)


def _is_error_object(data: Mapping[str, Any]) -> bool:
    """A flat Mistral error (``object: error``), or an OpenAI-style ``error`` member (handled by the parent)."""
    return data.get("object") == "error" and "choices" not in data


def _mistral_kind(error: Mapping[str, Any]) -> ErrorKind | None:
    for key in ("code", "type"):
        value = error.get(key)
        if value is not None and str(value) in MISTRAL_KINDS:
            return MISTRAL_KINDS[str(value)]
    message = error.get("message")
    if isinstance(message, str):
        lowered = message.lower()
        for phrase, kind in MESSAGE_KINDS:
            if phrase in lowered:
                return kind
    return None


def _has_part_lists(data: Mapping[str, Any], member: str) -> bool:
    for choice in data.get("choices") or []:
        if isinstance(choice, dict) and isinstance((choice.get(member) or {}).get("content"), list):
            return True
    return False


def _normalized(data: Mapping[str, Any], member: str) -> dict[str, Any]:
    """A copy whose choices' ``content`` lists are reduced to their answer text (thinking parts dropped)."""
    out = dict(data)
    if not _has_part_lists(data, member):
        return out
    choices = []
    for choice in data.get("choices") or []:
        if isinstance(choice, dict) and isinstance(choice.get(member), dict):
            inner = dict(choice[member])
            inner["content"] = part_text(inner.get("content"))
            choice = {**choice, member: inner}
        choices.append(choice)
    out["choices"] = choices
    return out
