"""Mock server throughput: provcert's mock against bare aiohttp sending the same bytes, same run.

    python bench/bench_mock_throughput.py [--requests 2000] [--concurrency 50] [--rounds 5]

Three servers run in their own processes on 127.0.0.1 ephemeral ports: ``baseline``, a bare aiohttp app that
answers the OpenAI chat route with fixed bytes; ``mock``, ``python -m mockserver --port 0``; and
``mock_no_journal``, the same with ``--journal-size 0`` (journal recording disabled). The baseline's bytes are
captured from the mock's own journal before the measurement: the same JSON completion body and headers, and the
same stream (10 SSE events with ``stream_options.include_usage``) written frame by frame, as many writes as the
mock makes. The bench process drives each server with an aiohttp client at the given concurrency (keep-alive
connections), a bounded number of JSON completions and of streams per server, split into rounds that visit the
servers in turn (rotating the order), so machine noise hits them alike. Every answer is checked (status 200 and
the expected body length); a batch also stops at ``--batch-timeout`` seconds.

Reported per server and kind: requests/s (median over rounds), p50/p99 latency (to the last byte, all rounds
pooled) and the server's CPU time per request (from /proc, Linux only; null elsewhere). Then the ratios of
medians, ``mock / baseline`` (1.0 = as fast as bare aiohttp) and the journal overhead
(``mock_no_journal / mock - 1`` in requests/s and ``mock / mock_no_journal - 1`` in server CPU per request).

On a small machine the client shares the cores with the server, so requests/s is bounded by the client as much
as by the server; server CPU per request is the figure least affected by that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROUTE = "/openai/v1/chat/completions"
REQUEST_HEADERS = {"Authorization": "Bearer sk-bench-0000", "Content-Type": "application/json"}
_MESSAGES = [{"role": "user", "content": "Tell me something about the sea."}]
JSON_BODY = json.dumps({"model": "gpt-4o-mini", "messages": _MESSAGES}).encode()
STREAM_BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": _MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
).encode()
KINDS = ("json", "stream")
SERVERS = ("baseline", "mock", "mock_no_journal")
#: Headers aiohttp computes itself; the baseline lets it, as the mock does.
_COMPUTED = {"content-length", "transfer-encoding", "date", "server", "connection"}


# --- the baseline server (a child process: ``bench_mock_throughput.py --serve-baseline FIXTURE``)
# ----------------------------------------------------------------------------------------------------------------
def baseline_app(fixture: dict[str, Any]) -> web.Application:
    """Bare aiohttp: read the request, answer the fixture's JSON body in one write or its stream frame by frame."""
    json_headers: dict[str, str] = fixture["json_headers"]
    json_body = fixture["json_body"].encode()
    stream_headers: dict[str, str] = fixture["stream_headers"]
    frames = [f.encode() for f in fixture["stream_frames"]]

    async def chat(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if b'"stream": true' not in raw:
            return web.Response(body=json_body, headers=json_headers)
        response = web.StreamResponse(headers=stream_headers)
        await response.prepare(request)
        for frame in frames:
            await response.write(frame)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post(ROUTE, chat)
    return app


async def serve_baseline(fixture: dict[str, Any]) -> None:
    """Serve like ``python -m mockserver`` does (same runner options), print the URL, run until SIGTERM."""
    runner = web.AppRunner(baseline_app(fixture), shutdown_timeout=1.0, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


# --- server processes
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    proc: subprocess.Popen[str]
    url: str

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux /proc; None elsewhere)."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def start_server(name: str, argv: Sequence[str], timeout: float = 30.0) -> Server:
    """Start a server that prints its URL as the first stdout line; wait (bounded) for that line."""
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("http://127.0.0.1:"):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{name} server did not print its URL within {timeout} s (got {line!r})")
    return Server(name, proc, line)


# --- load
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Stats:
    """One server and kind, accumulated over the rounds."""

    rps: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    completed: int = 0
    failed: int = 0
    cpu_seconds: float | None = 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        cpu = self.cpu_seconds
        return {
            "completed": self.completed,
            "failed": self.failed,
            "rps_median": statistics.median(self.rps) if self.rps else 0.0,
            "p50_ms": _percentile(lat, 50) * 1000,
            "p99_ms": _percentile(lat, 99) * 1000,
            "server_cpu_us_per_request": (
                cpu / self.completed * 1e6 if cpu is not None and self.completed else None
            ),
        }


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def batch(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    expected_len: int,
    n: int,
    concurrency: int,
    time_limit: float,
) -> tuple[float, list[float], int]:
    """``n`` requests from ``concurrency`` workers (none started after ``time_limit`` s): requests/s, latencies,
    failures."""
    remaining = n
    failures = 0
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + time_limit

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=REQUEST_HEADERS) as response:
                    data = await response.read()
                    ok = response.status == 200 and len(data) == expected_len
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                failures += 1

    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies, failures


