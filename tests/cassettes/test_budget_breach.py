"""The cost cap against a dishonest or broken upstream (issue 9): usage over ``max_tokens`` or over the input bound, a
stream that never stops, a free model, a held or corrupt ledger, several processes at once.

Every live call here is real HTTP over loopback to the mock server playing the upstream; the mock is told what usage
to report (``report_input_tokens``/``report_output_tokens``) or what text to stream, and the expected amounts are
computed from what its journal says it sent, never written down.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import multiprocessing
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.pricing import cost_for
from adapters.registry import ProviderEntry, Registry
from adapters.types import ChatRequest, Usage
from adapters.usage import estimate_tokens
from harness.assertions import chat_request
from harness.budget import (
    BudgetBreach,
    BudgetRefused,
    Ledger,
    LedgerError,
    input_token_bound,
    output_allowance,
    worst_case,
)
from harness.live import LiveResult, live_call
from mockserver.testing import MockServer

FAKE_KEY = "sk-proj-FAKEfakeFAKEfake0123456789abcdefABCDEF"


def _call(
    server: MockServer,
    entry: ProviderEntry,
    ledger: Ledger,
    *,
    kind: Literal["complete", "stream"] = "complete",
    scenario: dict[str, Any] | None = None,
    request: ChatRequest | None = None,
    session: str | None = None,
    cassette: Path | None = None,
) -> LiveResult:
    """One budgeted live call to the mock as the upstream, told by ``scenario`` how to behave."""
    headers = {"x-mock-session": session or server.new_session()}
    if scenario is not None:  # queued, not a header: a long text does not fit in one
        server.queue(headers["x-mock-session"], scenario)
    return asyncio.run(
        live_call(
            entry,
            request or chat_request(entry),
            kind=kind,
            credential=FAKE_KEY,
            ledger=ledger,
            cassette=cassette or ledger.path.with_name("unused.cassette.json"),
            base_url=server.url + entry.mock_path,
            source="mock",
            headers=headers,
        )
    )


def _usage(journal_entry: dict[str, Any]) -> Usage:
    truth = journal_entry["usage_truth"]
    return Usage(
        input_tokens=truth["input_tokens"],
        output_tokens=truth["output_tokens"],
        total_tokens=truth["total_tokens"],
    )


def _priced(entry: ProviderEntry, input_per_1m: Decimal, output_per_1m: Decimal) -> ProviderEntry:
    """``entry`` with its first model at these prices (no cached price)."""
    model = entry.models[0].model_copy(
        update={"input_per_1m": input_per_1m, "output_per_1m": output_per_1m, "cached_input_per_1m": None}
    )
    return entry.model_copy(update={"models": (model,)})


# ---------------------------------------------------------------- usage over the reservation
def test_usage_over_max_tokens_is_a_breach_that_stops_every_later_call(
    server: MockServer, registry: Registry, tmp_path: Path
) -> None:
    """The issue's attack: a $0.0001 cap, 1M output tokens reported for max_tokens=64."""
    entry = registry.get("openai")
    ledger = Ledger.create(tmp_path / "ledger.json", Decimal("0.0001"))
    session = server.new_session()
    with pytest.raises(BudgetBreach, match="reported 1000000 output tokens for max_tokens=64") as caught:
        _call(server, entry, ledger, scenario={"report_output_tokens": 1_000_000}, session=session)
    assert "every further live call is refused" in str(caught.value)
    [sent] = server.journal(session)
    billed = cost_for(entry, entry.models[0].id, _usage(sent)).total_usd
    assert billed > ledger.cap  # the upstream did overspend: the breach books it, it does not hide it
    [breach] = ledger.breaches()
    assert breach["provider"] == "openai" and Decimal(breach["booked"]) == billed == ledger.spent
    # the next call, honest and tiny, is refused before it is sent; so is a probe
    tiny = chat_request(entry).model_copy(update={"max_tokens": 1})
    with pytest.raises(BudgetRefused, match="stopped after a budget breach by openai"):
        _call(server, entry, ledger, request=tiny, session=session)
    with pytest.raises(BudgetRefused, match="stopped after a budget breach by openai"):
        ledger.reserve(entry, tiny, "probe", probe=True)
    assert len(server.journal(session)) == 1
    assert any("BREACH by openai" in line for line in ledger.summary())


