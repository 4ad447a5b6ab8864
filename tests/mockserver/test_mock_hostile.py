"""Issue 9: hostile requests get a 400 naming the problem, never an unasked 5xx (nor a 1xx that hangs the client).

``test_mock_limits.py`` fuzzes scenario specs; this file covers the rest of what a client controls: the request
body of every personality route (deep JSON, lone surrogates, bodies whose Content-Encoding lies, wrong types),
every header the mock reads, and every admin endpoint with its query parameters. All over real HTTP on loopback.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mock_helpers import FAKE_KEY, HTTP

from mockserver.hostile import MAX_JSON_DEPTH, BodyError, check_json_body, json_depth
from mockserver.personalities import discover
from mockserver.testing import MockServer

#: Every personality route with placeholders filled, plus the query some of them read.
ROUTES: list[str] = []
for _cls in discover().values():
    _p = _cls()
    for _method, _path in _p.routes():
        _filled = (
            _path.replace("{deployment}", "dep")
            .replace("{model_id}", "m")
            .replace("{model_action}", "gemini-2.0-flash:generateContent")
        )
        ROUTES.append(f"{_p.prefix}{_filled}?api-version=2024-10-21")

#: Credentials every personality accepts (Bearer for most, x-api-key plus a version for Anthropic).
AUTH = {"Authorization": f"Bearer {FAKE_KEY}", "x-api-key": FAKE_KEY, "anthropic-version": "2023-06-01"}

#: A body every personality reads as a valid chat request (each ignores the others' fields).
VALID: dict[str, Any] = {
    "model": "m",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "hi"}],
    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
}


def _crashed(r: httpx.Response) -> bool:
    """An unasked 5xx (aiohttp's text/plain 500 for an unhandled exception, or any other) or a 1xx final status."""
    return r.status_code >= 500 or r.status_code < 200


def _nested(depth: int) -> Any:
    value: Any = "x"
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


# ------------------------------------------------------------------------------------- the screening itself
def test_depth_counts_brackets_outside_strings_only() -> None:
    assert json_depth(json.dumps(_nested(7)).encode()) == 7
    assert json_depth(json.dumps({"s": '[[[[{{{{\\"[['}).encode()) == 1
    assert json_depth(b"[" * 10_000, limit=5) == 6  # stops counting just past the limit


def test_surrogates_are_refused_and_pairs_are_not() -> None:
    check_json_body(b'{"t": "\\ud83d\\ude00"}')  # a valid pair: an emoji
    for lone in (b'{"t": "\\ud800"}', b'{"t": "x\\udfffy"}', b'["\\ude00\\ud83d"]'):
        with pytest.raises(BodyError, match="surrogate"):
            check_json_body(lone)


# --------------------------------------------------------------------------------- the attacks, per route
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("attack", "named"),
    [
        (b'{"model": "m", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", f"deeper than {MAX_JSON_DEPTH}"),
        (json.dumps(_nested(MAX_JSON_DEPTH + 1)).encode(), f"deeper than {MAX_JSON_DEPTH}"),
        (json.dumps({**VALID, "messages": [{"role": "user", "content": "\ud800"}]}).encode(), "surrogate"),
        (json.dumps({**VALID, "contents": [{"parts": [{"text": "a\udc00"}]}]}).encode(), "surrogate"),
    ],
    ids=["deep-5000", "deep-just-past", "surrogate-messages", "surrogate-contents"],
)
def test_each_route_answers_the_attack_with_a_400_naming_it(route: str, attack: bytes, named: str) -> None:
    with MockServer() as srv:  # a fresh server: a crash must not hide behind the shared one's state
        r = HTTP.post(
            f"{srv.url}{route}", content=attack, headers={**AUTH, "content-type": "application/json"}
        )
        assert r.status_code == 400, r.text
        assert named in r.json()["error"]["message"]
        entry = srv.journal()[-1]
        assert entry["status"] == 400 and entry["path"] == route.split("?")[0]


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_that_is_not_what_its_content_encoding_says_is_a_400(server: MockServer, route: str) -> None:
    hdrs = {**AUTH, "content-type": "application/json", "content-encoding": "gzip"}
    r = HTTP.post(f"{server.url}{route}", content=json.dumps(VALID).encode(), headers=hdrs)
    assert r.status_code == 400, r.text
    assert "Content-Encoding: 'gzip'" in r.json()["error"]["message"]
    assert r.headers.get("connection", "").lower() == "close"
    # and the same body, honestly labelled, reaches the personality (which answers it in its own words)
    after = HTTP.post(f"{server.url}{route}", json=VALID, headers=AUTH)
    assert after.status_code < 500 and "mock_request_error" not in after.text, after.text


@pytest.mark.parametrize("coding", ["gzip", "deflate", "deflate-raw", "identity"])
def test_honestly_encoded_bodies_are_decoded_and_served(server: MockServer, coding: str) -> None:
    raw = json.dumps(VALID).encode()
    encoded = {
        "gzip": gzip.compress(raw),
        "deflate": zlib.compress(raw),
        "deflate-raw": _raw_deflate(raw),
        "identity": raw,
    }[coding]
    label = coding.removesuffix("-raw")
    r = HTTP.post(
        f"{server.url}/openai/v1/chat/completions",
        content=encoded,
        headers={**AUTH, "content-type": "application/json", "content-encoding": label},
    )
    assert r.status_code == 200, r.text


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("body", "coding", "named"),
    [
        (b"{}", "deflate", "not valid deflate"),  # aiohttp's own decoder waited forever on this one
        (b"x", "deflate", "not valid deflate"),
        (gzip.compress(b"{}")[:-4], "gzip", "not valid gzip"),  # truncated
        (b"{}", "br", "'br' is not supported"),
        (
            gzip.compress(b" " * (2 * 1024**2)),
            "gzip",
            "decodes to more than",
        ),  # a small bomb: 2 MiB of spaces
    ],
    ids=["deflate-short", "deflate-byte", "gzip-truncated", "brotli", "gzip-bomb"],
)
def test_undecodable_or_oversized_encodings_are_400s(
    server: MockServer, body: bytes, coding: str, named: str
) -> None:
    for url in (f"{server.url}/openai/v1/chat/completions", f"{server.url}/_mock/journal"):
        r = HTTP.request(
            "POST" if "openai" in url else "GET",
            url,
            content=body,
            headers={**AUTH, "content-encoding": coding},
            timeout=5.0,
        )
        assert r.status_code == 400 and named in r.json()["error"]["message"], r.text


