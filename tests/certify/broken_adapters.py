"""Deliberately broken OpenAI adapters, one defect each, to prove the certification catches each defect.

Each class documents the checks its defect must fail; tests/certify/test_broken_adapters.py certifies them all.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from adapters.errors import ErrorKind, ProviderError
from adapters.openai import OpenAIAdapter
from adapters.streaming import StreamAccumulator
from adapters.types import ChatRequest, ChatResponse, StreamEvent, TextDelta, Usage

log = logging.getLogger("broken_adapters")


class IgnoresRetryAfter(OpenAIAdapter):
    """Drops the provider's retry hint. Must fail: ERR-429, RTY-AFTER."""

    def status_error(self, response: httpx.Response) -> ProviderError:
        err = super().status_error(response)
        err.retry_after = None
        return err


class WholeSecondsRetryAfter(OpenAIAdapter):
    """Reads only a whole-second ``retry-after``: ignores ``retry-after-ms``, HTTP-dates, Gemini's RetryInfo and
    Anthropic's reset headers. Must fail: ERR-429, RTY-AFTER (the ms and HTTP-date forms OpenAI's wire sends)."""

    def status_error(self, response: httpx.Response) -> ProviderError:
        err = super().status_error(response)
        raw = response.headers.get("retry-after", "").strip()
        err.retry_after = float(raw) if raw.isdigit() else None
        return err


class InvalidPromptIsBadRequest(OpenAIAdapter):
    """Maps OpenAI's filtered-prompt answer (400 ``invalid_prompt``) to ``bad_request``, as a table keyed on Azure's
    ``content_filter`` code alone would. Must fail: ERR-FILTER."""

    def dialect_kind(self, error: dict[str, Any], status: int | None) -> ErrorKind | None:
        if error.get("code") == "invalid_prompt":
            return ErrorKind.BAD_REQUEST
        return super().dialect_kind(error, status)


class DropsMaxTokens(OpenAIAdapter):
    """Never sends the output limit (the live cost cap relies on it). Must fail: REQ-FIELDS."""

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().body(request, stream=stream)
        body.pop(self.max_tokens_field, None)
        return body


class DropsSamplingParameters(OpenAIAdapter):
    """Drops ``top_p`` and the stop sequences. Must fail: REQ-FIELDS."""

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().body(request, stream=stream)
        body.pop("top_p", None)
        body.pop("stop", None)
        return body


class DropsSystemPrompt(OpenAIAdapter):
    """Leaves the system prompt out. Must fail: REQ-FIELDS, and TOK-NULL (its usage estimate counts a prompt the
    server never received)."""

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().body(request, stream=stream)
        body["messages"] = [m for m in body["messages"] if m["role"] != "system"]
        return body


class IgnoresToolChoice(OpenAIAdapter):
    """Never sends the tool choice, so the model always decides. Must fail: REQ-FIELDS."""

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = super().body(request, stream=stream)
        body.pop("tool_choice", None)
        return body


class CountsReasoningTwice(OpenAIAdapter):
    """Adds the reasoning tokens to ``completion_tokens``, which already includes them (another provider's
    convention applied to OpenAI's). Must fail: TOK-DETAIL, TOK-COST."""

    @staticmethod
    def parse_usage(raw: Any) -> Usage | None:
        usage = OpenAIAdapter.parse_usage(raw)
        if usage is None or not usage.reasoning_tokens:
            return usage
        output = usage.output_tokens + usage.reasoning_tokens
        return usage.model_copy(update={"output_tokens": output, "total_tokens": usage.input_tokens + output})


class CachedOutsideInput(OpenAIAdapter):
    """Takes the cached tokens out of the input total (Anthropic's convention applied to OpenAI's wire, where
    ``prompt_tokens`` already includes them). Must fail: TOK-DETAIL, TOK-COST."""

    @staticmethod
    def parse_usage(raw: Any) -> Usage | None:
        usage = OpenAIAdapter.parse_usage(raw)
        if usage is None or not usage.cached_tokens:
            return usage
        prompt = usage.input_tokens - usage.cached_tokens
        return usage.model_copy(update={"input_tokens": prompt, "total_tokens": prompt + usage.output_tokens})


