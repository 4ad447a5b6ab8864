"""Importing the real recordings of ``../shared/real-cassettes/`` as golden cassettes (the originals are only read).

Which provider an interaction belongs to is found from the registry, not from a table here: its host is the entry's
``base_url`` host, its path lies below the ``base_url`` path, and the rest of the path is one of the routes the
entry's mock personality serves (so an OpenAI Responses-API call is not taken for a chat completion). A provider
therefore gets its real golden cassettes as soon as its registry entry and personality land. Two relaxations, both
still requiring a route of the entry's wire:

* a ``base_url`` host whose first label is a documented placeholder (``example-resource.openai.azure.com``: Azure's
  base URL is per resource) matches any host of the same parent domain (``<any>.openai.azure.com``);
* the recorded base path may be shorter than the registry's (DeepSeek serves ``/chat/completions`` as well as
  ``/v1/chat/completions``): the path is then a segment prefix of the ``base_url`` path followed by a route.

Either is written to the provenance (``origin.recorded_base_url`` and a note); replay matches the adapter's request
by the path below the base URL, so the cassette replays against the registry's ``base_url`` unchanged.

Each imported cassette keeps the upstream file's name, gets chunk boundaries at the provider's own event
boundaries (the upstream recorder kept none), the normalized call rebuilt from the recorded body, and a provenance
file with the source repository, commit and licence from ``INDEX.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from adapters.registry import ProviderEntry, Registry
from harness import cassettes as fmt
from harness import real_cassettes
from harness.frames import split_raw
from harness.golden import call_from_recording, model_of
from harness.recording import Redactor, adapter_version

_INDEX_ROW = re.compile(
    r"^\|\s*([\w.-]+)\s*\|\s*(github\.com/\S+)\s*\|\s*([0-9a-f]{40})\s*\|\s*([\w.-]+)\s*\|\s*$"
)
_PLACEHOLDER = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Origin:
    folder: str
    repository: str
    commit: str
    licence: str


def origins(root: Path = real_cassettes.SHARED_REAL_CASSETTES) -> dict[str, Origin]:
    """Source folder -> upstream repository, commit and licence, read from INDEX.md's table."""
    out: dict[str, Origin] = {}
    for line in (root / "INDEX.md").read_text(encoding="utf-8").splitlines():
        match = _INDEX_ROW.match(line)
        if match:
            out[match.group(1)] = Origin(*match.groups())
    return out


@cache
def _route_patterns(wire: str, mock_path: str) -> tuple[re.Pattern[str], ...]:
    """Paths below the entry's base path that its personality answers, as regexes (``{model}`` -> one segment)."""
    from mockserver.personalities import discover

    cls = discover().get(wire)
    if cls is None:
        return ()
    personality = cls()
    below = mock_path[len(personality.prefix) :] if mock_path.startswith(personality.prefix) else None
    patterns = []
    for _method, route in personality.routes():
        if below is None or not route.startswith(below):
            continue
        tail = route[len(below) :]
        pieces = _PLACEHOLDER.split(tail)
        patterns.append(re.compile("[^/]+".join(re.escape(p) for p in pieces)))
    return tuple(patterns)


_LOOPBACK = {"localhost": "127.0.0.1", "::1": "127.0.0.1"}
#: A host label that stands for "yours": RFC 2606's ``example``, ``example-*`` / ``your-*`` names, ``{...}``/``<...>``.
_PLACEHOLDER_LABEL = re.compile(r"example(-[a-z0-9-]+)?|your-[a-z0-9-]+|\{[^}]*\}|<[^>]*>", re.IGNORECASE)


def placeholder_host(host: str) -> bool:
    """A registry host whose first label is a placeholder under a real parent domain (``example-resource.x.com``)."""
    first, _, parent = host.partition(".")
    return bool(_PLACEHOLDER_LABEL.fullmatch(first)) and parent.count(".") >= 1


def _hosts_match(host: str, base_host: str) -> bool:
    host, base_host = _LOOPBACK.get(host, host).lower(), _LOOPBACK.get(base_host, base_host).lower()
    if host == base_host:
        return True
    return placeholder_host(base_host) and host.partition(".")[2] == base_host.partition(".")[2]


