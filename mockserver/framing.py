"""Wire framing helpers shared by personalities: SSE (WHATWG event-stream) and NDJSON.

Kept apart from any provider so each personality states only *what* it sends; the exact bytes of the framing
(``data:`` lines, the blank line that dispatches an event, comments) are written once, here. AWS binary
event-stream framing (Bedrock) will live here too when that personality arrives.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(obj: Any) -> str:
    """Compact JSON as real APIs send it (no spaces), keeping non-ASCII characters as UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse_event(data: str | Any, event: str | None = None) -> bytes:
    """One SSE event: optional ``event:`` line, ``data:`` line(s), then the blank line that dispatches it.

    Non-string data is JSON-encoded. Multi-line data becomes several ``data:`` lines, which clients join with
    ``\\n``.
    """
    payload = data if isinstance(data, str) else dumps(data)
    lines = [f"event: {event}"] if event is not None else []
    lines.extend(f"data: {line}" for line in payload.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def sse_raw_data(text: str) -> bytes:
    """A ``data:`` line carrying ``text`` verbatim (for deliberately broken JSON), then the blank line."""
    return f"data: {text}\n\n".encode()


def sse_comment(text: str) -> bytes:
    """An SSE comment line (``: text``), which every conforming client must ignore; used for keep-alives."""
    return f": {text}\n\n".encode()


def ndjson_line(obj: Any) -> bytes:
    """One newline-delimited JSON record (Ollama's streaming format)."""
    return (dumps(obj) + "\n").encode()
