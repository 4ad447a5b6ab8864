"""Request bodies the mock refuses before any personality parses them: each a 400 naming the problem, never a 500.

The personalities parse with :func:`json.loads` and hash, journal and echo what they read. Three kinds of body
broke that with a traceback (issue 9): JSON nested deeper than the interpreter's recursion limit
(``RecursionError``), lone UTF-16 surrogates in a string (``\\ud800`` parses but cannot be encoded again, so the
first ``.encode()`` fails), and a body whose ``Content-Encoding`` lies (gzip-labelled bytes that are not gzip; the
decoder fails inside ``request.read()``). Checking them here, once, keeps every personality (and any new one)
safe without each repeating the checks.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

#: Deepest JSON nesting a request body may have. Real requests (tool schemas included) nest a few dozen levels;
#: Python's own parser fails near 1,000, so the bound sits well below it.
MAX_JSON_DEPTH = 256

_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


class BodyError(ValueError):
    """A request body the mock will not parse; the message names the problem and is safe to send back."""


def json_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep ``raw``'s brackets nest outside strings, counting stops just past ``limit`` (linear, no parsing).

    Not a validator: malformed JSON is left to the parser; this only finds what would make it recurse too deep.
    """
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_json_body(raw: bytes) -> None:
    """Raise :class:`BodyError` if ``raw`` nests past :data:`MAX_JSON_DEPTH` or holds a lone surrogate.

    Bodies that are not JSON at all pass: the personality answers those in its provider's own words.
    """
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise BodyError(f"request body: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if b"\\u" not in raw and b"\\U" not in raw:
        return  # a surrogate can only arrive escaped: raw UTF-8 cannot encode one
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return
    if _has_lone_surrogate(value):
        raise BodyError(
            "request body: a JSON string holds a lone UTF-16 surrogate (\\ud800-\\udfff unpaired)"
        )


#: Where :func:`read_body` keeps the decoded body for the handlers after the middleware read it.
BODY_KEY = web.RequestKey("mockserver.body", bytes)
#: Content codings the mock decodes itself (aiohttp's own decoding is off: see :func:`decode_body`).
DECODERS = ("identity", "gzip", "x-gzip", "deflate")


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    decoder = zlib.decompressobj(wbits)
    out = decoder.decompress(data, limit + 1)
    if len(out) > limit:
        raise BodyError(f"request body: decodes to more than {limit} bytes")
    if not decoder.eof or decoder.unused_data:
        raise zlib.error("truncated or trailing data")
    return out


def decode_body(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """``raw`` decoded per ``Content-Encoding`` (codings applied in order, so undone last to first), bounded.

    The mock decodes bodies itself (``auto_decompress`` off): aiohttp's decoder waits forever on a short invalid
    ``deflate`` body (the client hangs until its own timeout) and logs a traceback per connection for others.
    Here a coding that does not decode, or one the mock does not know (``br``), is a :class:`BodyError`, and so
    is a body that would inflate past ``limit`` bytes.
    """
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    out = raw
    for coding in reversed(codings):
        if coding not in DECODERS:
            raise BodyError(
                f"request body: Content-Encoding {coding[:40]!r} is not supported (the mock decodes "
                f"{', '.join(DECODERS)})"
            )
        if coding == "identity":
            continue
        try:
            if coding == "deflate":
                try:
                    out = _inflate(out, zlib.MAX_WBITS, limit)  # RFC 9110: zlib-wrapped
                except zlib.error:
                    out = _inflate(out, -zlib.MAX_WBITS, limit)  # what many clients send: raw deflate
            else:
                out = _inflate(out, zlib.MAX_WBITS | 16, limit)
        except zlib.error:
            raise BodyError(f"request body: not valid {coding} data (Content-Encoding: {coding!r})") from None
    return out


async def read_body(request: web.Request) -> bytes:
    """The request body, decoded per its ``Content-Encoding`` (once: kept on the request for later callers);
    :class:`BodyError` when it cannot be read or decoded."""
    cached: bytes | None = request.get(BODY_KEY)
    if cached is not None:
        return cached
    try:
        raw = await request.read()
    except (RequestPayloadError, HttpProcessingError) as exc:
        # Mark the payload finished: otherwise aiohttp drains it after the reply and logs the same error once
        # per connection. The caller closes the connection (its framing can no longer be trusted).
        request.content.feed_eof()
        raise BodyError(f"request body could not be read: {type(exc).__name__}") from None
    body = decode_body(raw, request.headers.get("Content-Encoding", ""), request.client_max_size)
    request[BODY_KEY] = body
    return body


#: What every app serving the mock passes to aiohttp's request handler (``web.Application(handler_args=...)``):
#: the mock decodes bodies itself.
HANDLER_ARGS: dict[str, object] = {"auto_decompress": False}


def error_response(message: str, kind: str = "mock_request_error") -> web.Response:
    """The mock's own 400 (not a provider's): the caller sent what no provider would accept either."""
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": None}}, status=400
    )


def unreadable_header(headers: Iterable[tuple[str, str]]) -> str | None:
    """The name of the first header whose value is not UTF-8, or None.

    aiohttp keeps such bytes as lone surrogates (``surrogateescape``); hashing, journaling or echoing the value
    then fails with ``UnicodeEncodeError``. Only the name is reported: the value may be a credential.
    """
    for name, value in headers:
        if value.isascii():
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return name
    return None


@web.middleware
async def screen_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: header values that are not UTF-8, and a body its Content-Encoding cannot decode, get
    a 400 naming the problem before anything (the journal included) reads them.

    The body is read here, whatever the route: aiohttp caches it for the handler, and a handler that never reads
    it (a 404, an early 401) would otherwise leave aiohttp to drain it after the reply, logging the decoding
    traceback and resetting the connection under the client's next request.
    """
    name = unreadable_header(request.headers.items())
    if name is not None:
        refused = error_response(f"request header {name[:60]!r}: value is not valid UTF-8")
        refused.force_close()  # the body was not read: the connection cannot carry another request
        return refused
    try:
        await read_body(request)
    except web.HTTPRequestEntityTooLarge:
        refused = error_response(f"request body over {request.client_max_size} bytes")
        refused.set_status(413)
        refused.force_close()
        return refused
    except BodyError as exc:
        refused = error_response(str(exc))
        refused.force_close()  # the rest of the body is unread: the connection cannot carry another request
        return refused
    return await handler(request)
