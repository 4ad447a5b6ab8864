"""The committed golden cassettes: imports reproduce them, provenance is complete, snapshots catch a changed adapter,
the drift check catches a mock that diverges from the real recordings' schemas, and loading beats vcrpy's YAML."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from harness import cassettes as fmt
from harness import real_cassettes
from harness.golden import diff_outcomes, golden_results, read_snapshot
from harness.importer import import_file, origins
from harness.schemas import response_errors

ROOT = Path(__file__).resolve().parents[2]
#: every provider must have golden cassettes; these are checked here in depth (imports reproduce, provenance)
PROVIDERS = ["openai", "groq", "deepseek", "azure-openai"]


def test_every_registered_provider_has_golden_cassettes(registry) -> None:
    missing = [e.provider_id for e in registry if not fmt.golden_paths(e.provider_id)]
    assert not missing, f"no golden cassettes for {missing}: run python -m harness.golden_tool all"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_imports_reproduce_the_committed_cassettes_and_leave_the_originals(
    registry, tmp_path, provider
) -> None:
    """Each committed imported cassette is what importing its recorded source gives today (new recordings in the shared
    folder are not imported by this test: they are imported on purpose, with review, by ``harness.golden_tool``)."""
    originals = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in real_cassettes.cassettes()}
    entry = registry.get(provider)
    committed = [p for p in fmt.golden_paths(provider) if fmt.read_provenance(p)["source"] == "imported"]
    assert committed, f"{provider} has no imported golden cassette"
    for path in committed:
        source = real_cassettes.SHARED_REAL_CASSETTES / fmt.read_provenance(path)["origin"]["path"]
        written = import_file(source, [entry], tmp_path)
        assert [w.name for w in written] == [path.name], f"{source} no longer imports as {path.name}"
        assert path.read_bytes() == written[0].read_bytes(), f"{path} is stale: re-run the import"
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in real_cassettes.cassettes()} == originals


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provenance_beside_every_cassette(provider) -> None:
    index = origins()
    for path in fmt.golden_paths(provider):
        provenance = fmt.read_provenance(path)
        assert provenance is not None, f"{path} has no provenance"
        assert provenance["source"] in ("live", "imported", "mock") and provenance["provider"] == provider
        assert provenance["model"] and provenance["adapter_version"].startswith("provcert ")
        if provenance["source"] == "imported":
            origin = provenance["origin"]
            folder = origin["path"].split("/")[0]
            assert (origin["repository"], origin["commit"], origin["licence"]) == (
                index[folder].repository,
                index[folder].commit,
                index[folder].licence,
            )
        else:
            assert provenance["recorded_at"] and provenance["cost_usd"] is not None
        assert read_snapshot(fmt.load(path)) is not None, f"{path} has no reviewed snapshot"


async def test_a_changed_adapter_result_shows_as_a_snapshot_difference(registry, tmp_path) -> None:
    source = fmt.DEFAULT_ROOT / "openai" / "real-test_valid_response.cassette.json"
    cassette = fmt.load(source)
    expected = read_snapshot(cassette)
    assert expected is not None
    body = json.loads(cassette.interactions[0].response.body)
    body["choices"][0]["message"]["content"] = "something else"
    cassette.interactions[0].response.body = json.dumps(body).encode()
    (result,) = await golden_results(registry.get("openai"), cassette)
    diffs = diff_outcomes(expected["results"][0], result.outcome)
    assert diffs and "response.text" in diffs[0]


def test_the_drift_check_fails_when_the_mock_diverges() -> None:
    good = json.loads((fmt.DEFAULT_ROOT / "openai" / "real-test_valid_response.cassette.json").read_text())
    body = good["interactions"][0]["response"]["body"]["text"].encode()
    assert response_errors("openai", 200, "application/json", body) == []
    drifted = json.loads(body)
    drifted["choices"][0]["message"]["role"] = "model"  # e.g. a mock that speaks Gemini's role name
    del drifted["created"]
    problems = response_errors("openai", 200, "application/json", json.dumps(drifted).encode())
    assert any("created" in p for p in problems) and any("role" in p for p in problems)
    stream = b'data: {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{}]}\n\n'
    assert any("choices/0" in p for p in response_errors("openai", 200, "text/event-stream", stream))


def test_loading_beats_vcrpys_yaml_five_times() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_cassette_load import run
    finally:
        sys.path.remove(str(ROOT / "bench"))
    result = run(n=1000, repeat=5, chunks_per_stream=10)
    assert result["ratio"] >= 5, (
        f"provcert loads only {result['ratio']:.1f}x faster than vcrpy YAML: {result}"
    )
