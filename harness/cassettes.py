"""provcert's cassette format: JSON, one file per cassette, bodies exact, streams as their chunks.

Why not vcrpy's YAML: YAML loads an order of magnitude slower (bench/), its JSON serializer fails on binary bodies
(Bedrock's AWS event-stream), and both keep a stream as one blob, so a replay could never show an adapter the chunk
boundaries it meets on the wire. The format, ``cassettes/<provider>/<name>.cassette.json``::

    {"provcert_cassette": 1,
     "interactions": [
       {"request":  {"method": "POST", "uri": "https://api.openai.com/v1/chat/completions",
                     "headers": {"authorization": ["Bearer [REDACTED]"], ...},
                     "body": {"json": {...}}},
        "response": {"status": 200, "reason": "OK", "headers": {"x-request-id": ["req_..."], ...},
                     "body": {"text": "data: {...}\\n\\ndata: [DONE]\\n\\n"},
                     "chunk_sizes": [212, 230, ...], "timings": [0.0, 0.012, ...]},   # streams only
        "call": {...}}]}                                           # the normalized ChatRequest that made it

A body is ``{"text": str}`` (UTF-8, byte exact), ``{"base64": str}`` (anything else), or ``{"json": value}``
(request bodies only are written so, for review; re-serialized when read). A streamed response keeps the chunk
boundaries it arrived with as ``chunk_sizes`` (bytes; they add up to the body's length) and optionally ``timings``
(seconds since the response headers, one per chunk): one string per body reads like the wire and loads fast.
Compressed bodies are stored decoded. Beside each cassette: ``<name>.provenance.json`` (where it came
from) and ``<name>.expected.json`` (the reviewed normalized results, see :mod:`harness.golden`).

Every write is atomic (a temporary file in the same folder, fsync, rename), so a crash or Ctrl-C leaves either the
old file or the new one, never a torn one; a problem in a file is reported with the file and the JSON path.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # a faster parser of the same JSON; the standard library's is the fallback
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

FORMAT_KEY = "provcert_cassette"
FORMAT_VERSION = 1
CASSETTE_SUFFIX = ".cassette.json"
PROVENANCE_SUFFIX = ".provenance.json"
EXPECTED_SUFFIX = ".expected.json"
#: The project's golden cassettes, relative to the repository root.
DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "cassettes"
#: Response headers that describe the transfer, not the content: dropped on replay (bodies are stored decoded).
TRANSFER_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding", "connection"})


class CassetteError(ValueError):
    """A cassette that cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


Headers = dict[str, list[str]]


@dataclass(slots=True)
class RecordedRequest:
    method: str
    uri: str
    headers: Headers
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@dataclass(slots=True)
class RecordedResponse:
    status: int
    headers: Headers
    body: bytes = b""
    reason: str = ""
    #: the body as it arrived, chunk by chunk (None: recorded whole)
    chunks: list[bytes] | None = None
    #: seconds since the headers at which each chunk arrived (None: unknown)
    timings: list[float] | None = None

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").lower()

    @property
    def is_stream(self) -> bool:
        from harness.frames import framing  # one place decides what counts as a stream

        return framing(self.content_type) != "none"


@dataclass(slots=True)
class Interaction:
    request: RecordedRequest
    response: RecordedResponse
    #: the normalized ChatRequest (``model_dump(mode="json")``) whose call produced this interaction
    call: dict[str, Any] | None = None


@dataclass
class Cassette:
    path: Path
    interactions: list[Interaction] = field(default_factory=list)

    @property
    def name(self) -> str:
        return cassette_name(self.path)

    @property
    def provenance_path(self) -> Path:
        return sibling(self.path, PROVENANCE_SUFFIX)

    @property
    def expected_path(self) -> Path:
        return sibling(self.path, EXPECTED_SUFFIX)


def cassette_name(path: Path) -> str:
    name = path.name
    return name[: -len(CASSETTE_SUFFIX)] if name.endswith(CASSETTE_SUFFIX) else path.stem


def sibling(cassette_path: Path, suffix: str) -> Path:
    return cassette_path.with_name(cassette_name(cassette_path) + suffix)


# ---------------------------------------------------------------- bodies
def encode_body(data: bytes, *, as_json: bool = False) -> dict[str, Any] | None:
    """``{"json": ...}`` when asked and the bytes are JSON, ``{"text": ...}`` when UTF-8, else ``{"base64": ...}``."""
    if not data:
        return None
    if as_json:
        try:
            return {"json": json.loads(data)}
        except (ValueError, UnicodeDecodeError):
            pass
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _split(body: bytes, sizes: list[int]) -> list[bytes]:
    chunks, offset = [], 0
    for size in sizes:
        chunks.append(body[offset : offset + size])
        offset += size
    return chunks


