"""The live path against the mock server acting as upstream: real vcrpy, real loopback, real budget.

Cassettes come out written, scrubbed and budgeted exactly as they would against the real API; record modes never
overwrite a golden cassette unless they say so; an interrupted recording leaves the previous cassette intact.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from adapters.registry import Registry
from adapters.types import End, TextDelta
from harness import cassettes as fmt
from harness.assertions import chat_request
from harness.budget import BudgetRefused, Ledger
from harness.golden import ReplayTransport, golden_results
from harness.live import live_call
from harness.recording import SecretLeakError
from harness.secrets import scan_all
from mockserver.testing import MockServer

FAKE_KEY = "sk-proj-FAKEfakeFAKEfake0123456789abcdefABCDEF"  # the same fake key as conftest.FAKE_KEY


async def _record(
    server, registry, ledger, path, *, provider="openai", kind="complete", mode="once", request=None
):
    entry = registry.get(provider)
    return await live_call(
        entry,
        request or chat_request(entry),
        kind=kind,
        credential=FAKE_KEY,
        ledger=ledger,
        cassette=path,
        record_mode=mode,
        base_url=server.url + entry.mock_path,
        source="mock",
    )


@pytest.mark.parametrize("provider", ["openai", "groq"])
@pytest.mark.parametrize("kind", ["complete", "stream"])
async def test_recorded_cassette_is_scrubbed_budgeted_and_provenanced(
    server: MockServer, registry: Registry, ledger: Ledger, tmp_path: Path, provider: str, kind: str
) -> None:
    path = tmp_path / provider / f"live-{kind}.cassette.json"
    result = await _record(server, registry, ledger, path, provider=provider, kind=kind)
    assert result.error is None and result.saved
    text = path.read_text()
    assert FAKE_KEY not in text and FAKE_KEY[8:30] not in text
    assert not scan_all([path, fmt.sibling(path, fmt.PROVENANCE_SUFFIX)])
    (interaction,) = fmt.load(path).interactions
    entry = registry.get(provider)
    assert (
        interaction.request.uri == entry.base_url + "/chat/completions"
    )  # recorded under the real API's URL
    assert interaction.request.header("authorization") == "Bearer [REDACTED]"
    assert interaction.response.header(
        "x-request-id",
    ).startswith("req_")  # request ids are kept
    assert interaction.call is not None and interaction.call["model"] == entry.models[0].id
    if kind == "stream":
        assert interaction.response.chunks is not None and len(interaction.response.chunks) > 3
        assert interaction.response.timings is not None and len(interaction.response.timings) == len(
            interaction.response.chunks
        )
    provenance = fmt.read_provenance(path)
    assert provenance is not None
    assert provenance["source"] == "mock" and provenance["provider"] == provider
    assert provenance["model"] == entry.models[0].id and provenance["recorded_at"]
    assert (
        provenance["adapter_version"].startswith("provcert ") and "sha256:" in provenance["adapter_version"]
    )
    state = ledger.state()
    assert provenance["cost_usd"] == state["calls"][0]["booked"] and state["calls"][0]["actual_known"]
    assert 0 < float(provenance["cost_usd"]) < float(state["calls"][0]["worst_case"])


async def test_mode_none_records_nothing(server, registry, ledger, tmp_path) -> None:
    path = tmp_path / "c.cassette.json"
    result = await _record(server, registry, ledger, path, mode="none")
    assert result.error is None and result.response is not None
    assert not path.exists() and not list(tmp_path.glob("*cassette*"))
    assert len(ledger.state()["calls"]) == 1  # still budgeted


async def test_once_never_overwrites_and_replays_without_sending(server, registry, ledger, tmp_path) -> None:
    path = tmp_path / "c.cassette.json"
    await _record(server, registry, ledger, path, mode="once")
    before = path.read_bytes(), fmt.sibling(path, fmt.PROVENANCE_SUFFIX).read_bytes()
    result = await _record(server, registry, ledger, path, mode="once")
    assert result.error is None and result.response is not None
    assert result.wire == [], "mode once with an existing cassette must not reach the network"
    assert (path.read_bytes(), fmt.sibling(path, fmt.PROVENANCE_SUFFIX).read_bytes()) == before
    assert ledger.state()["calls"][-1]["sent"] is False and ledger.state()["calls"][-1]["booked"] == "0"


async def test_once_refuses_a_new_request(server, registry, ledger, tmp_path) -> None:
    path = tmp_path / "c.cassette.json"
    entry = registry.get("openai")
    await _record(server, registry, ledger, path, mode="once")
    before = path.read_bytes()
    result = await _record(
        server, registry, ledger, path, mode="once", request=chat_request(entry, text="other")
    )
    assert result.error is not None  # vcrpy refused the unrecorded request; nothing went out
    assert path.read_bytes() == before


async def test_new_episodes_all_and_rewrite(server, registry, ledger, tmp_path) -> None:
    path = tmp_path / "c.cassette.json"
    entry = registry.get("openai")
    first, second = chat_request(entry, text="first"), chat_request(entry, text="second")
    await _record(server, registry, ledger, path, mode="once", request=first)
    await _record(server, registry, ledger, path, mode="new_episodes", request=second)
    texts = [i.call["messages"][1]["content"] for i in fmt.load(path).interactions]
    assert texts == ["first", "second"]
    ids_before = [i.response.header("x-request-id") for i in fmt.load(path).interactions]
    await _record(
        server, registry, ledger, path, mode="all", request=first
    )  # re-recorded, the other one kept
    after = fmt.load(path).interactions
    assert len(after) == 2 and after[-1].response.header("x-request-id") not in ids_before
    await _record(server, registry, ledger, path, mode="rewrite", request=second)  # only this run's
    assert [i.call["messages"][1]["content"] for i in fmt.load(path).interactions] == ["second"]


class Interrupt(KeyboardInterrupt):
    pass


async def test_ctrl_c_mid_stream_leaves_the_previous_cassette(
    server, registry, ledger, tmp_path, monkeypatch
) -> None:
    path = tmp_path / "c.cassette.json"
    await _record(server, registry, ledger, path, kind="stream", mode="once")
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir() if "ledger" not in p.name)
    from harness import budget

    original = budget.BudgetedAdapter.stream

    async def interrupted(self, request, **kw):
        async for event in original(self, request, **kw):
            if isinstance(event, TextDelta):
                raise Interrupt  # Ctrl-C while chunks are arriving
            yield event

    monkeypatch.setattr(budget.BudgetedAdapter, "stream", interrupted)
    with pytest.raises(Interrupt):
        await _record(server, registry, ledger, path, kind="stream", mode="rewrite")
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir() if "ledger" not in p.name) == before
    # the abandoned call's reservation still counts against the cap at its worst case
    assert ledger.state()["reserved"], "an interrupted live call must stay counted against the cap"


async def test_cap_reached_mid_test_leaves_the_previous_cassette(server, registry, tmp_path) -> None:
    path = tmp_path / "c.cassette.json"
    entry = registry.get("openai")
    roomy = Ledger.create(tmp_path / "l1.json", Decimal("1"))
    await _record(server, registry, roomy, path, mode="once")
    before = path.read_bytes()
    tight = Ledger.create(tmp_path / "l2.json", Decimal("0"))
    with pytest.raises(BudgetRefused, match="before sending"):
        await _record(server, registry, tight, path, mode="rewrite", request=chat_request(entry, text="x"))
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


async def test_a_secret_left_after_redaction_is_never_written(
    server, registry, ledger, tmp_path, monkeypatch
) -> None:
    path = tmp_path / "c.cassette.json"
    from harness.recording import Redactor

    monkeypatch.setattr(Redactor, "header", lambda self, name, value: value)  # a redaction bug
    monkeypatch.setattr(Redactor, "text", lambda self, text: text)
    with pytest.raises(SecretLeakError, match=r"bearer-token|openai") as info:
        await _record(server, registry, ledger, path, mode="once")
    assert FAKE_KEY not in str(info.value)
    assert not path.exists() and not list(tmp_path.glob(".*partial"))


async def test_replay_keeps_chunk_boundaries_that_vcrpy_collapses(server, registry, ledger, tmp_path) -> None:
    path = tmp_path / "s.cassette.json"
    await _record(server, registry, ledger, path, kind="stream", mode="once")
    (interaction,) = fmt.load(path).interactions
    # ours: the adapter's client reads the chunks as recorded
    transport = ReplayTransport([interaction])
    async with (
        httpx.AsyncClient(transport=transport) as client,
        client.stream("POST", interaction.request.uri, json={}) as response,
    ):
        ours = [c async for c in response.aiter_raw()]
    assert ours == interaction.response.chunks and len(ours) > 3
    # vcrpy's own replay of the same cassette gives one blob
    import vcr

    from harness.recording import AtomicPersister, ProvcertSerializer

    recorder = vcr.VCR(record_mode="none", serializer="provcert", match_on=("method", "path"))
    recorder.register_serializer("provcert", ProvcertSerializer())
    recorder.register_persister(AtomicPersister())
    with recorder.use_cassette(str(path)):
        async with (
            httpx.AsyncClient() as client,
            client.stream("POST", interaction.request.uri, json={}) as response,
        ):
            theirs = [c async for c in response.aiter_raw()]
    assert len(theirs) == 1 and theirs[0] == interaction.response.body


async def test_recorded_stream_replays_to_the_same_events(server, registry, ledger, tmp_path) -> None:
    path = tmp_path / "s.cassette.json"
    live = await _record(server, registry, ledger, path, kind="stream", mode="once")
    (replayed,) = await golden_results(registry.get("openai"), fmt.load(path))
    assert replayed.outcome["events"] == [json.loads(e.model_dump_json()) for e in live.events]
    assert isinstance(live.events[-1], End)


def test_a_save_that_raises_still_undoes_vcrpys_patches(tmp_path) -> None:
    """vcrpy saves before it unpatches: a persister that raises must not leave httpx recording for the rest of the
    process (it did: later mock-server admin calls of other tests went through a dead recorder's hooks)."""
    import vcr

    from harness.recording import unpatched_on_exit
    from mockserver.testing import MockServer

    class Refusing:
        @staticmethod
        def load_cassette(path, serializer):
            from vcr.persisters.filesystem import CassetteNotFoundError

            raise CassetteNotFoundError()

        @staticmethod
        def save_cassette(path, data, serializer):
            raise RuntimeError("refused to save")

    original = (httpx.HTTPTransport.handle_request, httpx.AsyncHTTPTransport.handle_async_request)
    recorder = vcr.VCR(record_mode="all")
    recorder.register_persister(Refusing)
    with MockServer() as server:
        with (
            pytest.raises(RuntimeError, match="refused to save"),
            unpatched_on_exit(recorder.use_cassette(str(tmp_path / "c.yaml"))),
        ):
            assert httpx.HTTPTransport.handle_request is not original[0]  # recording
            httpx.get(f"{server.url}/_mock/health")
        assert (httpx.HTTPTransport.handle_request, httpx.AsyncHTTPTransport.handle_async_request) == original
        assert httpx.get(f"{server.url}/_mock/health").status_code == 200
