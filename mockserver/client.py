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

from mockserver.scenarios import Scenario
from mockserver.serving import ADMIN_TOKEN_ENV, ADMIN_TOKEN_HEADER

ScenarioSpec = str | dict[str, Any] | Scenario

_counter = itertools.count(1)


class MockAdminError(ValueError):
    """The admin API refused a request; the message is the server's explanation."""


@dataclass
class MockClient:
    """``admin_token`` (default: ``$PROVCERT_MOCK_ADMIN_TOKEN``) is sent as ``x-mock-admin-token``, which a mock
    bound to a non-loopback address requires."""

    url: str
    admin_token: str | None = field(default=None, repr=False)
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        token = self.admin_token or os.environ.get(ADMIN_TOKEN_ENV)
        headers = {ADMIN_TOKEN_HEADER: token} if token else {}
        self._http = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = self._http.request(method, path, **kw)
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"{method} {path} -> {response.status_code}: {response.text[:500]}"
            raise MockAdminError(message)
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_mock/health")
        return result

    @staticmethod
    def new_session(prefix: str = "s") -> str:
        """A unique session id, so parallel tests (and xdist workers) never share queues or journal entries."""
        return f"{prefix}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:8]}"

    def queue(self, session: str, *scenarios: ScenarioSpec) -> dict[str, Any]:
        """Queue scenarios (preset names, spec dicts or Scenario objects); returns the server's counts
        (``added``, ``queued``, ``answers``, ``evicted_sessions``), never the queue itself."""
        result: dict[str, Any] = self._call(
            "POST", f"/_mock/sessions/{session}/scenarios", json={"scenarios": [_spec(s) for s in scenarios]}
        )
        return result

    def pending(self, session: str) -> list[dict[str, Any]]:
        """The session's queue: ``[{"scenario": spec, "remaining": n}, ...]``."""
        queue: list[dict[str, Any]] = self._call("GET", f"/_mock/sessions/{session}")["queue"]
        return queue

    def journal(self, session: str | None = None, *, wait: float | None = None) -> list[dict[str, Any]]:
        """Entries oldest first, once in-flight requests completed (the server waits up to ``wait`` s)."""
        params: dict[str, Any] = {}
        if session is not None:
            params["session"] = session
        if wait is not None:
            params["wait"] = wait
        entries: list[dict[str, Any]] = self._call("GET", "/_mock/journal", params=params)["entries"]
        return entries

    def clear(self, session: str | None = None) -> None:
        """Forget a session's queue and journal entries (or the whole journal when no session is given)."""
        if session is None:
            self._call("DELETE", "/_mock/journal")
        else:
            self._call("DELETE", f"/_mock/sessions/{session}")


def _spec(scenario: ScenarioSpec) -> str | dict[str, Any]:
    if isinstance(scenario, Scenario):
        return scenario.model_dump(mode="json", exclude_defaults=True) | {"name": scenario.name}
    return scenario


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
