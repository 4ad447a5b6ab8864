"""The journal: what each request asked for and what the server really sent.

Certification checks compare adapters against these entries rather than constants, so an entry is updated
*before* the bytes it describes go on the wire: by the time a client has seen a frame, the journal already
counts it. Secrets never enter the journal; credentials are replaced by ``[REDACTED]`` (keeping the scheme
word, e.g. ``Bearer [REDACTED]``) and a short SHA-256 fingerprint (``auth_fingerprint``: the first 12 hex
digits of sha256(key)) lets tests tell which credential was used (rotation checks) without storing it.

The journal is bounded twice: by entries (``max_entries``, oldest dropped first) and by the bytes its entries
hold (``max_bytes``, an estimate from the sizes of what each entry keeps). One entry keeps at most
``KEEP_BYTES`` of request body and of wire bytes and ``KEEP_BYTES`` characters of text; what is cut is named
in the entry's ``truncated`` map with its original size and sha256, so a check can still tell what was sent.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mockserver import secrets_policy

REDACTED = secrets_policy.REDACTED
#: Header names whose values are credentials (compared lower-case): the shared policy's.
SECRET_HEADERS = secrets_policy.SECRET_HEADERS
#: Query parameters that carry credentials (Gemini's ``?key=``, presigned URLs, ``sig=``): the shared policy's.
SECRET_QUERY = secrets_policy.SECRET_QUERY

DEFAULT_MAX_ENTRIES = 10_000
#: Default bound on the bytes all journal entries hold together (estimated, see :meth:`JournalEntry.cost`).
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
#: Most request-body bytes, wire bytes and text characters one entry keeps; beyond, the rest is only measured
#: (size, sha256). Larger than any text a scenario may set, so ordinary checks always see everything.
KEEP_BYTES = 64 * 1024
#: Estimated memory of an entry besides its bodies, headers and texts: the dataclass, its dicts and the journaled
#: scenario (~30 fields). Calibrated with tracemalloc (a small OpenAI completion's entry holds ~15 kB, a stream's
#: ~19 kB); the memory-ceiling test in tests/mockserver/test_mock_limits.py checks the sum stays honest.
ENTRY_OVERHEAD = 12 * 1024

_SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def redact_value(value: str) -> str:
    """Keep only the scheme word of a credential (``Bearer``, ``AWS4-HMAC-SHA256``) and hide the rest."""
    return secrets_policy.redact_header_value("authorization", value)


def redact_headers(headers: Iterable[tuple[str, str]], known: Iterable[str] = ()) -> dict[str, str]:
    """Headers as a dict (lower-case names, repeated headers joined by ``, ``) with secrets redacted: a secret
    header's value by name, any other value's known credentials and key-shaped strings by the shared policy."""
    out: dict[str, str] = {}
    known = tuple(known)
    for name, value in headers:
        key = name.lower()
        if key in SECRET_HEADERS:
            shown = secrets_policy.redact_header_value(key, value)
        else:
            shown = secrets_policy.redact_text(value, known, named=False)
        out[key] = f"{out[key]}, {shown}" if key in out else shown
    return out


def redact_query(query: Iterable[tuple[str, str]], known: Iterable[str] = ()) -> dict[str, str]:
    """Query parameters as a dict with credential-carrying parameters redacted (and known or key-shaped values
    in the others)."""
    known = tuple(known)
    return {
        k: (REDACTED if k.lower() in SECRET_QUERY else secrets_policy.redact_text(v, known, named=False))
        for k, v in query
    }


def credential_fingerprint(value: str | None) -> str | None:
    """First 12 hex digits of SHA-256 of the credential (scheme stripped): names a key, never reveals it.

    A SigV4 header (``AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ..., Signature=...``) changes
    with every request; the access key id in its ``Credential`` is what names the key, so that is fingerprinted.
    """
    if not value:
        return None
    scheme, sep, rest = value.strip().partition(" ")
    secret = rest.strip() if sep else value.strip()
    sigv4 = _SIGV4_CREDENTIAL.search(rest) if scheme == "AWS4-HMAC-SHA256" else None
    if sigv4 is not None:
        secret = sigv4.group(1)
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


@dataclass
class JournalEntry:
    """One request and everything the server sent back. Mutable: the engine fills it in as it sends."""

    seq: int
    session: str
    provider: str | None
    method: str
    path: str
    query: dict[str, str]
    request_headers: dict[str, str]
    request_body: Any = None
    #: what the caller asked for, read by the personality (:mod:`mockserver.asked`); None if it does not say
    asked: dict[str, Any] | None = None
    auth_fingerprint: str | None = None
    scenario: dict[str, Any] | None = None
    status: int | None = None
    request_id: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False
    chunks_sent: int = 0
    frames_sent: int = 0
    text_sent: str = ""
    tool_calls_sent: list[dict[str, Any]] = field(default_factory=list)
    usage_truth: dict[str, int] | None = None
    usage_sent: Any = None
    finish_reason_sent: str | None = None
    aborted: bool = False
    aborted_after_chunks: int | None = None
    stalled: bool = False
    inband_error: str | None = None
    malformed: bool = False
    terminated: bool = False
    error_kind: str | None = None
    #: what the retry hint sent means: ``{"form", "seconds", "deadline"}`` (see :mod:`mockserver.retry_hints`)
    retry_hint: dict[str, Any] | None = None
    client_disconnected: bool = False
    complete: bool = False
    started_at: float = field(default_factory=time.time)
    duration_ms: float | None = None
    wire_bytes: bytearray = field(default_factory=bytearray)
    #: What was cut from this entry: field -> ``{"size", "sha256", "kept"}`` (sizes in bytes of UTF-8 for texts).
    truncated: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The raw request body (at most KEEP_BYTES of it); parsed into ``request_body`` only when the journal is read.
    request_raw: bytes = field(default=b"", repr=False)
    #: The request id the personality will send; it becomes ``request_id`` only once headers (or body bytes)
    #: carrying it are sent (a hang or a reset never shows the client an id, so the journal must not claim one).
    planned_request_id: str | None = field(default=None, repr=False)
    #: The credential values this request carried (secret headers, query parameters): never shown, only used to
    #: hide them wherever else the request repeats them (its path, its body), with the shared policy.
    secrets: tuple[str, ...] = field(default=(), repr=False)
    _t0: float = field(default_factory=time.monotonic, repr=False)
    _journal: Journal | None = field(default=None, repr=False, compare=False)
    _cost: int = field(default=0, repr=False, compare=False)
    _wire_size: int = field(default=0, repr=False, compare=False)
    _wire_hash: Any = field(default=None, repr=False, compare=False)

    def headers_sent(self, status: int, headers: Mapping[str, str]) -> None:
        """Record the status line and headers about to be sent (and the request id, if they carry it)."""
        self.status = status
        self.response_headers = dict(headers)
        if self.planned_request_id is not None and self.planned_request_id in headers.values():
            self.request_id = self.planned_request_id

    def record_wire(self, data: bytes) -> None:
        """Append body bytes about to be written (before writing: the journal never lags the client).

        A provider with no request-id header (Gemini's ``responseId``) shows its id in the body: once body bytes
        carrying the planned id are sent, the client has seen it, so the journal claims it too.
        """
        self._keep_wire(data)
        planned = self.planned_request_id
        if self.request_id is None and planned and planned.encode() in data:
            self.request_id = planned

    def _keep_wire(self, data: bytes) -> None:
        """Keep the first KEEP_BYTES of the body; past them only count and hash (the hash starts lazily, so
        ordinary small bodies cost nothing extra)."""
        self._wire_size += len(data)
        room = KEEP_BYTES - len(self.wire_bytes)
        if len(data) <= room and self._wire_hash is None:
            self.wire_bytes += data
            if self._journal is not None:
                self._journal.grow(self, len(data))
        else:
            if self._wire_hash is None:
                self._wire_hash = hashlib.sha256(self.wire_bytes)
            self._wire_hash.update(data)
            if room > 0:
                self.wire_bytes += data[:room]
            self.truncated["wire"] = {
                "size": self._wire_size,
                "sha256": self._wire_hash.hexdigest(),
                "kept": len(self.wire_bytes),
            }
            if self._journal is not None:
                self._journal.grow(self, min(max(room, 0), len(data)))

    def record_request(self, raw: bytes) -> None:
        """Keep the request body (parsed only when the journal is read); a large one is cut to KEEP_BYTES."""
        if len(raw) > KEEP_BYTES:
            self.truncated["request_body"] = _measure(raw, KEEP_BYTES)
            raw = raw[:KEEP_BYTES]
        self.request_raw = raw
        if self._journal is not None:
            self._journal.account(self)

    def finish(self) -> None:
        self.duration_ms = round((time.monotonic() - self._t0) * 1000, 3)
        if len(self.text_sent) > KEEP_BYTES:
            encoded = self.text_sent.encode("utf-8", errors="surrogatepass")
            self.truncated["text_sent"] = _measure(encoded, KEEP_BYTES) | {"characters": len(self.text_sent)}
            self.text_sent = self.text_sent[:KEEP_BYTES]
        self.complete = True
        if self._journal is not None:
            self._journal.account(self)

    def cost(self) -> int:
        """Estimated bytes this entry holds: a fixed overhead plus its bodies, headers, texts and tool calls."""
        headers = sum(len(k) + len(v) for k, v in self.request_headers.items())
        headers += sum(len(k) + len(v) for k, v in self.response_headers.items())
        headers += sum(len(k) + len(v) for k, v in self.query.items())
        scenario_text = self.scenario.get("text") if self.scenario else None
        texts = sys.getsizeof(self.text_sent) + (sys.getsizeof(scenario_text) if scenario_text else 0)
        tools = sum(len(str(t.get("arguments", ""))) + 256 for t in self.tool_calls_sent)
        return (
            ENTRY_OVERHEAD
            + len(self.request_raw)
            + len(self.wire_bytes)
            + headers * 2
            + texts
            + tools
            + len(self.path)
            + len(self.session)
        )

    def _request_body(self) -> Any:
        if self.request_body is not None or not self.request_raw:
            return self.request_body
        if "request_body" in self.truncated:  # cut JSON does not parse: show the head as text
            return self.request_raw.decode("utf-8", errors="replace")
        try:
            body = json.loads(self.request_raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        try:
            body = secrets_policy.redact_json(body)
            if self.secrets and secrets_policy.has_secret_value(body, self.secrets):
                text = json.dumps(body, ensure_ascii=False)
                body = json.loads(secrets_policy.redact_text(text, self.secrets, named=False))
        except (RecursionError, ValueError):
            return None
        return body

    def _shown(self, text: str) -> str:
        """``text`` without the credentials this request carried (a 404 body or a path can echo one)."""
        return secrets_policy.redact_text(text, self.secrets, named=False) if self.secrets else text

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by ``GET /_mock/journal``; ``wire`` is the body as UTF-8 (errors replaced)."""
        return {
            "seq": self.seq,
            "session": self.session,
            "provider": self.provider,
            "method": self.method,
            "path": secrets_policy.redact_text(self.path, self.secrets, named=False)
            if self.secrets
            else self.path,
            "query": dict(self.query),
            "request_headers": dict(self.request_headers),
            "request_body": self._request_body(),
            "asked": self.asked,
            "auth_fingerprint": self.auth_fingerprint,
            "scenario": self.scenario,
            "status": self.status,
            "request_id": self.request_id,
            "response_headers": dict(self.response_headers),
            "stream": self.stream,
            "chunks_sent": self.chunks_sent,
            "frames_sent": self.frames_sent,
            "text_sent": self.text_sent,
            "tool_calls_sent": [dict(t) for t in self.tool_calls_sent],
            "usage_truth": self.usage_truth,
            "usage_sent": self.usage_sent,
            "finish_reason_sent": self.finish_reason_sent,
            "aborted": self.aborted,
            "aborted_after_chunks": self.aborted_after_chunks,
            "stalled": self.stalled,
            "inband_error": self.inband_error,
            "malformed": self.malformed,
            "terminated": self.terminated,
            "error_kind": self.error_kind,
            "retry_hint": self.retry_hint,
            "client_disconnected": self.client_disconnected,
            "complete": self.complete,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "wire": self._shown(self.wire_bytes.decode("utf-8", errors="replace")),
            "truncated": {k: dict(v) for k, v in self.truncated.items()},
        }


class UnrecordedEntry(JournalEntry):
    """The entry of a journal that records nothing (``max_entries=0``): it still carries the per-request state
    the engine reads back (chunks and text sent), but keeps no request headers, fingerprint or wire bytes."""

    def record_wire(self, data: bytes) -> None:
        pass

    def record_request(self, raw: bytes) -> None:
        pass


class Journal:
    """A bounded, in-memory journal (oldest entries dropped first). Used from the server's event loop only.

    Bounded by ``max_entries`` and by ``max_bytes`` (the sum of :meth:`JournalEntry.cost`); entries report their
    growth as bytes are sent, and the oldest are dropped until both bounds hold (the newest entry is always kept).

    ``max_entries=0`` disables recording: :meth:`open` still hands the engine an entry to fill in, but skips
    redaction and fingerprinting, keeps no wire bytes, and stores nothing (``GET /_mock/journal`` answers no
    entries). Only for measuring the journal's cost; certification checks need the journal.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self._entries: deque[JournalEntry] = deque()
        self._seq = itertools.count(1)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.recording = max_entries > 0
        self._bytes = 0
        #: entries dropped to keep within the bounds (not counting clear())
        self.dropped = 0

    @property
    def bytes(self) -> int:
        """Estimated bytes held by the entries kept (at most ``max_bytes`` unless one entry alone is larger)."""
        return self._bytes

    def account(self, entry: JournalEntry) -> None:
        """Re-estimate ``entry`` after it grew, then drop the oldest entries until the bounds hold again."""
        if entry._journal is not self:
            return
        self.grow(entry, entry.cost() - entry._cost)

    def grow(self, entry: JournalEntry, delta: int) -> None:
        """Count ``delta`` more bytes held by ``entry`` (O(1): called for every frame sent), then drop the
        oldest entries until the bounds hold again (the newest entry itself is always kept)."""
        if entry._journal is not self:
            return
        self._bytes += delta
        entry._cost += delta
        while self._entries and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
            if self._entries[0] is entry and len(self._entries) == 1:
                break
            self._detach(self._entries.popleft())
            self.dropped += 1

    def _detach(self, entry: JournalEntry) -> None:
        self._bytes -= entry._cost
        entry._journal = None
        entry._cost = 0

    def open(
        self,
        *,
        session: str,
        provider: str | None,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Iterable[tuple[str, str]],
    ) -> JournalEntry:
        """Start an entry as soon as a request arrives, so a request that hangs is visible while it hangs."""
        if not self.recording:
            return UnrecordedEntry(
                seq=next(self._seq),
                session=session,
                provider=provider,
                method=method,
                path=path,
                query={},
                request_headers={},
            )
        pairs = list(headers)
        # Authorization first: with SigV4 session credentials X-Amz-Security-Token precedes it on the wire
        auth = next((v for k, v in pairs if k.lower() == "authorization"), None) or next(
            (v for k, v in pairs if k.lower() in SECRET_HEADERS and "cookie" not in k.lower()), None
        )
        query = list(query)
        if auth is None:  # a key in the query string (Gemini's ``?key=``) names the credential just as well
            auth = next((v for k, v in query if k.lower() in SECRET_QUERY), None)
        seen = _credentials(pairs, query)
        entry = JournalEntry(
            seq=next(self._seq),
            session=session,
            provider=provider,
            method=method,
            path=path,
            query=redact_query(query, seen),
            request_headers=redact_headers(pairs, seen),
            auth_fingerprint=credential_fingerprint(auth),
            secrets=seen,
        )
        self._entries.append(entry)
        entry._journal = self
        self.account(entry)
        return entry

    def entries(self, session: str | None = None, since: int = 0) -> list[JournalEntry]:
        return [e for e in self._entries if (session is None or e.session == session) and e.seq > since]

    def clear(self, session: str | None = None) -> int:
        """Drop all entries (or one session's); returns how many were dropped."""
        before = len(self._entries)
        kept: list[JournalEntry] = []
        for entry in self._entries:
            if session is None or entry.session == session:
                self._detach(entry)
            else:
                kept.append(entry)
        self._entries.clear()
        self._entries.extend(kept)
        return before - len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _credentials(headers: list[tuple[str, str]], query: list[tuple[str, str]]) -> tuple[str, ...]:
    """The credential values a request carried, scheme words stripped (``Bearer x`` -> ``x``)."""
    values: set[str] = set()
    for name, value in headers:
        if secrets_policy.is_secret_header(name):
            values.add(value.strip())
            _scheme, sep, rest = value.strip().partition(" ")
            if sep:
                values.add(rest.strip())
    values.update(v for k, v in query if secrets_policy.is_secret_query(k))
    return tuple(v for v in values if len(v) >= 6)


def _measure(data: bytes, kept: int) -> dict[str, Any]:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "kept": min(kept, len(data))}


def headers_dict(headers: Mapping[str, str]) -> dict[str, str]:
    """Response headers as a plain lower-case dict for the journal."""
    return {k.lower(): v for k, v in headers.items()}