def recorded_base_path(entry: ProviderEntry, uri: str) -> str | None:
    """The base path the recording was made under, if ``uri`` is one of the entry's routes; else None.

    That is the ``base_url`` path, or a shorter segment prefix of it (a provider that also serves its API at a
    shorter base path), followed by a route the entry's personality serves.
    """
    parts, base = urlsplit(uri), urlsplit(entry.base_url)
    if not _hosts_match(parts.hostname or "", base.hostname or "") or parts.port != base.port:
        return None
    path, segments = unquote(parts.path), base.path.strip("/").split("/")
    patterns = _route_patterns(entry.wire, entry.mock_path)
    for keep in range(len(segments), -1, -1):  # the registry's own base path first
        prefix = "/".join(segments[:keep])
        prefix = f"/{prefix}" if prefix else ""
        if path.startswith(prefix + "/") and any(p.fullmatch(path[len(prefix) :]) for p in patterns):
            return prefix
    return None


def belongs_to(entry: ProviderEntry, uri: str) -> bool:
    return recorded_base_path(entry, uri) is not None


def _convert(item: real_cassettes.Interaction, entry: ProviderEntry, redactor: Redactor) -> fmt.Interaction:
    request = fmt.RecordedRequest(
        method=item.method,
        uri=redactor.uri(item.uri),
        headers={k: [redactor.header(k, v)] for k, v in item.request_headers.items()},
        body=redactor.body(item.request_body),
    )
    headers = {
        k: [redactor.header(k, v)] for k, v in item.response_headers.items() if k not in fmt.TRANSFER_HEADERS
    }
    response = fmt.RecordedResponse(
        status=item.status, headers=headers, body=redactor.body(item.response_body)
    )
    if response.is_stream:
        response.chunks = split_raw(response.body, response.content_type)
    converted = fmt.Interaction(request, response)
    converted.call = call_from_recording(converted, entry).model_dump(
        mode="json", exclude={"metadata"}, exclude_defaults=True
    )
    return converted


def _recorded_base_url(entry: ProviderEntry, uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{recorded_base_path(entry, uri) or ''}"


def cassette_name(source: Path) -> str:
    return "real-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", source.stem).strip("-")


def import_file(
    source: Path,
    entries: Iterable[ProviderEntry],
    root: Path,
    shared: Path = real_cassettes.SHARED_REAL_CASSETTES,
) -> list[Path]:
    """Import one shared recording into ``root/<provider>/``; returns the cassettes written (none if no provider)."""
    items = real_cassettes.load(source)
    rel = source.relative_to(shared)
    origin = origins(shared).get(rel.parts[0])
    redactor = Redactor()
    written = []
    for entry in entries:
        picked = [(n, i) for n, i in enumerate(items) if belongs_to(entry, i.uri)]
        if not picked:
            continue
        interactions = [_convert(i, entry, redactor) for _, i in picked]
        path = fmt.provider_dir(entry.provider_id, root) / (cassette_name(source) + fmt.CASSETTE_SUFFIX)
        models = sorted({m for m in (model_of(i) for i in interactions) if m})
        notes = [
            "chunk boundaries reconstructed at the provider's event boundaries (the upstream recorder kept none)"
        ]
        if rel.parts[0] == "pydantic-ai":
            notes.append("JSON bodies were stored parsed upstream; re-serialized here, so not byte-exact")
        recorded_bases = sorted({_recorded_base_url(entry, i.uri) for _, i in picked})
        moved = recorded_bases != [entry.base_url.rstrip("/")]
        if moved:
            notes.append(
                f"recorded under {', '.join(recorded_bases)}, not the registry's base_url {entry.base_url}; "
                "replay serves each response to the adapter's request for the same route below its base URL"
            )
        provenance: dict[str, Any] = {
            "source": "imported",
            "recorded_at": None,
            "imported_at": datetime.now(UTC).date().isoformat(),
            "provider": entry.provider_id,
            "model": models[0] if len(models) == 1 else models,
            "adapter": entry.adapter_path,
            "adapter_version": adapter_version(entry),
            "cost_usd": None,
            "cost_note": "recorded by the upstream project; its cost is unknown",
            "origin": {
                "repository": origin.repository if origin else None,
                "commit": origin.commit if origin else None,
                "licence": origin.licence if origin else None,
                "path": str(rel),
                "interactions": [n for n, _ in picked],
                **({"recorded_base_url": recorded_bases} if moved else {}),
            },
            "notes": notes,
        }
        # one unit: a kill between the two writes never leaves a cassette beside another import's provenance
        fmt.save_with_provenance(path, fmt.dumps(interactions), provenance)
        written.append(path)
    return written


def import_all(
    registry: Registry,
    root: Path,
    sources: Iterable[Path] | None = None,
    providers: Iterable[str] | None = None,
) -> list[Path]:
    wanted = set(providers) if providers is not None else None
    chosen = [e for e in registry if wanted is None or e.provider_id in wanted]
    written: list[Path] = []
    for source in sources if sources is not None else real_cassettes.cassettes():
        written += import_file(source, chosen, root)
    return written
