"""ERR: every failure the provider can produce maps to the right kind, retryability, status and request id."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any

import pytest

from adapters.errors import ErrorKind, ProviderError
from harness.assertions import FAULT_KINDS, assert_error, chat_request, only, run_stream
from harness.checks import check, evidence, not_applicable
from harness.retry_forms import RETRY_FORMS, expected_wait, retry_scenario


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
) -> tuple[ProviderError, dict[str, Any]]:
    err, sent = await _fail(make_adapter, mock, fault, stream=stream)
    kinds, retryable = FAULT_KINDS[fault]
    checked = assert_error(
        err, sent, kinds=kinds, retryable=retryable, provider_id=provider_id, secret=credentials.current
    )
    return checked, sent


def _mapped(
    err: ProviderError, sent: Mapping[str, Any], what: str, *, retryable: bool | None, secret: str | None
) -> str:
    """The evidence line of a failure assert_error accepted: what the mock sent, and each value compared with it.

    Only what assert_error really compared is named (retryability when the check expects one, the status when the
    mock sent an error status, the request id when the mock sent one, the credential when there was one to look
    for), so the line never claims more than the check proved.
    """
    status = sent.get("status")
    parts = [f"{status} {what}" if status is not None else f"{what} (no status sent)", "->", err.kind.value]
    line = " ".join(parts)
    if retryable is not None:
        line += f", retryable {err.retryable}"
    if status not in (None, 200):
        line += f", status {err.status}"
    line += f", request id {err.request_id}" if sent.get("request_id") else ", no request id sent"
    return line + (", credential absent from message/repr/dict" if secret else "")


def _fault_evidence(
    err: ProviderError, sent: Mapping[str, Any], fault: str, credentials: Any, stream: bool
) -> str:
    """:func:`_mapped` for one of the mock's named faults (FAULT_KINDS says whether retryability was checked)."""
    what = f"{fault} (stream)" if stream else fault
    return _mapped(err, sent, what, retryable=FAULT_KINDS[fault][1], secret=credentials.current)


def _clip(text: str, keep: int = 24) -> str:
    """A text as evidence: its start (quoted) and its length, enough to recognize it, short enough for a cell."""
    shown = text if len(text) <= keep else text[:keep] + "..."
    return f"{shown!r} ({len(text)} chars)"


@check("ERR-429")
@pytest.mark.parametrize("form", RETRY_FORMS)
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_rate_limit(make_adapter, mock, provider_id, credentials, entry, stream, form):
    # 7.25 s: a wait that whole-second forms must round, so reading only one form cannot pass for reading another
    err, sent = await _fail(make_adapter, mock, retry_scenario(entry, form, 7.25), stream=stream)
    now = time.time()
    assert_error(
        err,
        sent,
        kinds={ErrorKind.RATE_LIMITED},
        retryable=True,
        provider_id=provider_id,
        secret=credentials.current,
    )
    want, tolerance, said = expected_wait(sent, now=now)
    assert err.retry_after is not None, f"retry_after not parsed from the provider's retry hint ({said})"
    assert err.retry_after == pytest.approx(want, abs=tolerance), (
        f"retry_after {err.retry_after}, the mock's {said} hint asked for {want:.3f}s"
    )
    evidence(f"429 with a {said} hint of {want:.3f}s -> rate_limited, retry_after {err.retry_after:.3f}s")


@check("ERR-QUOTA")
async def test_quota(make_adapter, mock, provider_id, credentials):
    err, sent = await _check_fault("quota_exhausted", make_adapter, mock, provider_id, credentials)
    evidence(_fault_evidence(err, sent, "quota_exhausted", credentials, stream=False))


@check("ERR-401")
async def test_auth(make_adapter, mock, provider_id, credentials):
    err, sent = await _check_fault("auth_error", make_adapter, mock, provider_id, credentials)
    evidence(_fault_evidence(err, sent, "auth_error", credentials, stream=False))


@check("ERR-403")
async def test_permission(make_adapter, mock, provider_id, credentials):
    err, sent = await _check_fault("permission_denied", make_adapter, mock, provider_id, credentials)
    evidence(_fault_evidence(err, sent, "permission_denied", credentials, stream=False))


