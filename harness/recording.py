"""Live recording with vcrpy: redaction before anything reaches disk, chunk boundaries kept, atomic cassettes.

How a live call is recorded (:class:`Recorder`):

* the adapter's ``httpx.AsyncClient`` uses :class:`LiveTransport`. vcrpy patches ``AsyncHTTPTransport`` above it;
  below vcrpy and just above the socket, the transport's tap checks the :class:`~harness.budget.SendGate` (no
  reservation, no request) and notes each response chunk and its arrival time, which vcrpy itself would lose
  (it drains a stream into one blob);
* vcrpy's ``before_record_request``/``before_record_response`` hooks (:meth:`Recorder.before_record_request`,
  :meth:`Recorder.before_record_response`, using :class:`Redactor`) redact before an interaction is even kept in
  memory, put the chunks back and attach the normalized call; a stream whose chunk boundaries cannot be kept is
  split at its event boundaries instead;
* the cassette is written by :class:`AtomicPersister` in provcert's format (:mod:`harness.cassettes`, registered
  with vcrpy as the ``provcert`` serializer), after a last secret scan of the text, together with its provenance
  as one unit (:func:`harness.cassettes.save_with_provenance`: a kill never leaves them mismatched);
  ``record_on_exception`` is off, so Ctrl-C, a crash or a refused call mid-test leaves the previous cassette as it was.

Record modes (``--record-mode``): ``none`` records nothing (live calls go out, golden cassettes are untouched);
``once`` records a cassette that does not exist yet (an existing one is replayed by vcrpy, nothing is sent);
``new_episodes`` adds requests the cassette does not have; ``all`` re-records, keeping unmatched old interactions;
``rewrite`` re-records from scratch (vcrpy ``all`` plus ``drop_unused_requests``; the old file stays until the new
one replaces it).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import vcr
import vcr.serialize
from vcr.persisters.filesystem import CassetteNotFoundError

from adapters.registry import ProviderEntry
from harness import cassettes as fmt
from harness.budget import SendGate
from harness.frames import split_raw
from harness.secrets import scan_text
from mockserver import secrets_policy

RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
REDACTED = secrets_policy.REDACTED

#: headers that carry credentials (request) or identify the account (response); values are replaced, names kept.
#: This and the two sets below are the shared policy's (:mod:`mockserver.secrets_policy`), so the recorder, the
#: journal, errors and the scanner agree on what a secret is.
SECRET_HEADERS = secrets_policy.SECRET_HEADERS
#: query parameters that carry credentials (Gemini ``key=``, presigned AWS URLs, Azure ``sig=``, OAuth tokens)
SECRET_QUERY = secrets_policy.SECRET_QUERY
#: JSON fields, anywhere in a body (a whole body, an SSE frame, an NDJSON line), whose value is a secret
SECRET_FIELDS = secrets_policy.SECRET_FIELDS


class SecretLeakError(RuntimeError):
    """A cassette still held a secret after redaction; it was not written (the message names kinds, not values)."""


# ---------------------------------------------------------------- redaction
class Redactor:
    """Redacts headers, query strings and bodies; ``secrets`` are literal values (resolved credentials) to remove.

    What a secret is comes from the shared policy; a known credential is removed in every form it can take
    (escaped, URL-encoded, split at an inner newline: :func:`mockserver.secrets_policy.variants`).
    """

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))
        forms: set[str] = set()
        for secret in self.secrets:
            forms |= secrets_policy.variants(secret)
        self._forms = tuple(sorted(forms, key=len, reverse=True))

    def text(self, text: str) -> str:
        return secrets_policy.redact_text(text, self.secrets, named=False)

    def header(self, name: str, value: str) -> str:
        if not secrets_policy.is_secret_header(name):
            return self.text(value)
        return secrets_policy.redact_header_value(name, value)

    def uri(self, uri: str) -> str:
        parts = urlsplit(uri)
        if not parts.query:
            return self.text(uri)
        query = [
            (k, "REDACTED" if secrets_policy.is_secret_query(k) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return self.text(urlunsplit(parts._replace(query=urlencode(query, safe=":/"))))

    def body(self, data: bytes) -> bytes:
        if not data:
            return data
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # binary (AWS event-stream): rewriting would break its CRCs, so a secret inside refuses the recording
            for form in self._forms:
                if form.encode() in data:
                    raise SecretLeakError("a credential appears inside a binary body; not recorded") from None
            return data
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return self.text(_redact_frames(text)).encode("utf-8")
        if secrets_policy.has_secret_field(parsed):
            text = json.dumps(secrets_policy.redact_json(parsed), ensure_ascii=False)
        return self.text(text).encode("utf-8")


def _redact_frames(text: str) -> str:
    """SSE ``data:`` payloads and NDJSON lines that carry a secret field, re-serialized with it redacted (the
    others are kept byte for byte)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        prefix, payload = ("data:", line[5:]) if line.startswith("data:") else ("", line)
        if '"' not in payload:
            continue
        try:
            parsed = json.loads(payload)
        except (ValueError, RecursionError):
            continue
        if secrets_policy.has_secret_field(parsed):
            space = " " if payload.startswith(" ") else ""
            lines[i] = prefix + space + json.dumps(secrets_policy.redact_json(parsed), ensure_ascii=False)
    return "\n".join(lines)


