"""The journal: what each request asked for and what the server really sent.

Certification checks compare adapters against these entries rather than constants, so an entry is updated
*before* the bytes it describes go on the wire: by the time a client has seen a frame, the journal already
counts it. Secrets never enter the journal; credentials are replaced by ``[REDACTED]`` (keeping the scheme
word, e.g. ``Bearer [REDACTED]``) and a short SHA-256 fingerprint (``auth_fingerprint``: the first 12 hex
digits of sha256(key)) lets tests tell which credential was used (rotation checks) without storing it.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

REDACTED = "[REDACTED]"

#: Header names whose values are credentials (compared lower-case).
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
    }
)

#: Query parameters that carry credentials (Gemini's ``?key=``, some gateways' ``api_key``).
SECRET_QUERY = frozenset(
    {"key", "api_key", "api-key", "apikey", "access_token", "token", "x-amz-security-token"}
)

DEFAULT_MAX_ENTRIES = 10_000

_SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def redact_value(value: str) -> str:
    """Keep only the scheme word of a credential (``Bearer``, ``AWS4-HMAC-SHA256``) and hide the rest."""
    scheme, sep, _rest = value.strip().partition(" ")
    if sep and scheme and "=" not in scheme:
        return f"{scheme} {REDACTED}"
    return REDACTED


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict (lower-case names, repeated headers joined by ``, ``) with secrets redacted."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        shown = redact_value(value) if key in SECRET_HEADERS else value
        out[key] = f"{out[key]}, {shown}" if key in out else shown
    return out


def redact_query(query: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query parameters as a dict with credential-carrying parameters redacted."""
    return {k: (REDACTED if k.lower() in SECRET_QUERY else v) for k, v in query}


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
    client_disconnected: bool = False
    complete: bool = False
    started_at: float = field(default_factory=time.time)
    duration_ms: float | None = None
    wire_bytes: bytearray = field(default_factory=bytearray)
    #: The request id the personality will send; it becomes ``request_id`` only once headers (or body bytes)
    #: carrying it are sent (a hang or a reset never shows the client an id, so the journal must not claim one).
    planned_request_id: str | None = field(default=None, repr=False)
    _t0: float = field(default_factory=time.monotonic, repr=False)

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
        self.wire_bytes += data
        planned = self.planned_request_id
        if self.request_id is None and planned and planned.encode() in data:
            self.request_id = planned

    def finish(self) -> None:
        self.duration_ms = round((time.monotonic() - self._t0) * 1000, 3)
        self.complete = True

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by ``GET /_mock/journal``; ``wire`` is the body as UTF-8 (errors replaced)."""
        return {
            "seq": self.seq,
            "session": self.session,
            "provider": self.provider,
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "request_headers": dict(self.request_headers),
            "request_body": self.request_body,
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
            "client_disconnected": self.client_disconnected,
            "complete": self.complete,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "wire": self.wire_bytes.decode("utf-8", errors="replace"),
        }


class UnrecordedEntry(JournalEntry):
    """The entry of a journal that records nothing (``max_entries=0``): it still carries the per-request state
    the engine reads back (chunks and text sent), but keeps no request headers, fingerprint or wire bytes."""

    def record_wire(self, data: bytes) -> None:
        pass


class Journal:
    """A bounded, in-memory journal (oldest entries dropped first). Used from the server's event loop only.

    ``max_entries=0`` disables recording: :meth:`open` still hands the engine an entry to fill in, but skips
    redaction and fingerprinting, keeps no wire bytes, and stores nothing (``GET /_mock/journal`` answers no
    entries). Only for measuring the journal's cost; certification checks need the journal.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self._entries: deque[JournalEntry] = deque(maxlen=max_entries)
        self._seq = itertools.count(1)
        self.recording = max_entries > 0

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
        entry = JournalEntry(
            seq=next(self._seq),
            session=session,
            provider=provider,
            method=method,
            path=path,
            query=redact_query(query),
            request_headers=redact_headers(pairs),
            auth_fingerprint=credential_fingerprint(auth),
        )
        self._entries.append(entry)
        return entry

    def entries(self, session: str | None = None, since: int = 0) -> list[JournalEntry]:
        return [e for e in self._entries if (session is None or e.session == session) and e.seq > since]

    def clear(self, session: str | None = None) -> int:
        """Drop all entries (or one session's); returns how many were dropped."""
        before = len(self._entries)
        if session is None:
            self._entries.clear()
        else:
            kept = [e for e in self._entries if e.session != session]
            self._entries.clear()
            self._entries.extend(kept)
        return before - len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def headers_dict(headers: Mapping[str, str]) -> dict[str, str]:
    """Response headers as a plain lower-case dict for the journal."""
    return {k.lower(): v for k, v in headers.items()}