@check("ERR-404")
async def test_not_found(make_adapter, mock, provider_id, credentials):
    err, sent = await _check_fault("not_found", make_adapter, mock, provider_id, credentials)
    evidence(_fault_evidence(err, sent, "not_found", credentials, stream=False))


@check("ERR-400")
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_bad_request(make_adapter, mock, provider_id, credentials, stream):
    err, sent = await _check_fault("bad_request", make_adapter, mock, provider_id, credentials, stream=stream)
    evidence(_fault_evidence(err, sent, "bad_request", credentials, stream=stream))


@check("ERR-CONTEXT")
async def test_context_length(make_adapter, mock, provider_id, credentials):
    err, sent = await _check_fault("context_length", make_adapter, mock, provider_id, credentials)
    evidence(_fault_evidence(err, sent, "context_length", credentials, stream=False))


def _needs_content_filter(entry: Any) -> None:
    # only an explicit ``content_filter: false`` opts out: the provider has no filter at all (e.g. local Ollama)
    if (entry.capabilities.model_extra or {}).get("content_filter") is False:
        not_applicable(
            f"{entry.provider_id} declares content_filter: false (the provider has no content filter)"
        )


@check("ERR-FILTER")
async def test_filter_error(make_adapter, mock, provider_id, credentials, entry):
    _needs_content_filter(entry)
    err, sent = await _check_fault("content_filter", make_adapter, mock, provider_id, credentials)
    evidence(_fault_evidence(err, sent, "content_filter", credentials, stream=False))


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
    evidence(
        f"filtered_output -> finish_reason content_filter (raw {response.raw_finish_reason}), "
        f"text {_clip(response.text)} == journal text_sent"
    )


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
    evidence(
        f"filtered_output (stream) -> End finish_reason content_filter (raw {run.ends[0].raw_finish_reason}), "
        f"deltas {_clip(run.text)} == journal text_sent"
    )


@check("ERR-5XX")
@pytest.mark.parametrize("fault", ["server_error", "bad_gateway", "service_unavailable", "gateway_timeout"])
async def test_server_errors(make_adapter, mock, provider_id, credentials, fault):
    err, sent = await _check_fault(fault, make_adapter, mock, provider_id, credentials)
    assert err.status is not None and err.status >= 500
    evidence(_fault_evidence(err, sent, fault, credentials, stream=False))


@check("ERR-OVERLOADED")
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_overloaded(make_adapter, mock, provider_id, credentials, stream):
    err, sent = await _check_fault("overloaded", make_adapter, mock, provider_id, credentials, stream=stream)
    evidence(_fault_evidence(err, sent, "overloaded", credentials, stream=stream))


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
    what = "hang before headers (stream)" if stream else "hang before headers"
    evidence(
        _mapped(err, sent, what, retryable=True, secret=None)
        + f", gave up after {elapsed:.2f}s < {bound.read + 1.0:.2f}s (read bound {bound.read}s)"
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
    evidence(
        f"refused 127.0.0.1:{port} (nothing listening) -> {info.value.kind.value}, "
        f"retryable {info.value.retryable}, provider {info.value.provider_id}"
    )


@check("ERR-CONN")
async def test_connection_reset(make_adapter, mock, provider_id):
    err, sent = await _fail(make_adapter, mock, "reset")
    checked = assert_error(err, sent, kinds={ErrorKind.CONNECTION}, retryable=True, provider_id=provider_id)
    evidence(_mapped(checked, sent, "reset", retryable=True, secret=None))


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
    checked = assert_error(
        err, sent, kinds=kinds, retryable=None, provider_id=provider_id, secret=credentials.current
    )
    evidence(_mapped(checked, sent, scenario, retryable=None, secret=credentials.current))


@check("ERR-MALFORMED")
async def test_stream_wrong_content_type(make_adapter, mock, provider_id, entry):
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    err, sent = await _fail(make_adapter, mock, "wrong_content_type", stream=True)
    checked = assert_error(
        err, sent, kinds={ErrorKind.INVALID_RESPONSE}, retryable=None, provider_id=provider_id
    )
    evidence(_mapped(checked, sent, "wrong_content_type (stream)", retryable=None, secret=None))