def test_depth_at_the_bound_is_served(server: MockServer) -> None:
    """The bound refuses only what is past it: a body nested exactly MAX_JSON_DEPTH deep is answered."""
    body = {**VALID, "metadata": _nested(MAX_JSON_DEPTH - 1)}
    assert json_depth(json.dumps(body).encode()) == MAX_JSON_DEPTH
    r = HTTP.post(f"{server.url}/openai/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "query", ["since=inf", "since=nan", "since=-inf", "since=1e400", "wait=nan", "wait=inf"]
)
def test_journal_query_numbers_must_be_finite(server: MockServer, query: str) -> None:
    r = HTTP.get(f"{server.url}/_mock/journal?{query}")
    assert r.status_code == 400, r.text
    name = query.split("=")[0]
    assert r.json()["error"]["param"] == name and "finite number" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "hdrs", "named"),
    [
        (b"[" * 5000 + b"]" * 5000, {}, "deeper than"),
        (b'["\\ud800"]', {}, "surrogate"),
        (b'["ok"]', {"content-encoding": "gzip"}, "Content-Encoding"),
    ],
)
def test_enqueue_refuses_hostile_bodies_by_name(
    server: MockServer, sid: str, body: bytes, hdrs: dict[str, str], named: str
) -> None:
    r = HTTP.post(f"{server.url}/_mock/sessions/{sid}/scenarios", content=body, headers=hdrs)
    assert r.status_code == 400 and named in r.json()["error"]["message"], r.text


# ------------------------------------------------------------------------------------------- hypothesis fuzz
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)  # includes lone surrogates, which json.dumps escapes
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
#: The fields the personalities read, so the fuzz reaches their parsers with wrong types, not only unknown keys.
_FIELDS = st.sampled_from(
    ["model", "messages", "contents", "stream", "max_tokens", "max_completion_tokens", "temperature", "top_p",
     "stop", "tools", "tool_choice", "system", "stream_options", "generationConfig", "inferenceConfig",
     "options", "toolConfig", "n", "response_format", "systemInstruction"]
)  # fmt: skip
_BODIES = st.one_of(
    st.dictionaries(_FIELDS, _JSON, max_size=6).map(lambda d: json.dumps({**VALID, **d}).encode()),
    st.dictionaries(_FIELDS, _JSON, max_size=6).map(lambda d: json.dumps(d).encode()),
    st.integers(1, 3 * MAX_JSON_DEPTH).map(lambda n: json.dumps({**VALID, "x": _nested(n)}).encode()),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)  # fmt: skip