def _decode_body(raw: Any, where: str) -> bytes:
    if raw is None:
        return b""
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ValueError(f"{where}: expected null or an object with one of 'text', 'base64', 'json'")
    ((kind, value),) = raw.items()
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError(f"{where}.text: expected a string")
        return value.encode("utf-8")
    if kind == "base64":
        if not isinstance(value, str):
            raise ValueError(f"{where}.base64: expected a string")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"{where}.base64: not valid base64 ({exc})") from None
    if kind == "json":
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    raise ValueError(f"{where}: unknown body encoding {kind!r} (expected 'text', 'base64' or 'json')")


#: An HTTP header name (RFC 9110 token) and a value without CR, LF or NUL: anything else would let a cassette
#: inject headers or split the response when replayed.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


def _headers(raw: Any, where: str) -> Headers:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object of header name -> list of values")
    out: Headers = {}
    for name, values in raw.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{where}: {name[:60]!r} is not a valid HTTP header name")
        if isinstance(values, str):
            values = [values]
        if not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
            raise ValueError(f"{where}.{name}: expected a string or a list of strings")
        if any(_BAD_VALUE.search(v) for v in values):
            raise ValueError(
                f"{where}.{name}: a value holds CR, LF or NUL (it would split the replayed response)"
            )
        out[name.lower()] = values
    return out


# ---------------------------------------------------------------- reading
def parse(data: Any, path: Path | str = "<data>") -> list[Interaction]:
    """Interactions from decoded cassette JSON; :class:`CassetteError` names the file and the JSON path."""
    if not isinstance(data, dict) or FORMAT_KEY not in data:
        raise CassetteError(path, f"not a provcert cassette (no {FORMAT_KEY!r} version key at the top level)")
    if data[FORMAT_KEY] != FORMAT_VERSION:
        raise CassetteError(
            path, f"unsupported cassette version {data[FORMAT_KEY]!r} (this provcert reads {FORMAT_VERSION})"
        )
    items = data.get("interactions")
    if not isinstance(items, list):
        raise CassetteError(path, "'interactions' must be a list")
    try:
        return _parse_items(items, path)
    except RecursionError:
        raise CassetteError(path, "JSON nested too deeply to replay") from None


def _parse_items(items: list[Any], path: Path | str) -> list[Interaction]:
    out: list[Interaction] = []
    for i, item in enumerate(items):
        fast = _fast_interaction(item)
        if fast is not None:
            out.append(fast)
            continue
        where = f"interactions[{i}]"  # the validating path: slower, and names the problem
        try:
            out.append(_interaction(item, where))
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"{where}: missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CassetteError(path, detail) from None
    return out


def _fast_body(raw: Any) -> bytes | None:
    if raw is None:
        return b""
    if type(raw) is dict and len(raw) == 1:
        text = raw.get("text")
        if type(text) is str:
            return text.encode("utf-8")
        value = raw.get("json")
        if value is not None or "json" in raw:
            return json.dumps(value, ensure_ascii=False).encode("utf-8")
    return None  # base64 and anything odd: the validating path


def _fast_headers(raw: Any) -> Headers | None:
    if raw is None:
        return {}
    if type(raw) is not dict:
        return None
    for name, values in raw.items():
        if type(values) is not list or not all(type(v) is str for v in values) or name != name.lower():
            return None
        if not _HEADER_NAME.fullmatch(name) or any(_BAD_VALUE.search(v) for v in values):
            return None  # the validating path names the problem
    return raw


def _fast_interaction(item: Any) -> Interaction | None:
    """The common, well-formed case without building error context; None hands over to :func:`_interaction`."""
    if type(item) is not dict:
        return None
    req, resp = item.get("request"), item.get("response")
    if type(req) is not dict or type(resp) is not dict:
        return None
    method, uri, status, call = req.get("method"), req.get("uri"), resp.get("status"), item.get("call")
    if type(method) is not str or type(uri) is not str or type(status) is not int or not 100 <= status <= 599:
        return None
    if call is not None and type(call) is not dict:
        return None
    req_headers, resp_headers = _fast_headers(req.get("headers")), _fast_headers(resp.get("headers"))
    req_body = _fast_body(req.get("body"))
    if req_headers is None or resp_headers is None or req_body is None:
        return None
    body = _fast_body(resp.get("body"))
    if body is None:
        return None
    chunks: list[bytes] | None = None
    timings: list[float] | None = None
    sizes = resp.get("chunk_sizes")
    if sizes is not None:
        if type(sizes) is not list or not all(type(n) is int for n in sizes) or sum(sizes) != len(body):
            return None
        if min(sizes, default=0) < 0:
            return None
        chunks = _split(body, sizes)
        raw_timings = resp.get("timings")
        if raw_timings is not None:
            if type(raw_timings) is not list or len(raw_timings) != len(chunks):
                return None
            if not all(type(t) in (int, float) and t >= 0 for t in raw_timings):
                return None
            timings = raw_timings
    elif resp.get("timings") is not None:
        return None
    reason = resp.get("reason") or ""
    return Interaction(
        RecordedRequest(method.upper(), uri, req_headers, req_body),
        RecordedResponse(
            status, resp_headers, body, reason if type(reason) is str else str(reason), chunks, timings
        ),
        call,
    )


