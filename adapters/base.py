"""The adapter contract and the HTTP plumbing every provider adapter shares.

An adapter maps between the normalized types and one provider's wire format. It maps, it does not decide: no retry
loops, routing or budgets live here (that is the gateway's job), which is what makes adapters small and checkable.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import json
import math
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast
from urllib.parse import urlsplit

import httpx
from httpx_sse import SSEError

from adapters.errors import ErrorKind, ProviderError, parse_retry_after, scrub
from adapters.types import ChatRequest, ChatResponse, End, StreamEvent, TextDelta, Usage

if TYPE_CHECKING:
    from adapters.credentials import CredentialResolver
    from adapters.registry import ProviderEntry
    from adapters.streaming import StreamAccumulator

T = TypeVar("T")


@cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context for every client: loading the CA bundle costs ~25 ms, so never do it per client."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class WireValueError(ValueError):
    """A value on the wire this adapter cannot accept (a count that is not a count); the call guard reports it as
    ``invalid_response`` with this message."""


def token_count(value: Any, field: str) -> int | None:
    """A token count from the wire: None when absent, else a non-negative integer (an integral float such as ``12.0``
    is accepted, as JSON does not tell them apart). Anything else (a string, a bool, a negative, a fraction, infinity)
    raises :class:`WireValueError`: a count we would have to guess at must not be billed as reported."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WireValueError(f"usage field {field} is not a number: {type(value).__name__}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise WireValueError(f"usage field {field} is not a whole number: {value!r}")
    count = int(value)
    if count < 0:
        raise WireValueError(f"usage field {field} is negative: {count}")
    return count


#: The total deadline of one call when the registry entry does not set ``timeouts.total`` (seconds).
DEFAULT_TOTAL_TIMEOUT = 300.0


@dataclass(frozen=True)
class Timeouts:
    """Strict client-side bounds, in seconds. ``stream_idle`` bounds the gap between two stream reads; ``total`` bounds
    a whole call (headers, body, every stream event), because per-read bounds alone let a trickling server or an
    endless run of empty deltas keep a call busy forever."""

    connect: float = 5.0
    read: float = 60.0
    stream_idle: float = 30.0
    total: float = DEFAULT_TOTAL_TIMEOUT

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.read, pool=self.connect)


#: The status-to-kind table shared by providers that use HTTP statuses the common way; adapters refine it from bodies.
STATUS_KINDS: dict[int, ErrorKind] = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.AUTH,
    402: ErrorKind.QUOTA_EXHAUSTED,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.TIMEOUT,
    409: ErrorKind.SERVER_ERROR,
    413: ErrorKind.BAD_REQUEST,
    422: ErrorKind.BAD_REQUEST,
    429: ErrorKind.RATE_LIMITED,
    529: ErrorKind.OVERLOADED,
}


def kind_for_status(status: int) -> ErrorKind:
    if status in STATUS_KINDS:
        return STATUS_KINDS[status]
    if status >= 500:
        return ErrorKind.SERVER_ERROR
    return ErrorKind.BAD_REQUEST


