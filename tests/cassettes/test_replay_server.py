"""``python -m mockserver --replay``: golden traffic for any client, with the recorded chunk boundaries."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import cassettes as fmt

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url:
        proc.wait(10)
        raise AssertionError(proc.stderr.read() if proc.stderr else "no URL")
    return proc, url


@pytest.fixture
def stream_cassette(tmp_path: Path) -> Path:
    chunks = [f'data: {{"n": {n}}}\n\n'.encode() for n in range(5)] + [b"data: [DONE]\n\n"]
    interaction = fmt.Interaction(
        fmt.RecordedRequest("POST", "https://api.openai.com/v1/chat/completions", {}, b"{}"),
        fmt.RecordedResponse(
            200,
            {"content-type": ["text/event-stream"], "x-request-id": ["req_golden"]},
            b"".join(chunks),
            "OK",
            chunks,
            [0.0, 0.3, 0.6, 0.9, 1.2, 1.5],
        ),
    )
    path = tmp_path / "s.cassette.json"
    fmt.save(path, [interaction])
    return path


@pytest.fixture
def replay_url(stream_cassette: Path) -> Iterator[str]:
    proc, url = _start("--replay", str(stream_cassette.parent), "--replay-timing")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _raw_post(url: str, path: str) -> tuple[bytes, list[bytes], float]:
    """POST over a bare socket and return (head, HTTP/1.1 chunk payloads, seconds until the last byte).

    Reading the chunked framing itself, not socket reads, makes the check independent of how promptly this
    process is scheduled: a busy machine may deliver many frames in one read, but never merges two frames.
    """
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n{}".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    elapsed = time.monotonic() - started
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower(), head
    frames = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        frames.append(body[:size])
        body = body[size + 2 :]
    return head, frames, elapsed


def test_replays_with_recorded_chunks_and_headers(replay_url: str, stream_cassette: Path) -> None:
    assert httpx.get(f"{replay_url}/_mock/health").json()["interactions"] == 1
    recorded = fmt.load(stream_cassette).interactions[0].response
    assert recorded.chunks is not None and recorded.timings is not None
    head, frames, elapsed = _raw_post(replay_url, "/openai/v1/chat/completions")
    assert b"x-request-id: req_golden" in head.lower()
    payload = [f for f in frames if f]
    assert payload == recorded.chunks, (
        "each recorded chunk must go out as its own frame, none merged or split"
    )
    # paced at the recorded timings (a lower bound: sleeping never ends early)
    assert elapsed >= recorded.timings[-1] * 0.9, (
        f"replayed in {elapsed:.2f}s; the recording spans {recorded.timings[-1]}s"
    )


def test_a_miss_names_what_is_recorded(replay_url: str) -> None:
    response = httpx.post(f"{replay_url}/anthropic/v1/messages", json={})
    assert response.status_code == 404
    assert "POST https://api.openai.com/v1/chat/completions" in response.json()["error"]["message"]


def test_a_malformed_cassette_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cassette.json"
    bad.write_text('{"provcert_cassette": 1, "interactions": [{"request": 1, "response": 2}]}')
    proc = subprocess.run(
        [sys.executable, "-m", "mockserver", "--replay", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and str(bad) in proc.stderr and "interactions[0]" in proc.stderr


def test_the_golden_openai_cassettes_replay_to_the_sdk() -> None:
    openai = pytest.importorskip("openai")
    proc, url = _start(
        "--replay", str(fmt.DEFAULT_ROOT / "openai" / "real-test_valid_response.cassette.json")
    )
    try:
        client = openai.OpenAI(base_url=f"{url}/openai/v1", api_key="sk-test", max_retries=0)
        started = time.monotonic()
        completion = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content and time.monotonic() - started < 10
    finally:
        proc.terminate()
        proc.wait(10)
