"""Every personality sends every retry-hint form it declares, on the real wire, and journals what the hint means.

The wire is read here with the standard library only (not with the adapters' parser, which these forms exist to
test), and compared with the journal's ``retry_hint``, which the certification checks trust.
"""

from __future__ import annotations

import email.utils
import json
from datetime import datetime
from typing import Any

import pytest
from mock_helpers import FAKE_KEY, HTTP

from harness.fault_provenance import ALL_FAULT_KINDS, FAULT_CHECKS, unverified_checks
from mockserver.personalities import discover
from mockserver.retry_hints import ALL_FORMS
from mockserver.testing import MockServer

MESSAGES = [{"role": "user", "content": "hi"}]
BEARER = {"Authorization": f"Bearer {FAKE_KEY}"}

#: wire -> (path below the server, request headers, JSON body): the smallest request each personality accepts.
REQUESTS: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    "openai": ("/openai/v1/chat/completions", BEARER, {"model": "gpt-4o-mini", "messages": MESSAGES}),
    "azure-openai": (
        "/azure/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
        {"api-key": FAKE_KEY},
        {"messages": MESSAGES},
    ),
    "anthropic": (
        "/anthropic/v1/messages",
        {"x-api-key": FAKE_KEY, "anthropic-version": "2023-06-01"},
        {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": MESSAGES},
    ),
    "gemini": (
        "/gemini/v1beta/models/gemini-2.0-flash:generateContent",
        {"x-goog-api-key": FAKE_KEY},
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    ),
    "bedrock": (
        "/bedrock/model/amazon.nova-micro-v1%3A0/converse",
        BEARER,
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    ),
    "mistral": (
        "/mistral/v1/chat/completions",
        BEARER,
        {"model": "mistral-small-latest", "messages": MESSAGES},
    ),
    "openrouter": (
        "/openrouter/api/v1/chat/completions",
        BEARER,
        {"model": "openai/gpt-4o", "messages": MESSAGES},
    ),
    "ollama": ("/ollama/api/chat", {}, {"model": "llama3.2", "messages": MESSAGES, "stream": False}),
}

PERSONALITIES = discover()
CASES = [(wire, form) for wire in REQUESTS for form in PERSONALITIES[wire].retry_hint_forms]
WAIT = 7.25


def _rate_limit(server: MockServer, sid: str, wire: str, **scenario: Any) -> tuple[Any, dict[str, Any]]:
    path, extra, body = REQUESTS[wire]
    spec = json.dumps({"preset": "rate_limit", "retry_after": WAIT, **scenario})
    headers = {**extra, "x-mock-session": sid, "x-mock-scenario": spec}
    response = HTTP.post(f"{server.url}{path}", json=body, headers=headers)
    entries = server.journal(sid)
    return response, entries[-1]


def _wire_wait(form: str, response: Any) -> tuple[float | None, float | None]:
    """(relative seconds, absolute deadline) as the wire says them, read with the standard library."""
    h = response.headers
    if form == "seconds":
        assert "retry-after-ms" not in h
        return float(h["retry-after"]), None
    if form == "ms":
        assert float(h["retry-after"]) >= int(h["retry-after-ms"]) / 1000, "retry-after must not undercut -ms"
        return int(h["retry-after-ms"]) / 1000, None
    if form == "http_date":
        return None, email.utils.parsedate_to_datetime(h["retry-after"]).timestamp()
    if form == "reset_headers":
        assert "retry-after" not in h, "the reset_headers form sends no retry-after"
        exhausted = [
            datetime.fromisoformat(v).timestamp()
            for k, v in h.items()
            if k.endswith("-reset") and h[k.removesuffix("-reset") + "-remaining"] == "0"
        ]
        assert exhausted, "no exhausted bucket among the anthropic-ratelimit-* headers"
        return None, max(exhausted)
    if form == "body":
        details = response.json()["error"]["details"]
        (info,) = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
        assert info["retryDelay"].endswith("s")
        return float(info["retryDelay"][:-1]), None
    if form == "amz_ms":
        return int(h["x-amz-retry-after"]) / 1000, None
    raise AssertionError(f"no reader for form {form!r}")


