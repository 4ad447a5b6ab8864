"""The adapter contract and the HTTP plumbing every provider adapter shares.

An adapter maps between the normalized types and one provider's wire format. It maps, it does not decide: no retry
loops, routing or budgets live here (that is the gateway's job), which is what makes adapters small and checkable.
"""

from __future__ import annotations

import abc
import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
from httpx_sse import SSEError

from adapters.errors import ErrorKind, ProviderError, parse_retry_after, scrub
from adapters.types import ChatRequest, ChatResponse, StreamEvent

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


@dataclass(frozen=True)
class Timeouts:
    """Strict client-side bounds, in seconds. ``stream_idle`` bounds the gap between two stream reads."""

    connect: float = 5.0
    read: float = 60.0
    stream_idle: float = 30.0

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
        """Yield from ``iterator``, failing with a timeout when one item takes longer than the stream idle bound."""
        while True:
            try:
                item = await asyncio.wait_for(anext(iterator), timeout=self.timeouts.stream_idle)
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
