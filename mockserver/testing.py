"""An in-process mock server for tests: the aiohttp app on its own event loop in a background thread.

A thread (rather than a fixture on the test's loop) lets the same server serve sync clients
(``openai.OpenAI``, ``httpx.Client``) and async ones alike, and keeps a hanging scenario from blocking the
test that provoked it.

    with MockServer() as srv:
        sid = srv.new_session()
        srv.queue(sid, {"preset": "rate_limit", "retry_after": 0.01, "times": 2}, "ok")
        client = OpenAI(base_url=srv.openai_base_url, api_key="sk-test", default_headers={"x-mock-session":
        sid}) ...
        entries = srv.journal(sid)
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from aiohttp import web

from mockserver.app import create_app
from mockserver.client import MockClient, ScenarioSpec
from mockserver.serving import ConnectionLimits, GuardedSite


def bound_port(runner: web.BaseRunner) -> int:
    """The port the runner's first site actually bound (what port 0 turned into)."""
    port: int = runner.addresses[0][1]
    return port


class MockServer:
    """Runs :func:`mockserver.app.create_app` on ``host``:``port`` (0 = ephemeral) until :meth:`stop`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        shutdown_timeout: float = 0.1,
        *,
        admin_token: str | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.shutdown_timeout = shutdown_timeout
        self.admin_token = admin_token
        self.limits = limits or ConnectionLimits()
        self.site: GuardedSite | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._admin: MockClient | None = None

    # --- lifecycle
    # -----------------------------------------------------------------------------------------------
    def start(self) -> MockServer:
        self._thread = threading.Thread(target=self._run, name="mockserver", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("mock server did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"mock server failed to start: {self._error}") from self._error
        self._admin = MockClient(self.url, admin_token=self.admin_token)
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()
            return
        loop.run_forever()
        loop.run_until_complete(self._shutdown())
        loop.close()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(
            create_app(self.seed, admin_token=self.admin_token, idle_timeout=self.limits.idle_timeout),
            access_log=None,
            shutdown_timeout=self.shutdown_timeout,
            handle_signals=False,
        )
        await self._runner.setup()
        site = GuardedSite(self._runner, self.host, self.port, max_connections=self.limits.max_connections)
        await site.start()
        self.site = site
        self.port = bound_port(self._runner)
        self._ready.set()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses
    # -----------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """What to pass as ``base_url`` to ``openai.OpenAI``."""
        return f"{self.url}/openai/v1"

    # --- admin helpers (sync, over HTTP, through the same client the harness uses)
    # -------------------------------------------------------------------------
    @property
    def client(self) -> MockClient:
        if self._admin is None:
            raise RuntimeError("mock server is not running")
        return self._admin

    new_session = staticmethod(MockClient.new_session)

    def queue(self, session: str, *scenarios: ScenarioSpec) -> dict[str, Any]:
        """Queue scenarios for a session (returns the server's counts); raises MockAdminError (a ValueError) with
        the server's message."""
        return self.client.queue(session, *scenarios)

    def journal(self, session: str | None = None, wait: float = 2.0) -> list[dict[str, Any]]:
        """Journal entries, oldest first, once in-flight requests completed (waiting up to ``wait`` s)."""
        return self.client.journal(session, wait=wait)

    def clear(self, session: str | None = None) -> None:
        self.client.clear(session)