# ---------------------------------------------------------------- vcrpy serializer and persister
def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def _header_lists(raw: Any) -> fmt.Headers:
    out: fmt.Headers = {}
    for name, values in (raw or {}).items():
        vals = values if isinstance(values, list) else [values]
        out.setdefault(str(name).lower(), []).extend(str(v) for v in vals)
    return out


class ProvcertSerializer:
    """vcrpy serializer for provcert's cassette format (``vcr.register_serializer("provcert", ...)``)."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        interactions = []
        for item in cassette_dict["interactions"]:
            req, resp = item["request"], item["response"]
            extra = resp.get("provcert") or {}
            status = resp["status"]
            chunks = extra.get("chunks")
            interactions.append(
                fmt.Interaction(
                    fmt.RecordedRequest(
                        method=str(req["method"]).upper(),
                        uri=req["uri"],
                        headers=_header_lists(req.get("headers")),
                        body=_as_bytes(req.get("body")),
                    ),
                    fmt.RecordedResponse(
                        status=int(status["code"] if isinstance(status, dict) else status),
                        reason=str(status.get("message") or "") if isinstance(status, dict) else "",
                        headers=_header_lists(resp.get("headers")),
                        body=_as_bytes((resp.get("body") or {}).get("string")),
                        chunks=[_as_bytes(c) for c in chunks] if chunks is not None else None,
                        timings=extra.get("timings"),
                    ),
                    extra.get("call"),
                )
            )
        return fmt.dumps(interactions)

    @staticmethod
    def deserialize(text: str) -> dict[str, Any]:
        return {"interactions": [to_vcr(i) for i in fmt.parse(json.loads(text))]}


def to_vcr(interaction: fmt.Interaction) -> dict[str, Any]:
    """One interaction in vcrpy's in-memory shape (our extras ride along under ``response["provcert"]``)."""
    req, resp = interaction.request, interaction.response
    extra: dict[str, Any] = {}
    if resp.chunks is not None:
        extra["chunks"] = list(resp.chunks)
        extra["timings"] = resp.timings
    if interaction.call is not None:
        extra["call"] = interaction.call
    response: dict[str, Any] = {
        "status": {"code": resp.status, "message": resp.reason},
        "headers": {k: v for k, v in resp.headers.items() if k not in fmt.TRANSFER_HEADERS},
        "body": {"string": resp.body},
    }
    if extra:
        response["provcert"] = extra
    return {
        "request": {"method": req.method, "uri": req.uri, "body": req.body, "headers": dict(req.headers)},
        "response": response,
    }