def _interaction(item: Any, where: str) -> Interaction:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object with 'request' and 'response'")
    req, resp = item["request"], item["response"]
    if not isinstance(req, dict) or not isinstance(resp, dict):
        raise ValueError(f"{where}: 'request' and 'response' must be objects")
    method, uri, status = req["method"], req["uri"], resp["status"]
    if not isinstance(method, str) or not isinstance(uri, str):
        raise ValueError(f"{where}.request: 'method' and 'uri' must be strings")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"{where}.response.status: expected an HTTP status code, got {status!r}")
    request = RecordedRequest(
        method=method.upper(),
        uri=uri,
        headers=_headers(req.get("headers"), f"{where}.request.headers"),
        body=_decode_body(req.get("body"), f"{where}.request.body"),
    )
    body = _decode_body(resp.get("body"), f"{where}.response.body")
    chunks: list[bytes] | None = None
    timings: list[float] | None = None
    sizes = resp.get("chunk_sizes")
    if sizes is not None:
        if not isinstance(sizes, list) or any(type(n) is not int or n < 0 for n in sizes):
            raise ValueError(f"{where}.response.chunk_sizes: expected a list of byte counts")
        if sum(sizes) != len(body):
            raise ValueError(
                f"{where}.response.chunk_sizes: they add up to {sum(sizes)} bytes, the body has {len(body)}"
            )
        chunks = _split(body, sizes)
        raw_timings = resp.get("timings")
        if raw_timings is not None:
            if not isinstance(raw_timings, list) or len(raw_timings) != len(chunks):
                raise ValueError(f"{where}.response.timings: expected one number per chunk")
            if any(type(t) not in (int, float) or t < 0 for t in raw_timings):
                raise ValueError(f"{where}.response.timings: expected non-negative numbers")
            timings = [float(t) for t in raw_timings]
    elif resp.get("timings") is not None:
        raise ValueError(f"{where}.response.timings: given without chunk_sizes")
    call = item.get("call")
    if call is not None and not isinstance(call, dict):
        raise ValueError(f"{where}.call: expected an object (a normalized ChatRequest)")
    response = RecordedResponse(
        status=status,
        headers=_headers(resp.get("headers"), f"{where}.response.headers"),
        body=body,
        reason=str(resp.get("reason") or ""),
        chunks=chunks,
        timings=timings,
    )
    return Interaction(request, response, call)


