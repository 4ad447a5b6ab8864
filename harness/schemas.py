"""JSON Schemas of each wire dialect's request body, used by GLD-REQUEST (and, later, cassette drift checks).

Schemas live in ``harness/schemas/<wire>.request.schema.json``; a new wire dialect adds one file, nothing else.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator


class UnknownSchemaError(LookupError):
    pass


@cache
def request_validator(wire: str) -> Draft202012Validator:
    name = f"{wire}.request.schema.json"
    path = resources.files("harness") / "schemas" / name
    if not path.is_file():
        raise UnknownSchemaError(f"no request schema for wire {wire!r} (expected harness/schemas/{name})")
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def request_schema_errors(wire: str, body: Any) -> list[str]:
    """Every violation, each with the JSON path where it occurs."""
    validator = request_validator(wire)
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '(body)'}: {err.message}"
        for err in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    ]
