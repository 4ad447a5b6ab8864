"""A small client for the mock server's admin API, usable against the embedded server or a standalone one.

Tests and the certification suite talk to the mock only through this client and the provider routes, so the same
checks run unchanged against ``python -m mockserver`` on another port (``--mock-url``).
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

_counter = itertools.count(1)


class MockAdminError(RuntimeError):
    """The admin API refused a request; the message carries the server's explanation."""


@dataclass
class MockClient:
    url: str
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = self._http.request(method, path, **kw)
        if response.status_code >= 400:
            raise MockAdminError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_mock/health")
        return result

    def new_session(self, prefix: str = "s") -> str:
        return f"{prefix}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:8]}"

    def queue(self, session: str, *scenarios: str | dict[str, Any]) -> None:
        self._call("POST", f"/_mock/sessions/{session}/scenarios", json={"scenarios": list(scenarios)})

    def journal(self, session: str) -> list[dict[str, Any]]:
        result = self._call("GET", "/_mock/journal", params={"session": session})
        entries: list[dict[str, Any]] = result["entries"]
        return entries

    def clear(self, session: str) -> None:
        self._call("DELETE", f"/_mock/sessions/{session}")


@dataclass
class MockSession:
    """One isolated session on the mock: its own scenario queue and its own journal."""

    client: MockClient
    id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-mock-session": self.id}

    def queue(self, *scenarios: str | dict[str, Any]) -> None:
        self.client.queue(self.id, *scenarios)

    def journal(self) -> list[dict[str, Any]]:
        return self.client.journal(self.id)

    def last(self) -> dict[str, Any]:
        entries = self.journal()
        if not entries:
            raise AssertionError(
                f"the mock journal of session {self.id} is empty: no request reached the server"
            )
        return entries[-1]
