"""Reading the real recorded traffic in ``../shared/real-cassettes/`` (vcrpy and pydantic-ai flavours).

These recordings are the nearest thing to the live APIs this project can see, so adapters are checked against them:
:func:`load` turns either flavour into wire-exact-as-possible interactions, and :func:`replay_transport` serves them to
an adapter's ``httpx.AsyncClient`` so the adapter's real parsing code runs on real bytes. The originals are only read.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

#: Where the shared folder sits relative to the project root.
SHARED_REAL_CASSETTES = Path(__file__).resolve().parents[1].parent / "shared" / "real-cassettes"


class CassetteFormatError(ValueError):
    """A cassette that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Interaction:
    method: str
    uri: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""

    def request_json(self) -> Any:
        return json.loads(self.request_body) if self.request_body else None

    def response_json(self) -> Any:
        return json.loads(self.response_body)

    @property
    def is_stream(self) -> bool:
        ctype = self.response_headers.get("content-type", "")
        return "event-stream" in ctype or "ndjson" in ctype or "eventstream" in ctype


def _headers(raw: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (raw or {}).items():
        values = value if isinstance(value, list) else [value]
        out[str(name).lower()] = ", ".join(str(v) for v in values)
    return out


def _body(side: dict[str, Any], headers: dict[str, str]) -> bytes:
    if "parsed_body" in side:
        return json.dumps(side["parsed_body"]).encode()
    body = side.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    if body is None:
        return b""
    data = body if isinstance(body, bytes) else str(body).encode("utf-8")
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
        headers.pop("content-encoding", None)
    return data


def load(path: Path) -> list[Interaction]:
    """All interactions of one cassette file, bodies decompressed and JSON re-serialized where stored parsed."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise CassetteFormatError(f"{path}: cannot read cassette: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise CassetteFormatError(f"{path}: not a cassette (no 'interactions' list)")
    out = []
    for i, item in enumerate(data["interactions"]):
        try:
            request, response = item["request"], item["response"]
            request_headers = _headers(request.get("headers"))
            response_headers = _headers(response.get("headers"))
            status = (
                response["status"]["code"] if isinstance(response.get("status"), dict) else response["status"]
            )
            out.append(
                Interaction(
                    method=request["method"].upper(),
                    uri=request["uri"],
                    request_headers=request_headers,
                    request_body=_body(request, request_headers),
                    status=int(status),
                    response_headers=response_headers,
                    response_body=_body(response, response_headers),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CassetteFormatError(f"{path}: interactions[{i}]: malformed ({exc!r})") from None
    return out


def cassettes(*parts: str) -> Iterator[Path]:
    """Every cassette file below ``real-cassettes/<parts...>``, sorted."""
    yield from sorted(SHARED_REAL_CASSETTES.joinpath(*parts).rglob("*.yaml"))


def replay_transport(interactions: list[Interaction]) -> httpx.MockTransport:
    """Serve recorded responses in order, whatever is asked; the requests sent are kept on ``.sent``."""
    queue = list(interactions)
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if not queue:
            raise AssertionError(f"no recorded interaction left for {request.method} {request.url}")
        recorded = queue.pop(0)
        headers = {
            k: v
            for k, v in recorded.response_headers.items()
            if k not in ("content-length", "transfer-encoding")
        }
        return httpx.Response(recorded.status, headers=headers, content=recorded.response_body)

    transport = httpx.MockTransport(handler)
    transport.sent = sent  # type: ignore[attr-defined]
    return transport
