"""Raw-HTTP helpers for the mock server tests (a module, not conftest, so tests can import them)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

FAKE_KEY = "sk-test-FAKE0123456789abcdef0123"

#: One client for all raw-HTTP tests: creating an httpx client per call (SSL context) costs ~10 ms.
HTTP = httpx.Client(timeout=5.0)


def chat_body(stream: bool = False, include_usage: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say something, café-style!"},
        ],
    }
    if stream:
        body["stream"] = True
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    body.update(extra)
    return body


def headers(sid: str, scenario: str | dict[str, Any] | None = None, key: str = FAKE_KEY) -> dict[str, str]:
    out = {"Authorization": f"Bearer {key}", "x-mock-session": sid}
    if scenario is not None:
        out["x-mock-scenario"] = scenario if isinstance(scenario, str) else json.dumps(scenario)
    return out


@dataclass
class SSE:
    """A raw stream as received: the exact bytes, the data payloads, the comment lines."""

    raw: bytes
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: bytes) -> SSE:
        out = cls(raw)
        for block in raw.decode().split("\n\n"):
            for line in block.split("\n"):
                if line.startswith("data: "):
                    out.data.append(line[len("data: ") :])
                elif line.startswith(":"):
                    out.comments.append(line)
        return out

    def chunks(self) -> list[dict[str, Any]]:
        """Parsed JSON chunks (the terminator and unparseable frames left out)."""
        out = []
        for d in self.data:
            if d == "[DONE]":
                continue
            try:
                out.append(json.loads(d))
            except json.JSONDecodeError:
                continue
        return out

    def text(self) -> str:
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in self.chunks() if c.get("choices")
        )


def stream_raw(
    url: str, body: dict[str, Any], hdrs: dict[str, str], timeout: float = 5.0
) -> tuple[int, bytes]:
    """POST and read the raw body; exceptions propagate with what was read attached as ``exc.received``."""
    got = bytearray()
    try:
        with HTTP.stream("POST", url, json=body, headers=hdrs, timeout=timeout) as response:
            for part in response.iter_raw():
                got += part
            return response.status_code, bytes(got)
    except httpx.HTTPError as exc:
        exc.received = bytes(got)  # type: ignore[attr-defined]
        raise