class DropsRequestId(OpenAIAdapter):
    """Reads the wrong header. Must fail: RID-OK, RID-ERR, RID-STREAM."""

    request_id_header = "x-correlation-id"


class ForwardsEmptyDeltas(OpenAIAdapter):
    """Forwards empty content deltas. Must fail: STR-EMPTY."""

    def _chunk_events(self, data: str, acc: StreamAccumulator) -> list[StreamEvent]:
        events = super()._chunk_events(data, acc)
        if '"content":""' in data.replace(" ", "") and not events:
            events.append(TextDelta(text=""))
        return events


class TrustsEveryStreamEnd(OpenAIAdapter):
    """Treats the end of the connection as the end of the stream. Must fail: STR-TRUNCATED."""

    async def stream(self, request: ChatRequest) -> Any:
        agen = super().stream(request)
        try:
            async for event in agen:
                yield event
        except ProviderError as exc:
            if "[DONE]" not in exc.message:
                raise
            acc = StreamAccumulator(request, request_id=exc.request_id)
            acc.text_parts.append(exc.partial_text)
            yield acc.end()


class ZeroUsageWhenMissing(OpenAIAdapter):
    """Reports 0 tokens as the provider's truth when usage is null. Must fail: TOK-NULL."""

    @staticmethod
    def parse_usage(raw: Any) -> Usage | None:
        return OpenAIAdapter.parse_usage(raw) or Usage(source="reported")


class LogsHeaders(OpenAIAdapter):
    """Logs its request headers, credential included. Must fail: SEC-SURFACE."""

    async def headers(self) -> dict[str, str]:
        headers = await super().headers()
        log.debug("sending headers %s", headers)
        return headers


class RetriesEverything(OpenAIAdapter):
    """Marks every HTTP error retryable.

    Must fail: ERR-QUOTA, ERR-401/403/404/400, ERR-CONTEXT, ERR-FILTER, RTY-NONRETRY.
    """

    def status_error(self, response: httpx.Response) -> ProviderError:
        err = super().status_error(response)
        err.retryable = True
        return err


class IgnoresContentType(OpenAIAdapter):
    """Decodes any body as JSON, whatever its content type. Must fail: ERR-MALFORMED."""

    @staticmethod
    def parse_json_body(response: httpx.Response) -> Any:
        return json.loads(response.content)


class LeaksRawExceptions(OpenAIAdapter):
    """Calls httpx and json directly, without mapping failures. Must fail: ERR-TIMEOUT, ERR-CONN, ERR-MALFORMED."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await self._client.post(
            self.url("chat/completions"),
            json=self.body(request, stream=False),
            headers=await self.headers(),
            timeout=self.timeouts.httpx(),
        )
        if response.status_code != 200:
            raise self.status_error(response)
        return self.parse_completion(response.json(), request, response.headers.get(self.request_id_header))


class MergesParallelToolCalls(OpenAIAdapter):
    """Assumes an answer has one tool call: keys every tool-call fragment to index 0, so parallel calls merge into
    one (the last header's id and name, every call's argument text run together). Must fail: STR-TOOLS."""

    def _chunk_events(self, data: str, acc: StreamAccumulator) -> list[StreamEvent]:
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            return super()._chunk_events(data, acc)
        for choice in chunk.get("choices") or [] if isinstance(chunk, dict) else []:
            for call in (choice.get("delta") or {}).get("tool_calls") or []:
                call["index"] = 0
        return super()._chunk_events(json.dumps(chunk), acc)


class AppendsToLatestToolCall(OpenAIAdapter):
    """Keys each argument fragment to the call whose header arrived last instead of to the index it names, which
    holds only while calls arrive one after the other: the mock's interleaved fragments go to the wrong call.
    Must fail: STR-TOOLS."""

    def _chunk_events(self, data: str, acc: StreamAccumulator) -> list[StreamEvent]:
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            return super()._chunk_events(data, acc)
        for choice in chunk.get("choices") or [] if isinstance(chunk, dict) else []:
            for call in (choice.get("delta") or {}).get("tool_calls") or []:
                if call.get("id") is None and acc.tools:
                    call["index"] = max(acc.tools)
        return super()._chunk_events(json.dumps(chunk), acc)
