"""Secret scanning for anything provcert writes to disk (cassettes, reports).

Three scanners, and a finding from any fails SEC-CASSETTE:

* a structure-aware scan (:func:`scan_text`): a cassette (or any JSON) is walked as data, not as lines, so a
  header value on its own line is still read under its header's name. Every value under a secret header, query
  parameter or body field (the shared policy, :mod:`mockserver.secrets_policy`) must be redacted; every other
  string (URL paths, header values, JSON bodies, each SSE frame and NDJSON line, each AWS event-stream payload)
  is searched for provider key shapes (:data:`KEY_PATTERNS`), ``name: value`` pairs naming a secret, and
  high-entropy tokens;
* high-entropy detection (detect-secrets' Shannon entropy, the measure of its ``Base64HighEntropyString`` and
  ``HexHighEntropyString`` plugins) finds keys with no distinctive shape (AWS secret keys and session tokens,
  Azure, Mistral, Together keys). It looks only where a credential can leak and an id or signature does not
  live: tokens inside prose (an error message quoting a key), URL path segments and header values other than
  ids; a whole-string value such as a request id, a thinking signature or a tool-call id is not searched.
  That keeps the committed cassettes at zero findings (tested);
* detect-secrets with its format detectors and keyword detector, over the files.

A finding names the file, the line and the kind of secret, never the value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from mockserver import secrets_policy

#: provider key formats with a distinctive shape (the shared policy's)
KEY_PATTERNS: dict[str, re.Pattern[str]] = dict(secrets_policy.KEY_SHAPES)

#: detect-secrets plugins used (format detectors and keywords; no entropy detectors, see the module docstring)
DETECT_SECRETS_PLUGINS = [
    "AWSKeyDetector",
    "ArtifactoryDetector",
    "AzureStorageKeyDetector",
    "BasicAuthDetector",
    "CloudantDetector",
    "DiscordBotTokenDetector",
    "GitHubTokenDetector",
    "GitLabTokenDetector",
    "IbmCloudIamDetector",
    "JwtTokenDetector",
    "KeywordDetector",
    "MailchimpDetector",
    "NpmDetector",
    "OpenAIDetector",
    "PrivateKeyDetector",
    "PypiTokenDetector",
    "SendGridDetector",
    "SlackDetector",
    "SquareOAuthDetector",
    "StripeDetector",
    "TelegramBotTokenDetector",
    "TwilioKeyDetector",
]


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str

    def __str__(self) -> str:  # never includes the matched value
        return f"{self.path}:{self.line}: {self.kind}"


#: response headers that carry ids, dates and digests: high-entropy by nature, never a credential
_ID_HEADERS = re.compile(
    r"(?i)(request-?id|requestid|trace|span|correlation|etag|date|expires|digest|checksum|crc|signature|"
    r"x-amz-id-2|cf-ray|nel|report-to|server-timing|content-|accept|vary|via|alt-svc|strict-transport)"
)
_TOKEN = re.compile(r"[A-Za-z0-9+/_=.-]{20,}")
_HEX = frozenset("0123456789abcdefABCDEF")
#: Shannon entropy (bits per character) above which a token is taken for a key: detect-secrets' defaults are 4.5
#: for base64 and 3.0 for hex; base64 is set a little lower because a key is short (a 32-character sample of a
#: 62-letter alphabet averages ~4.6 bits), and both require digits and letters mixed
BASE64_LIMIT = 4.2
HEX_LIMIT = 3.0


@functools.cache
def _entropy_plugins() -> tuple[Any, Any]:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString

    return Base64HighEntropyString(limit=BASE64_LIMIT), HexHighEntropyString(limit=HEX_LIMIT)


def entropy(token: str) -> float:
    """Shannon entropy in bits per character over the token's alphabet (detect-secrets' own measure and plugins)."""
    b64, hexa = _entropy_plugins()
    return float((hexa if set(token) <= _HEX else b64).calculate_shannon_entropy(token))


def high_entropy_tokens(text: str) -> list[str]:
    """Tokens of ``text`` that look like random keys: long, digits and letters mixed, high Shannon entropy."""
    out = []
    for match in _TOKEN.finditer(text):
        token = match.group(0).strip("=.-_")
        if len(token) < 20 or not any(c.isdigit() for c in token) or not any(c.isalpha() for c in token):
            continue
        if token.count(".") or token.count("-") > 4:  # dotted names, uuids and slugs are not keys
            continue
        if set(token) <= _HEX:
            if len(token) >= 32 and entropy(token) > HEX_LIMIT:
                out.append(token)
        elif entropy(token) > BASE64_LIMIT:
            out.append(token)
    return out


class _Scan:
    """One structure-aware pass over a decoded document; findings carry the line of the raw text they came from."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.findings: list[Finding] = []

    def add(self, kind: str, value: str) -> None:
        line = 1
        for probe in (value, json.dumps(value)[1:-1], value[:12]):
            at = self.text.find(probe) if probe else -1
            if at >= 0:
                line = self.text.count("\n", 0, at) + 1
                break
        finding = Finding(self.path, line, kind)
        if finding not in self.findings:
            self.findings.append(finding)

    # ---- strings
    def string(self, value: str, *, prose_only: bool = True) -> None:
        for kind, pattern in KEY_PATTERNS.items():
            for match in pattern.finditer(value):
                self.add(kind, match.group(0))
        for name in secrets_policy.named_secrets(value):
            self.add(f"named-value: {name}", value)
        if not prose_only or any(c.isspace() for c in value.strip()):
            for token in high_entropy_tokens(value):
                self.add("high-entropy", token)

    def uri(self, uri: str) -> None:
        parts = urlsplit(uri)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if secrets_policy.is_secret_query(key):
                if not secrets_policy.is_redacted(value):
                    self.add(f"query parameter: {key}", value)
            else:
                self.string(value, prose_only=False)
        for segment in unquote(parts.path).split("/"):
            self.string(segment, prose_only=False)
        self.string(unquote(parts.netloc), prose_only=False)

    def header(self, name: str, values: Any) -> None:
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str):
                continue
            if secrets_policy.is_secret_header(name):
                if not secrets_policy.is_redacted(value):
                    self.add(f"header: {name.lower()}", value)
            else:
                self.string(value, prose_only=bool(_ID_HEADERS.search(name)))

    # ---- documents
    def walk(self, value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                name = str(k)
                if secrets_policy.is_secret_field(name) or secrets_policy.is_secret_header(name):
                    leaked = [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str)]
                    if any(not secrets_policy.is_redacted(x) for x in leaked):
                        self.add(f"field: {name.lower()}", next(x for x in leaked))
                    continue
                self.walk(v, name)
        elif isinstance(value, list):
            for item in value:
                self.walk(item, key)
        elif isinstance(value, str):
            if "://" in value and " " not in value.strip():
                self.uri(value)
            else:
                self.string(value)

    def body_text(self, text: str) -> None:
        try:
            self.walk(json.loads(text))
            return
        except (ValueError, RecursionError):
            pass
        for line in text.splitlines():  # SSE frames and NDJSON lines: each payload as data, the rest as text
            payload = line.partition(":")[2].strip() if line.startswith("data:") else line.strip()
            try:
                self.walk(json.loads(payload))
            except (ValueError, RecursionError):
                self.string(line)

    def body_bytes(self, data: bytes) -> None:
        frames = _event_stream_payloads(data)
        if frames is not None:
            for payload in frames:
                self.body_bytes(payload)
            return
        try:
            self.body_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            self.string(data.decode("latin-1"))

    def body(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            self.walk(raw)
            return
        for kind, value in raw.items():
            if kind == "text" and isinstance(value, str):
                self.body_text(value)
            elif kind == "base64" and isinstance(value, str):
                try:
                    self.body_bytes(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    self.string(value)
            else:
                self.walk(value)

    def cassette(self, data: dict[str, Any]) -> None:
        for item in data.get("interactions") or []:
            if not isinstance(item, dict):
                self.walk(item)
                continue
            for side in ("request", "response"):
                part = item.get(side)
                if not isinstance(part, dict):
                    continue
                for field_name, value in part.items():
                    if field_name == "uri" and isinstance(value, str):
                        self.uri(value)
                    elif field_name == "headers" and isinstance(value, dict):
                        for name, values in value.items():
                            self.header(str(name), values)
                    elif field_name == "body":
                        self.body(value)
                    else:
                        self.walk(value, field_name)
            for other, value in item.items():
                if other not in ("request", "response"):
                    self.walk(value, other)


def _event_stream_payloads(data: bytes) -> list[bytes] | None:
    """The payloads of an AWS event-stream body (prelude, headers, payload, CRC per message), or None if it is
    not one. Parsed by length alone: a scan must read what is there even when a CRC is wrong."""
    out, offset = [], 0
    while offset < len(data):
        if offset + 12 > len(data):
            return None
        total, headers_len = struct.unpack(">II", data[offset : offset + 8])
        if total < 16 or offset + total > len(data) or 12 + headers_len > total - 4:
            return None
        out.append(data[offset + 12 + headers_len : offset + total - 4])
        offset += total
    return out if out else None


def scan_text(text: str, path: str = "<text>") -> list[Finding]:
    """Findings in ``text``: a JSON document is scanned by structure (a cassette by its requests, responses,
    headers, URIs and bodies, each stream frame as data), anything else line by line and then whole (a value on
    the line after its name is still found)."""
    scan = _Scan(text, path)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and "interactions" in data:
        scan.cassette(data)
    elif isinstance(data, dict | list):
        scan.walk(data)
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            for kind, pattern in KEY_PATTERNS.items():
                if pattern.search(line):
                    scan.findings.append(Finding(path, lineno, kind))
        joined = " ".join(text.split())  # a name and its value split over lines
        for name in secrets_policy.named_secrets(joined):
            scan.add(f"named-value: {name}", name)
    return scan.findings


def scan_paths(paths: Iterable[Path]) -> list[Finding]:
    findings: list[Finding] = []
    for path in paths:
        findings += scan_text(path.read_text(encoding="utf-8", errors="replace"), str(path))
    return findings


def detect_secrets_scan(paths: Iterable[Path]) -> list[Finding]:
    """detect-secrets over the files, with :data:`DETECT_SECRETS_PLUGINS`."""
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import transient_settings

    findings: list[Finding] = []
    config = {
        "plugins_used": [{"name": name} for name in DETECT_SECRETS_PLUGINS],
        "filters_used": [
            {"path": "detect_secrets.filters.heuristic.is_likely_id_string"},
            {"path": "detect_secrets.filters.heuristic.is_templated_secret"},
            {"path": "detect_secrets.filters.heuristic.is_sequential_string"},
        ],
    }
    with transient_settings(config):
        for path in paths:
            for secret in scan_file(str(path)):
                findings.append(Finding(str(path), secret.line_number, f"detect-secrets: {secret.type}"))
    return findings


def scan_all(paths: Iterable[Path]) -> list[Finding]:
    """Both scanners; what SEC-CASSETTE and the recorder's last check before writing use."""
    files = list(paths)
    return scan_paths(files) + detect_secrets_scan(files)
