"""Per-session scenario queues, so tests running in parallel against one server never see each other's faults.

Selection order for a request: the ``x-mock-scenario`` header (a preset name or a JSON spec) wins; otherwise
the next queued scenario of the ``x-mock-session`` session is used (a scenario with ``times: n`` answers n
requests); otherwise ``ok``. A request without ``x-mock-session`` belongs to the session ``default``.

Queues are bounded so that nobody can grow the server without limit through the admin API: a session holds at
most ``queue_length`` scenarios (:data:`mockserver.scenarios.LIMITS`), a session idle for ``ttl`` seconds is
forgotten, at most ``max_sessions`` sessions are kept and all queues together cost at most ``max_bytes``
(estimated); past either bound the least recently used sessions are evicted first.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mockserver.scenarios import LIMITS, PRESETS, Scenario, ScenarioError, parse_scenario

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


#: Forget a session nobody enqueued to or took from for this long (seconds).
DEFAULT_SESSION_TTL = 600.0
#: Most sessions with a queue kept at once.
DEFAULT_MAX_SESSIONS = 10_000
#: Most memory (estimated) all queues together may hold.
DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024
#: Estimated memory of one queued scenario besides its strings (a pydantic model with ~30 fields, measured
#: ~1.1 kB with tracemalloc), and of one session's bookkeeping.
SCENARIO_OVERHEAD = 1_536
SESSION_OVERHEAD = 1_024


def scenario_cost(scenario: Scenario) -> int:
    """Estimated bytes a queued scenario holds: the model plus its strings (a 32k-character text is the bulk)."""
    strings = (scenario.name, scenario.message, scenario.text, scenario.content_type)
    return SCENARIO_OVERHEAD + sum(sys.getsizeof(s) for s in strings if s is not None)


@dataclass
class _Session:
    queue: deque[Queued] = field(default_factory=deque)
    cost: int = SESSION_OVERHEAD
    last_used: float = 0.0


@dataclass(frozen=True)
class Enqueued:
    """What the admin API answers an enqueue with: counts, never the queue itself (which could be megabytes)."""

    session: str
    added: int
    queued: int
    answers: int
    evicted_sessions: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "added": self.added,
            "queued": self.queued,
            "answers": self.answers,
            "evicted_sessions": self.evicted_sessions,
        }


class SessionStore:
    """Scenario queues keyed by session id. Used from the server's event loop only.

    ``clock`` (default :func:`time.monotonic`) is injectable so expiry is tested without waiting. Sessions are
    kept in least-recently-used order, so expiring and evicting only ever look at the front.
    """

    def __init__(
        self,
        ttl: float = DEFAULT_SESSION_TTL,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or max_sessions < 1 or max_bytes < 1:
            raise ValueError(
                f"need ttl > 0, max_sessions >= 1, max_bytes >= 1; got {ttl}, {max_sessions}, {max_bytes}"
            )
        self.ttl = ttl
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self._clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._bytes = 0
        #: sessions dropped so far because they expired or were evicted (for the health endpoint and tests)
        self.expired = 0
        self.evicted = 0

    def enqueue(self, session: str, scenarios: list[Scenario]) -> Enqueued:
        """Append to a session's queue; a ScenarioError (a 400) names the bound a request would pass."""
        id_bound = LIMITS["session_id"]
        if len(session) > id_bound.high:
            raise ScenarioError(f"session id of {len(session)} characters; {id_bound.describe()}")
        self._expire()
        current = self._sessions.get(session)
        held = len(current.queue) if current is not None else 0
        length = LIMITS["queue_length"]
        if held + len(scenarios) > length.high:
            raise ScenarioError(
                f"session {session!r} would hold {held + len(scenarios)} queued scenarios; {length.describe()}"
            )
        cost = sum(scenario_cost(s) for s in scenarios) + (SESSION_OVERHEAD if current is None else 0)
        if (current.cost if current is not None else 0) + cost > self.max_bytes:
            raise ScenarioError(
                f"session {session!r} would hold about {cost} bytes of queued scenarios; the server keeps at most "
                f"{self.max_bytes} bytes of queues"
            )
        evicted = self._make_room(cost, keep=session)
        entry = self._sessions.pop(session, None) or _Session()
        if current is None:
            entry.cost = 0
        entry.queue.extend(Queued(s, s.times) for s in scenarios)
        entry.cost += cost
        entry.last_used = self._clock()
        self._sessions[session] = entry
        self._bytes += cost
        while len(self._sessions) > self.max_sessions:
            self._drop_oldest()
            self.evicted += 1
            evicted += 1
        return Enqueued(
            session, len(scenarios), len(entry.queue), sum(q.remaining for q in entry.queue), evicted
        )

    def pending(self, session: str) -> list[Queued]:
        self._expire()
        current = self._sessions.get(session)
        return list(current.queue) if current is not None else []

    def pop(self, session: str) -> Scenario | None:
        """Take one use of the head of the session's queue, or None when it is empty."""
        if self._sessions:
            self._expire()
        current = self._sessions.get(session)
        if current is None:
            return None
        head = current.queue[0]
        head.remaining -= 1
        if head.remaining <= 0:
            current.queue.popleft()
            spent = scenario_cost(head.scenario)
            current.cost -= spent
            self._bytes -= spent
        if not current.queue:
            self.clear(session)
        else:
            current.last_used = self._clock()
            self._sessions.move_to_end(session)
        return head.scenario

    def clear(self, session: str) -> None:
        current = self._sessions.pop(session, None)
        if current is not None:
            self._bytes -= current.cost

    @property
    def queued_bytes(self) -> int:
        """Estimated bytes held by every queue together (never more than ``max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        deadline = self._clock() - self.ttl
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.last_used > deadline:
                return
            self._drop_oldest()
            self.expired += 1

    def _make_room(self, cost: int, keep: str) -> int:
        """Evict least recently used sessions (never ``keep``) until ``cost`` more bytes fit."""
        evicted = 0
        while self._bytes + cost > self.max_bytes:
            victim = next((sid for sid in self._sessions if sid != keep), None)
            if victim is None:
                break
            self.clear(victim)
            self.evicted += 1
            evicted += 1
        return evicted

    def _drop_oldest(self) -> None:
        _sid, oldest = self._sessions.popitem(last=False)
        self._bytes -= oldest.cost


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