def test_input_over_its_bound_is_a_breach_and_the_bound_itself_is_not(
    server: MockServer, registry: Registry, tmp_path: Path
) -> None:
    entry = registry.get("groq")
    bound = input_token_bound(chat_request(entry))
    ledger = Ledger.create(tmp_path / "ledger.json", Decimal("0.05"))
    result = _call(server, entry, ledger, scenario={"report_input_tokens": bound})
    assert result.error is None and not ledger.breaches()
    assert ledger.spent == result.booked <= worst_case(entry, chat_request(entry))
    with pytest.raises(BudgetBreach, match=f"{bound + 1} input tokens, over the request's bound of {bound}"):
        _call(server, entry, ledger, scenario={"report_input_tokens": bound + 1})
    assert len(ledger.breaches()) == 1


def test_a_breach_fails_the_recording_and_leaves_no_cassette(
    server: MockServer, registry: Registry, tmp_path: Path
) -> None:
    entry = registry.get("openai")
    ledger = Ledger.create(tmp_path / "ledger.json", Decimal("0.05"))
    cassette = tmp_path / "openai" / "live-complete.cassette.json"
    with pytest.raises(BudgetBreach):
        asyncio.run(
            live_call(
                entry,
                chat_request(entry),
                kind="complete",
                credential=FAKE_KEY,
                ledger=ledger,
                cassette=cassette,
                record_mode="once",
                base_url=server.url + entry.mock_path,
                source="mock",
                headers={"x-mock-scenario": json.dumps({"report_output_tokens": 65})},
            )
        )
    assert not cassette.exists()


# ---------------------------------------------------------------- streams
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "ollama", "bedrock", "mistral"])
def test_a_stream_past_its_worst_case_is_cut_as_it_arrives(
    server: MockServer, registry: Registry, tmp_path: Path, provider: str
) -> None:
    """A proxy that ignores max_tokens: the mock streams 30,000 characters for max_tokens=64, slowly enough that the
    cut can be seen on the server's side (it stops sending long before the end)."""
    entry = registry.get(provider)
    ledger = Ledger.create(tmp_path / "ledger.json", Decimal("0.05"))
    session = server.new_session()
    text = " ".join(["lantern"] * 3750)
    scenario = {"text": text, "chunks": 2000, "chunk_delay": 0.002}
    started = time.monotonic()
    with pytest.raises(BudgetBreach, match="the stream was cut") as caught:
        _call(server, entry, ledger, kind="stream", scenario=scenario, session=session)
    assert time.monotonic() - started < 3  # cut, not read to the end (2000 chunks at 2 ms each is 4 s)
    [sent] = server.journal(session, wait=5)
    assert sent["client_disconnected"] and not sent["terminated"]
    per_chunk = len(text) / 2000
    allowance_chunks = output_allowance(64) * 4 / per_chunk
    assert sent["chunks_sent"] < 2000 / 4, sent["chunks_sent"]
    assert sent["chunks_sent"] >= allowance_chunks - 1  # not cut before the allowance was passed either
    [breach] = ledger.breaches()
    assert breach["provider"] == provider and breach["booked"] == str(ledger.spent)
    assert "max_tokens=64" in str(caught.value)
    # what was booked bounds what can have been received: at least max_tokens' worth of output was paid for
    assert ledger.spent >= worst_case(entry, chat_request(entry))


def test_a_stream_reporting_usage_over_max_tokens_is_a_breach(
    server: MockServer, registry: Registry, tmp_path: Path
) -> None:
    entry = registry.get("anthropic")
    ledger = Ledger.create(tmp_path / "ledger.json", Decimal("0.05"))
    session = server.new_session()
    with pytest.raises(BudgetBreach, match="reported 5000 output tokens for max_tokens=64"):
        _call(server, entry, ledger, kind="stream", scenario={"report_output_tokens": 5000}, session=session)
    [sent] = server.journal(session)
    assert (
        sent["terminated"] and not sent["client_disconnected"]
    )  # not cut: the text was short, the usage the lie
    assert ledger.spent == cost_for(entry, entry.models[0].id, _usage(sent)).total_usd


