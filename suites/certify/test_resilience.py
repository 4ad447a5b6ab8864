"""RTY: the gateway retries what is worth retrying, the way the provider asks, and never replays delivered output."""

from __future__ import annotations

import time

import pytest

from adapters.errors import ErrorKind, ProviderError
from harness.assertions import FAULT_KINDS, chat_request, run_stream
from harness.checks import check, evidence, not_applicable
from harness.retry_forms import RETRY_FORMS, expected_wait, retry_scenario


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
    evidence(
        f"500 x{attempts} = max_attempts {policy.max_attempts}; waits "
        + ", ".join(f"{d:.3f}" for d in delays)
        + f" s within full-jitter bounds (initial {policy.initial_backoff}, max {policy.max_backoff})"
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
    evidence(f"2 x 500 then ok, twice: recovered; waits differ by seed ({waits[0]} vs {waits[1]})")


@check("RTY-AFTER")
@pytest.mark.parametrize("form", RETRY_FORMS)
@pytest.mark.parametrize("retry_after", [3.0, 90.0])
async def test_retry_after_honoured_and_capped(
    gateway, mock, entry, provider_id, gateway_sleep, retry_after, form
):
    mock.queue(retry_scenario(entry, form, retry_after), "ok")
    await gateway.complete(provider_id, chat_request(entry))
    sent = mock.journal()
    assert len(sent) == 2, f"{len(sent)} attempts; expected one retry after the 429"
    asked, tolerance, said = expected_wait(sent[0], now=time.time())
    want = min(asked, entry.retry.retry_after_cap)
    assert gateway_sleep.delays == [pytest.approx(want, abs=tolerance)], (
        f"waited {gateway_sleep.delays}, the provider's {said} hint asked for {asked:.3f}s "
        f"(cap {entry.retry.retry_after_cap}s)"
    )
    evidence(
        f"429 {said} hint {asked:.3f} s -> waited {gateway_sleep.delays[0]:.3f} s (cap {entry.retry.retry_after_cap} s)"
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
    evidence(f"{fault} -> {info.value.kind.value}, not retryable: 1 attempt, no wait")


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
    assert run.error.partial_text == run.text, (
        f"the error's partial text {run.error.partial_text!r} is not what reached the caller {run.text!r}"
    )
    evidence(
        f"abort after 2 chunks: 1 attempt, stream_interrupted with output_delivered, {len(run.text)} chars kept"
    )


@check("RTY-STREAM")
async def test_retry_after_start_before_content(gateway, mock, entry, provider_id):
    """A stream that dies after its preamble (Start) but before any content delivered nothing: it is retried, and
    the caller sees one Start, the one of the attempt that served."""
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    mock.queue({"preset": "abort_mid_stream", "abort_after": 0}, "ok")
    run = await run_stream(gateway.stream(provider_id, chat_request(entry)))
    assert run.error is None, f"a stream that failed before any content was not retried: {run.error!r}"
    sent = mock.journal()
    assert len(sent) == 2 and run.text == sent[1]["text_sent"]
    assert len(run.starts) == 1 and len(run.ends) == 1, (
        "a retried stream must still have one Start and one End"
    )
    assert run.starts[0].request_id == sent[1]["request_id"], "the Start shown is not the serving attempt's"
    evidence(
        f"abort after the preamble, then ok: 2 attempts, one Start (request id {run.starts[0].request_id})"
    )


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
    evidence(
        f"500 before any output, then ok: 2 attempts, one Start, one End, text = attempt 2's {len(run.text)} chars"
    )


@check("RTY-FALLBACK")
@pytest.mark.parametrize("why", ["exhausted", "quota", "disabled"])
async def test_fallback_serves(make_adapter, mock, mock_client, fallback_chain, entry, why):
    """The fallback serves when the primary's retries are exhausted, its quota is gone, or it is switched off."""
    chain = fallback_chain({"status": "disabled", "percentage": 0} if why == "disabled" else None)
    if why == "exhausted":
        mock.queue({"preset": "service_unavailable", "retry_after": 0.01, "times": 10})
    elif why == "quota":
        mock.queue({"preset": "quota_exhausted", "times": 10})
    response = await chain.gateway.complete(chain.primary.provider_id, chat_request(entry))
    assert response.provider_id == chain.fallback.provider_id, (
        f"served by {response.provider_id}, not the fallback"
    )
    primary_attempts = len(mock.journal())
    want = {"disabled": 0, "quota": 1, "exhausted": chain.primary.retry.max_attempts}[why]
    assert primary_attempts == want, f"the primary got {primary_attempts} attempts, expected {want}"
    served = chain.fallback_journal()
    assert len(served) == 1 and response.text == served[0]["text_sent"]
    attempts = [(a.provider_id, a.attempt) for a in chain.gateway.last_attempts]
    want = [(chain.primary.provider_id, n) for n in range(1, primary_attempts + 1)]
    assert attempts == [*want, (chain.fallback.provider_id, 1)], (
        f"the gateway's attempt record {attempts}: each provider's attempts are numbered from 1"
    )
    evidence(
        f"{why}: primary {primary_attempts} attempt(s), then the fallback served {len(response.text)} chars "
        f"= its journal, request id {response.request_id}"
    )


@check("RTY-FALLBACK")
async def test_stream_gets_the_last_error_when_the_whole_chain_fails(mock, fallback_chain, entry):
    """Primary and fallback both exhausted before any output: the caller gets the fallback's error (the last one
    tried), each provider having had its own retries, and no output or End."""
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    chain = fallback_chain(None)
    chain.client.clear(chain.fallback_session)
    chain.client.queue(chain.fallback_session, {"preset": "server_error", "times": 20})
    mock.queue({"preset": "server_error", "times": 20})
    run = await run_stream(chain.gateway.stream(chain.primary.provider_id, chat_request(entry)))
    assert run.error is not None and run.error.kind == ErrorKind.SERVER_ERROR, f"got {run.error!r}"
    assert run.error.provider_id == chain.fallback.provider_id, f"the error names {run.error.provider_id}"
    primary, fallback = len(mock.journal()), len(chain.fallback_journal())
    want = (chain.primary.retry.max_attempts, chain.fallback.retry.max_attempts)
    assert (primary, fallback) == want, f"attempts (primary, fallback) = {(primary, fallback)}, policy {want}"
    assert not run.text and not run.ends, "output or an End reached the caller of a failed stream"
    evidence(
        f"stream: primary {primary} x 500, fallback {fallback} x 500 -> the fallback's server_error raised"
    )


@check("RTY-FALLBACK")
@pytest.mark.parametrize(
    "fault", ["bad_request", "context_length", "content_filter", "auth_error", "not_found"]
)
async def test_fallback_not_used_for_caller_errors(mock, fallback_chain, entry, fault):
    """A request another provider would reject the same way, a safety decision, or a broken key of the primary is
    raised as is: falling back would hide the defect (or route around a filter) and spend another provider's budget."""
    if fault == "content_filter" and (entry.capabilities.model_extra or {}).get("content_filter") is False:
        not_applicable(
            f"{entry.provider_id} declares content_filter: false (the provider has no content filter)"
        )
    chain = fallback_chain(None)
    mock.queue({"preset": fault, "times": 5})
    with pytest.raises(ProviderError) as info:
        await chain.gateway.complete(chain.primary.provider_id, chat_request(entry))
    kinds, _ = FAULT_KINDS[fault]
    assert info.value.kind in kinds, f"{fault} surfaced as {info.value.kind.value}"
    assert info.value.provider_id == chain.primary.provider_id, f"raised by {info.value.provider_id}"
    served = chain.fallback_journal()
    assert not served, f"a {fault} of the primary was retried on the fallback ({len(served)} request(s))"
    assert len(mock.journal()) == 1
    evidence(f"{fault} -> {info.value.kind.value} raised from the primary; the fallback got 0 requests")
