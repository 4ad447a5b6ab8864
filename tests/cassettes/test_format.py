"""The cassette format: exact round trips, chunk boundaries, and errors that name the file and the problem."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness import cassettes as fmt


def _interaction(body: bytes = b'{"ok": true}', chunks: list[bytes] | None = None) -> fmt.Interaction:
    return fmt.Interaction(
        fmt.RecordedRequest(
            "POST",
            "https://api.openai.com/v1/chat/completions",
            {"content-type": ["application/json"]},
            b'{"model": "m", "messages": []}',
        ),
        fmt.RecordedResponse(
            200,
            {
                "content-type": ["text/event-stream" if chunks else "application/json"],
                "x-request-id": ["req_1"],
            },
            b"".join(chunks) if chunks else body,
            "OK",
            chunks,
            [0.0, 0.25][: len(chunks)] if chunks else None,
        ),
        {"model": "m", "messages": []},
    )


def test_round_trip_keeps_bytes_chunks_timings_and_binary(tmp_path: Path) -> None:
    binary = bytes(range(256)) * 3  # an AWS event-stream body is not UTF-8
    items = [
        _interaction(),
        _interaction(chunks=[b'data: {"a": 1}\n\n', "data: é\n\n".encode()]),
        _interaction(body=binary),
    ]
    path = tmp_path / "x.cassette.json"
    fmt.save(path, items)
    back = fmt.load(path).interactions
    assert [i.response.body for i in back] == [i.response.body for i in items]
    assert back[1].response.chunks == items[1].response.chunks and back[1].response.timings == [0.0, 0.25]
    assert back[0].response.chunks is None
    assert json.loads(path.read_text())["interactions"][2]["response"]["body"].keys() == {"base64"}
    assert back[0].request.json() == {"model": "m", "messages": []} and back[0].call == {
        "model": "m",
        "messages": [],
    }
    # request JSON bodies are stored parsed, for review
    assert "json" in json.loads(path.read_text())["interactions"][0]["request"]["body"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b'{"provcert_cassette": 1, "interactions": [', "invalid JSON at line 1"),
        (b'{"interactions": []}', "not a provcert cassette"),
        (b'{"provcert_cassette": 9, "interactions": []}', "unsupported cassette version 9"),
        (b'{"provcert_cassette": 1, "interactions": {}}', "'interactions' must be a list"),
        (
            b'{"provcert_cassette": 1, "interactions": [{"request": {}}]}',
            "interactions[0]: missing 'response'",
        ),
    ],
)
def test_unreadable_cassettes_name_file_and_problem(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.cassette.json"
    path.write_bytes(content)
    with pytest.raises(fmt.CassetteError) as info:
        fmt.load(path)
    assert str(path) in str(info.value) and problem in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (
            lambda r: r["response"].update(status="200"),
            "interactions[0].response.status: expected an HTTP status",
        ),
        (
            lambda r: r["response"].update(body={"base64": "!!"}),
            "interactions[0].response.body.base64: not valid",
        ),
        (lambda r: r["response"].update(chunk_sizes=[1, 2]), "chunk_sizes: they add up to 3 bytes"),
        (lambda r: r["response"].update(timings=[0.1]), "timings: given without chunk_sizes"),
        (lambda r: r["response"].update(body={"zip": "x"}), "unknown body encoding 'zip'"),
        (lambda r: r["request"].update(headers={"a": 1}), "interactions[0].request.headers.a"),
        (lambda r: r.update(call=[]), "interactions[0].call: expected an object"),
    ],
)
def test_malformed_fields_are_located(tmp_path: Path, mutate, problem: str) -> None:
    path = tmp_path / "m.cassette.json"
    fmt.save(path, [_interaction()])
    data = json.loads(path.read_text())
    mutate(data["interactions"][0])
    path.write_text(json.dumps(data))
    with pytest.raises(fmt.CassetteError) as info:
        fmt.load(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(fmt.CassetteError, match="cannot read"):
        fmt.load(tmp_path / "nope.cassette.json")


def test_interrupted_write_keeps_the_old_file_and_leaves_no_partial(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "g.cassette.json"
    fmt.save(path, [_interaction()])
    before = path.read_bytes()

    def crash(*args: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C between writing the temporary file and the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        fmt.save(path, [_interaction(body=b"new")])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.cassette.json"]