#: Header values as a client can send them (latin-1, no CR/LF: httpx refuses those itself).
_HEADER_TEXT = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=40
).map(lambda v: v.strip(" \t"))  # h11 refuses surrounding whitespace
_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.sampled_from([f"Bearer {FAKE_KEY}", "Bearer", "AWS4-HMAC-SHA256 x"])
        | _HEADER_TEXT,
        "x-api-key": _HEADER_TEXT,
        "api-key": _HEADER_TEXT,
        "x-goog-api-key": _HEADER_TEXT,
        "anthropic-version": _HEADER_TEXT,
        "x-mock-session": _HEADER_TEXT,
        "x-mock-scenario": st.sampled_from(["ok", "", "{", "[]", '{"preset": "nope"}', '{"status": 100}'])
        | _HEADER_TEXT,
        "content-type": st.sampled_from(["application/json", "text/plain", ""]) | _HEADER_TEXT,
        "content-encoding": st.sampled_from(["gzip", "deflate", "identity", "GZIP"]),
        "accept": _HEADER_TEXT,
    },
)


@settings(max_examples=150, deadline=None)
@given(route=st.sampled_from(ROUTES), body=_BODIES, hdrs=_HEADERS)
def test_fuzzed_requests_to_every_route_never_get_an_unasked_5xx(
    server: MockServer, route: str, body: bytes, hdrs: dict[str, str]
) -> None:
    """Any body under any of the headers the mock reads: an answer or a 4xx, never a 5xx the client did not ask
    for (a fuzzed x-mock-scenario may ask for an error status; those come back as the provider's JSON error)."""
    try:
        raw_headers = {
            k.encode(): v.encode("latin-1") for k, v in hdrs.items()
        }  # bytes: httpx encodes str as ASCII
        r = HTTP.post(f"{server.url}{route}", content=body, headers=raw_headers, timeout=10.0)
    except httpx.RemoteProtocolError:
        pytest.fail(f"connection dropped without a response: {route} {hdrs} {body[:80]!r}")
    asked = "x-mock-scenario" in hdrs and r.status_code >= 500 and "mock_" not in r.text
    assert not _crashed(r) or asked, (route, hdrs, body[:200], r.status_code, r.text[:300])
    if "mock_request_error" in r.text:
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("request "), r.text


_ADMIN = st.sampled_from(
    [("GET", "/_mock/health"), ("GET", "/_mock/scenarios"), ("GET", "/_mock/journal"), ("DELETE", "/_mock/journal"),
     ("GET", "/_mock/sessions/{sid}"), ("DELETE", "/_mock/sessions/{sid}"), ("POST", "/_mock/sessions/{sid}/scenarios")]
)  # fmt: skip
_QUERY_VALUES = (
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-1", "0", "", "9" * 40, "0x10"]) | _HEADER_TEXT
)


@settings(max_examples=150, deadline=None)
@given(
    endpoint=_ADMIN,
    # control characters (DEL, C1) are refused by the client before anything is sent: not the server's to answer
    sid=st.text(
        st.characters(
            min_codepoint=33, max_codepoint=0x2FFF, exclude_characters="/?#%\\", exclude_categories=("Cc", "Cs")
        ),
        min_size=1,
        max_size=30,
    ),
    query=st.dictionaries(st.sampled_from(["session", "since", "wait", "x"]), _QUERY_VALUES, max_size=3),
    body=_BODIES,
    encoding=st.sampled_from([None, "gzip", "deflate"]),
)  # fmt: skip
def test_fuzzed_admin_calls_never_get_a_5xx(
    server: MockServer,
    endpoint: tuple[str, str],
    sid: str,
    query: dict[str, str],
    body: bytes,
    encoding: str | None,
) -> None:
    method, path = endpoint
    query = {**query, "wait": "0"} if "wait" not in query else query
    hdrs = {"content-encoding": encoding} if encoding else {}
    r = HTTP.request(
        method, f"{server.url}{path.format(sid=sid)}", params=query, content=body, headers=hdrs, timeout=35.0
    )
    assert not _crashed(r), (method, path, sid, query, body[:200], r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.json()["error"]["message"], r.text
