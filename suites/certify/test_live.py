"""LIV: live checks, only with --live and CERTIFY_LIVE=1 and a resolvable credential; never by accident.

Each live call is budgeted (worst case reserved before sending, real cost booked after, refused when it would pass
``--max-cost-usd``), recorded per ``--record-mode`` with secrets scrubbed, and its wire response validated against the
same schemas as the golden cassettes (drift). With ``--live-upstream URL`` the calls go to a mock server instead.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.types import End
from harness.assertions import chat_request
from harness.budget import BudgetRefused, usd, worst_case
from harness.checks import check, evidence
from harness.schemas import has_schema, response_errors


def _drift(entry, result) -> list[str]:
    if not has_schema(entry.wire, "response"):
        return []
    problems = []
    for wire in result.wire:
        ctype = wire.headers.get("content-type", "")
        problems += response_errors(entry.wire, wire.status, ctype, wire.body)
    return problems


def _wire_and_cost(entry, result) -> str:
    """The part of a live check's evidence every live call shares: what came over the wire, the schema check, the
    spend booked (the drift check runs only where the wire has golden response schemas, and says so)."""
    statuses = ",".join(str(w.status) for w in result.wire)
    schemas = f"matches the {entry.wire} golden schemas"
    if not has_schema(entry.wire, "response"):
        schemas = f"no {entry.wire} response schema to check"
    booked = f"booked {usd(result.booked)}" if result.booked is not None else "nothing booked"
    return f"HTTP {statuses}, {schemas}, {booked}"


@check("LIV-SMOKE")
async def test_live_complete(live, entry):
    result = await live.call(chat_request(entry), "complete")
    assert result.error is None, f"the live call failed: {result.error}"
    assert result.response is not None and (result.response.text or result.response.tool_calls)
    assert result.wire, "nothing came over the wire; the check proved nothing"
    problems = _drift(entry, result)
    assert not problems, f"the live response drifted from the {entry.wire} golden schemas: " + "; ".join(
        problems[:5]
    )
    response = result.response
    evidence(
        f"live complete {response.model}: {len(response.text)} chars, {len(response.tool_calls)} tool calls, "
        f"usage in {response.usage.input_tokens}/out {response.usage.output_tokens}; "
        + _wire_and_cost(entry, result)
    )


@check("LIV-SMOKE")
async def test_live_stream(live, entry):
    if not entry.capabilities.streaming:
        pytest.skip("not applicable: streaming is not declared")
    result = await live.call(chat_request(entry), "stream")
    assert result.error is None, f"the live stream failed: {result.error}"
    assert result.events and isinstance(result.events[-1], End), "the stream did not end with End"
    problems = _drift(entry, result)
    assert not problems, f"the live stream drifted from the {entry.wire} golden schemas: " + "; ".join(
        problems[:5]
    )
    end = result.events[-1]
    evidence(
        f"live stream: {len(result.events)} events ending in End ({end.finish_reason}, usage in "
        f"{end.usage.input_tokens}/out {end.usage.output_tokens}); " + _wire_and_cost(entry, result)
    )


@check("LIV-BUDGET")
async def test_live_budget(live, entry):
    breaches = live.ledger.breaches()
    assert not breaches, (
        "; ".join(
            f"the live budget was breached by {b['provider']} ({b['label']}): {b['reason']}, "
            f"booked ${Decimal(b['booked']):.6f}"
            for b in breaches
        )
        + "; every further live call was refused"
    )
    state = live.ledger.state()
    cap, spent = Decimal(state["cap"]), Decimal(state["spent"])
    assert spent <= cap, f"live spend {spent} passed the cap {cap}"
    request = chat_request(entry)
    per_token = worst_case(entry, request.model_copy(update={"max_tokens": 2})) - worst_case(
        entry, request.model_copy(update={"max_tokens": 1})
    )
    # a call whose worst case cannot fit is refused before it is sent; a free model ($0 output price) has no such
    # call (its worst case is $0 whatever max_tokens says), so nothing is sent to look for one
    over_cap = "a free model has no over-cap call"
    if per_token > 0:
        needed = int((cap - spent) / per_token) + 1000
        with pytest.raises(BudgetRefused, match="before sending"):
            await live.call(request.model_copy(update={"max_tokens": needed}), "complete", probe=True)
        over_cap = f"max_tokens {needed} (over the cap) refused before sending"
    # and a call without max_tokens has no bound at all (for a free model too: its output would be unbounded)
    with pytest.raises(BudgetRefused, match="without max_tokens"):
        await live.call(request.model_copy(update={"max_tokens": None}), "complete", probe=True)
    after = live.ledger.state()
    probes = [c for c in after["calls"] if c["provider"] == entry.provider_id and "(probe)" in c["label"]]
    assert not probes, f"a refused {entry.provider_id} call reached the ledger: {probes}"
    assert Decimal(after["spent"]) <= cap
    evidence(
        f"no breach, run spent {usd(after['spent'])} <= cap {usd(cap)}; {over_cap}; a call without max_tokens refused; "
        "no refused call booked"
    )
