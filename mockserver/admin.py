"""The admin API under ``/_mock/``: health, presets, per-session scenario queues, and the journal.

Tests drive the mock through this API (queue ``[rate_limit, rate_limit, ok]`` for a session, then read what
was sent), so every error names its problem: a test author should never have to read server logs.

* ``GET /_mock/health`` → ``{"status": "ok", "providers": {name: prefix}}``
* ``GET /_mock/scenarios`` → ``{"presets": {name: spec}}``
* ``POST /_mock/sessions/{sid}/scenarios`` (a list, or ``{"scenarios": [...]}``; each a preset name or a spec
  object, ``times`` supported) → ``{"session": sid, "added": n, "queued": n, "answers": n, "evicted_sessions": n}``:
  counts only, never the queue (echoing it let one request make the server build a 300 MB reply)
* ``GET /_mock/sessions/{sid}`` → ``{"session": sid, "queue": [{"scenario": spec, "remaining": n}]}``
* ``DELETE /_mock/sessions/{sid}`` → clears the session's queue and journal entries
* ``GET /_mock/journal?session=sid&since=seq&wait=seconds`` → ``{"entries": [...]}``; first waits (up to
  ``wait`` s, default 1) until the selected entries are complete, so a test can read the journal right after
  its client gave up; ``wait=0`` reads at once
* ``DELETE /_mock/journal[?session=sid]`` → clears the journal (or one session's entries)
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from aiohttp import web

from mockserver.hostile import BodyError, check_json_body, read_body
from mockserver.scenarios import PRESETS, ScenarioError, parse_scenario_list
from mockserver.state import STATE_KEY, MockState

PREFIX = "/_mock"
MAX_WAIT = 30.0
#: Default ``wait``: long enough for the server to notice a client that just gave up (it polls every 20 ms).
DEFAULT_WAIT = 1.0


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "mock_admin_error", "param": None, "code": None}},
        status=status,
    )


def _state(request: web.Request) -> MockState:
    return request.app[STATE_KEY]


async def health(request: web.Request) -> web.Response:
    state = _state(request)
    usage = {
        "journal_entries": len(state.journal),
        "journal_bytes": state.journal.bytes,
        "sessions": len(state.sessions),
        "queued_bytes": state.sessions.queued_bytes,
    }
    return web.json_response({"status": "ok", "providers": state.providers, "usage": usage})


async def scenarios(request: web.Request) -> web.Response:
    return web.json_response({"presets": {name: p.model_dump(mode="json") for name, p in PRESETS.items()}})


def _queue_view(state: MockState, sid: str) -> dict[str, Any]:
    return {"session": sid, "queue": [q.as_dict() for q in state.sessions.pending(sid)]}


async def enqueue(request: web.Request) -> web.Response:
    sid = request.match_info["sid"]
    try:
        body = await read_body(request)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"request body over {request.client_max_size} bytes")
    except BodyError as exc:
        refused = _error(400, str(exc))
        refused.force_close()  # the rest of the body is unread: the connection cannot carry another request
        return refused
    try:
        check_json_body(body)
    except BodyError as exc:
        return _error(400, str(exc))
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return _error(400, f"request body is not valid JSON: {str(exc)[:200]}")
    state = _state(request)
    try:
        done = state.sessions.enqueue(sid, parse_scenario_list(raw))
    except ScenarioError as exc:
        return _error(400, str(exc))
    return web.json_response(done.as_dict())


async def show_session(request: web.Request) -> web.Response:
    return web.json_response(_queue_view(_state(request), request.match_info["sid"]))


async def clear_session(request: web.Request) -> web.Response:
    sid = request.match_info["sid"]
    state = _state(request)
    state.sessions.clear(sid)
    dropped = state.journal.clear(sid)
    return web.json_response({"session": sid, "cleared": True, "journal_entries_dropped": dropped})


def _number(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # inf, nan and 1e400 would reach int() and the clock as a traceback
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"message": f"query parameter {name!r} must be a finite number, got {raw[:40]!r}",
                                       "type": "mock_admin_error", "param": name, "code": None}}),
            content_type="application/json",
        )  # fmt: skip
    return value


async def journal(request: web.Request) -> web.Response:
    state = _state(request)
    session = request.query.get("session")
    since = int(_number(request, "since", 0))
    wait = min(max(_number(request, "wait", DEFAULT_WAIT), 0.0), MAX_WAIT)
    deadline = time.monotonic() + wait
    entries = state.journal.entries(session, since)
    while any(not e.complete for e in entries) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        entries = state.journal.entries(session, since)
    return web.json_response({"entries": [e.to_dict() for e in entries]})


async def clear_journal(request: web.Request) -> web.Response:
    dropped = _state(request).journal.clear(request.query.get("session"))
    return web.json_response({"cleared": True, "entries_dropped": dropped})


def register(app: web.Application) -> None:
    """Mount the admin routes on ``app`` (which must hold a :class:`MockState` under ``STATE_KEY``)."""
    app.router.add_get(f"{PREFIX}/health", health)
    app.router.add_get(f"{PREFIX}/scenarios", scenarios)
    app.router.add_post(f"{PREFIX}/sessions/{{sid}}/scenarios", enqueue)
    app.router.add_get(f"{PREFIX}/sessions/{{sid}}", show_session)
    app.router.add_delete(f"{PREFIX}/sessions/{{sid}}", clear_session)
    app.router.add_get(f"{PREFIX}/journal", journal)
    app.router.add_delete(f"{PREFIX}/journal", clear_journal)
