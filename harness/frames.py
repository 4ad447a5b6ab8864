"""Stream bodies split into their frames, whatever the framing: SSE, NDJSON or AWS event-stream.

Used to validate every streamed payload against a wire's stream-chunk schema (drift checks) and to give imported
recordings, which vcrpy stored as one blob, chunk boundaries at the provider's own event boundaries.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

_SSE_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")


@dataclass(frozen=True)
class StreamPayload:
    """One frame's decoded JSON payload; ``event`` is the SSE event name or AWS ``:event-type``, if any."""

    event: str | None
    data: Any


def framing(content_type: str) -> str:
    ctype = content_type.lower()
    # Bedrock's real type is application/vnd.amazon.eventstream (no hyphen)
    if "eventstream" in ctype or ("event-stream" in ctype and "amz" in ctype):
        return "aws-eventstream"
    if "event-stream" in ctype:
        return "sse"
    if "ndjson" in ctype or "jsonl" in ctype:
        return "ndjson"
    return "none"


def split_raw(body: bytes, content_type: str) -> list[bytes]:
    """The body cut at frame boundaries, each piece keeping its own delimiter; concatenation gives the body back."""
    kind = framing(content_type)
    if kind == "sse":
        pieces, start = [], 0
        for match in _SSE_BOUNDARY.finditer(body):
            pieces.append(body[start : match.end()])
            start = match.end()
        if start < len(body):
            pieces.append(body[start:])
        return pieces
    if kind == "ndjson":
        return body.splitlines(keepends=True)
    if kind == "aws-eventstream":
        pieces, offset = [], 0
        while offset + 4 <= len(body):
            (total,) = struct.unpack(">I", body[offset : offset + 4])
            if total < 16 or offset + total > len(body):
                break
            pieces.append(body[offset : offset + total])
            offset += total
        if offset < len(body):
            pieces.append(body[offset:])
        return pieces
    return [body] if body else []


def payloads(body: bytes, content_type: str) -> list[StreamPayload]:
    """Every JSON payload in a stream body (SSE comments, ``[DONE]`` and empty data are not payloads).

    Raises ValueError naming the frame when a payload is not JSON.
    """
    kind = framing(content_type)
    out: list[StreamPayload] = []
    if kind == "sse":
        for n, raw in enumerate(split_raw(body, content_type)):
            event, data_lines = None, []
            for line in raw.decode("utf-8").splitlines():
                if line.startswith(":") or not line.strip():
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    event = value
                elif name == "data":
                    data_lines.append(value)
            data = "\n".join(data_lines)
            if not data.strip() or data.strip() == "[DONE]":
                continue
            out.append(StreamPayload(event, _json(data, f"SSE frame {n}")))
    elif kind == "ndjson":
        for n, raw_line in enumerate(body.splitlines()):
            if raw_line.strip():
                out.append(StreamPayload(None, _json(raw_line.decode("utf-8"), f"NDJSON line {n}")))
    elif kind == "aws-eventstream":
        from botocore.eventstream import EventStreamBuffer

        buffer = EventStreamBuffer()
        buffer.add_data(body)
        for n, message in enumerate(buffer):
            event = message.headers.get(":event-type") or message.headers.get(":exception-type")
            payload = message.payload
            out.append(StreamPayload(event, _json(payload.decode("utf-8"), f"event-stream message {n}")))
    return out


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: payload is not JSON ({exc.msg} at {exc.pos}): {text[:80]!r}") from None
