"""JSON Schemas of each wire dialect: the request body (GLD-REQUEST), and the response side for drift checks.

Schemas live in ``harness/schemas/<wire>.<kind>.schema.json``; a new wire dialect adds files, nothing else. Kinds:

* ``request``: the body an adapter sends;
* ``response``: a non-streamed 2xx body;
* ``stream-chunk``: one JSON payload of a stream (an SSE ``data:``, an NDJSON line, an event-stream message);
* ``error``: a 4xx/5xx body.

Real recordings (golden cassettes) and the mock server's output must validate against the same response-side
schemas: when either drifts, :func:`response_errors` says where. Schemas may ``$ref`` each other by file name.

A wire dialect that lives outside this repository contributes its schemas through the ``provcert.schemas``
entry-point group: the entry point is named after the wire and gives a directory (a module attribute holding its
path, or a callable returning it) that holds the same ``<wire>.<kind>.schema.json`` files. Packaged schemas win.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from harness.frames import framing, payloads

SchemaKind = Literal["request", "response", "stream-chunk", "error"]


class UnknownSchemaError(LookupError):
    pass


def _folder() -> Any:
    return resources.files("harness") / "schemas"


@cache
def _registry() -> Registry[Any]:
    """Every schema in the folder, by ``$id`` (and file name), so cross-file ``$ref``s resolve."""
    registry: Registry[Any] = Registry()
    for entry in _folder().iterdir():
        if not entry.name.endswith(".schema.json"):
            continue
        schema = json.loads(entry.read_text(encoding="utf-8"))
        resource = Resource.from_contents(schema, default_specification=DRAFT202012)
        registry = registry.with_resource(schema.get("$id", entry.name), resource)
    return registry


SCHEMAS_ENTRY_POINT_GROUP = "provcert.schemas"


def _schema_path(wire: str, kind: SchemaKind) -> Any:
    """The packaged schema file, else the one in the directory a ``provcert.schemas`` entry point gives for ``wire``."""
    name = f"{wire}.{kind}.schema.json"
    packaged = _folder() / name
    if packaged.is_file():
        return packaged
    from importlib.metadata import entry_points

    from adapters.registry import RegistryError, entry_point_path

    for ep in entry_points(group=SCHEMAS_ENTRY_POINT_GROUP, name=wire):
        try:
            folder = entry_point_path(ep, directory=True)
        except RegistryError as exc:
            raise UnknownSchemaError(str(exc)) from None
        if (folder / name).is_file():
            return folder / name
    return packaged


def has_schema(wire: str, kind: SchemaKind) -> bool:
    return bool(_schema_path(wire, kind).is_file())


@cache
def validator(wire: str, kind: SchemaKind) -> Draft202012Validator:
    name = f"{wire}.{kind}.schema.json"
    path = _schema_path(wire, kind)
    if not path.is_file():
        raise UnknownSchemaError(
            f"no {kind} schema for wire {wire!r} (expected harness/schemas/{name}, or a directory holding it "
            f"advertised as entry point {SCHEMAS_ENTRY_POINT_GROUP}:{wire})"
        )
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


def request_validator(wire: str) -> Draft202012Validator:
    return validator(wire, "request")


def schema_errors(wire: str, kind: SchemaKind, body: Any) -> list[str]:
    """Every violation, each with the JSON path where it occurs."""
    out = []
    for err in sorted(validator(wire, kind).iter_errors(body), key=lambda e: list(e.absolute_path)):
        if err.context:  # oneOf/anyOf: name the closest alternative's problem, not "valid under none"
            err = best_match(err.context, key=lambda e: len(e.absolute_path))
        out.append(f"{'/'.join(str(p) for p in err.absolute_path) or '(body)'}: {err.message}")
    return out


def request_schema_errors(wire: str, body: Any) -> list[str]:
    return schema_errors(wire, "request", body)


def response_errors(wire: str, status: int, content_type: str, body: bytes) -> list[str]:
    """Validate one HTTP response of ``wire``: error schema for >= 400, else each stream payload or the body.

    Raises :class:`UnknownSchemaError` when the wire has no schema of the kind needed.
    """
    if status >= 400:
        kind: SchemaKind = "error"
    elif framing(content_type) != "none":
        kind = "stream-chunk"
    else:
        kind = "response"
    validator(wire, kind)  # fail early and clearly when there is no schema
    try:
        if kind == "stream-chunk":
            items = [(f"frame {n}", p.data) for n, p in enumerate(payloads(body, content_type))]
            if not items:
                return ["stream carries no JSON payload"]
        else:
            items = [("body", json.loads(body))]
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"not JSON: {exc}"]
    problems: list[str] = []
    for where, data in items:
        problems += [f"{kind} {where}: {e}" for e in schema_errors(wire, kind, data)]
    return problems
