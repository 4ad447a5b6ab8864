"""The mock's journal and logs apply the shared redaction policy: 0 leaks over the held-out key corpus.

Keys are fresh random keys of 17 formats (tests/mockserver/secrets_corpus.py). The journal must hide every
credential a request carries in the places the recorder redacts (presigned-URL credentials, ``sig=``, APIM and
``anthropic-api-key`` headers, body ``api_key``) and wherever else the same request repeats it (its path, its
body); the standalone server's logs (aiohttp's access log with ``?key=``, the error logged for a malformed
request, which quotes its raw header line) must not show any of them either.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import httpx
import pytest
import secrets_corpus
from mock_helpers import HTTP, chat_body

from mockserver.testing import MockServer

KEYS = secrets_corpus.generate()


def _leaks(text: str, key: str) -> bool:
    return key in text or quote(key, safe="") in text or json.dumps(key)[1:-1] in text


@pytest.mark.parametrize("fmt_name", list(secrets_corpus.FORMATS))
def test_the_journal_keeps_no_credential_of_any_format_in_any_place(
    server: MockServer, sid: str, chat_url: str, fmt_name: str
) -> None:
    key = KEYS[fmt_name]
    base = {"x-mock-session": sid}
    sent = [
        ({"Authorization": f"Bearer {key}"}, "", chat_body()),
        ({"ocp-apim-subscription-key": key}, "", chat_body()),
        ({"anthropic-api-key": key}, "", chat_body()),
        ({"x-amz-security-token": key}, "", chat_body()),
        ({}, f"?sig={quote(key, safe='')}&se=2030-01-01", chat_body()),
        (
            {},
            f"?X-Amz-Credential={quote(key, safe='')}%2F20250101%2Fus-east-1&X-Amz-Signature=00",
            chat_body(),
        ),
        ({}, f"?key={quote(key, safe='')}", chat_body()),
        ({"Authorization": "Bearer other"}, "", chat_body(api_key=key, user="u")),
        (
            {"Authorization": "Bearer other"},
            "",
            {"model": "m", "credentials": {"aws_secret_access_key": key}},
        ),
        # the request's own credential repeated in its body text and its path
        ({"api-key": key}, "", chat_body(messages=[{"role": "user", "content": f"my key is {key}"}])),
    ]
    for extra_headers, query, body in sent:
        HTTP.post(chat_url + query, json=body, headers={**base, **extra_headers})
    HTTP.post(f"{server.url}/openai/v1/keys/{key}/usage", json={}, headers={**base, "x-api-key": key})
    journal = server.journal(sid)
    assert len(journal) == len(sent) + 1
    dumped = json.dumps(journal)
    assert not _leaks(dumped, key), f"a {fmt_name} key is in the journal"
    # what is kept still names the places (the journal stays useful to checks)
    assert journal[4]["query"]["sig"] == "[REDACTED]" and journal[4]["query"]["se"] == "2030-01-01"
    assert journal[7]["request_body"]["api_key"] == "[REDACTED]" and journal[7]["request_body"]["user"] == "u"
    assert "[REDACTED]" in journal[9]["request_body"]["messages"][0]["content"]
    assert journal[-1]["path"] == "/openai/v1/keys/[REDACTED]/usage"


def _malformed_request(port: int, key: str) -> None:
    """A request aiohttp's parser rejects (a control byte in a header name) after an ``Authorization`` line."""
    raw = (
        f"POST /openai/v1/chat/completions?key={key} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\napi-key: {key}\r\nBad\x01Header: x\r\nContent-Length: 2\r\n\r\n{{}}"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            sock.recv(4096)


def test_the_standalone_servers_logs_show_no_credential() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "--host", "127.0.0.1", "--port", "0", "--log-level", "DEBUG"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        port = int(url.rsplit(":", 1)[1])
        keys = list(KEYS.values())
        for key in keys:
            r = httpx.post(
                f"{url}/gemini/v1beta/models/gemini-2.0-flash:generateContent?key={quote(key, safe='')}",
                json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                timeout=5,
            )
            assert r.status_code < 500
            _malformed_request(port, key)
        time.sleep(0.3)
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "generateContent" in err, "the access log was not written: the check would be vacuous"
    assert "Error handling request" in err or "BadHttpMessage" in err or "Bad" in err, err[-400:]
    leaked = [name for name, key in KEYS.items() if _leaks(err, key)]
    assert not leaked, f"keys of {leaked} in the server's log"
