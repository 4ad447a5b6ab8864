"""Choosing real recordings by endpoint from INDEX.md (harness.real_cassettes.index / recordings).

The shared folder grows; tests that counted files or matched hosts broke every time it did. These tests pin the
contract that replaced them: a selection is by INDEX.md provider and endpoint, new rows of other endpoints never change
it, the index's abbreviations (``*`` for project and location, paths cut at 80 characters, ``%3A`` or ``:``) resolve to
the recorded path, and a broken index fails naming the row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import real_cassettes
from harness.real_cassettes import CassetteFormatError, index, recordings

HEADER = """# Real recorded provider traffic

| # | path | provider | endpoint | stream | HTTP status | storage | notes |
|---|---|---|---|---|---|---|---|
"""


def _cassette(path: Path, *uris: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    interactions = "".join(
        f"""- request: {{method: POST, uri: '{uri}', headers: {{}}, body: null}}
  response: {{status: {{code: 200, message: OK}}, headers: {{}}, body: {{string: '{{}}'}}}}
"""
        for uri in uris
    )
    path.write_text(f"interactions:\n{interactions}version: 1\n", encoding="utf-8")


def _row(number: int, rel: str, provider: str, endpoint: str, stream: str = "no", status: str = "200") -> str:
    return f"| {number} | `{rel}` | {provider} | `{endpoint}` | {stream} | {status} | vcr [str] | |\n"


def _root(tmp_path: Path, rows: list[str]) -> Path:
    root = tmp_path / f"real-{len(list(tmp_path.iterdir()))}"
    root.mkdir()
    (root / "INDEX.md").write_text(HEADER + "".join(rows), encoding="utf-8")
    return root


def test_rows_of_other_endpoints_never_change_a_selection(tmp_path: Path) -> None:
    endpoints = {"chat": "chat/completions", "emb": "embeddings", "models": "models"}
    roots = []
    for names in (["chat"], ["chat", "emb", "models"]):  # the folder before and after it grew
        rows = []
        for number, name in enumerate(names, 1):
            rows.append(_row(number, f"src/{name}.yaml", "OpenAI", f"/v1/{endpoints[name]}"))
        root = _root(tmp_path, rows)
        for name in names:
            _cassette(root / f"src/{name}.yaml", f"https://api.openai.com/v1/{endpoints[name]}")
        roots.append(root)
    before, after = roots
    select = "^/v1/chat/completions$"
    assert [r.number for r in recordings("OpenAI", select, root=before)] == [1]
    assert [r.number for r in recordings("OpenAI", select, root=after)] == [1]
    assert [r.number for r in recordings("OpenAI", root=after)] == [1, 2, 3]
    assert [r.number for r in recordings("OpenAI", "/embeddings$", root=after)] == [2]
    assert recordings("Anthropic", root=after) == []


def test_abbreviated_endpoints_resolve_to_the_recorded_path(tmp_path: Path) -> None:
    root = tmp_path / "real"
    vertex = (
        "/v1beta1/projects/p-1/locations/global/publishers/google/models/gemini-2.0-flash:generateContent"
    )
    _cassette(root / "a/vertex.yaml", f"https://aiplatform.googleapis.com{vertex}")
    bedrock = "/model/us.anthropic.claude-v1:0/converse"
    _cassette(root / "b/bedrock.yaml", f"https://bedrock-runtime.us-east-1.amazonaws.com{bedrock}")
    cut = "/v1beta1/projects/*/locations/*/publishers/google/models/gemini-2.0-flash:genera"
    assert len(cut) == 80  # INDEX.md's column width
    (root / "INDEX.md").write_text(
        HEADER
        + _row(22, "a/vertex.yaml", "Google Vertex AI (Gemini)", cut)
        + _row(3, "b/bedrock.yaml", "AWS Bedrock", "/model/us.anthropic.claude-v1%3A0/converse"),
        encoding="utf-8",
    )
    rows = {r.number: r for r in index(root)}
    assert rows[22].endpoint == vertex and rows[3].endpoint == bedrock
    assert [r.number for r in recordings(endpoint=":generateContent$", root=root)] == [22]
    assert rows[22].interactions() and rows[22].id == "22-vertex"


def test_a_row_naming_a_missing_file_fails_naming_the_row(tmp_path: Path) -> None:
    root = _root(tmp_path, [_row(7, "gone/x.yaml", "OpenAI", "/v1/models")])
    with pytest.raises(CassetteFormatError, match=r"row #7 names gone/x.yaml, which is not there"):
        index(root)


def test_a_row_whose_endpoint_no_interaction_has_fails_naming_file_and_row(tmp_path: Path) -> None:
    root = tmp_path / "real"
    _cassette(root / "src/chat.yaml", "https://api.openai.com/v1/chat/completions")
    (root / "INDEX.md").write_text(
        HEADER + _row(9, "src/chat.yaml", "OpenAI", "/v1/responses"), encoding="utf-8"
    )
    with pytest.raises(
        CassetteFormatError, match=r"chat\.yaml: INDEX.md row #9 names endpoint '/v1/responses'"
    ):
        index(root)


def test_an_index_without_file_rows_is_an_error(tmp_path: Path) -> None:
    root = _root(tmp_path, [])
    with pytest.raises(CassetteFormatError, match="no file rows found"):
        index(root)


def test_the_shared_index_resolves_every_row_and_every_chat_wire_selects_something() -> None:
    """The real INDEX.md: every row's file is there and its endpoint is a path some interaction has."""
    if not real_cassettes.SHARED_REAL_CASSETTES.is_dir():
        pytest.skip("the shared real-cassettes folder is not here")
    rows = index()
    assert all(r.path.is_file() and r.endpoint.startswith("/") for r in rows)
    assert len({r.number for r in rows}) == len(rows), "row numbers repeat"
    for wire in real_cassettes.WIRE_CHAT_ENDPOINTS:
        assert real_cassettes.chat_recordings(wire), f"no indexed recording of the {wire} chat surface"
    with pytest.raises(KeyError, match="no chat endpoint known for wire 'nope'"):
        real_cassettes.chat_recordings("nope")
