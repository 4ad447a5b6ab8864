"""TEL: one span per call carrying the GenAI semantic-convention attributes and the attribution fields."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from adapters.errors import ProviderError
from harness.assertions import chat_request, only, run_stream
from harness.checks import check, evidence, not_applicable


def _one_span(exporter):
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, f"expected one span per call, got {len(spans)}: {[s.name for s in spans]}"
    return spans[0], dict(spans[0].attributes or {})


@check("TEL-FIELDS")
@pytest.mark.parametrize("mode", ["complete", "stream", "tool-call stream"])
async def test_span_fields(gateway, mock, entry, provider_id, span_exporter, mode):
    """Streams carry the same fields as completions (tokens and cost included): a stream span that loses them is a
    call whose spend nobody can attribute. A tool-call stream passes through the gateway like a text one."""
    if "stream" in mode and not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    if "tool" in mode and not entry.capabilities.tools:
        not_applicable("provider declares no tools")
    mock.queue("tool_call" if "tool" in mode else "ok")
    request = chat_request(entry, tools="tool" in mode)
    if "stream" in mode:
        run = await run_stream(gateway.stream(provider_id, request))
        assert run.error is None, f"stream failed: {run.error!r}"
    else:
        await gateway.complete(provider_id, request)
    sent = only(mock.journal())
    _, attrs = _one_span(span_exporter)
    truth = sent["usage_truth"]
    expected = {
        "gen_ai.provider.name": entry.telemetry_name or provider_id,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": request.model,
        "gen_ai.usage.input_tokens": truth["input_tokens"],
        "gen_ai.usage.output_tokens": truth["output_tokens"],
        "provcert.provider_id": provider_id,
        "provcert.trace_id": request.metadata.trace_id,
        "provcert.tenant_id": request.metadata.tenant_id,
        "provcert.profile_id": request.metadata.profile_id,
        "provcert.retry_count": 0,
        "provcert.outcome": "success",
    }
    wrong = {k: (attrs.get(k), v) for k, v in expected.items() if attrs.get(k) != v}
    assert not wrong, f"span attributes (got, want): {wrong}"
    if "stream" in mode:
        assert attrs.get("provcert.stream") is True, "the span does not say it was a stream"
    if sent["request_id"]:
        assert attrs.get("gen_ai.response.id") == sent["request_id"]
    user_hash = attrs.get("provcert.user_id_hash")
    assert user_hash and request.metadata.user_id not in str(attrs), "the user id is not anonymized"
    assert user_hash != request.metadata.user_id
    assert hashlib.sha256(request.metadata.user_id.encode()).hexdigest().startswith(str(user_hash)), (
        "user hash is not a stable digest"
    )
    assert float(attrs["provcert.latency_ms"]) >= 0
    if attrs.get("provcert.cost_priced") is not False:
        cost = Decimal(str(attrs["provcert.cost_usd"]))
        registered = entry.model(request.model)
        # a registered price of 0 (a free local model) is a real price: the span must then say exactly 0
        if registered is not None and registered.input_per_1m == 0 and registered.output_per_1m == 0:
            assert cost == 0, f"span cost {cost} USD for a model registered at price 0"
        else:
            assert cost > 0, "cost missing from the span"
    evidence(
        f"{mode}: one span, provider {attrs['gen_ai.provider.name']}, tokens {truth['input_tokens']}/"
        f"{truth['output_tokens']} = journal, cost {attrs.get('provcert.cost_usd')} USD, user hashed"
    )


@check("TEL-FIELDS")
async def test_span_retry_count(gateway, mock, entry, provider_id, span_exporter):
    mock.queue({"preset": "server_error", "times": 1}, "ok")
    await gateway.complete(provider_id, chat_request(entry))
    span, attrs = _one_span(span_exporter)
    assert attrs.get("provcert.retry_count") == len(mock.journal()) - 1
    numbers = [e.attributes["provcert.attempt"] for e in span.events if e.name == "provcert.attempt"]
    assert numbers == list(range(1, len(mock.journal()) + 1)), f"attempt events numbered {numbers}"
    evidence(f"500 then ok: one span, retry_count {attrs.get('provcert.retry_count')} = journal attempts - 1")


@check("TEL-ERROR")
@pytest.mark.parametrize("fault", ["bad_request", "rate_limit"])
async def test_span_error(gateway, mock, entry, provider_id, span_exporter, fault):
    mock.queue({"preset": fault, "times": 10, "retry_after": 0.01})
    with pytest.raises(ProviderError) as info:
        await gateway.complete(provider_id, chat_request(entry))
    span, attrs = _one_span(span_exporter)
    assert span.status.status_code.name == "ERROR", f"span status {span.status.status_code.name}"
    assert attrs.get("error.type") == info.value.kind.value, f"error.type {attrs.get('error.type')!r}"
    assert attrs.get("provcert.outcome") == "error"
    evidence(f"{fault}: span status ERROR, error.type {attrs.get('error.type')}, outcome error")


@check("TEL-TTFT")
async def test_span_ttft(gateway, mock, entry, provider_id, span_exporter):
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    mock.queue({"preset": "slow_stream", "ttft": 0.12, "chunk_delay": 0.0})
    run = await run_stream(gateway.stream(provider_id, chat_request(entry)))
    assert run.error is None, f"stream failed: {run.error!r}"
    _, attrs = _one_span(span_exporter)
    ttft = attrs.get("provcert.ttft_ms")
    assert ttft is not None, "no time to first token on a stream span"
    assert 100 <= float(ttft) <= float(attrs["provcert.latency_ms"]), (
        f"ttft {ttft} ms: the mock held the first token for 120 ms; latency {attrs['provcert.latency_ms']} ms"
    )
    evidence(
        f"first token held 120 ms: ttft {float(ttft):.0f} ms <= latency {float(attrs['provcert.latency_ms']):.0f} ms"
    )