def test_an_honest_stream_is_not_cut_and_books_its_reported_cost(
    server: MockServer, registry: Registry, tmp_path: Path
) -> None:
    entry = registry.get("openai")
    ledger = Ledger.create(tmp_path / "ledger.json", Decimal("0.05"))
    session = server.new_session()
    result = _call(server, entry, ledger, kind="stream", scenario={"chunks": 40}, session=session)
    [sent] = server.journal(session)
    assert result.error is None and sent["terminated"] and not ledger.breaches()
    assert ledger.spent == cost_for(entry, entry.models[0].id, _usage(sent)).total_usd


def test_no_real_recording_would_be_cut_at_its_own_output_count() -> None:
    """OUTPUT_SLACK against real traffic: for every golden cassette of a real provider with reported usage, a stream
    whose max_tokens was exactly the output it reported would not have been cut (its text stays in the allowance)."""
    from harness.cassettes import DEFAULT_ROOT

    checked = 0
    for path in sorted(DEFAULT_ROOT.glob("*/real-*.expected.json")):
        for result in json.loads(path.read_text(encoding="utf-8"))["results"]:
            if result.get("response"):
                response = result["response"]
                text = response["text"] + "".join(
                    c["name"] + json.dumps(c["arguments"]) for c in response["tool_calls"]
                )
                usage = response["usage"]
            else:
                events = result.get("events") or []
                text = "".join(
                    e.get("text", "") + (e.get("name") or "") + e.get("arguments_fragment", "")
                    for e in events
                )
                usage = next((e["usage"] for e in events if e.get("type") == "end"), None)
            if not usage or usage["source"] != "reported" or not usage["output_tokens"]:
                continue
            checked += 1
            assert estimate_tokens(text) <= output_allowance(usage["output_tokens"]), (
                path.name,
                usage,
                len(text),
            )
    assert checked >= 20, f"only {checked} real recordings with reported usage: the check proves little"


# ---------------------------------------------------------------- the accounting property
_prices = st.decimals(min_value=0, max_value=100, places=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    input_price=_prices,
    output_price=_prices,
    max_tokens=st.integers(min_value=1, max_value=4096),
    report_input=st.none()
    | st.integers(min_value=0, max_value=500)
    | st.integers(min_value=0, max_value=10**7),
    report_output=st.none()
    | st.integers(min_value=0, max_value=5000)
    | st.integers(min_value=0, max_value=10**7),
    cap=st.decimals(min_value=0, max_value=Decimal("0.5"), places=6) | st.decimals(min_value=0, max_value=2),
    kind=st.sampled_from(["complete", "stream"]),
)
def test_booked_never_passes_the_cap_unless_a_breach_is_flagged(
    server: MockServer,
    registry: Registry,
    input_price: Decimal,
    output_price: Decimal,
    max_tokens: int,
    report_input: int | None,
    report_output: int | None,
    cap: Decimal,
    kind: Literal["complete", "stream"],
) -> None:
    entry = _priced(registry.get("openai"), input_price, output_price)
    request = chat_request(entry).model_copy(update={"max_tokens": max_tokens})
    scenario: dict[str, Any] = {}
    if report_input is not None:
        scenario["report_input_tokens"] = report_input
    if report_output is not None:
        scenario["report_output_tokens"] = report_output
    session = server.new_session()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger.create(Path(tmp) / "ledger.json", cap)
        outcome: str
        try:
            _call(server, entry, ledger, kind=kind, scenario=scenario, request=request, session=session)
            outcome = "ok"
        except BudgetRefused:
            outcome = "refused"
        except BudgetBreach:
            outcome = "breach"
        state = ledger.state()
    event(f"{kind} {outcome}")
    spent = Decimal(state["spent"])
    journal = server.journal(session)
    if outcome == "refused":
        assert worst_case(entry, request) > cap and not journal and spent == 0
        return
    [sent] = journal
    usage = _usage(sent)
    over = (
        usage.output_tokens > max_tokens
        or usage.input_tokens > input_token_bound(request)
        or estimate_tokens(sent["text_sent"] or "") > output_allowance(max_tokens)
    )
    assert (outcome == "breach") == over == bool(state["breaches"]), (usage, sent["text_sent"], state)
    if outcome == "ok":
        assert spent == cost_for(entry, request.model, usage).total_usd <= worst_case(entry, request) <= cap
    else:
        assert len(state["breaches"]) == 1 and not state["reserved"]
        # not cut: booked at least what the upstream billed, however far over the cap; cut: its usage never came,
        # so at least its own worst case (what an honest completion would have cost)
        cut = "the stream was cut" in state["breaches"][0]["reason"]
        assert spent >= (
            worst_case(entry, request) if cut else cost_for(entry, request.model, usage).total_usd
        )