class AtomicPersister:
    """vcrpy persister: reads provcert cassettes (errors name the file), writes them atomically after a secret scan."""

    def __init__(
        self,
        on_saved: Callable[[Path], None] | None = None,
        provenance: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.on_saved = on_saved
        #: with it, the cassette and its provenance are written as one unit (``fmt.save_with_provenance``)
        self.provenance = provenance
        self.saved: list[Path] = []

    def load_cassette(self, cassette_path: str | Path, serializer: Any) -> tuple[list[Any], list[Any]]:
        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        data = fmt.read_json(path)
        interactions = fmt.parse(data, path)
        from vcr.request import Request

        dicts = [to_vcr(i) for i in interactions]
        return [Request._from_dict(d["request"]) for d in dicts], [d["response"] for d in dicts]

    def save_cassette(
        self, cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: Any
    ) -> None:
        path = Path(cassette_path)
        text = vcr.serialize.serialize(cassette_dict, serializer)
        findings = scan_text(text, str(path))
        if findings:
            kinds = ", ".join(sorted({f.kind for f in findings}))
            raise SecretLeakError(f"{path}: not written, redaction left secrets of kind(s): {kinds}")
        if self.provenance is not None:
            fmt.save_with_provenance(path, text, self.provenance())
        else:
            fmt.write_atomic(path, text)
        self.saved.append(path)
        if self.on_saved is not None:
            self.on_saved(path)


# ---------------------------------------------------------------- the live transport (below vcrpy)
@dataclass(frozen=True)
class TapRecord:
    """A response as it came off the wire (before vcrpy, before redaction): only ever kept in memory."""

    status: int
    headers: dict[str, str]
    chunks: list[bytes]

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class ChunkCapture:
    """Chunks and timings of the responses the tap saw, found again by the body they make up."""

    def __init__(self) -> None:
        self._by_body: dict[str, tuple[list[bytes], list[float]]] = {}
        self.records: list[TapRecord] = []

    def add(self, chunks: list[bytes], timings: list[float], status: int, headers: dict[str, str]) -> None:
        self._by_body[hashlib.sha256(b"".join(chunks)).hexdigest()] = (chunks, timings)
        self.records.append(TapRecord(status, headers, chunks))

    def pop(self, body: bytes) -> tuple[list[bytes], list[float]] | None:
        return self._by_body.pop(hashlib.sha256(body).hexdigest(), None)


class _TapStream:
    def __init__(self, inner: Any, capture: ChunkCapture, status: int, headers: dict[str, str]) -> None:
        self._inner = inner
        self._capture = capture
        self._status = status
        self._headers = headers
        self._start = time.monotonic()
        self._chunks: list[bytes] = []
        self._timings: list[float] = []
        self._kept = False

    def _keep(self) -> None:
        """Hand what was read to the capture, once: at EOF, or when the reader closes the response early (an SSE
        client stops at its terminator event without reading on to EOF, and its stream must still be seen)."""
        if not self._kept:
            self._kept = True
            self._capture.add(self._chunks, self._timings, self._status, self._headers)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                if chunk:
                    self._chunks.append(bytes(chunk))
                    self._timings.append(time.monotonic() - self._start)
                yield chunk
        finally:
            self._keep()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._keep()


class _TapPool:
    """Wraps httpcore's pool: the gate before the socket, the chunk tap after it."""

    def __init__(self, inner: Any, gate: SendGate | None, capture: ChunkCapture) -> None:
        self._inner = inner
        self._gate = gate
        self._capture = capture

    async def handle_async_request(self, request: Any) -> Any:
        if self._gate is not None:
            self._gate.consume(f"{request.method.decode()} {request.url}")
        response = await self._inner.handle_async_request(request)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
        response.stream = _TapStream(response.stream, self._capture, response.status, headers)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> Any:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


class LiveTransport(httpx.AsyncHTTPTransport):
    """The real network transport, with the budget gate and the chunk tap under vcrpy's patch."""

    def __init__(
        self, *, gate: SendGate | None = None, capture: ChunkCapture | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.capture = capture or ChunkCapture()
        self._pool = _TapPool(self._pool, gate, self.capture)  # type: ignore[assignment]


# ---------------------------------------------------------------- the recorder
def adapter_version(entry: ProviderEntry) -> str:
    """``provcert <version>; <module:Class> sha256:<12 hex of the adapter's source>``."""
    from adapters.registry import load_adapter_class

    cls = load_adapter_class(entry)
    try:
        import inspect

        digest = hashlib.sha256(Path(inspect.getfile(cls)).read_bytes()).hexdigest()[:12]
    except (OSError, TypeError):
        digest = "unknown"
    try:
        version = importlib.metadata.version("provcert")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"provcert {version}; {entry.adapter_path} sha256:{digest}"


@contextlib.contextmanager
def unpatched_on_exit(context: Any) -> Iterator[Any]:
    """``with context`` for a vcrpy cassette, but vcrpy's patches are always undone on the way out.

    vcrpy's ``__exit__`` saves the cassette first and only then finishes the generator that undoes its patches of
    httpx: a save that raises (a persister refusing what it was given, a full disk) would leave every httpx client in
    the process recording into a dead cassette until garbage collection, so unrelated calls later in the same
    process (another test's mock-server admin call) would go through this recorder's hooks.
    """
    cassette = context.__enter__()
    try:
        yield cassette
    except BaseException:
        if not context.__exit__(*sys.exc_info()):
            raise
    else:
        context.__exit__(None, None, None)
    finally:
        finish = getattr(context, "_CassetteContextDecorator__finish", None)
        if finish is not None:  # the save raised before vcrpy unpatched: close its patch generator now
            finish.close()
            context._CassetteContextDecorator__finish = None


@dataclass
class Recorder:
    """Records live calls of one provider into one golden cassette (or records nothing in mode ``none``).

    ``base_url`` is where the calls really go (the provider, or a mock server acting as upstream); cassettes record
    them under the provider's registered ``base_url`` either way, so they match and replay the same.
    """

    entry: ProviderEntry
    path: Path
    record_mode: str = "none"
    base_url: str | None = None
    secrets: tuple[str, ...] = ()
    source: str = "live"
    gate: SendGate | None = None
    provenance_extra: dict[str, Any] = field(default_factory=dict)
    capture: ChunkCapture = field(default_factory=ChunkCapture)
    calls: list[dict[str, Any]] = field(default_factory=list)
    cost_usd: Decimal = Decimal(0)
    cost_known: bool = True
    models: list[str] = field(default_factory=list)
    saved: bool = False

    def __post_init__(self) -> None:
        if self.record_mode not in RECORD_MODES:
            raise ValueError(f"record mode {self.record_mode!r}; expected one of {', '.join(RECORD_MODES)}")
        self.redactor = Redactor(self.secrets)
        self._live_base = (self.base_url or self.entry.base_url).rstrip("/")
        self._current_call: dict[str, Any] | None = None

    def transport(self) -> LiveTransport:
        return LiveTransport(gate=self.gate, capture=self.capture)

    @contextlib.contextmanager
    def call(self, request: Any) -> Iterator[None]:
        """Mark the normalized request whose HTTP traffic follows (stored beside each interaction)."""
        self._current_call = request.model_dump(mode="json", exclude={"metadata"}, exclude_defaults=True)
        self.models.append(request.model)
        try:
            yield
        finally:
            self._current_call = None

    def book(self, amount: Decimal | None) -> None:
        if amount is None:
            self.cost_known = False
        else:
            self.cost_usd += amount

    # ----- vcrpy hooks
    def before_record_request(self, request: Any) -> Any:
        uri = request.uri
        if uri.startswith(self._live_base):
            uri = self.entry.base_url.rstrip("/") + uri[len(self._live_base) :]
        request.uri = self.redactor.uri(uri)
        for name in list(request.headers):
            value = request.headers[name]
            if name.lower() == "host":
                request.headers[name] = urlsplit(self.entry.base_url).netloc
            else:
                request.headers[name] = self.redactor.header(name, value)
        request.body = self.redactor.body(_as_bytes(request.body)) or None
        return request

    def before_record_response(self, response: dict[str, Any]) -> dict[str, Any]:
        body = _as_bytes(response["body"].get("string"))
        found = self.capture.pop(body)
        headers = _header_lists(response.get("headers"))
        response["headers"] = {
            name: [self.redactor.header(name, v) for v in values] for name, values in headers.items()
        }
        redacted = self.redactor.body(body)
        response["body"]["string"] = redacted
        extra: dict[str, Any] = dict(response.get("provcert") or {})
        ctype = ";".join(headers.get("content-type", []))
        if fmt.RecordedResponse(200, headers).is_stream:
            chunks: list[bytes] | None = None
            timings: list[float] | None = None
            if found is not None:
                chunks = [self.redactor.body(c) for c in found[0]]
                timings = found[1]
                if b"".join(chunks) != redacted:  # a secret straddled a chunk boundary: fall back
                    chunks = timings = None
            if chunks is None:
                chunks, timings = split_raw(redacted, ctype), None
            extra["chunks"], extra["timings"] = chunks, timings
        if self._current_call is not None:
            extra["call"] = self._current_call
        if extra:
            response["provcert"] = extra
        return response

    # ----- provenance
    def provenance(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "provider": self.entry.provider_id,
            "model": sorted(set(self.models)) if len(set(self.models)) > 1 else next(iter(self.models), None),
            "adapter": self.entry.adapter_path,
            "adapter_version": adapter_version(self.entry),
            "cost_usd": str(self.cost_usd) if self.cost_known else None,
            "cost_note": None if self.cost_known else "part of the cost is unknown (no reported usage)",
            "upstream": re.sub(r"://[^/@]*@", "://", self._live_base),
            "record_mode": self.record_mode,
            "chunk_boundaries": "as received (timings in seconds since the response headers)",
            **self.provenance_extra,
        }

    def _on_saved(self, path: Path) -> None:
        self.saved = True  # the provenance was written with the cassette, as one unit

    @contextlib.contextmanager
    def recording(self) -> Iterator[Any]:
        """vcrpy active on the cassette for the block (a no-op in mode ``none``); yields the vcrpy cassette or None."""
        if self.record_mode == "none":
            yield None
            return
        mode = "all" if self.record_mode == "rewrite" else self.record_mode
        recorder = vcr.VCR(
            serializer="provcert",
            record_mode=mode,
            match_on=("method", "scheme", "host", "port", "path", "query", "body"),
            decode_compressed_response=True,
            record_on_exception=False,
            drop_unused_requests=self.record_mode == "rewrite",
            before_record_request=self.before_record_request,
            before_record_response=self.before_record_response,
            skip_patchers=(
                "httplib",
                "requests",
                "boto3",
                "urllib3",
                "httplib2",
                "tornado",
                "aiohttp",
                "httpx2",
            ),
        )
        recorder.register_serializer("provcert", ProvcertSerializer())
        recorder.register_persister(AtomicPersister(on_saved=self._on_saved, provenance=self.provenance))
        with unpatched_on_exit(recorder.use_cassette(str(self.path))) as cassette:
            yield cassette
