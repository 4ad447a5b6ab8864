"""The cost cap: worst case before sending, real cost after, refusals, one ledger across processes."""

from __future__ import annotations

import multiprocessing
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from adapters.types import ChatRequest, Message, Usage
from harness.assertions import chat_request
from harness.budget import BudgetRefused, Ledger, SendGate, UnbudgetedSend, input_token_bound, worst_case
from harness.recording import LiveTransport


def test_worst_case_is_input_bound_plus_max_tokens_at_registry_prices(registry) -> None:
    entry = registry.get("openai")  # gpt-4o-mini: 0.15 in, 0.60 out per 1M
    request = chat_request(entry)
    bound = input_token_bound(request)
    assert bound >= sum(len(m.content) for m in request.messages)  # never below one token per byte
    expected = (Decimal(bound) * Decimal("0.15") + Decimal(64) * Decimal("0.60")) / Decimal(1_000_000)
    assert worst_case(entry, request) == expected


def test_unbounded_calls_are_refused(registry) -> None:
    entry = registry.get("openai")
    with pytest.raises(BudgetRefused, match="without max_tokens"):
        worst_case(entry, chat_request(entry).model_copy(update={"max_tokens": None}))
    unpriced = ChatRequest(
        model="no-such-model-x", messages=(Message(role="user", content="hi"),), max_tokens=5
    )
    with pytest.raises(BudgetRefused, match="no price"):
        worst_case(entry, unpriced)


def test_reserve_settle_and_exhaustion(registry, tmp_path: Path) -> None:
    entry = registry.get("openai")
    request = chat_request(entry)
    worst = worst_case(entry, request)
    ledger = Ledger.create(tmp_path / "l.json", worst * 2)
    first = ledger.reserve(entry, request, "a")
    second = ledger.reserve(entry, request, "b")  # both fit while in flight together
    with pytest.raises(BudgetRefused, match="before sending"):  # a third would not, even before settling
        ledger.reserve(entry, request, "c probe", probe=True)
    assert ledger.exhausted() is None  # a probe does not end the run
    ledger.settle(first, worst / 4, sent=True)
    ledger.settle(second, None, sent=True)  # unknown cost: booked at its worst case
    assert ledger.spent == worst / 4 + worst
    with pytest.raises(BudgetRefused):
        ledger.reserve(entry, request, "d")
    reason = ledger.exhausted()
    assert reason and "remaining live checks are skipped" in reason
    with pytest.raises(BudgetRefused, match="live budget reached"):  # and every later call is refused too
        ledger.reserve(entry, chat_request(entry).model_copy(update={"max_tokens": 1}), "e")
    summary = "\n".join(ledger.summary())
    assert "2 call(s) sent" in summary and "refused" in summary


def test_nothing_sent_books_nothing(registry, tmp_path: Path) -> None:
    entry = registry.get("openai")
    ledger = Ledger.create(tmp_path / "l.json", Decimal(1))
    reservation = ledger.reserve(entry, chat_request(entry), "x")
    assert ledger.settle(reservation, None, sent=False) == 0 and ledger.spent == 0


def _worker(path: str, provider_json: str, rounds: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from adapters.registry import ProviderEntry

    entry = ProviderEntry.model_validate_json(provider_json)
    ledger = Ledger(Path(path))
    request = chat_request(entry)
    granted = 0
    for _ in range(rounds):
        try:
            reservation = ledger.reserve(entry, request, "w")
        except BudgetRefused:
            continue
        granted += 1
        ledger.settle(reservation, None, sent=True)  # every call costs its full worst case
    out.put(granted)


def test_one_budget_across_processes(registry, tmp_path: Path) -> None:
    entry = registry.get("openai")
    worst = worst_case(entry, chat_request(entry))
    cap = worst * 7 + worst / 2  # room for exactly 7 calls
    path = tmp_path / "shared.json"
    Ledger.create(path, cap)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(path), entry.model_dump_json(), 5, out)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    granted = sum(out.get(timeout=5) for _ in procs)
    ledger = Ledger(path)
    assert granted == 7 and ledger.spent == worst * 7 <= cap
    assert len([c for c in ledger.state()["calls"] if c["sent"]]) == 7


async def test_the_gate_stops_an_unbudgeted_request_before_the_socket(server) -> None:
    gate = SendGate()
    async with httpx.AsyncClient(transport=LiveTransport(gate=gate)) as client:
        with pytest.raises(UnbudgetedSend):
            await client.post(f"{server.openai_base_url}/chat/completions", json={})
        gate.arm(1)
        response = await client.post(
            f"{server.openai_base_url}/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": "Bearer x"},
        )
        assert response.status_code == 200 and gate.sent == 1
        with pytest.raises(UnbudgetedSend):  # one reservation, one request
            await client.post(f"{server.openai_base_url}/chat/completions", json={})


def test_cost_from_reported_usage_is_booked(registry) -> None:
    from adapters.pricing import cost_for

    entry = registry.get("groq")
    usage = Usage(input_tokens=100, output_tokens=10, total_tokens=110)
    assert cost_for(entry, entry.models[0].id, usage).total_usd == (
        Decimal(100) * Decimal("0.59") + Decimal(10) * Decimal("0.79")
    ) / Decimal(1_000_000)
