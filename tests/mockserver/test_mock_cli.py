"""``python -m mockserver --port 0``: prints the bound URL first, serves, and exits 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_url_serves_and_stops_cleanly(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0
        r = httpx.get(f"{url}/_mock/health", timeout=5)
        assert r.json()["status"] == "ok"
        r = httpx.post(
            f"{url}/openai/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer sk-test"},
            timeout=5,
        )
        assert r.status_code == 200
        proc.send_signal(sig)
        t0 = time.monotonic()
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_help_exits_zero() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mockserver", "--help"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and "--port" in out.stdout
