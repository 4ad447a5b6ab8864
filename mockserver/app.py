"""Assembles the mock server: the admin API plus every registered provider personality.

Adding a provider is one module under :mod:`mockserver.personalities` (or an installed package advertising one
under the ``provcert.personalities`` entry point); the engine gives it every scenario for free.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from mockserver import admin, secrets_policy
from mockserver.engine import Engine
from mockserver.hostile import HANDLER_ARGS, screen_requests
from mockserver.journal import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, Journal
from mockserver.personalities import discover
from mockserver.serving import DEFAULT_IDLE_TIMEOUT, admin_auth
from mockserver.sessions import (
    DEFAULT_MAX_QUEUED_BYTES,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_TTL,
    SessionStore,
)
from mockserver.state import STATE_KEY, MockState


@web.middleware
async def not_found_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes answer JSON naming the path and the mounted prefixes.

    They are journaled too: an adapter calling a wrong path is a finding, not noise.
    """
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        state = request.app[STATE_KEY]
        entry = state.journal.open(
            session=request.headers.get("x-mock-session", "").strip() or "default",
            provider=None,
            method=request.method,
            path=request.path,
            query=request.query.items(),
            headers=request.headers.items(),
        )
        what = "no route" if isinstance(exc, web.HTTPNotFound) else f"method {request.method} not allowed"
        prefixes = ", ".join(f"{name}: {prefix}" for name, prefix in sorted(state.providers.items()))
        payload = {
            "error": {
                "message": f"mock server: {what} for {request.method} {request.path}; "
                f"provider prefixes: {prefixes}; admin API under /_mock/",
                "type": "mock_not_found",
                "param": None,
                "code": None,
            },
            "path": request.path,
            "providers": state.providers,
        }
        response = web.json_response(payload, status=exc.status)
        entry.headers_sent(exc.status, {"content-type": "application/json"})
        entry.record_wire(response.body if isinstance(response.body, bytes) else b"")
        entry.finish()
        return response


def create_app(
    seed: int = 0,
    journal_size: int = DEFAULT_MAX_ENTRIES,
    journal_bytes: int = DEFAULT_MAX_BYTES,
    session_ttl: float = DEFAULT_SESSION_TTL,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    queue_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
    *,
    admin_token: str | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> web.Application:
    """A fresh server with its own journal and queues; ``seed`` varies the deterministic content.

    ``journal_size`` and ``journal_bytes`` bound the journal (oldest entries dropped first); a journal size of
    0 disables recording, which only benchmarks want (``bench/bench_mock_throughput.py`` measures the journal's
    cost with it). ``session_ttl``, ``max_sessions`` and ``queue_bytes`` bound the scenario queues (idle or least
    recently used sessions are forgotten). Together with the scenario bounds they keep the server's memory under
    the ceiling the README documents.

    ``admin_token`` (when given) is required on every ``/_mock/`` call (:func:`mockserver.serving.admin_auth`);
    ``idle_timeout`` closes connections that send no complete request head for that long, wherever the app runs.
    """
    # what aiohttp logs about a request (access lines with ``?key=``, a malformed request's raw header line) goes
    # through the shared redaction policy first
    secrets_policy.install_log_redaction()
    middlewares: list[Middleware] = [screen_requests, not_found_as_json]
    if admin_token:
        middlewares.insert(0, admin_auth(admin_token))
    handler_args = {**HANDLER_ARGS, "keepalive_timeout": idle_timeout}
    app = web.Application(middlewares=middlewares, handler_args=handler_args)
    state = MockState(
        seed=seed,
        journal=Journal(journal_size, journal_bytes),
        sessions=SessionStore(ttl=session_ttl, max_sessions=max_sessions, max_bytes=queue_bytes),
    )
    app[STATE_KEY] = state
    admin.register(app)
    for name, cls in sorted(discover().items()):
        personality = cls()
        state.providers[name] = personality.prefix
        handler = Engine(personality).handler()
        for method, path in personality.routes():
            app.router.add_route(method, f"{personality.prefix}{path}", handler)
    return app
