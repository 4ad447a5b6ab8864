"""Per-session scenario queues, so tests running in parallel against one server never see each other's faults.

Selection order for a request: the ``x-mock-scenario`` header (a preset name or a JSON spec) wins; otherwise
the next queued scenario of the ``x-mock-session`` session is used (a scenario with ``times: n`` answers n
requests); otherwise ``ok``. A request without ``x-mock-session`` belongs to the session ``default``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mockserver.scenarios import PRESETS, Scenario, ScenarioError, parse_scenario

SCENARIO_HEADER = "x-mock-scenario"
SESSION_HEADER = "x-mock-session"
DEFAULT_SESSION = "default"

Source = Literal["header", "queue", "default"]


@dataclass
class Queued:
    """A queued scenario and how many more requests it answers."""

    scenario: Scenario
    remaining: int

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario.model_dump(mode="json"), "remaining": self.remaining}


@dataclass(frozen=True)
class Selection:
    """The scenario chosen for one request, and where it came from (journaled)."""

    scenario: Scenario
    source: Source

    def as_dict(self) -> dict[str, Any]:
        """Every spec field, flat (e.g. ``retry_after``), plus ``source`` (header/queue/default)."""
        return {**self.scenario.model_dump(mode="json"), "source": self.source}


class SessionStore:
    """Scenario queues keyed by session id. Used from the server's event loop only."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Queued]] = {}

    def enqueue(self, session: str, scenarios: list[Scenario]) -> list[Queued]:
        queue = self._queues.setdefault(session, deque())
        queue.extend(Queued(s, s.times) for s in scenarios)
        return list(queue)

    def pending(self, session: str) -> list[Queued]:
        return list(self._queues.get(session, ()))

    def pop(self, session: str) -> Scenario | None:
        """Take one use of the head of the session's queue, or None when it is empty."""
        queue = self._queues.get(session)
        if not queue:
            return None
        head = queue[0]
        head.remaining -= 1
        if head.remaining <= 0:
            queue.popleft()
        if not queue:
            del self._queues[session]
        return head.scenario

    def clear(self, session: str) -> None:
        self._queues.pop(session, None)


def session_of(headers: Mapping[str, str]) -> str:
    return headers.get(SESSION_HEADER, "").strip() or DEFAULT_SESSION


def header_scenario(headers: Mapping[str, str]) -> Scenario | None:
    """The scenario named by the request header, if any; raises ScenarioError naming the problem."""
    raw = headers.get(SCENARIO_HEADER)
    if raw is None:
        return None
    try:
        return parse_scenario(raw)
    except ScenarioError as exc:
        raise ScenarioError(f"bad {SCENARIO_HEADER} header: {exc}") from None


def select(header: Scenario | None, store: SessionStore, session: str) -> Selection:
    """Apply the selection order: header, then the session queue, then ``ok``."""
    if header is not None:
        return Selection(header, "header")
    queued = store.pop(session)
    if queued is not None:
        return Selection(queued, "queue")
    return Selection(PRESETS["ok"], "default")
