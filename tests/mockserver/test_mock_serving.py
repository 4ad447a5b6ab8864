"""Issue 9: bounded connections (idle/header timeout, connection cap, one log line per event class), the admin
token for non-loopback binds, and a clean stop on an early SIGINT. Real sockets over loopback, short timeouts
configured for the test, bounded in count and time."""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mock_helpers import FAKE_KEY, HTTP

from mockserver import cli
from mockserver.client import MockAdminError, MockClient
from mockserver.serving import (
    ADMIN_TOKEN_ENV,
    ADMIN_TOKEN_HEADER,
    ConnectionLimits,
    EventLog,
    OncePerClass,
    admin_token_problem,
    is_loopback,
)
from mockserver.testing import MockServer

IDLE = 0.4


@pytest.fixture
def tight() -> Iterator[MockServer]:
    with MockServer(limits=ConnectionLimits(idle_timeout=IDLE, max_connections=8)) as srv:
        yield srv


def _connect(srv: MockServer) -> socket.socket:
    sock = socket.create_connection((srv.host, srv.port), timeout=5)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` (reads EOF); fails if it is still open after ``seconds``."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        pytest.fail(f"connection still open after {seconds} s")
    return time.monotonic() - start


# ------------------------------------------------------------------------------------------ idle and slow heads
def test_idle_and_slow_header_connections_are_closed_and_health_stays_up(tight: MockServer) -> None:
    socks = [_connect(tight) for _ in range(6)]
    for n, sock in enumerate(socks[:3]):  # half send a partial request head and never finish it
        sock.sendall(b"GET /_mock/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + str(n).encode())
    waited = [_closed_within(sock, IDLE + 2.0) for sock in socks]
    assert max(waited) < IDLE + 2.0
    for sock in socks:
        sock.close()
    assert HTTP.get(f"{tight.url}/_mock/health").status_code == 200


def test_a_partial_second_request_head_is_closed_after_the_idle_timeout(tight: MockServer) -> None:
    sock = _connect(tight)
    sock.sendall(b"GET /_mock/health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /_mock/health HTTP/1.1\r\nHo")  # the next head trickles in and stops
    assert _closed_within(sock, IDLE + 2.0) >= 0
    sock.close()


def test_a_request_being_answered_outlives_the_idle_timeout(tight: MockServer) -> None:
    """The timeout bounds waiting for a request head, never an answer in progress (headers_delay > timeout)."""
    r = HTTP.post(
        f"{tight.openai_base_url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={
            "Authorization": f"Bearer {FAKE_KEY}",
            "x-mock-scenario": json.dumps({"headers_delay": 2 * IDLE}),
        },
    )
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


# -------------------------------------------------------------------------------------------- connection cap
def test_connections_past_the_cap_get_a_503_and_one_log_line(
    tight: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert tight.site is not None
    held = [_connect(tight) for _ in range(8)]
    time.sleep(0.05)  # let the server register them
    caplog.set_level(logging.WARNING, logger="mockserver.serving")
    refused: list[bytes] = []
    for _ in range(20):
        with _connect(tight) as extra:
            data = b""
            while chunk := extra.recv(4096):
                data += chunk
            refused.append(data)
    assert all(r.startswith(b"HTTP/1.1 503 ") for r in refused)
    head, _, body = refused[0].partition(b"\r\n\r\n")
    assert b"Connection: close" in head and json.loads(body)["error"]["type"] == "mock_overloaded"
    assert tight.site.refused == 20
    cap_lines = [r for r in caplog.records if "connection cap" in r.getMessage()]
    assert len(cap_lines) == 1, [r.getMessage() for r in caplog.records]
    for sock in held:
        sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # once they are gone the server accepts again
        try:
            if HTTP.get(f"{tight.url}/_mock/health", headers={"Connection": "close"}).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    else:
        pytest.fail("server did not accept connections after the held ones closed")


def test_event_log_writes_one_line_per_class_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.eventlog")
    caplog.set_level(logging.WARNING, logger="test.eventlog")
    events = EventLog(log, interval=60.0)
    written = [events.event(kind, "x") for kind in ["a"] * 50 + ["b"] * 50]
    assert written.count(True) == 2 and written[0] and written[50]
    assert [r.getMessage() for r in caplog.records] == ["a: x", "b: x"]
    events.interval = 0.0
    assert events.event("a", "again")
    assert caplog.records[-1].getMessage() == "a: again (49 more since the last report)"


def test_once_per_class_lets_one_traceback_per_exception_class_through() -> None:
    bound = OncePerClass(interval=60.0)

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord("aiohttp.server", logging.ERROR, "f", 1, "Error handling request", None,
                                 (type(exc), exc, None))  # fmt: skip

    passed = [bound.filter(record(ConnectionResetError())) for _ in range(300)]
    passed += [bound.filter(record(ValueError())) for _ in range(300)]
    assert passed.count(True) == 2 and bound.suppressed == 598


# ------------------------------------------------------------------------------------------------ admin token
@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.10", False), ("example.com", False)],
)  # fmt: skip
def test_which_binds_need_a_token(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    problem = admin_token_problem(host, None)
    assert (problem is None) is loopback
    if problem is not None:
        assert "--admin-token" in problem and ADMIN_TOKEN_ENV in problem
    assert admin_token_problem(host, "tok-123") is None


@pytest.fixture(scope="module")
def guarded() -> Iterator[MockServer]:
    with MockServer(admin_token="tok-admin-0123") as srv:
        yield srv


@pytest.mark.parametrize("path", ["/_mock/health", "/_mock/journal?wait=0", "/_mock/scenarios"])
@pytest.mark.parametrize("sent", [None, "", "wrong", "tok-admin-012", "tok-admin-01234"])
def test_admin_calls_without_the_right_token_are_401s(
    guarded: MockServer, path: str, sent: str | None
) -> None:
    hdrs = {} if sent is None else {ADMIN_TOKEN_HEADER: sent}
    r = HTTP.get(f"{guarded.url}{path}", headers=hdrs)
    assert r.status_code == 401, r.text
    assert ADMIN_TOKEN_HEADER in r.json()["error"]["message"] and "tok-admin" not in r.text
    ok = HTTP.get(f"{guarded.url}{path}", headers={ADMIN_TOKEN_HEADER: "tok-admin-0123"})
    assert ok.status_code == 200


def test_the_token_guards_admin_only_and_the_client_sends_it(guarded: MockServer) -> None:
    sid = guarded.new_session()
    guarded.queue(sid, {"error": "rate_limit", "retry_after": 0})  # MockServer's client carries the token
    r = HTTP.post(
        f"{guarded.openai_base_url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {FAKE_KEY}", "x-mock-session": sid},
    )
    assert r.status_code == 429  # provider routes need no admin token; the queued scenario was applied
    assert guarded.journal(sid)[0]["status"] == 429
    anonymous = MockClient(guarded.url)
    try:
        with pytest.raises(MockAdminError, match=ADMIN_TOKEN_HEADER):
            anonymous.health()
    finally:
        anonymous.close()


def test_cli_refuses_a_non_loopback_bind_without_a_token_before_binding(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[dict[str, Any]] = []

    async def fake_serve(*args: Any, **kwargs: Any) -> None:
        served.append(kwargs)

    monkeypatch.setattr(cli, "serve", fake_serve)
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    assert cli.main(["--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to start" in err and "--admin-token" in err
    assert served == []  # serve() (which binds) was never reached
    assert cli.main(["--host", "0.0.0.0", "--admin-token", "tok-cli-9"]) == 0
    assert served[-1]["admin_token"] == "tok-cli-9"
    assert "warning" in capsys.readouterr().err
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "tok-env-7")
    assert cli.main(["--host", "0.0.0.0"]) == 0
    assert served[-1]["admin_token"] == "tok-env-7"


def test_cli_process_exits_2_without_printing_a_url() -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != ADMIN_TOKEN_ENV}
    out = subprocess.run(
        [sys.executable, "-m", "mockserver", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.returncode == 2 and out.stdout == "" and "--admin-token" in out.stderr


# ------------------------------------------------------------------------------------------------ early SIGINT
@pytest.mark.parametrize("delay", [None, 0.3, 0.8])
def test_sigint_at_any_point_of_startup_exits_0_without_a_traceback(delay: float | None) -> None:
    """``None``: right after the URL line (the issue's case); a number: that long after spawning, mid-import or
    mid-startup."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        if delay is None:
            assert proc.stdout.readline().startswith("http://127.0.0.1:")
        else:
            time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
