"""Cost of a call in exact Decimal USD, from the registry's prices or else the genai-prices library.

Prices are per 1M tokens. Cached input tokens are a subset of the input tokens and are charged at the cached
price when one is known. A model that neither source prices comes back as ``Cost(priced=False)``: an unknown
cost must stay visibly unknown, because reporting it as $0 would hide spend.
"""

from __future__ import annotations

import warnings
from decimal import Decimal

from adapters.registry import ProviderEntry
from adapters.types import Cost, Usage

_PER = Decimal(1_000_000)

#: Our provider ids (or wire names) -> genai-prices provider ids, where they differ or are not obvious.
GENAI_PRICES_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "azure": "azure",
    "azure-openai": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "google": "google",
    "vertex": "google",
    "bedrock": "aws",
    "aws-bedrock": "aws",
    "mistral": "mistral",
    "openrouter": "openrouter",
    "groq": "groq",
    "deepseek": "deepseek",
    "together": "together",
    "fireworks": "fireworks",
    "cohere": "cohere",
    "xai": "x-ai",
}


def cost_for(entry: ProviderEntry, model: str, usage: Usage) -> Cost:
    """Cost of ``usage`` on ``model`` at ``entry``: registry price, else genai-prices, else unpriced."""
    registered = entry.model(model)
    if (
        registered is not None
        and registered.input_per_1m is not None
        and registered.output_per_1m is not None
    ):
        input_tokens = max(usage.input_tokens, 0)
        cached = min(max(usage.cached_tokens or 0, 0), input_tokens)
        cached_price = registered.cached_input_per_1m
        if cached_price is None:
            cached, cached_price = 0, registered.input_per_1m
        input_usd = (
            Decimal(input_tokens - cached) * registered.input_per_1m + Decimal(cached) * cached_price
        ) / _PER
        output_usd = Decimal(max(usage.output_tokens, 0)) * registered.output_per_1m / _PER
        return Cost(
            priced=True,
            input_usd=input_usd,
            output_usd=output_usd,
            total_usd=input_usd + output_usd,
            price_source="registry",
        )
    return _library_cost(entry, model, usage) or Cost(priced=False)


def unpriced_models(entry: ProviderEntry) -> list[str]:
    """Registered models that neither the registry nor genai-prices can price (REG-PRICE reports these)."""
    probe = Usage(input_tokens=1, output_tokens=1, total_tokens=2)
    return [m.id for m in entry.models if not cost_for(entry, m.id, probe).priced]


def genai_prices_provider(entry: ProviderEntry) -> str:
    """The genai-prices provider id for an entry: mapped from its id, else its wire, else the id itself."""
    return GENAI_PRICES_PROVIDERS.get(
        entry.provider_id, GENAI_PRICES_PROVIDERS.get(entry.wire, entry.provider_id)
    )


def _library_cost(entry: ProviderEntry, model: str, usage: Usage) -> Cost | None:
    try:
        import genai_prices
    except (
        ImportError
    ):  # pragma: no cover - a declared dependency; unpriced rather than crash if it is missing
        return None
    kwargs: dict[str, int] = {
        "input_tokens": max(usage.input_tokens, 0),
        "output_tokens": max(usage.output_tokens, 0),
    }
    if usage.cached_tokens:
        kwargs["cache_read_tokens"] = min(usage.cached_tokens, kwargs["input_tokens"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calc = genai_prices.calc_price(
                genai_prices.Usage(**kwargs), model, provider_id=genai_prices_provider(entry)
            )
    except LookupError:
        return None
    except Exception:  # the library's data or matching failed: unpriced is the honest answer
        return None
    return Cost(
        priced=True,
        input_usd=Decimal(calc.input_price),
        output_usd=Decimal(calc.output_price),
        total_usd=Decimal(calc.total_price),
        price_source="genai-prices",
    )
