"""RTY: the gateway retries what is worth retrying, the way the provider asks, and never replays delivered output."""

from __future__ import annotations

import pytest

from adapters.errors import ErrorKind, ProviderError
from harness.assertions import chat_request, run_stream
from harness.checks import check, not_applicable


@check("RTY-BACKOFF")
async def test_backoff_bounded(gateway, mock, entry, provider_id, gateway_sleep):
    policy = entry.retry
    mock.queue({"preset": "server_error", "times": policy.max_attempts + 5})
    with pytest.raises(ProviderError) as info:
        await gateway.complete(provider_id, chat_request(entry))
    assert info.value.kind == ErrorKind.SERVER_ERROR
    attempts = len(mock.journal())
    assert attempts == policy.max_attempts, (
        f"{attempts} attempts reached the server, the policy allows {policy.max_attempts}"
    )
    delays = gateway_sleep.delays
    assert len(delays) == policy.max_attempts - 1, f"{len(delays)} waits between {attempts} attempts"
    for n, delay in enumerate(delays):
        ceiling = min(policy.max_backoff, policy.initial_backoff * 2**n)
        assert 0 <= delay <= ceiling, (
            f"wait #{n + 1} was {delay:.3f}s, outside full-jitter bounds [0, {ceiling}]"
        )


@check("RTY-BACKOFF")
async def test_backoff_jitter_and_recovery(
    make_gateway, make_adapter, mock, entry, provider_id, gateway_sleep
):
    if entry.retry.max_attempts < 3:
        not_applicable("the retry policy allows fewer than 3 attempts")
    waits = []
    for seed in (1, 2):
        gateway_sleep.delays.clear()
        mock.queue({"preset": "server_error", "times": 2}, "ok")
        gateway = make_gateway({provider_id: make_adapter()}, seed=seed)
        response = await gateway.complete(provider_id, chat_request(entry))
        assert response.text, "no text after recovery"
        waits.append(list(gateway_sleep.delays))
    assert len(mock.journal()) == 6, "expected 3 attempts per call (2 failures, then success)"
    assert waits[0] != waits[1], f"identical waits {waits[0]} under different random seeds: no jitter"


@check("RTY-AFTER")
@pytest.mark.parametrize("retry_after", [3.0, 90.0])
async def test_retry_after_honoured_and_capped(gateway, mock, entry, provider_id, gateway_sleep, retry_after):
    mock.queue({"preset": "rate_limit", "retry_after": retry_after}, "ok")
    await gateway.complete(provider_id, chat_request(entry))
    sent = mock.journal()
    assert len(sent) == 2, f"{len(sent)} attempts; expected one retry after the 429"
    want = min(sent[0]["scenario"]["retry_after"], entry.retry.retry_after_cap)
    assert gateway_sleep.delays == [pytest.approx(want, abs=0.01)], (
        f"waited {gateway_sleep.delays}, the provider asked for {retry_after}s (cap {entry.retry.retry_after_cap}s)"
    )


@check("RTY-NONRETRY")
@pytest.mark.parametrize("fault", ["bad_request", "auth_error", "quota_exhausted", "context_length"])
async def test_not_retried(gateway, mock, entry, provider_id, gateway_sleep, fault):
    mock.queue({"preset": fault, "times": 5})
    with pytest.raises(ProviderError) as info:
        await gateway.complete(provider_id, chat_request(entry))
    assert not info.value.retryable
    attempts = len(mock.journal())
    assert attempts == 1, f"a non-retryable {fault} was sent {attempts} times"
    assert gateway_sleep.delays == []


@check("RTY-STREAM")
async def test_no_retry_after_output(gateway, mock, entry, provider_id):
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    mock.queue({"preset": "abort_mid_stream", "abort_after": 2, "times": 5})
    run = await run_stream(gateway.stream(provider_id, chat_request(entry)))
    assert run.error is not None and run.error.kind == ErrorKind.STREAM_INTERRUPTED, f"got {run.error!r}"
    attempts = len(mock.journal())
    assert attempts == 1, f"the stream was replayed {attempts} times after output reached the caller"
    assert run.error.output_delivered, "the error does not say output was already delivered"
    assert run.text == mock.journal()[0]["text_sent"]


@check("RTY-STREAM")
async def test_retry_before_output(gateway, mock, entry, provider_id):
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    mock.queue("server_error", "ok")
    run = await run_stream(gateway.stream(provider_id, chat_request(entry)))
    assert run.error is None, f"a stream failing before any output was not retried: {run.error!r}"
    sent = mock.journal()
    assert len(sent) == 2
    assert run.text == sent[1]["text_sent"]
    assert len(run.starts) == 1 and len(run.ends) == 1, (
        "a retried stream must still have one Start and one End"
    )


def _with_fallback(registry, entry, rollout=None):
    fallback = entry.model_copy(update={"provider_id": f"{entry.provider_id}-fallback", "fallback": []})
    update = {"fallback": [fallback.provider_id]}
    if rollout is not None:
        update["rollout"] = entry.rollout.model_copy(update=rollout)
    primary = entry.model_copy(update=update)
    return registry.with_entries(primary, fallback), primary, fallback


@check("RTY-FALLBACK")
@pytest.mark.parametrize("why", ["exhausted", "disabled"])
async def test_fallback(make_gateway, make_adapter, mock, mock_client, provcert_registry, entry, why):
    rollout = {"status": "disabled", "percentage": 0} if why == "disabled" else None
    registry, primary, fallback = _with_fallback(provcert_registry, entry, rollout)
    other = mock_client.new_session("fallback")
    mock_client.queue(other, "ok")
    mock.queue({"preset": "service_unavailable", "retry_after": 0.01, "times": 10})
    gateway = make_gateway(
        {
            primary.provider_id: make_adapter(entry=primary),
            fallback.provider_id: make_adapter(entry=fallback, headers={"x-mock-session": other}),
        },
        registry=registry,
    )
    response = await gateway.complete(primary.provider_id, chat_request(entry))
    assert response.provider_id == fallback.provider_id, f"served by {response.provider_id}, not the fallback"
    primary_attempts = len(mock.journal())
    want = 0 if why == "disabled" else primary.retry.max_attempts
    assert primary_attempts == want, f"the primary got {primary_attempts} attempts, expected {want}"
    served = mock_client.journal(other)
    assert len(served) == 1 and response.text == served[0]["text_sent"]
    mock_client.clear(other)
