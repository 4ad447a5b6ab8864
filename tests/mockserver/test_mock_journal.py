"""The journal: secrets never stored, fields filled in, bounded."""

from __future__ import annotations

import hashlib
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from mock_helpers import FAKE_KEY, HTTP, chat_body, headers

from mockserver.app import create_app
from mockserver.cli import main as cli_main
from mockserver.journal import Journal, credential_fingerprint, redact_headers, redact_query
from mockserver.testing import MockServer


def test_redaction_keeps_only_the_scheme() -> None:
    out = redact_headers(
        [
            ("Authorization", f"Bearer {FAKE_KEY}"),
            ("api-key", FAKE_KEY),
            ("X-Api-Key", FAKE_KEY),
            ("x-goog-api-key", FAKE_KEY),
            ("Cookie", f"session={FAKE_KEY}"),
            ("x-amz-security-token", FAKE_KEY),
            ("Proxy-Authorization", f"Basic {FAKE_KEY}"),
            ("content-type", "application/json"),
        ]
    )
    assert out["authorization"] == "Bearer [REDACTED]"
    assert out["proxy-authorization"] == "Basic [REDACTED]"
    for name in ("api-key", "x-api-key", "x-goog-api-key", "cookie", "x-amz-security-token"):
        assert out[name] == "[REDACTED]"
    assert out["content-type"] == "application/json"
    sigv4 = "AWS4-HMAC-SHA256 Credential=AKIAFAKE/20240101/us-east-1/bedrock/aws4_request, Signature=abc"
    assert redact_headers([("Authorization", sigv4)])["authorization"] == "AWS4-HMAC-SHA256 [REDACTED]"
    assert redact_query([("key", FAKE_KEY), ("alt", "sse")]) == {"key": "[REDACTED]", "alt": "sse"}


def test_fingerprint_identifies_without_revealing() -> None:
    fp = credential_fingerprint(f"Bearer {FAKE_KEY}")
    assert fp == credential_fingerprint(FAKE_KEY)
    assert fp is not None and len(fp) == 12 and fp not in FAKE_KEY
    assert fp != credential_fingerprint("Bearer sk-other")
    assert credential_fingerprint(None) is None


def test_fake_key_never_appears_in_the_journal(server: MockServer, sid: str, chat_url: str) -> None:
    hdrs = {**headers(sid), "x-api-key": FAKE_KEY, "Cookie": f"k={FAKE_KEY}"}
    for scenario in (None, "auth_error", "rate_limit", "error_mid_stream"):
        h = dict(hdrs)
        if scenario:
            h["x-mock-scenario"] = scenario
        HTTP.post(chat_url, json=chat_body(stream=scenario == "error_mid_stream"), headers=h)
    HTTP.post(f"{chat_url}?key={FAKE_KEY}", json=chat_body(), headers=hdrs)
    HTTP.post(f"{server.url}/nowhere?key={FAKE_KEY}", json={}, headers=hdrs)
    dumped = json.dumps(server.journal(sid))
    assert len(server.journal(sid)) == 6
    assert FAKE_KEY not in dumped
    assert FAKE_KEY[8:] not in dumped  # not even the tail beyond the prefix
    entry = server.journal(sid)[0]
    assert entry["request_headers"]["authorization"] == "Bearer [REDACTED]"
    assert entry["auth_fingerprint"] == hashlib.sha256(FAKE_KEY.encode()).hexdigest()[:12]


def test_entry_fields_for_a_plain_completion(server: MockServer, sid: str, chat_url: str) -> None:
    r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid))
    (e,) = server.journal(sid)
    expected = {
        "seq", "session", "provider", "method", "path", "query", "request_headers", "request_body",
        "auth_fingerprint", "scenario", "status", "request_id", "response_headers", "stream",
        "chunks_sent", "frames_sent", "text_sent", "tool_calls_sent", "usage_truth", "usage_sent",
        "finish_reason_sent", "aborted", "aborted_after_chunks", "stalled", "inband_error", "malformed",
        "terminated", "error_kind", "client_disconnected", "complete", "started_at", "duration_ms", "wire",
        "truncated", "retry_hint", "asked",
    }  # fmt: skip
    assert set(e) == expected
    assert e["session"] == sid and e["provider"] == "openai" and e["method"] == "POST"
    assert e["path"] == "/openai/v1/chat/completions"
    assert e["request_body"] == chat_body()
    assert e["scenario"]["name"] == "ok" and e["scenario"]["source"] == "default"
    assert e["status"] == 200 and e["request_id"] == r.headers["x-request-id"]
    assert e["response_headers"]["x-request-id"] == e["request_id"]
    assert e["wire"] == r.text
    assert e["text_sent"] == r.json()["choices"][0]["message"]["content"]
    assert e["terminated"] and e["complete"] and not e["aborted"] and not e["client_disconnected"]
    assert e["duration_ms"] >= 0


def test_journal_is_bounded_dropping_oldest() -> None:
    j = Journal(max_entries=3)
    for i in range(5):
        j.open(session="s", provider=None, method="GET", path=f"/{i}", query=[], headers=[])
    assert [e.path for e in j.entries()] == ["/2", "/3", "/4"]
    assert [e.seq for e in j.entries()] == [3, 4, 5]
    assert j.clear("other") == 0 and len(j) == 3


def test_journal_of_size_zero_hands_out_entries_but_keeps_nothing() -> None:
    j = Journal(max_entries=0)
    entry = j.open(
        session="s", provider="openai", method="POST", path="/x", query=[("key", FAKE_KEY)],
        headers=[("Authorization", f"Bearer {FAKE_KEY}")],
    )  # fmt: skip
    entry.record_wire(b"body")
    entry.chunks_sent += 1
    assert (entry.seq, entry.chunks_sent, entry.request_headers, entry.query, bytes(entry.wire_bytes)) == (
        1, 1, {}, {}, b""
    )  # fmt: skip
    assert len(j) == 0 and j.entries() == []
    with pytest.raises(ValueError):
        Journal(max_entries=-1)


async def test_app_without_journal_answers_the_same() -> None:
    """``create_app(journal_size=0)`` (``--journal-size 0``) serves every answer; the journal stays empty."""
    async with TestClient(TestServer(create_app(journal_size=0))) as client:
        r = await client.post("/openai/v1/chat/completions", json=chat_body(), headers=headers("s"))
        assert r.status == 200 and (await r.json())["choices"][0]["message"]["content"]
        r = await client.post(
            "/openai/v1/chat/completions",
            json=chat_body(stream=True, include_usage=True),
            headers=headers("s"),
        )
        events = (await r.read()).split(b"\n\n")
        assert r.status == 200 and events[-2] == b"data: [DONE]" and len(events) == 11
        r = await client.get("/_mock/journal", params={"wait": "0"})
        assert (await r.json())["entries"] == []


def test_cli_refuses_a_negative_journal_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--journal-size", "-1"]) == 2
    assert "--journal-size" in capsys.readouterr().err