def read_json(path: Path) -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CassetteError(path, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CassetteError(path, f"not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise CassetteError(path, "empty file")
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # the standard parser below names line and column
    try:
        return json.loads(text)
    except RecursionError:
        raise CassetteError(path, "JSON nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        raise CassetteError(
            path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def load(path: Path | str) -> Cassette:
    path = Path(path)
    recover(path)
    return Cassette(path, parse(read_json(path), path))


# ---------------------------------------------------------------- writing
def interaction_dict(interaction: Interaction) -> dict[str, Any]:
    req, resp = interaction.request, interaction.response
    ctype = (req.header("content-type") or "").lower()
    response: dict[str, Any] = {"status": resp.status}
    if resp.reason:
        response["reason"] = resp.reason
    response["headers"] = resp.headers
    body = b"".join(resp.chunks) if resp.chunks is not None else resp.body
    response["body"] = encode_body(body)
    if resp.chunks is not None:
        response["chunk_sizes"] = [len(c) for c in resp.chunks]
        if resp.timings is not None:
            response["timings"] = [round(t, 4) for t in resp.timings]
    out: dict[str, Any] = {
        "request": {
            "method": req.method,
            "uri": req.uri,
            "headers": req.headers,
            "body": encode_body(req.body, as_json="json" in ctype),
        },
        "response": response,
    }
    if interaction.call is not None:
        out["call"] = interaction.call
    return out


def dumps(interactions: list[Interaction]) -> str:
    data = {FORMAT_KEY: FORMAT_VERSION, "interactions": [interaction_dict(i) for i in interactions]}
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once: readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save(path: Path, interactions: list[Interaction]) -> None:
    write_atomic(path, dumps(interactions))


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


#: Beside a cassette while its pair is being replaced: which staged files become which (save_with_provenance).
COMMIT_SUFFIX = ".commit.json"


def save_with_provenance(path: Path, text: str, provenance: Mapping[str, Any]) -> None:
    """Write a cassette and its provenance as one unit: after a kill at any point, readers see both old files or
    both new ones, never a new cassette with the old provenance (or the reverse).

    Two renames cannot be one atomic step, so the unit is made with a commit record: both files are staged
    (temporary files, fsynced), then ``<name>.commit.json`` naming the renames is written atomically (the commit
    point), then the renames run and the record is removed. A kill before the commit point leaves the old pair and
    some staged files (ignored); after it, :func:`recover` (run by :func:`load`, :func:`read_provenance` and the next
    save) finishes the renames. The provenance also records the cassette's ``cassette_sha256``, so a pair
    written otherwise can be checked (:func:`provenance_matches`).
    """
    recover(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = dict(provenance)
    record["cassette_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    contents = [
        (path, text),
        (
            sibling(path, PROVENANCE_SUFFIX),
            json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n",
        ),
    ]
    staged: list[tuple[str, str]] = []
    try:
        for final, content in contents:
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".staged", dir=path.parent)
            staged.append((Path(tmp).name, final.name))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        write_atomic(sibling(path, COMMIT_SUFFIX), json.dumps({"renames": staged}) + "\n")
    except BaseException:
        for tmp, _final in staged:
            with contextlib.suppress(OSError):
                os.unlink(path.parent / tmp)
        raise
    _roll_forward(sibling(path, COMMIT_SUFFIX))


def _roll_forward(commit: Path) -> None:
    data = json.loads(commit.read_text(encoding="utf-8"))
    for tmp, final in data["renames"]:
        staged = commit.parent / tmp
        if staged.exists():  # already renamed by an earlier, interrupted roll-forward otherwise
            os.replace(staged, commit.parent / final)
    with contextlib.suppress(OSError):  # make the renames durable before the record goes
        fd = os.open(commit.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    commit.unlink()


def recover(cassette_path: Path) -> None:
    """Finish a cassette/provenance replacement a kill interrupted after its commit point (a no-op otherwise)."""
    commit = sibling(Path(cassette_path), COMMIT_SUFFIX)
    if commit.exists():
        _roll_forward(commit)


def provenance_matches(cassette_path: Path) -> bool | None:
    """Whether the provenance was written with this cassette (None: it records no ``cassette_sha256``)."""
    provenance = read_provenance(cassette_path) or {}
    digest = provenance.get("cassette_sha256")
    if digest is None:
        return None
    return bool(digest == hashlib.sha256(Path(cassette_path).read_bytes()).hexdigest())


# ---------------------------------------------------------------- finding
#: Entry point group through which a provider that lives in its own package ships its golden cassettes: the entry
#: point's name is the provider id, its value a directory (or a callable returning one) holding the cassettes.
CASSETTES_ENTRY_POINT_GROUP = "provcert.cassettes"


def provider_dir(provider_id: str, root: Path | None = None) -> Path:
    """Where the provider's golden cassettes are: ``<root>/<provider>``; with the default root, a provider that is
    not in this repository's ``cassettes/`` may bring its own folder through a ``provcert.cassettes`` entry point."""
    folder = (root or DEFAULT_ROOT) / provider_id
    if root not in (None, DEFAULT_ROOT) or folder.is_dir():
        return folder
    from importlib.metadata import entry_points

    from adapters.registry import entry_point_path

    for ep in entry_points(group=CASSETTES_ENTRY_POINT_GROUP, name=provider_id):
        return entry_point_path(ep, directory=True)
    return folder


def golden_paths(provider_id: str, root: Path | None = None) -> list[Path]:
    folder = provider_dir(provider_id, root)
    return sorted(folder.glob(f"*{CASSETTE_SUFFIX}")) if folder.is_dir() else []


def iter_golden(provider_id: str, root: Path | None = None) -> Iterator[Cassette]:
    for path in golden_paths(provider_id, root):
        yield load(path)


def read_provenance(cassette_path: Path) -> dict[str, Any] | None:
    recover(cassette_path)
    path = sibling(cassette_path, PROVENANCE_SUFFIX)
    if not path.exists():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise CassetteError(path, "provenance must be a JSON object")
    return data
