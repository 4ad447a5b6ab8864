"""ERR: every failure the provider can produce maps to the right kind, retryability, status and request id."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from adapters.errors import ErrorKind, ProviderError
from harness.assertions import FAULT_KINDS, assert_error, chat_request, only, run_stream
from harness.checks import check, evidence, not_applicable


async def _fail(
    make_adapter: Any, mock: Any, scenario: Any, *, stream: bool = False, **kw: Any
) -> tuple[Any, dict]:
    adapter = make_adapter(**kw)
    mock.queue(scenario)
    request = chat_request(adapter.entry)
    err: BaseException | None = None
    if stream:
        err = (await run_stream(adapter.stream(request))).error
    else:
        try:
            await adapter.complete(request)
        except ProviderError as exc:
            err = exc
    return err, only(mock.journal())


async def _check_fault(
    fault: str, make_adapter: Any, mock: Any, provider_id: str, credentials: Any, *, stream: bool = False
) -> ProviderError:
    err, sent = await _fail(make_adapter, mock, fault, stream=stream)
    kinds, retryable = FAULT_KINDS[fault]
    return assert_error(
        err, sent, kinds=kinds, retryable=retryable, provider_id=provider_id, secret=credentials.current
    )


@check("ERR-429")
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_rate_limit(make_adapter, mock, provider_id, credentials, stream):
    err, sent = await _fail(make_adapter, mock, {"preset": "rate_limit", "retry_after": 7}, stream=stream)
    assert_error(
        err,
        sent,
        kinds={ErrorKind.RATE_LIMITED},
        retryable=True,
        provider_id=provider_id,
        secret=credentials.current,
    )
    want = sent["scenario"]["retry_after"]
    assert err.retry_after is not None, "retry_after not parsed from the provider's retry hint"
    assert err.retry_after == pytest.approx(want, abs=0.01), (
        f"retry_after {err.retry_after}, the mock sent {want}"
    )


@check("ERR-QUOTA")
async def test_quota(make_adapter, mock, provider_id, credentials):
    await _check_fault("quota_exhausted", make_adapter, mock, provider_id, credentials)


@check("ERR-401")
async def test_auth(make_adapter, mock, provider_id, credentials):
    err = await _check_fault("auth_error", make_adapter, mock, provider_id, credentials)
    sent = only(mock.journal())
    evidence(
        f"{sent['status']} auth_error -> {err.kind.value}, retryable {err.retryable}, status {err.status}, "
        f"request id {err.request_id}, credential absent from message/repr/dict"
    )


@check("ERR-403")
async def test_permission(make_adapter, mock, provider_id, credentials):
    await _check_fault("permission_denied", make_adapter, mock, provider_id, credentials)


@check("ERR-404")
async def test_not_found(make_adapter, mock, provider_id, credentials):
    await _check_fault("not_found", make_adapter, mock, provider_id, credentials)


@check("ERR-400")
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_bad_request(make_adapter, mock, provider_id, credentials, stream):
    await _check_fault("bad_request", make_adapter, mock, provider_id, credentials, stream=stream)


@check("ERR-CONTEXT")
async def test_context_length(make_adapter, mock, provider_id, credentials):
    await _check_fault("context_length", make_adapter, mock, provider_id, credentials)


def _needs_content_filter(entry: Any) -> None:
    # only an explicit ``content_filter: false`` opts out: the provider has no filter at all (e.g. local Ollama)
    if (entry.capabilities.model_extra or {}).get("content_filter") is False:
        not_applicable(
            f"{entry.provider_id} declares content_filter: false (the provider has no content filter)"
        )


@check("ERR-FILTER")
async def test_filter_error(make_adapter, mock, provider_id, credentials, entry):
    _needs_content_filter(entry)
    await _check_fault("content_filter", make_adapter, mock, provider_id, credentials)


@check("ERR-FILTER")
async def test_filter_finish_reason_complete(make_adapter, mock, entry):
    _needs_content_filter(entry)
    adapter = make_adapter()
    mock.queue("filtered_output")
    response = await adapter.complete(chat_request(adapter.entry))
    sent = only(mock.journal())
    assert response.finish_reason == "content_filter", (
        f"finish_reason {response.finish_reason!r}, expected content_filter"
    )
    assert response.text == sent["text_sent"], "the partial text before the filter was not kept"


@check("ERR-FILTER")
async def test_filter_finish_reason_stream(make_adapter, mock, entry):
    _needs_content_filter(entry)
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    adapter = make_adapter()
    mock.queue("filtered_output")
    run = await run_stream(adapter.stream(chat_request(entry)))
    sent = only(mock.journal())
    assert run.error is None, f"stream failed: {run.error!r}"
    assert run.ends and run.ends[0].finish_reason == "content_filter"
    assert run.text == sent["text_sent"], "the partial text before the filter was not kept"


@check("ERR-5XX")
@pytest.mark.parametrize("fault", ["server_error", "bad_gateway", "service_unavailable", "gateway_timeout"])
async def test_server_errors(make_adapter, mock, provider_id, credentials, fault):
    err = await _check_fault(fault, make_adapter, mock, provider_id, credentials)
    assert err.status is not None and err.status >= 500


@check("ERR-OVERLOADED")
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_overloaded(make_adapter, mock, provider_id, credentials, stream):
    await _check_fault("overloaded", make_adapter, mock, provider_id, credentials, stream=stream)


@check("ERR-TIMEOUT")
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_timeout(make_adapter, mock, provider_id, stream):
    from adapters.base import Timeouts

    bound = Timeouts(connect=1.0, read=0.15, stream_idle=0.15)
    started = time.monotonic()
    err, sent = await _fail(make_adapter, mock, "timeout", stream=stream, timeouts=bound)
    elapsed = time.monotonic() - started
    assert_error(err, sent, kinds={ErrorKind.TIMEOUT}, retryable=True, provider_id=provider_id)
    assert sent["status"] is None, "the mock sent headers; the scenario did not exercise a header timeout"
    assert elapsed < bound.read + 1.0, (
        f"gave up after {elapsed:.2f}s; the configured read bound is {bound.read}s"
    )


@check("ERR-CONN")
async def test_connection_refused(make_adapter, mock, provider_id, entry):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = make_adapter(base_url=f"http://127.0.0.1:{port}{entry.mock_path}")
    with pytest.raises(ProviderError) as info:
        await adapter.complete(chat_request(entry))
    assert info.value.kind == ErrorKind.CONNECTION, f"kind {info.value.kind.value!r}, expected connection"
    assert info.value.retryable, "a refused connection must be retryable"
    assert info.value.provider_id == provider_id


@check("ERR-CONN")
async def test_connection_reset(make_adapter, mock, provider_id):
    err, sent = await _fail(make_adapter, mock, "reset")
    assert_error(err, sent, kinds={ErrorKind.CONNECTION}, retryable=True, provider_id=provider_id)


@check("ERR-MALFORMED")
@pytest.mark.parametrize(
    ("scenario", "kinds"),
    [
        ("malformed_body", {ErrorKind.INVALID_RESPONSE}),
        ("wrong_content_type", {ErrorKind.INVALID_RESPONSE}),
        ("error_in_200", {ErrorKind.SERVER_ERROR}),
    ],
)
async def test_malformed_response(make_adapter, mock, provider_id, credentials, scenario, kinds):
    err, sent = await _fail(make_adapter, mock, scenario)
    assert_error(err, sent, kinds=kinds, retryable=None, provider_id=provider_id, secret=credentials.current)


@check("ERR-MALFORMED")
async def test_stream_wrong_content_type(make_adapter, mock, provider_id, entry):
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    err, sent = await _fail(make_adapter, mock, "wrong_content_type", stream=True)
    assert_error(err, sent, kinds={ErrorKind.INVALID_RESPONSE}, retryable=None, provider_id=provider_id)
