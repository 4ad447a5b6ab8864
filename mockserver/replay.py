"""Replay mode: serve golden cassettes over HTTP, so any client in any language can replay recorded traffic.

``python -m mockserver --replay cassettes/openai/`` (files or folders of ``*.cassette.json``). A request is answered
by the first not-yet-played interaction with the same method whose recorded path matches (equal, or one a suffix of
the other, so ``/openai/v1/chat/completions`` on the mock matches a recording of ``api.openai.com/v1/...``); when
several match, one whose recorded JSON body equals the request's wins. Once every match was played they are played
again, in order. Streams are written chunk by chunk as recorded (at the recorded pace with ``--replay-timing``), so
a client sees the recorded chunk boundaries. ``GET /_mock/health`` says what is loaded; a request nothing matches
gets a 404 naming the cassettes and what they hold.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from harness.cassettes import Interaction


def cassette_files(paths: Iterable[Path | str]) -> list[Path]:
    from harness.cassettes import CASSETTE_SUFFIX, CassetteError

    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out += sorted(path.rglob(f"*{CASSETTE_SUFFIX}"))
        elif path.is_file():
            out.append(path)
        else:
            raise CassetteError(path, "no such file or folder")
    return out


class ReplayState:
    def __init__(self, paths: Iterable[Path | str], timing: bool = False) -> None:
        from harness.cassettes import load

        self.files = cassette_files(paths)
        self.interactions: list[tuple[str, Interaction]] = []
        for path in self.files:
            self.interactions += [(path.name, i) for i in load(path).interactions]
        self.timing = timing
        self.plays = [0] * len(self.interactions)

    def find(self, method: str, path: str, body: bytes) -> Interaction | None:
        from harness.golden import paths_match

        candidates = [
            n
            for n, (_, i) in enumerate(self.interactions)
            if i.request.method == method and paths_match(i.request.uri, path)
        ]
        if not candidates:
            return None
        try:
            wanted: Any = json.loads(body) if body else None
        except ValueError:
            wanted = None

        def same_body(n: int) -> bool:
            try:
                return wanted is not None and self.interactions[n][1].request.json() == wanted
            except ValueError:
                return False

        least = min(self.plays[n] for n in candidates)
        fresh = [n for n in candidates if self.plays[n] == least]
        chosen = next((n for n in fresh if same_body(n)), fresh[0])
        self.plays[chosen] += 1
        return self.interactions[chosen][1]


REPLAY_KEY = web.AppKey("replay", ReplayState)


async def _health(request: web.Request) -> web.Response:
    state = request.app[REPLAY_KEY]
    return web.json_response(
        {
            "status": "ok",
            "mode": "replay",
            "cassettes": [str(p) for p in state.files],
            "interactions": len(state.interactions),
        }
    )


async def _replay(request: web.Request) -> web.StreamResponse:
    from harness.cassettes import TRANSFER_HEADERS

    state = request.app[REPLAY_KEY]
    body = await request.read()
    found = state.find(request.method, request.path, body)
    if found is None:
        held = sorted({f"{i.request.method} {i.request.uri}" for _, i in state.interactions})
        message = f"replay: no recorded interaction for {request.method} {request.path}; recorded: {', '.join(held)}"
        return web.json_response({"error": {"message": message, "type": "mock_replay_miss"}}, status=404)
    recorded = found.response
    headers = [(k, v) for k, values in recorded.headers.items() if k not in TRANSFER_HEADERS for v in values]
    if recorded.chunks is None:
        response = web.Response(status=recorded.status, reason=recorded.reason or None, body=recorded.body)
        for name, value in headers:
            response.headers.add(name, value)
        return response
    stream = web.StreamResponse(status=recorded.status, reason=recorded.reason or None)
    for name, value in headers:
        stream.headers.add(name, value)
    await stream.prepare(request)
    elapsed = 0.0
    for n, chunk in enumerate(recorded.chunks):
        if state.timing and recorded.timings is not None:
            await asyncio.sleep(max(recorded.timings[n] - elapsed, 0))
            elapsed = recorded.timings[n]
        await stream.write(chunk)
    await stream.write_eof()
    return stream


def create_replay_app(paths: Iterable[Path | str], *, timing: bool = False) -> web.Application:
    """An app that serves the given cassettes; CassetteError (naming the file) if one cannot be read."""
    app = web.Application()
    app[REPLAY_KEY] = ReplayState(paths, timing)
    app.router.add_get("/_mock/health", _health)
    app.router.add_route("*", "/{tail:.*}", _replay)
    return app
