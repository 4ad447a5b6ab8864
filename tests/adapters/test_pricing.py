"""Cost: exact Decimal from the registry, genai-prices as fallback, unpriced (never $0) otherwise."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapters.pricing import cost_for, genai_prices_provider, unpriced_models
from adapters.registry import load_registry
from adapters.types import Usage


def test_registry_price_exact_with_cached_subset() -> None:
    entry = load_registry().get("openai")
    usage = Usage(input_tokens=1234, output_tokens=567, total_tokens=1801, cached_tokens=1000)
    cost = cost_for(entry, "gpt-4o-mini", usage)
    # (1234 - 1000) * 0.15 + 1000 * 0.075 = 35.1 + 75 = 110.1 per 1M; 567 * 0.60 = 340.2 per 1M
    assert cost.priced and cost.price_source == "registry"
    assert cost.input_usd == Decimal("0.0001101")
    assert cost.output_usd == Decimal("0.0003402")
    assert cost.total_usd == Decimal("0.0004503")


def test_registry_price_without_cached_tokens() -> None:
    entry = load_registry().get("openai")
    cost = cost_for(
        entry, "gpt-4o", Usage(input_tokens=1_000_000, output_tokens=2_000_000, total_tokens=3_000_000)
    )
    assert cost.input_usd == Decimal("2.50") and cost.output_usd == Decimal("20.00")
    assert cost.total_usd == Decimal("22.50")


def test_cached_tokens_at_input_price_when_no_cached_price(kit: Any) -> None:
    entry = kit.make_registry(
        kit.entry_data(models=[{"id": "m", "input_per_1m": "3", "output_per_1m": "0"}])
    ).get("acme")
    cost = cost_for(entry, "m", Usage(input_tokens=100, output_tokens=0, cached_tokens=60))
    assert cost.total_usd == Decimal("0.0003")


def test_cached_tokens_never_exceed_input(kit: Any) -> None:
    entry = kit.make_registry(kit.entry_data()).get("acme")  # m-1: 1.00 / 2.00 / cached 0.50
    cost = cost_for(entry, "m-1", Usage(input_tokens=10, output_tokens=0, cached_tokens=50))
    assert cost.input_usd == Decimal("0.000005")


def test_genai_prices_fallback_for_model_without_registry_price() -> None:
    entry = load_registry().get("openai")
    usage = Usage(
        input_tokens=1_000_000, output_tokens=1_000_000, total_tokens=2_000_000, cached_tokens=200_000
    )
    cost = cost_for(entry, "gpt-4.1-mini", usage)
    assert cost.priced and cost.price_source == "genai-prices"
    assert cost.total_usd > 0
    assert cost.total_usd == cost.input_usd + cost.output_usd
    # cached tokens must make it cheaper than the same usage without them
    uncached = cost_for(entry, "gpt-4.1-mini", usage.model_copy(update={"cached_tokens": None}))
    assert cost.input_usd < uncached.input_usd


def test_unknown_model_is_unpriced_not_zero(kit: Any) -> None:
    entry = load_registry().get("openai")
    cost = cost_for(entry, "no-such-model-xyz", Usage(input_tokens=10, output_tokens=10, total_tokens=20))
    assert not cost.priced and cost.price_source is None
    unknown_provider = kit.make_registry(
        kit.entry_data(provider_id="nobody-knows", wire="nobody", models=[{"id": "gpt-4o"}])
    )
    assert not cost_for(unknown_provider.get("nobody-knows"), "gpt-4o", Usage(input_tokens=1)).priced


def test_unpriced_models(kit: Any) -> None:
    assert unpriced_models(load_registry().get("openai")) == []
    entry = kit.make_registry(
        kit.entry_data(models=[{"id": "m-1", "input_per_1m": 1, "output_per_1m": 1}, {"id": "mystery-9"}])
    ).get("acme")
    assert unpriced_models(entry) == ["mystery-9"]


def test_provider_mapping(kit: Any) -> None:
    assert genai_prices_provider(load_registry().get("openai")) == "openai"
    gemini = kit.make_registry(kit.entry_data(provider_id="gemini", wire="gemini")).get("gemini")
    assert genai_prices_provider(gemini) == "google"
    compat = kit.make_registry(kit.entry_data(provider_id="my-groq", wire="groq")).get("my-groq")
    assert genai_prices_provider(compat) == "groq"