async def capture_fixture(mock_url: str) -> dict[str, Any]:
    """One JSON completion and one stream from the mock, as its journal recorded them (bytes, headers, writes)."""
    async with aiohttp.ClientSession() as session:
        for body in (JSON_BODY, STREAM_BODY):
            async with session.post(mock_url + ROUTE, data=body, headers=REQUEST_HEADERS) as response:
                assert response.status == 200, await response.text()
                await response.read()
        async with session.get(mock_url + "/_mock/journal", params={"wait": "5"}) as response:
            entries = (await response.json())["entries"]
        async with session.delete(mock_url + "/_mock/journal") as response:
            assert response.status == 200
    by_kind = {("stream" if e["stream"] else "json"): e for e in entries}
    plain, stream = by_kind["json"], by_kind["stream"]
    assert plain["frames_sent"] == 1
    wire = stream["wire"]
    frames = [part + "\n\n" for part in wire.split("\n\n")[:-1]]
    assert "".join(frames) == wire and len(frames) == stream["frames_sent"], (
        f"stream of {stream['frames_sent']} writes does not split into SSE events: {wire!r}"
    )

    def headers(entry: dict[str, Any]) -> dict[str, str]:
        return {k: v for k, v in entry["response_headers"].items() if k.lower() not in _COMPUTED}

    return {
        "json_headers": headers(plain),
        "json_body": plain["wire"],
        "stream_headers": headers(stream),
        "stream_frames": frames,
    }


