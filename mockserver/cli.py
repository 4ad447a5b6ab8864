"""``python -m mockserver``: run the mock in the foreground; the first stdout line is the URL it bound.

Harnesses start it with ``--port 0`` and read that line to learn the ephemeral port, so the line is printed
and flushed only once the socket is listening. SIGINT and SIGTERM stop it cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from aiohttp import web

from mockserver.app import create_app
from mockserver.testing import bound_port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mockserver", description="LLM provider mock server")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the deterministic content (default 0)")
    parser.add_argument("--log-level", default="WARNING", help="Python logging level (default WARNING)")
    return parser.parse_args(argv)


async def serve(host: str, port: int, seed: int) -> None:
    runner = web.AppRunner(create_app(seed), shutdown_timeout=1.0, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    shown = f"[{host}]" if ":" in host else host
    print(f"http://{shown}:{bound_port(runner)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    asyncio.run(serve(args.host, args.port, args.seed))
    return 0
