"""The server's mutable state, shared by the engine and the admin API through one aiohttp app key."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from mockserver.journal import Journal
from mockserver.sessions import SessionStore


@dataclass
class MockState:
    """Seed for deterministic content, the journal, the scenario queues, and the mounted provider prefixes."""

    seed: int = 0
    journal: Journal = field(default_factory=Journal)
    sessions: SessionStore = field(default_factory=SessionStore)
    providers: dict[str, str] = field(default_factory=dict)


STATE_KEY: web.AppKey[MockState] = web.AppKey("mockserver_state", MockState)
