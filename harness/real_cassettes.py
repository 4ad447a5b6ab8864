"""Reading the real recorded traffic in ``../shared/real-cassettes/`` (vcrpy and pydantic-ai flavours).

These recordings are the nearest thing to the live APIs this project can see, so adapters are checked against them:
:func:`load` turns either flavour into wire-exact-as-possible interactions, and :func:`replay_transport` serves them to
an adapter's ``httpx.AsyncClient`` so the adapter's real parsing code runs on real bytes. The originals are only read.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


#: INDEX.md cuts the endpoint column at this many characters (long Vertex AI paths end mid-word there).
_INDEX_ENDPOINT_WIDTH = 80
_FILE_ROW = re.compile(
    r"^\|\s*(\d+)\s*\|\s*`([^`]+)`\s*\|([^|]*)\|\s*`([^`]*)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|(.*)\|\s*$"
)


@dataclass(frozen=True)
class Recording:
    """One row of INDEX.md's file table: the way tests choose recordings (by provider and endpoint, never by host).

    ``endpoint`` is the full path as recorded: INDEX.md abbreviates project and location to ``*`` and cuts long paths,
    so the row's endpoint is completed from the first interaction of the file whose path it describes.
    """

    number: int
    path: Path
    provider: str
    endpoint: str
    stream: str
    statuses: tuple[int, ...]
    notes: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def id(self) -> str:
        """A readable test id: the row number and the file stem (stems repeat across source projects)."""
        return f"{self.number}-{self.path.stem}"

    def interactions(self) -> list[Interaction]:
        """The file's interactions on this row's endpoint (a file may also hold calls to other endpoints)."""
        return [i for i in load(self.path) if _path(i.uri) == self.endpoint]


def _path(uri: str) -> str:
    return urlsplit(uri).path


def _endpoint_pattern(listed: str) -> re.Pattern[str]:
    """The INDEX endpoint as a pattern over recorded paths: ``*`` is one path segment; a cut endpoint is a prefix;
    recorded paths may keep ``:`` where INDEX shows ``%3A`` (or the reverse)."""
    colon = "(?:%3A|:)"
    pieces = [colon.join(re.escape(q) for q in re.split("%3A|:", p)) for p in listed.split("*")]
    body = "[^/]+".join(pieces)
    cut = len(listed) >= _INDEX_ENDPOINT_WIDTH
    return re.compile(body + (".*" if cut else ""))


def _complete_endpoint(path: Path, listed: str, number: int) -> str:
    pattern = _endpoint_pattern(listed)
    for interaction in load(path):
        recorded = _path(interaction.uri)
        if pattern.fullmatch(recorded):
            return recorded
    raise CassetteFormatError(
        f"{path}: INDEX.md row #{number} names endpoint {listed!r}, which no interaction has"
    )


@cache
def _index(root: Path) -> tuple[Recording, ...]:
    index_file = root / "INDEX.md"
    try:
        lines = index_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CassetteFormatError(f"{index_file}: cannot read the index: {exc}") from None
    rows = []
    for line in lines:
        match = _FILE_ROW.match(line)
        if not match:
            continue
        number, rel, provider, listed, stream, statuses, _storage, notes = (g.strip() for g in match.groups())
        path = root / rel
        if not path.is_file():
            raise CassetteFormatError(f"{index_file}: row #{number} names {rel}, which is not there")
        rows.append(
            Recording(
                number=int(number),
                path=path,
                provider=provider,
                endpoint=_complete_endpoint(path, listed, int(number)),
                stream=stream,
                statuses=tuple(int(s) for s in re.findall(r"\d{3}", statuses)),
                notes=notes,
            )
        )
    if not rows:
        raise CassetteFormatError(f"{index_file}: no file rows found (has the table's layout changed?)")
    return tuple(rows)


def index(root: Path = SHARED_REAL_CASSETTES) -> tuple[Recording, ...]:
    """Every row of INDEX.md's file table, in order (read once per root)."""
    return _index(root.resolve())


def recordings(
    provider: str | Iterable[str] | None = None,
    endpoint: str | None = None,
    *,
    stream: bool | None = None,
    root: Path = SHARED_REAL_CASSETTES,
) -> list[Recording]:
    """The indexed recordings of a provider (INDEX.md's name, or several) whose endpoint matches ``endpoint``.

    ``endpoint`` is a regular expression searched in the full recorded path (``/v1/chat/completions$``,
    ``/converse(-stream)?$``, ``:(stream)?[gG]enerateContent$``). New recordings of other endpoints never change the
    selection, and new recordings of the same endpoint join it: tests choose by what was called, not by host or count.
    """
    if not root.is_dir():
        return []
    names = {provider} if isinstance(provider, str) else set(provider) if provider is not None else None
    wanted = re.compile(endpoint) if endpoint is not None else None
    out = []
    for row in index(root):
        if names is not None and row.provider not in names:
            continue
        if wanted is not None and not wanted.search(row.endpoint):
            continue
        if stream is not None and (row.stream == "yes") != stream:
            continue
        out.append(row)
    return out


#: Which INDEX.md rows speak each mock wire's chat surface: (INDEX.md provider names, endpoint pattern). Rows of other
#: endpoints of the same provider (embeddings, model lists, the Responses API, InvokeModel) are other surfaces.
WIRE_CHAT_ENDPOINTS: dict[str, tuple[tuple[str, ...], str]] = {
    "openai": (("OpenAI",), r"^/v1/chat/completions$"),
    "azure-openai": (("Azure OpenAI",), r"^/openai/deployments/[^/]+/chat/completions$"),
    "anthropic": (("Anthropic",), r"^/v1/messages$"),
    "gemini": (("Google Gemini API", "Google Vertex AI (Gemini)"), r":(stream)?[gG]enerateContent$"),
    "bedrock": (("AWS Bedrock",), r"/converse(-stream)?$"),
    "mistral": (("Mistral",), r"^/v1/chat/completions$"),
    "openrouter": (("OpenRouter",), r"^/api/v1/chat/completions$"),
    "ollama": (("Ollama (local, native API)",), r"^/api/chat$"),
}


def chat_recordings(wire: str, root: Path = SHARED_REAL_CASSETTES) -> list[Recording]:
    """The indexed recordings of a wire's chat surface (see :data:`WIRE_CHAT_ENDPOINTS`)."""
    try:
        providers, endpoint = WIRE_CHAT_ENDPOINTS[wire]
    except KeyError:
        raise KeyError(
            f"no chat endpoint known for wire {wire!r}; known: {sorted(WIRE_CHAT_ENDPOINTS)}"
        ) from None
    return recordings(providers, endpoint, root=root)


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