async def drive(
    servers: dict[str, Server],
    expected_len: dict[str, int],
    requests: int,
    concurrency: int,
    rounds: int,
    warmup: int,
    batch_timeout: float,
) -> dict[str, dict[str, Stats]]:
    bodies = {"json": JSON_BODY, "stream": STREAM_BODY}
    stats = {name: {kind: Stats() for kind in KINDS} for name in servers}
    per_round = [requests // rounds + (1 if r < requests % rounds else 0) for r in range(rounds)]
    timeout = aiohttp.ClientTimeout(total=30)
    sessions = {
        name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout)
        for name in servers
    }
    try:
        for name, server in servers.items():  # connections open, code paths warm
            for kind in KINDS:
                url = server.url + ROUTE
                await batch(
                    sessions[name], url, bodies[kind], expected_len[kind], warmup, concurrency, batch_timeout
                )
        names = list(servers)
        for r, n in enumerate(per_round):
            if n == 0:
                continue
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                server = servers[name]
                for kind in KINDS:
                    s = stats[name][kind]
                    cpu0 = server.cpu_seconds()
                    rps, latencies, _failed = await batch(
                        sessions[name],
                        server.url + ROUTE,
                        bodies[kind],
                        expected_len[kind],
                        n,
                        concurrency,
                        batch_timeout,
                    )
                    cpu1 = server.cpu_seconds()
                    s.rps.append(rps)
                    s.latencies.extend(latencies)
                    s.completed += len(latencies)
                    s.failed += n - len(latencies)  # failed, or unsent when the batch timed out
                    if cpu0 is None or cpu1 is None or s.cpu_seconds is None:
                        s.cpu_seconds = None
                    else:
                        s.cpu_seconds += cpu1 - cpu0
    finally:
        for session in sessions.values():
            await session.close()
    return stats


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def run(
    requests: int = 2000,
    concurrency: int = 50,
    rounds: int = 5,
    warmup: int | None = None,
    batch_timeout: float = 60.0,
) -> dict[str, Any]:
    """Start the three servers, drive them, stop them; the result as a JSON-ready dict."""
    warmup = 2 * concurrency if warmup is None else warmup
    rounds = max(1, min(rounds, requests))
    python = sys.executable
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            servers["mock"] = start_server("mock", [python, "-m", "mockserver", "--port", "0"])
            fixture = asyncio.run(capture_fixture(servers["mock"].url))
            fixture_path = Path(tmp) / "fixture.json"
            fixture_path.write_text(json.dumps(fixture), encoding="utf-8")
            servers["mock_no_journal"] = start_server(
                "mock_no_journal", [python, "-m", "mockserver", "--port", "0", "--journal-size", "0"]
            )
            servers["baseline"] = start_server(
                "baseline", [python, str(Path(__file__).resolve()), "--serve-baseline", str(fixture_path)]
            )
            expected_len = {
                "json": len(fixture["json_body"].encode()),
                "stream": len("".join(fixture["stream_frames"]).encode()),
            }
            ordered = {name: servers[name] for name in SERVERS}
            stats = asyncio.run(
                drive(ordered, expected_len, requests, concurrency, rounds, warmup, batch_timeout)
            )
        finally:
            for server in servers.values():
                server.stop()
    summary = {name: {kind: stats[name][kind].summary() for kind in KINDS} for name in SERVERS}

    def rps(name: str, kind: str) -> float:
        value: float = summary[name][kind]["rps_median"]
        return value

    def cpu(name: str, kind: str) -> float | None:
        value: float | None = summary[name][kind]["server_cpu_us_per_request"]
        return value

    def minus_one(x: float | None) -> float | None:
        return x - 1 if x is not None else None

    return {
        "requests": requests,
        "concurrency": concurrency,
        "rounds": rounds,
        "warmup": warmup,
        "cpus": os.cpu_count(),
        "json_body_bytes": expected_len["json"],
        "stream_body_bytes": expected_len["stream"],
        "stream_writes": len(fixture["stream_frames"]),
        "servers": summary,
        "ratios": {
            kind: {
                "mock_vs_baseline_rps": _ratio(rps("mock", kind), rps("baseline", kind)),
                "mock_no_journal_vs_baseline_rps": _ratio(
                    rps("mock_no_journal", kind), rps("baseline", kind)
                ),
                "mock_vs_baseline_server_cpu": _ratio(cpu("mock", kind), cpu("baseline", kind)),
            }
            for kind in KINDS
        },
        "journal_overhead": {
            kind: {
                "rps": minus_one(_ratio(rps("mock_no_journal", kind), rps("mock", kind))),
                "server_cpu": minus_one(_ratio(cpu("mock", kind), cpu("mock_no_journal", kind))),
            }
            for kind in KINDS
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=2000, help="JSON and stream requests per server, each"
    )
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="turns the requests are split into")
    parser.add_argument(
        "--warmup", type=int, default=None, help="unmeasured requests first (2 x concurrency)"
    )
    parser.add_argument("--batch-timeout", type=float, default=60.0, help="cap of one batch, seconds")
    parser.add_argument("--serve-baseline", metavar="FIXTURE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        with contextlib.suppress(KeyboardInterrupt):
            fixture = json.loads(Path(args.serve_baseline).read_text(encoding="utf-8"))
            asyncio.run(serve_baseline(fixture))
        return
    result = run(args.requests, args.concurrency, args.rounds, args.warmup, args.batch_timeout)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