# ---------------------------------------------------------------- a free model
def test_a_free_model_books_nothing_and_poisons_nothing(
    server: MockServer, registry: Registry, tmp_path: Path
) -> None:
    """$0 means free: spend stays 0 and never exhausts even a $0 cap, so later providers still run; a breach of
    max_tokens on a free model is still a breach."""
    ollama, openai = registry.get("ollama"), registry.get("openai")
    assert worst_case(ollama, chat_request(ollama)) == 0
    zero = Ledger.create(tmp_path / "zero.json", Decimal(0))
    for kind in ("complete", "stream"):
        result = _call(server, ollama, zero, kind=kind)
        assert result.error is None and result.booked == 0
    assert zero.exhausted() is None and zero.spent == 0
    with pytest.raises(BudgetRefused, match="before sending"):  # a paid call does not fit in $0
        _call(server, openai, zero)

    ledger = Ledger.create(tmp_path / "ledger.json", Decimal("0.05"))
    _call(server, ollama, ledger)
    assert _call(server, openai, ledger).booked > 0  # not poisoned for the next provider
    with pytest.raises(BudgetBreach, match="for max_tokens=64"):
        _call(server, ollama, ledger, scenario={"report_output_tokens": 100_000})
    [breach] = ledger.breaches()
    assert breach["provider"] == "ollama" and breach["booked"] == "0"
    with pytest.raises(BudgetRefused, match="budget breach by ollama"):
        _call(server, openai, ledger)


# ---------------------------------------------------------------- the ledger file and its lock
def test_a_held_lock_times_out_with_a_clear_error_and_nothing_is_sent(
    server: MockServer, registry: Registry, tmp_path: Path
) -> None:
    entry = registry.get("openai")
    path = tmp_path / "ledger.json"
    Ledger.create(path, Decimal("0.05"))
    ledger = Ledger(path, lock_timeout=0.3)
    session = server.new_session()
    with open(path.with_name(path.name + ".lock"), "a+") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)  # another open file: flock makes this process wait too
        started = time.monotonic()
        with pytest.raises(
            LedgerError, match=r"ledger\.json\.lock: the live ledger's lock was held for more than"
        ):
            _call(server, entry, ledger, session=session)
        assert 0.3 <= time.monotonic() - started < 3
        fcntl.flock(holder.fileno(), fcntl.LOCK_UN)
    assert server.journal(session, wait=0.2) == []
    assert _call(server, entry, ledger).error is None  # released: works again


def test_the_lock_timeout_comes_from_the_environment_and_a_bad_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVCERT_LEDGER_LOCK_TIMEOUT", "0.25")
    assert Ledger(tmp_path / "l.json").lock_timeout == 0.25
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("PROVCERT_LEDGER_LOCK_TIMEOUT", bad)
        with pytest.raises(LedgerError, match="PROVCERT_LEDGER_LOCK_TIMEOUT"):
            Ledger(tmp_path / "l.json")


