"""OpenRouter (provider-wire-formats.md §8): OpenAI Chat Completions through a router, with the router's own edges.

Why this is more than configuration:

* errors are ``{"error": {"code": <int = HTTP status>, "message", "metadata"}}``: the integer code says what the status
  says, and ``metadata`` says more: a 403 carrying ``reasons``/``flagged_input`` is moderation (``content_filter``), a
  402 is exhausted credits, a 503 means no provider has capacity (``overloaded``), a 400 "maximum context length" is a
  context overflow;
* errors after processing started come back as **HTTP 200** whose body is the error object (the parent checks every
  200 body for ``error``), and mid-stream as a data event with ``error`` plus ``finish_reason: "error"``;
* the request id is the generation id ``gen-...``: the ``x-generation-id`` header, else the body ``id`` (errors before
  a generation exists carry none);
* streams open with ``: OPENROUTER PROCESSING`` comments (skipped by the SSE parser) and always end with a usage chunk;
* ``X-Title`` attributes the traffic to provcert on OpenRouter's dashboards (optional, not a secret).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from adapters.errors import ErrorKind
from adapters.openai import OpenAIAdapter
from adapters.streaming import StreamAccumulator
from adapters.types import ChatRequest, ChatResponse, StreamEvent

APP_TITLE = "provcert"


class OpenRouterAdapter(OpenAIAdapter):
    wire: ClassVar[str] = "openrouter"
    request_id_header: ClassVar[str] = "x-generation-id"
    max_tokens_field: ClassVar[str] = "max_tokens"

    async def headers(self) -> dict[str, str]:
        headers = await super().headers()
        headers["x-title"] = str(self.entry.options.get("app_title", APP_TITLE))
        return headers

    def parse_completion(
        self, data: Mapping[str, Any], request: ChatRequest, request_id: str | None
    ) -> ChatResponse:
        gen_id = data.get("id")
        if request_id is None and isinstance(gen_id, str) and gen_id.startswith("gen-"):
            request_id = gen_id
        return super().parse_completion(data, request, request_id)

    def _chunk_events(self, data: str, acc: StreamAccumulator) -> list[StreamEvent]:
        """Without an ``x-generation-id`` header, the chunks' ``gen-...`` id is the request id (End carries it)."""
        if acc.request_id is None and '"gen-' in data:
            try:
                gen_id = json.loads(data).get("id")
            except (json.JSONDecodeError, AttributeError):
                gen_id = None
            if isinstance(gen_id, str) and gen_id.startswith("gen-"):
                acc.request_id = gen_id
        return super()._chunk_events(data, acc)

    def dialect_kind(self, error: dict[str, Any], status: int | None) -> ErrorKind | None:
        return openrouter_kind(error, status)


def openrouter_kind(error: Mapping[str, Any], status: int | None) -> ErrorKind | None:
    """What the code, metadata and message say beyond the generic status table, or None."""
    code = error.get("code")
    effective = status if status and status != 200 else (code if isinstance(code, int) else None)
    raw_metadata, raw_message = error.get("metadata"), error.get("message")
    metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    message = raw_message if isinstance(raw_message, str) else ""
    if metadata.get("reasons") or metadata.get("flagged_input"):
        return ErrorKind.CONTENT_FILTER
    if "maximum context length" in message.lower():
        return ErrorKind.CONTEXT_LENGTH
    if effective == 402:
        return ErrorKind.QUOTA_EXHAUSTED
    if effective == 503:
        return ErrorKind.OVERLOADED
    return None