@pytest.mark.parametrize(("wire", "form"), CASES, ids=[f"{w}-{f}" for w, f in CASES])
def test_each_declared_form_is_sent_and_journaled(server: MockServer, sid: str, wire: str, form: str) -> None:
    response, entry = _rate_limit(server, sid, wire, retry_after_form=form)
    assert response.status_code == 429
    hint = entry["retry_hint"]
    assert hint is not None and hint["form"] == form, f"journaled {hint}"
    relative, deadline = _wire_wait(form, response)
    if deadline is not None:
        assert hint["deadline"] == pytest.approx(deadline)
        # an absolute form is whole seconds, never earlier than asked
        assert WAIT <= deadline - entry["started_at"] < WAIT + 1.5
    else:
        assert hint["deadline"] is None and hint["seconds"] == pytest.approx(relative)
        assert WAIT <= hint["seconds"] < WAIT + 1


@pytest.mark.parametrize("wire", list(REQUESTS))
def test_default_form_is_the_first_declared(server: MockServer, sid: str, wire: str) -> None:
    _, entry = _rate_limit(server, sid, wire)
    assert entry["retry_hint"]["form"] == next(iter(PERSONALITIES[wire].retry_hint_forms))


@pytest.mark.parametrize("wire", list(REQUESTS))
def test_a_form_the_provider_never_sends_is_refused(server: MockServer, sid: str, wire: str) -> None:
    declared = PERSONALITIES[wire].retry_hint_forms
    foreign = next(f for f in ALL_FORMS if f not in declared)
    response, _ = _rate_limit(server, sid, wire, retry_after_form=foreign)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "retry_after_form" in message and repr(foreign) in message
    assert all(f in message for f in declared), message


def test_an_unknown_form_is_refused_before_any_personality(server: MockServer, sid: str) -> None:
    response, _ = _rate_limit(server, sid, "openai", retry_after_form="fortnights")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "retry_after_form" in message and all(f in message for f in ALL_FORMS), message


def test_openai_content_filter_is_the_real_invalid_prompt_form(server: MockServer, sid: str) -> None:
    path, extra, body = REQUESTS["openai"]
    headers = {**extra, "x-mock-session": sid, "x-mock-scenario": "content_filter"}
    response = HTTP.post(f"{server.url}{path}", json=body, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == ("invalid_prompt", "invalid_request_error", None)
    assert error["message"].startswith("Invalid prompt: your prompt was flagged")


@pytest.mark.parametrize("wire", list(REQUESTS))
def test_every_fault_body_is_sourced_or_marked_unverified(wire: str) -> None:
    p = PERSONALITIES[wire]
    sourced, unverified = set(p.fault_sources), {k for k in p.unverified_faults if not k.startswith("retry:")}
    assert not sourced & unverified, f"{wire}: both sourced and unverified: {sorted(sourced & unverified)}"
    assert sourced | unverified == set(ALL_FAULT_KINDS), (
        f"{wire}: no provenance for {sorted(set(ALL_FAULT_KINDS) - sourced - unverified)}"
    )
    forms = {k.removeprefix("retry:") for k in p.unverified_faults if k.startswith("retry:")}
    assert forms <= set(p.retry_hint_forms), f"{wire}: unverified forms it does not declare: {forms}"
    assert all(p.retry_hint_forms.values()) and all(p.fault_sources.values()), f"{wire}: a source is empty"


def test_every_fault_kind_names_its_checks() -> None:
    assert set(FAULT_CHECKS) == set(ALL_FAULT_KINDS)


@pytest.mark.parametrize("wire", list(REQUESTS))
def test_unverified_checks_list_every_unverified_form(wire: str) -> None:
    p = PERSONALITIES[wire]
    listed = unverified_checks(wire)
    for key, why in p.unverified_faults.items():
        checks = ("ERR-429", "RTY-AFTER") if key.startswith("retry:") else FAULT_CHECKS[key]
        for check_id in checks:
            assert f"{key}: {why}" in listed.get(check_id, []), f"{wire}: {check_id} does not list {key}"
    assert sum(len(v) for v in listed.values()) == sum(
        len(("ERR-429", "RTY-AFTER") if k.startswith("retry:") else FAULT_CHECKS[k])
        for k in p.unverified_faults
    )
    assert unverified_checks("no-such-wire") == {}
