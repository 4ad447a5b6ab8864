"""Soak: the connection attacks of issue 9 against ``python -m mockserver``, which must stay healthy and quiet.

An attacker holds ``--idle`` idle connections and ``--slow`` connections trickling a request head one byte at a
time, reopening each one the server closes, for ``--seconds``. Meanwhile the health endpoint is polled every 0.25 s
on fresh connections. Reported: health successes and p99 latency, connections the server closed (idle timeout) or
refused (cap), and the bytes the server wrote to stderr. Exit status 1 if a health poll failed while the attack
stayed under the cap, or if stderr grew past ``--max-log-bytes``. The issue measured 300 idle connections taking
health down and writing 182 MB of tracebacks in 60 s; the default suite tests the same bounds in seconds
(``tests/mockserver/test_mock_serving.py``).

    python bench/soak_mock_connections.py --idle 300 --slow 200 --seconds 60 --idle-timeout 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Tally:
    closed_by_server: int = 0
    refused: int = 0
    health_ok: int = 0
    health_failed: int = 0
    latencies: list[float] = field(default_factory=list)


async def _attacker(host: str, port: int, slow: bool, stop: float, tally: Tally) -> None:
    head = b"GET /_mock/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            for byte in head if slow else b"":
                if time.monotonic() >= stop:
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.2)
            data = await asyncio.wait_for(reader.read(64), timeout=max(stop - time.monotonic(), 0.01))
            if data.startswith(b"HTTP/1.1 503"):
                tally.refused += 1
                await asyncio.sleep(0.2)
            else:
                tally.closed_by_server += 1
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()


async def _poll_health(url: str, stop: float, tally: Tally) -> None:
    async with httpx.AsyncClient(timeout=5.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        while time.monotonic() < stop:
            start = time.monotonic()
            try:
                ok = (await client.get(f"{url}/_mock/health")).status_code == 200
            except httpx.HTTPError:
                ok = False
            tally.latencies.append(time.monotonic() - start)
            if ok:
                tally.health_ok += 1
            else:
                tally.health_failed += 1
            await asyncio.sleep(0.25)


async def _soak(url: str, idle: int, slow: int, seconds: float) -> Tally:
    tally = Tally()
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stop = time.monotonic() + seconds
    tasks = [_attacker(host, int(port), False, stop, tally) for _ in range(idle)]
    tasks += [_attacker(host, int(port), True, stop, tally) for _ in range(slow)]
    await asyncio.gather(_poll_health(url, stop, tally), *tasks)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=300)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--idle-timeout", type=float, default=5.0)
    parser.add_argument("--max-connections", type=int, default=512)
    parser.add_argument("--max-log-bytes", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "stderr.log"
        with log.open("w") as err:
            proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                [sys.executable, "-m", "mockserver", "--port", "0", "--idle-timeout", str(args.idle_timeout),
                 "--max-connections", str(args.max_connections)],
                stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
            try:
                assert proc.stdout is not None
                url = proc.stdout.readline().strip()
                tally = asyncio.run(_soak(url, args.idle, args.slow, args.seconds))
            finally:
                proc.terminate()
                proc.wait(10)
        log_bytes = log.stat().st_size
    p99 = statistics.quantiles(tally.latencies, n=100)[98] if len(tally.latencies) >= 2 else float("nan")
    print(
        f"health: {tally.health_ok} ok, {tally.health_failed} failed, p99 {p99 * 1000:.1f} ms; "
        f"attack connections closed by the server: {tally.closed_by_server}, refused at the cap: {tally.refused}; "
        f"server stderr: {log_bytes} bytes"
    )
    under_cap = args.idle + args.slow < args.max_connections
    failed = (under_cap and tally.health_failed > 0) or log_bytes > args.max_log_bytes
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