def test_a_missing_ledger_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=r"nothing\.json: no live ledger here"):
        Ledger(tmp_path / "nothing.json").exhausted()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.binary(max_size=64)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries(
        {
            "cap": st.text(max_size=6) | st.integers(),
            "spent": st.sampled_from(["0", "NaN", "1e999999", "x"]),
            "reserved": st.dictionaries(st.text(max_size=3), st.text(max_size=3) | st.integers(), max_size=2),
            "calls": st.just([]),
            "refused": st.just([]),
        }
    ).map(lambda v: json.dumps(v).encode())
)
def test_a_corrupt_ledger_is_a_clear_error_naming_the_file(
    registry: Registry, tmp_path: Path, content: bytes
) -> None:
    entry = registry.get("openai")
    path = tmp_path / "corrupt-ledger.json"
    path.write_bytes(content)
    ledger = Ledger(path, lock_timeout=1)
    for operation in (
        ledger.state,
        ledger.exhausted,
        lambda: ledger.reserve(entry, chat_request(entry), "x"),
    ):
        try:
            operation()
        except LedgerError as exc:
            assert str(path) in str(exc) and (
                "not JSON" in str(exc) or "not a provcert live ledger" in str(exc)
            )
        except BudgetRefused:
            pass  # a well-formed ledger that refuses (exhausted, or a cap too small): a ledger, not a crash
    assert all(
        str(path) in line or "live spend" in line or line.startswith("  ") for line in ledger.summary()
    )


# ---------------------------------------------------------------- several processes at once
def _live_worker(
    path: str,
    url: str,
    provider_json: str,
    rounds: int,
    scenario: str,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    entry = ProviderEntry.model_validate_json(provider_json)
    ledger = Ledger(Path(path))
    counts = {"ok": 0, "refused": 0, "breach": 0}
    for _ in range(rounds):
        try:
            asyncio.run(
                live_call(
                    entry,
                    chat_request(entry),
                    kind="complete",
                    credential=FAKE_KEY,
                    ledger=ledger,
                    cassette=Path(path).with_name("unused.cassette.json"),
                    base_url=url + entry.mock_path,
                    source="mock",
                    headers={"x-mock-scenario": scenario},
                )
            )
            counts["ok"] += 1
        except BudgetRefused:
            counts["refused"] += 1
        except BudgetBreach:
            counts["breach"] += 1
    out.put(counts)


def _run_workers(
    server: MockServer, entry: ProviderEntry, path: Path, scenario: dict[str, Any]
) -> list[dict[str, int]]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_live_worker,
            args=(str(path), server.url, entry.model_dump_json(), 6, json.dumps(scenario), out),
        )
        for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    counts = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(10)
    return counts


def test_an_honest_upstream_never_passes_the_cap_across_processes(
    server: MockServer, registry: Registry, tmp_path: Path
) -> None:
    entry = registry.get("openai")
    worst = worst_case(entry, chat_request(entry))
    cap = worst * 5 + worst / 3  # room for 5 worst cases; real costs are lower, so a few more fit
    path = tmp_path / "shared.json"
    Ledger.create(path, cap)
    counts = _run_workers(server, entry, path, {"preset": "ok"})
    ledger = Ledger(path)
    state = ledger.state()
    sent = [c for c in state["calls"] if c["sent"]]
    assert sum(c["ok"] for c in counts) == len(sent) >= 5 and sum(c["refused"] for c in counts) > 0
    assert not state["breaches"] and not state["reserved"]
    assert ledger.spent == sum(Decimal(c["booked"]) for c in sent) <= cap


def test_a_dishonest_upstream_is_stopped_on_the_first_call_in_every_process(
    server: MockServer, registry: Registry, tmp_path: Path
) -> None:
    entry = registry.get("openai")
    path = tmp_path / "shared.json"
    Ledger.create(path, Decimal("0.0001"))
    counts = _run_workers(server, entry, path, {"report_output_tokens": 1_000_000})
    state = Ledger(path).state()
    sent = [c for c in state["calls"] if c["sent"]]
    # only calls already in flight when the first breach was booked could be sent: at most one per process
    assert 1 <= len(state["breaches"]) == len(sent) <= 4 == len(counts)
    assert sum(c["breach"] for c in counts) == len(sent) and sum(c["ok"] for c in counts) == 0
    assert sum(c["refused"] for c in counts) == 4 * 6 - len(sent)
