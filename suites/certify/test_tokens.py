"""TOK: usage equals the server's truth; missing usage is estimated and says so; cost is exact Decimal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.pricing import cost_for
from adapters.types import Usage
from harness.assertions import assert_usage_matches, chat_request, only, run_stream
from harness.checks import check, evidence, not_applicable

TOLERANCE = 0.5  # an estimate within +/-50% of the truth is useful for attribution; 0 or 10x is not


@check("TOK-COMPLETE")
async def test_complete_usage(adapter, mock):
    mock.queue("ok")
    response = await adapter.complete(chat_request(adapter.entry))
    assert_usage_matches(response.usage, only(mock.journal())["usage_truth"], what="complete")
    u = response.usage
    evidence(f"reported {u.input_tokens}/{u.output_tokens}/{u.total_tokens} (in/out/total) = journal truth")


@check("TOK-STREAM")
async def test_stream_usage(make_adapter, mock, entry):
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    if not entry.capabilities.usage_in_stream:
        not_applicable("provider reports no usage in streams (covered by TOK-NULL estimation)")
    adapter = make_adapter()
    mock.queue({"preset": "ok", "chunks": 12})
    run = await run_stream(adapter.stream(chat_request(entry)))
    assert run.error is None, f"stream failed: {run.error!r}"
    assert_usage_matches(run.ends[0].usage, only(mock.journal())["usage_truth"], what="stream")
    u = run.ends[0].usage
    evidence(
        f"12-chunk stream: {u.input_tokens}/{u.output_tokens}/{u.total_tokens} (in/out/total) = journal truth"
    )


@check("TOK-NULL")
@pytest.mark.parametrize("mode", ["null_usage", "missing_usage"])
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_estimated_usage(make_adapter, mock, entry, mode, stream):
    if stream and not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    adapter = make_adapter()
    mock.queue(mode)
    request = chat_request(entry)
    if stream:
        run = await run_stream(adapter.stream(request))
        assert run.error is None, f"stream failed: {run.error!r}"
        usage = run.ends[0].usage
    else:
        usage = (await adapter.complete(request)).usage
    sent = only(mock.journal())
    assert sent["usage_sent"] is None, "the mock sent usage; the scenario was not exercised"
    truth = sent["usage_truth"]
    assert usage.source == "estimated", f"usage without a provider report is marked {usage.source!r}"
    for field in ("input_tokens", "output_tokens"):
        got, want = getattr(usage, field), truth[field]
        assert got > 0, f"estimated {field} is 0"
        assert abs(got - want) <= TOLERANCE * want, (
            f"estimated {field}={got} is not within 50% of the truth {want}"
        )
    evidence(
        f"{mode} ({'stream' if stream else 'complete'}): estimated {usage.input_tokens}/{usage.output_tokens} "
        f"vs truth {truth['input_tokens']}/{truth['output_tokens']}, marked estimated"
    )


@check("TOK-NULL")
async def test_estimate_counts_tool_definitions(make_adapter, mock, entry):
    """Tool definitions are input the provider bills: an estimate that leaves them out is far below the truth."""
    if not entry.capabilities.tools:
        not_applicable("provider declares no tools")
    adapter = make_adapter()
    mock.queue("null_usage")
    usage = (await adapter.complete(chat_request(entry, tools=True))).usage
    truth = only(mock.journal())["usage_truth"]
    assert usage.source == "estimated", f"usage without a provider report is marked {usage.source!r}"
    got, want = usage.input_tokens, truth["input_tokens"]
    assert abs(got - want) <= TOLERANCE * want, (
        f"estimated input_tokens={got} with a tool declared is not within 50% of the truth {want}"
    )
    evidence(
        f"null usage with a tool declared: estimated input {got} vs truth {want} (tool definition counted)"
    )


@check("TOK-COST")
@pytest.mark.parametrize("details", ["none", "cached", "cached+reasoning"])
async def test_cost_exact(adapter, mock, entry, details):
    """Cached input at its own price, reasoning as output (it is billed as output everywhere): a cost that counts
    reasoning twice, or cached tokens at the full input price, is off by a computable amount."""
    if details == "cached+reasoning" and not entry.capabilities.reasoning_tokens:
        not_applicable("provider reports no reasoning tokens")
    if details == "none":  # a model with a cached price, and no cached tokens: all input at the input price
        mock.queue({"preset": "usage_details", "cached_tokens": 0, "reasoning_tokens": 0})
    else:
        mock.queue({"preset": "usage_details", "reasoning_tokens": 9 if "reasoning" in details else 0})
    response = await adapter.complete(chat_request(entry))
    truth = only(mock.journal())["usage_truth"]
    model = next(m for m in entry.models if m.id == response.model or m.id == chat_request(entry).model)
    cost = cost_for(entry, model.id, response.usage)
    assert cost.priced, f"model {model.id} is unpriced"
    if model.input_per_1m is None:
        not_applicable(
            f"{model.id} is priced by the price library, not the registry; exactness is checked there"
        )
    cached = truth.get("cached_tokens") or 0
    cached_price = model.cached_input_per_1m if model.cached_input_per_1m is not None else model.input_per_1m
    million = Decimal(1_000_000)
    want = (
        Decimal(truth["input_tokens"] - cached) * model.input_per_1m / million
        + Decimal(cached) * cached_price / million
        + Decimal(truth["output_tokens"]) * model.output_per_1m / million
    )
    assert isinstance(cost.total_usd, Decimal), "cost is not a Decimal"
    assert cost.total_usd == want, (
        f"cost {cost.total_usd} USD, expected {want} from registry prices and the truth"
    )
    evidence(
        f"{details}: {truth['input_tokens']} in ({cached} cached), {truth['output_tokens']} out "
        f"({truth.get('reasoning_tokens') or 0} reasoning) -> {cost.total_usd} USD exact (Decimal)"
    )


@check("TOK-COST")
async def test_unpriced_flagged(entry):
    cost = cost_for(
        entry, "provcert-no-such-model-x9", Usage(input_tokens=10, output_tokens=5, total_tokens=15)
    )
    assert not cost.priced, "an unknown model was reported as priced"
    assert cost.price_source is None
    evidence("an unregistered model: priced=False, no price source (never $0)")


@check("TOK-DETAIL")
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_usage_details(make_adapter, mock, entry, stream):
    caps = entry.capabilities
    if not (caps.cached_tokens or caps.reasoning_tokens):
        not_applicable("provider reports neither cached nor reasoning tokens")
    if stream and not (caps.streaming and caps.usage_in_stream):
        not_applicable("provider reports no usage in streams")
    adapter = make_adapter()
    mock.queue({"preset": "usage_details", "cached_tokens": 6, "reasoning_tokens": 9})
    request = chat_request(entry)
    if stream:
        run = await run_stream(adapter.stream(request))
        assert run.error is None, f"stream failed: {run.error!r}"
        usage = run.ends[0].usage
    else:
        usage = (await adapter.complete(request)).usage
    truth = only(mock.journal())["usage_truth"]
    if caps.cached_tokens:
        assert usage.cached_tokens == truth["cached_tokens"], (
            f"cached {usage.cached_tokens}, truth {truth['cached_tokens']}"
        )
    if caps.reasoning_tokens:
        assert usage.reasoning_tokens == truth["reasoning_tokens"], (
            f"reasoning {usage.reasoning_tokens}, truth {truth['reasoning_tokens']}"
        )
    # the details sit inside the totals, whatever the provider's own convention (Anthropic reports cache reads
    # beside input_tokens, Gemini thoughts beside candidates, OpenAI inside both): counted once, in the right total
    assert_usage_matches(
        usage, truth, what=f"{'stream' if stream else 'complete'} with cached and reasoning tokens"
    )
    assert (usage.cached_tokens or 0) <= usage.input_tokens, "more cached tokens than input tokens"
    assert (usage.reasoning_tokens or 0) <= usage.output_tokens, "more reasoning tokens than output tokens"
    evidence(
        f"{'stream' if stream else 'complete'}: input {usage.input_tokens} (cached {usage.cached_tokens}), output "
        f"{usage.output_tokens} (reasoning {usage.reasoning_tokens}), total {usage.total_tokens} = journal truth"
    )