class Adapter(abc.ABC):
    """Base class for provider adapters.

    Subclasses implement :meth:`complete` and :meth:`stream`; this class owns the HTTP client, credentials at call
    time, the egress guard and the mapping of transport failures, so that every adapter fails the same way.
    """

    #: the wire dialect this adapter speaks (the mock personality that plays its provider)
    wire: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap every concrete ``complete``/``stream`` in the call guard (:func:`_guard_complete`,
        :func:`_guard_stream`): whatever a parser trips over, a caller calling the adapter directly sees only a
        ProviderError, and no call outlives ``timeouts.total``. Done here so that no adapter can forget it."""
        super().__init_subclass__(**kwargs)
        guards: dict[str, Callable[[Any], Any]] = {"complete": _guard_complete, "stream": _guard_stream}
        for name, guard in guards.items():
            method = cls.__dict__.get(name)
            if method is None or getattr(method, "__isabstractmethod__", False):
                continue
            if not getattr(method, "_provcert_guarded", False):
                setattr(cls, name, guard(method))

    def __init__(
        self,
        entry: ProviderEntry,
        *,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        credentials: CredentialResolver | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        from adapters.credentials import default_resolver

        self.entry = entry
        self.provider_id = entry.provider_id
        self.capabilities = entry.capabilities
        self.base_url = (base_url or entry.base_url).rstrip("/")
        self.timeouts = timeouts or entry.timeouts.as_timeouts()
        self._credentials = credentials or default_resolver()
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(verify=shared_ssl_context())
        host = urlsplit(self.base_url)
        self._allowed_origin = (host.scheme, host.hostname, host.port)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider_id={self.provider_id!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # ----- the contract -----
    @abc.abstractmethod
    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    @abc.abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    # ----- helpers for subclasses -----
    async def credential(self) -> str | None:
        """Resolve the credential now, so that a rotated secret is used by the very next call."""
        from adapters.credentials import CredentialError

        ref = self.entry.credential_ref
        if ref is None:
            return None
        try:
            return await self._credentials.resolve(ref)
        except CredentialError as exc:
            exc.provider_id = exc.provider_id or self.provider_id
            raise

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _check_egress(self, url: str) -> None:
        parts = urlsplit(url)
        if (parts.scheme, parts.hostname, parts.port) != self._allowed_origin:
            raise ProviderError(
                ErrorKind.UNSUPPORTED,
                f"refusing to send to {parts.scheme}://{parts.hostname}:{parts.port}: not the registered host",
                provider_id=self.provider_id,
                retryable=False,
            )

    def unsupported(self, what: str) -> ProviderError:
        """A request field this provider cannot take: refused before anything is sent, never silently dropped."""
        return self.error(ErrorKind.UNSUPPORTED, f"{self.provider_id} cannot take {what}", retryable=False)

    def error(self, kind: ErrorKind, message: str, **kw: Any) -> ProviderError:
        return ProviderError(kind, message, provider_id=self.provider_id, **kw)

    def deadline_error(
        self, exc: BaseException | None, *, request_id: str | None = None, partial_text: str = ""
    ) -> ProviderError:
        """The call ran past ``timeouts.total``: a ``timeout`` keeping what was delivered so far."""
        return self.error(
            ErrorKind.TIMEOUT,
            f"no complete response within the total deadline of {self.timeouts.total:g}s",
            request_id=request_id,
            partial_text=partial_text,
            cause=exc,
        )

    def malformed_error(
        self, exc: BaseException, *, request_id: str | None = None, partial_text: str = ""
    ) -> ProviderError:
        """A failure no parser mapped (a field of an unexpected type, nesting too deep, a number out of range): the
        provider sent something this adapter cannot read, so ``invalid_response``, with the raw exception as cause."""
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, WireValueError):
            detail = scrub(str(exc))[:300]
        else:
            detail = "unreadable response: " + scrub(f"{type(exc).__name__}: {exc}")[:300]
        return self.error(
            ErrorKind.INVALID_RESPONSE,
            detail,
            request_id=request_id,
            partial_text=partial_text,
            cause=exc,
        )

    def content_text(self, content: Any, *, request_id: str | None = None, partial_text: str = "") -> str:
        """Message text from the wire: a string, null, or a list of content parts whose ``text`` parts are joined
        (OpenAI-shaped APIs, Mistral's reasoning models among them, may send parts). Any other shape is
        ``invalid_response``, never ``str()`` of a structure passed off as the model's text."""
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts: list[str] = []
            for part in content:
                if isinstance(part, str):
                    texts.append(part)
                elif isinstance(part, dict) and part.get("type", "text") == "text":
                    text = part.get("text")
                    if not isinstance(text, str):
                        raise self.error(
                            ErrorKind.INVALID_RESPONSE,
                            "a text content part has no string text",
                            request_id=request_id,
                            partial_text=partial_text,
                        )
                    texts.append(text)
                elif not isinstance(part, dict):
                    raise self.error(
                        ErrorKind.INVALID_RESPONSE,
                        f"a content part is a {type(part).__name__}, not an object",
                        request_id=request_id,
                        partial_text=partial_text,
                    )
            return "".join(texts)
        raise self.error(
            ErrorKind.INVALID_RESPONSE,
            f"message content is a {type(content).__name__}, not text",
            request_id=request_id,
            partial_text=partial_text,
        )

    def transport_error(
        self,
        exc: BaseException,
        *,
        request_id: str | None = None,
        partial_text: str = "",
        streaming: bool = False,
    ) -> ProviderError:
        """Map an httpx/asyncio failure to the taxonomy; the raw exception is kept only as the cause."""
        if isinstance(exc, ProviderError):
            return exc
        detail = scrub(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__
        if isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError)):
            what = "no data within the stream idle timeout" if streaming else "no response within the timeout"
            return self.error(
                ErrorKind.TIMEOUT, what, request_id=request_id, partial_text=partial_text, cause=exc
            )
        if streaming and isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.StreamError)):
            return self.error(
                ErrorKind.STREAM_INTERRUPTED,
                f"stream interrupted: {detail}",
                request_id=request_id,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(
            exc, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
        ):
            return self.error(ErrorKind.CONNECTION, f"connection failed: {detail}", cause=exc)
        if isinstance(exc, httpx.HTTPError):
            return self.error(ErrorKind.CONNECTION, f"transport error: {detail}", cause=exc)
        return self.error(ErrorKind.INVALID_RESPONSE, f"unexpected failure: {detail}", cause=exc)

    async def post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST and read the whole body; transport failures come back as ProviderError."""
        url = self.url(path)
        self._check_egress(url)
        try:
            response = await self._client.post(
                url, json=dict(body), headers=dict(headers), params=params, timeout=self.timeouts.httpx()
            )
        except Exception as exc:
            raise self.transport_error(exc) from None
        return response

    @asynccontextmanager
    async def post_stream(
        self,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Open a streaming POST; the response's status and headers are read, the body is not."""
        url = self.url(path)
        self._check_egress(url)
        request = self._client.build_request(
            "POST", url, json=dict(body), headers=dict(headers), params=params, timeout=self.timeouts.httpx()
        )
        try:
            response = await self._client.send(request, stream=True)
        except Exception as exc:
            raise self.transport_error(exc) from None
        try:
            yield response
        finally:
            await response.aclose()

    async def read_stream(self, items: AsyncIterator[T], acc: StreamAccumulator) -> AsyncIterator[T]:
        """A stream body's items under the idle bound; a transport failure, a broken SSE framing or an idle timeout
        becomes a ProviderError keeping the request id and the partial text delivered so far."""
        try:
            async for item in self.idle_bounded(items):
                yield item
        except (SSEError, httpx.HTTPError, TimeoutError) as exc:
            raise self.transport_error(
                exc, request_id=acc.request_id, partial_text=acc.text, streaming=True
            ) from None

    async def idle_bounded(self, iterator: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Yield from ``iterator``, failing with a timeout when one item takes longer than the stream idle bound.

        ``asyncio.timeout`` around each read, in the caller's task, not ``asyncio.wait_for``: on Python 3.11 a
        wait_for whose inner read completes just as an outer cancellation arrives swallows that cancellation, which
        let an endless stream outlive the total deadline."""
        while True:
            try:
                async with asyncio.timeout(self.timeouts.stream_idle):
                    item = await anext(iterator)
            except StopAsyncIteration:
                return
            yield item

    @staticmethod
    def parse_json_body(response: httpx.Response) -> Any:
        """Decode a JSON body or raise ValueError with a short reason (caller maps it to invalid_response)."""
        ctype = response.headers.get("content-type", "")
        if "json" not in ctype.lower():
            raise ValueError(f"expected a JSON body, got content-type {ctype or 'none'!r}")
        try:
            return json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"body is not valid JSON: {exc}") from None
        except RecursionError:
            raise ValueError("body is JSON nested too deeply to read") from None

    def json_object(self, response: httpx.Response, *, request_id: str | None = None) -> dict[str, Any]:
        """A success body as a JSON object, or ``invalid_response`` saying why it is not one."""
        try:
            data = self.parse_json_body(response)
        except ValueError as exc:
            raise self.error(
                ErrorKind.INVALID_RESPONSE, str(exc), status=response.status_code, request_id=request_id
            ) from None
        if not isinstance(data, dict):
            raise self.error(
                ErrorKind.INVALID_RESPONSE,
                "body is not a JSON object",
                status=response.status_code,
                request_id=request_id,
            )
        return data

    async def unexpected_body(
        self, response: httpx.Response, *, expected: str, request_id: str | None = None
    ) -> ProviderError:
        """A success status whose body is not the expected stream: the provider's error in disguise, or garbage."""
        try:
            await response.aread()
        except Exception as exc:
            return self.transport_error(exc, request_id=request_id)
        try:
            data = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        disguised = self.disguised_error(data, response, request_id) if data is not None else None
        if disguised is not None:
            return disguised
        ctype = response.headers.get("content-type") or "none"
        return self.error(
            ErrorKind.INVALID_RESPONSE,
            f"expected {expected}, got content-type {ctype!r}",
            status=response.status_code,
            request_id=request_id,
        )

    def disguised_error(
        self, data: Any, response: httpx.Response, request_id: str | None
    ) -> ProviderError | None:
        """Hook: the provider's error when a success body carries one (its error envelope), else None."""
        return None

    def decode_frame(
        self, data: str, *, request_id: str | None, partial_text: str, what: str = "stream frame"
    ) -> dict[str, Any]:
        """One stream frame as a JSON object; a malformed one is ``invalid_response`` keeping the partial text."""
        try:
            frame = json.loads(data)
        except json.JSONDecodeError as exc:
            raise self.error(
                ErrorKind.INVALID_RESPONSE,
                f"malformed {what} ({exc.msg} at position {exc.pos}): {data[:80]!r}",
                request_id=request_id,
                partial_text=partial_text,
            ) from None
        except RecursionError:
            raise self.error(
                ErrorKind.INVALID_RESPONSE,
                f"{what} is JSON nested too deeply to read",
                request_id=request_id,
                partial_text=partial_text,
            ) from None
        if not isinstance(frame, dict):
            raise self.error(
                ErrorKind.INVALID_RESPONSE,
                f"{what} is not a JSON object",
                request_id=request_id,
                partial_text=partial_text,
            )
        return frame

    @staticmethod
    def retry_after(response: httpx.Response) -> float | None:
        return parse_retry_after(response.headers)


def _check_usage(adapter: Adapter, usage: Usage, request_id: str | None, partial_text: str = "") -> None:
    """Counts the caller will bill: non-negative, whatever path of the parser produced them."""
    for name in ("input_tokens", "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"):
        value = getattr(usage, name)
        if value is not None and value < 0:
            raise adapter.error(
                ErrorKind.INVALID_RESPONSE,
                f"usage {name} is negative: {value}",
                request_id=request_id,
                partial_text=partial_text,
            )


def _guard_complete(
    fn: Callable[[Any, ChatRequest], Awaitable[ChatResponse]],
) -> Callable[[Any, ChatRequest], Awaitable[ChatResponse]]:
    """``complete`` under the total deadline, with any non-ProviderError mapped to the taxonomy."""

    @functools.wraps(fn)
    async def complete(self: Adapter, request: ChatRequest) -> ChatResponse:
        try:
            async with asyncio.timeout(self.timeouts.total) as budget:
                response = await fn(self, request)
        except ProviderError:
            raise
        except TimeoutError as exc:
            if budget.expired():
                raise self.deadline_error(exc) from exc
            raise self.transport_error(exc) from None
        except Exception as exc:
            raise self.malformed_error(exc) from exc
        _check_usage(self, response.usage, response.request_id)
        return response

    complete._provcert_guarded = True  # type: ignore[attr-defined]
    return complete


def _guard_stream(
    fn: Callable[[Any, ChatRequest], AsyncIterator[StreamEvent]],
) -> Callable[[Any, ChatRequest], AsyncIterator[StreamEvent]]:
    """``stream`` under the total deadline: every step of the stream waits at most for what is left of it, so a
    server that trickles bytes or sends empty deltas forever ends as ``timeout``; any non-ProviderError becomes
    ``invalid_response`` keeping the request id and the text already delivered."""

    @functools.wraps(fn)
    async def stream(self: Adapter, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts.total
        inner = cast(AsyncGenerator[StreamEvent, None], fn(self, request))
        request_id: str | None = None
        parts: list[str] = []
        try:
            while True:
                try:
                    if loop.time() >= deadline:
                        raise TimeoutError
                    # one step at a time in this task: a timeout scope never spans a yield to the caller, and a
                    # cancellation an inner read swallows (Python 3.11) costs one more event, not the deadline
                    async with asyncio.timeout_at(deadline):
                        event = await anext(inner)
                except StopAsyncIteration:
                    return
                except ProviderError:
                    raise
                except TimeoutError as exc:
                    if loop.time() >= deadline:
                        raise self.deadline_error(
                            exc, request_id=request_id, partial_text="".join(parts)
                        ) from exc
                    raise self.transport_error(
                        exc, request_id=request_id, partial_text="".join(parts), streaming=True
                    ) from None
                except Exception as exc:
                    raise self.malformed_error(
                        exc, request_id=request_id, partial_text="".join(parts)
                    ) from exc
                request_id = getattr(event, "request_id", None) or request_id
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, End):
                    _check_usage(self, event.usage, request_id, "".join(parts))
                yield event
        finally:
            await inner.aclose()

    stream._provcert_guarded = True  # type: ignore[attr-defined]
    return stream
