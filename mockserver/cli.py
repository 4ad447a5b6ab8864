"""``python -m mockserver``: run the mock in the foreground; the first stdout line is the URL it bound.

Harnesses start it with ``--port 0`` and read that line to learn the ephemeral port, so the line is printed
and flushed only once the socket is listening. SIGINT and SIGTERM stop it cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from aiohttp import web

from mockserver import secrets_policy
from mockserver.app import create_app
from mockserver.journal import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES
from mockserver.serving import (
    ADMIN_TOKEN_ENV,
    ADMIN_TOKEN_HEADER,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    ConnectionLimits,
    GuardedSite,
    admin_token_problem,
    install_log_bounds,
    is_loopback,
)
from mockserver.sessions import DEFAULT_MAX_QUEUED_BYTES, DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_TTL
from mockserver.testing import bound_port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mockserver", description="LLM provider mock server")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the deterministic content (default 0)")
    parser.add_argument("--log-level", default="WARNING", help="Python logging level (default WARNING)")
    parser.add_argument(
        "--journal-size",
        type=int,
        default=DEFAULT_MAX_ENTRIES,
        metavar="N",
        help=f"journal entries kept, oldest dropped first (default {DEFAULT_MAX_ENTRIES}); 0 disables journal "
        "recording, for benchmarks only: certification checks read the journal",
    )
    parser.add_argument(
        "--journal-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        metavar="BYTES",
        help=f"bytes all journal entries may hold together, oldest dropped first (default {DEFAULT_MAX_BYTES}); "
        "each entry keeps at most 64 KiB of request body, wire bytes and text, the rest measured (size, sha256)",
    )
    parser.add_argument(
        "--session-ttl",
        type=float,
        default=DEFAULT_SESSION_TTL,
        metavar="SECONDS",
        help=f"forget a session's queued scenarios after this long unused (default {DEFAULT_SESSION_TTL:g})",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        metavar="N",
        help=f"sessions with queued scenarios kept at once, least recently used evicted first (default "
        f"{DEFAULT_MAX_SESSIONS})",
    )
    parser.add_argument(
        "--queue-bytes",
        type=int,
        default=DEFAULT_MAX_QUEUED_BYTES,
        metavar="BYTES",
        help=f"bytes (estimated) all queued scenarios may hold together, least recently used sessions evicted "
        f"first (default {DEFAULT_MAX_QUEUED_BYTES})",
    )
    parser.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="PATH",
        help="replay mode: serve these golden cassettes (*.cassette.json files or folders; repeatable) instead of "
        "the scenario engine",
    )
    parser.add_argument(
        "--replay-timing", action="store_true", help="in replay mode, send stream chunks at the recorded pace"
    )
    parser.add_argument(
        "--admin-token",
        default=None,
        metavar="TOKEN",
        help=f"require this token (header {ADMIN_TOKEN_HEADER}) on every /_mock/ call; required for any "
        f"non-loopback --host (default: ${ADMIN_TOKEN_ENV}, else none)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help=f"close a connection that sends no complete request head for this long, at connect or between "
        f"requests (default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"connections served at once; more are answered 503 and closed (default {DEFAULT_MAX_CONNECTIONS})",
    )
    return parser.parse_args(argv)


async def serve(
    host: str,
    port: int,
    seed: int,
    replay: list[str] | None = None,
    replay_timing: bool = False,
    journal_size: int = DEFAULT_MAX_ENTRIES,
    journal_bytes: int = DEFAULT_MAX_BYTES,
    session_ttl: float = DEFAULT_SESSION_TTL,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    queue_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
    *,
    admin_token: str | None = None,
    limits: ConnectionLimits | None = None,
) -> None:
    # Signal handlers first: a SIGINT or SIGTERM that lands while the server starts, or right after the URL line,
    # must stop it cleanly rather than raise KeyboardInterrupt through the event loop.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    limits = limits or ConnectionLimits()
    install_log_bounds()
    if replay:
        from mockserver.replay import create_replay_app

        app = create_replay_app(replay, timing=replay_timing)
    else:
        app = create_app(
            seed,
            journal_size,
            journal_bytes,
            session_ttl,
            max_sessions,
            queue_bytes,
            admin_token=admin_token,
            idle_timeout=limits.idle_timeout,
        )
    runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False)
    try:
        await runner.setup()
        site = GuardedSite(runner, host, port, max_connections=limits.max_connections)
        await site.start()
        if not stop.is_set():
            shown = f"[{host}]" if ":" in host else host
            print(f"http://{shown}:{bound_port(runner)}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    # every record that reaches stderr is redacted by the shared policy (aiohttp's own loggers are filtered too)
    secrets_policy.install_log_redaction(handlers=logging.getLogger().handlers)
    if args.replay:
        from harness.cassettes import CassetteError
        from mockserver.replay import cassette_files

        try:
            files = cassette_files(args.replay)
        except CassetteError as exc:
            print(f"python -m mockserver: --replay {exc}", file=sys.stderr)
            return 2
        if not files:
            print(
                f"python -m mockserver: --replay found no *.cassette.json in {', '.join(args.replay)}",
                file=sys.stderr,
            )
            return 2
        try:
            from mockserver.replay import ReplayState

            ReplayState(files)  # fail before binding, naming the file and the problem
        except CassetteError as exc:
            print(f"python -m mockserver: cannot replay: {exc}", file=sys.stderr)
            return 2
    if args.journal_size < 0:
        print(f"python -m mockserver: --journal-size must be >= 0, got {args.journal_size}", file=sys.stderr)
        return 2
    admin_token = args.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None
    problem = admin_token_problem(args.host, admin_token)
    if problem is not None:
        print(f"python -m mockserver: refusing to start: {problem}", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(
            f"python -m mockserver: warning: binding {args.host!r}, reachable beyond this machine; the admin API "
            f"requires the {ADMIN_TOKEN_HEADER} header",
            file=sys.stderr,
        )
    for option, value in (
        ("--idle-timeout", args.idle_timeout),
        ("--max-connections", args.max_connections),
        ("--journal-bytes", args.journal_bytes),
        ("--session-ttl", args.session_ttl),
        ("--max-sessions", args.max_sessions),
        ("--queue-bytes", args.queue_bytes),
    ):
        if not value > 0:
            print(f"python -m mockserver: {option} must be > 0, got {value}", file=sys.stderr)
            return 2
    limits = ConnectionLimits(idle_timeout=args.idle_timeout, max_connections=args.max_connections)
    try:
        asyncio.run(
            serve(
                args.host,
                args.port,
                args.seed,
                args.replay,
                args.replay_timing,
                args.journal_size,
                args.journal_bytes,
                args.session_ttl,
                args.max_sessions,
                args.queue_bytes,
                admin_token=admin_token,
                limits=limits,
            )
        )
    except KeyboardInterrupt:  # SIGINT before serve() installed its handler: still a clean stop
        return 0
    return 0
