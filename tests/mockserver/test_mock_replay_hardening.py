"""Issue 9 (Low): replay mode stays inside its folder, refuses cassettes it could only serve malformed (CRLF or
bad header names, JSON nested too deeply) with an error naming the file, and finds interactions through an index
that chooses exactly what the old linear scan chose."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import cassettes as fmt
from harness.golden import paths_match
from mockserver.replay import ReplayState, cassette_files


def _interaction(
    uri: str = "https://api.openai.com/v1/chat/completions", body: bytes = b"{}", **resp: Any
) -> Any:
    response = {
        "status": 200,
        "headers": {"content-type": ["application/json"]},
        "body": {"text": "{}"},
        **resp,
    }
    return {"request": {"method": "POST", "uri": uri, "headers": {}, "body": {"text": body.decode()}},
            "response": response}  # fmt: skip


def _write(path: Path, interactions: list[Any]) -> Path:
    path.write_text(json.dumps({fmt.FORMAT_KEY: fmt.FORMAT_VERSION, "interactions": interactions}))
    return path


# ------------------------------------------------------------------------------------------------- symlinks
def test_a_symlink_out_of_the_folder_is_refused_naming_it(tmp_path: Path) -> None:
    outside = _write(tmp_path / "secret.cassette.json", [_interaction()])
    folder = tmp_path / "replay"
    folder.mkdir()
    _write(folder / "inside.cassette.json", [_interaction()])
    (folder / "link.cassette.json").symlink_to(outside)
    with pytest.raises(fmt.CassetteError, match=r"link\.cassette\.json.*outside the folder"):
        cassette_files([folder])


def test_a_symlink_within_the_folder_is_served(tmp_path: Path) -> None:
    folder = tmp_path / "replay"
    (folder / "sub").mkdir(parents=True)
    target = _write(folder / "sub" / "a.cassette.json", [_interaction()])
    (folder / "b.cassette.json").symlink_to(target)
    assert {p.name for p in cassette_files([folder])} == {"a.cassette.json", "b.cassette.json"}


# ------------------------------------------------------------------------------------------ malformed cassettes
@pytest.mark.parametrize(
    ("resp", "named"),
    [
        ({"headers": {"x-evil": ["a\r\nSet-Cookie: s=1"]}}, "CR, LF or NUL"),
        ({"headers": {"x-evil": ["a\nb"]}}, "CR, LF or NUL"),
        ({"headers": {"x-nul": ["a\x00b"]}}, "CR, LF or NUL"),
        ({"headers": {"bad name": ["v"]}}, "not a valid HTTP header name"),
        ({"headers": {"x:y": ["v"]}}, "not a valid HTTP header name"),
        ({"headers": {"": ["v"]}}, "not a valid HTTP header name"),
        ({"headers": {"Content-Type\r\nX": "v"}}, "not a valid HTTP header name"),
    ],
)
def test_header_injection_in_a_cassette_is_a_load_error_naming_the_file(
    tmp_path: Path, resp: dict[str, Any], named: str
) -> None:
    path = _write(tmp_path / "bad.cassette.json", [_interaction(), _interaction(**resp)])
    with pytest.raises(fmt.CassetteError, match=named) as caught:
        ReplayState([path])
    assert "bad.cassette.json" in str(caught.value) and "interactions[1]" in str(caught.value)


@pytest.mark.parametrize("depth", [1100, 5000, 50_000])
def test_deep_json_in_a_cassette_is_a_load_error_naming_the_file(tmp_path: Path, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    text = json.dumps({fmt.FORMAT_KEY: fmt.FORMAT_VERSION, "interactions": [_interaction()]})
    path = tmp_path / "deep.cassette.json"
    path.write_text(text.replace('"body": {"text": "{}"}}}', '"body": {"json": ' + deep + "}}}", 1))
    assert deep in path.read_text()
    with pytest.raises(fmt.CassetteError, match="nested too deeply") as caught:
        ReplayState([path])
    assert "deep.cassette.json" in str(caught.value)


# ------------------------------------------------------------------------------------------------- the index
def _linear_choice(state: ReplayState, plays: list[int], method: str, path: str, body: bytes) -> int | None:
    """The pre-index algorithm, kept as the specification: every interaction scanned per request."""
    candidates = [
        n for n, (_, i) in enumerate(state.interactions)
        if i.request.method == method and paths_match(i.request.uri, path)
    ]  # fmt: skip
    if not candidates:
        return None
    try:
        wanted: Any = json.loads(body) if body else None
    except ValueError:
        wanted = None

    def same_body(n: int) -> bool:
        try:
            return wanted is not None and state.interactions[n][1].request.json() == wanted
        except ValueError:
            return False

    least = min(plays[n] for n in candidates)
    fresh = [n for n in candidates if plays[n] == least]
    chosen = next((n for n in fresh if same_body(n)), fresh[0])
    plays[chosen] += 1
    return chosen


_URIS = st.sampled_from(
    ["https://api.openai.com/v1/chat/completions", "https://x.test/openai/v1/chat/completions",
     "https://api.anthropic.com/v1/messages", "https://h.test/v1/models"]
)  # fmt: skip
_SENT_PATHS = st.sampled_from(
    ["/v1/chat/completions", "/openai/v1/chat/completions", "/chat/completions", "/v1/messages",
     "/anthropic/v1/messages", "/v1/models", "/nothing"]
)  # fmt: skip
_BODIES = st.sampled_from(
    [b"", b"{}", b'{"a": 1}', b'{"b": [1, 2], "a": "x"}', b'{"a": "x", "b": [1, 2]}', b"nope"]
)


@settings(max_examples=150, deadline=None)
@given(
    recorded=st.lists(st.tuples(st.sampled_from(["POST", "GET"]), _URIS, _BODIES), min_size=1, max_size=12),
    sent=st.lists(st.tuples(st.sampled_from(["POST", "GET"]), _SENT_PATHS, _BODIES), min_size=1, max_size=30),
)
def test_the_index_chooses_what_the_linear_scan_chose(
    tmp_path_factory: pytest.TempPathFactory,
    recorded: list[tuple[str, str, bytes]],
    sent: list[tuple[str, str, bytes]],
) -> None:
    items = [{**_interaction(uri, body), "request": {"method": m, "uri": uri, "body": {"text": body.decode()}}}
             for m, uri, body in recorded]  # fmt: skip
    path = _write(tmp_path_factory.mktemp("idx") / "c.cassette.json", items)
    state = ReplayState([path])
    plays = [0] * len(state.interactions)
    for method, sent_path, body in sent:
        expected = _linear_choice(state, plays, method, sent_path, body)
        found = state.find(method, sent_path, body)
        got = None if found is None else next(n for n, (_, i) in enumerate(state.interactions) if i is found)
        assert got == expected, (method, sent_path, body)
    assert state.plays == plays


def test_matching_is_not_a_scan_of_every_interaction(tmp_path: Path) -> None:
    """20k interactions on one path plus 20k elsewhere: a request costs well under a millisecond (the scan cost
    grew with the count: ~150 ms at 200k)."""
    items = [_interaction(body=json.dumps({"n": n}).encode()) for n in range(20_000)]
    items += [_interaction(uri=f"https://h.test/v1/other/{n % 50}") for n in range(20_000)]
    state = ReplayState([_write(tmp_path / "big.cassette.json", items)])
    state.find("POST", "/v1/chat/completions", b"{}")  # builds the index and the body keys once
    start = time.perf_counter()
    for n in range(2000):
        found = state.find("POST", "/v1/chat/completions", json.dumps({"n": 19_999 - n}).encode())
        assert found is not None and found.request.json() == {"n": 19_999 - n}
    per_request = (time.perf_counter() - start) / 2000
    assert per_request < 0.001, f"{per_request * 1000:.2f} ms per request"
