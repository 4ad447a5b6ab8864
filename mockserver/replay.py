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
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from mockserver.hostile import HANDLER_ARGS, read_body, screen_requests
from mockserver.serving import DEFAULT_IDLE_TIMEOUT

if TYPE_CHECKING:
    from harness.cassettes import Interaction


def cassette_files(paths: Iterable[Path | str]) -> list[Path]:
    """The cassettes named, folders searched recursively. A file in a folder that is a symlink resolving outside
    that folder is refused (CassetteError naming it): replaying a folder must not serve files from elsewhere."""
    from harness.cassettes import CASSETTE_SUFFIX, CassetteError

    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            root = path.resolve()
            for found in sorted(path.rglob(f"*{CASSETTE_SUFFIX}")):
                if not found.resolve().is_relative_to(root):
                    raise CassetteError(
                        found, f"is a symlink to {found.resolve()}, outside the folder {path}"
                    )
                out.append(found)
        elif path.is_file():
            out.append(path)
        else:
            raise CassetteError(path, "no such file or folder")
    return out


def _body_key(body: bytes) -> str | None:
    """A canonical form of a JSON body (sorted keys), so equal bodies meet in one index bucket; None if not JSON."""
    if not body:
        return None
    try:
        return json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


class _Candidates:
    """The interactions one (method, path) matches, with the round-robin state :meth:`ReplayState.find` needs.

    ``queue`` and ``by_body`` hold the candidates at the current play count (``level``), in recorded order; an
    entry played meanwhile through another path's candidates is stale and skipped. When the level runs out, the
    next one is rebuilt from the global play counts, so the choice is the same as scanning every candidate, at
    O(1) amortized per request.
    """

    def __init__(self, members: list[int]) -> None:
        self.members = members
        self.level = -1
        self.queue: deque[int] = deque()
        self.by_body: dict[str | None, deque[int]] = {}

    def refill(self, plays: list[int], keys: list[str | None]) -> None:
        self.level = min(plays[n] for n in self.members)
        self.queue = deque(n for n in self.members if plays[n] == self.level)
        self.by_body = {}
        for n in self.queue:
            self.by_body.setdefault(keys[n], deque()).append(n)

    def _first(self, items: deque[int] | None, plays: list[int]) -> int | None:
        while items:
            if plays[items[0]] == self.level:
                return items[0]
            items.popleft()
        return None

    def choose(self, wanted: str | None, plays: list[int], keys: list[str | None]) -> int:
        if self._first(self.queue, plays) is None:
            self.refill(plays, keys)
        if wanted is not None:
            same = self._first(self.by_body.get(wanted), plays)
            if same is not None:
                return same
        first = self._first(self.queue, plays)
        assert first is not None  # refill leaves at least one candidate at the level
        return first


class ReplayState:
    def __init__(self, paths: Iterable[Path | str], timing: bool = False) -> None:
        from harness.cassettes import load

        self.files = cassette_files(paths)
        self.interactions: list[tuple[str, Interaction]] = []
        for path in self.files:
            self.interactions += [(path.name, i) for i in load(path).interactions]
        self.timing = timing
        self.plays = [0] * len(self.interactions)
        # The index: interactions by method, then by recorded path (few distinct paths, many interactions), and
        # the candidates of each (method, request path) seen, built on first use. A linear scan took ~150 ms per
        # request at 200k interactions.
        self._paths: dict[str, dict[str, list[int]]] = {}
        for n, (_, interaction) in enumerate(self.interactions):
            by_path = self._paths.setdefault(interaction.request.method, {})
            by_path.setdefault(interaction.request.uri, []).append(n)
        self._keys: list[str | None] | None = None
        self._candidates: dict[tuple[str, str], _Candidates | None] = {}

    def _candidates_for(self, method: str, path: str) -> _Candidates | None:
        from harness.golden import paths_match

        key = (method, path)
        if key in self._candidates:
            return self._candidates[key]
        matched = [
            n
            for uri, members in self._paths.get(method, {}).items()
            if paths_match(uri, path)
            for n in members
        ]
        found = _Candidates(sorted(matched)) if matched else None
        if (
            len(self._candidates) >= MAX_CACHED_PATHS
        ):  # a client inventing paths must not grow it without bound
            self._candidates.clear()
        self._candidates[key] = found
        return found

    def find(self, method: str, path: str, body: bytes) -> Interaction | None:
        """The first least-played interaction recorded for this method and path, one with an equal JSON body
        (compared in canonical form) preferred."""
        candidates = self._candidates_for(method, path)
        if candidates is None:
            return None
        if self._keys is None:
            self._keys = [_body_key(i.request.body) for _, i in self.interactions]
        chosen = candidates.choose(_body_key(body), self.plays, self._keys)
        self.plays[chosen] += 1
        return self.interactions[chosen][1]


REPLAY_KEY = web.AppKey("replay", ReplayState)
#: Distinct (method, path) pairs whose candidates are kept; past it the cache starts over.
MAX_CACHED_PATHS = 4096


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
    body = await read_body(request)  # decoded and screened by the middleware already
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
    app = web.Application(
        middlewares=[screen_requests],
        handler_args={**HANDLER_ARGS, "keepalive_timeout": DEFAULT_IDLE_TIMEOUT},
    )
    app[REPLAY_KEY] = ReplayState(paths, timing)
    app.router.add_get("/_mock/health", _health)
    app.router.add_route("*", "/{tail:.*}", _replay)
    return app
