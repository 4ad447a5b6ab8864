"""RID: the provider's request id survives on responses, errors and streams, for support tickets."""

from __future__ import annotations

import pytest

from adapters.errors import ProviderError
from harness.assertions import chat_request, only, run_stream
from harness.checks import check, evidence, not_applicable


@check("RID-OK")
async def test_response_request_id(adapter, mock):
    mock.queue("ok")
    response = await adapter.complete(chat_request(adapter.entry))
    sent = only(mock.journal())
    if not sent["request_id"]:
        not_applicable("the provider sends no request id")
    assert response.request_id == sent["request_id"], (
        f"request_id {response.request_id!r}, sent {sent['request_id']!r}"
    )
    evidence(f"{sent['status']} ok: response request id {response.request_id} == journal request id")


@check("RID-ERR")
@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "bad_request", "auth_error"])
async def test_error_request_id(adapter, mock, fault):
    mock.queue(fault)
    with pytest.raises(ProviderError) as info:
        await adapter.complete(chat_request(adapter.entry))
    sent = only(mock.journal())
    if not sent["request_id"]:
        not_applicable("the provider sends no request id on errors")
    assert info.value.request_id == sent["request_id"], (
        f"error request_id {info.value.request_id!r}, sent {sent['request_id']!r}"
    )
    evidence(
        f"{sent['status']} {fault} -> {info.value.kind.value}: error request id {info.value.request_id} "
        "== journal request id"
    )


@check("RID-STREAM")
@pytest.mark.parametrize("scenario", ["ok", "error_mid_stream"])
async def test_stream_request_id(make_adapter, mock, entry, scenario):
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    adapter = make_adapter()
    mock.queue(scenario)
    run = await run_stream(adapter.stream(chat_request(entry)))
    sent = only(mock.journal())
    if not sent["request_id"]:
        not_applicable("the provider sends no request id")
    assert run.starts and run.starts[0].request_id == sent["request_id"], "Start event lost the request id"
    if scenario == "ok":
        assert run.ends and run.ends[0].request_id == sent["request_id"], "End event lost the request id"
        evidence(f"stream ok: Start and End request id {run.ends[0].request_id} == journal request id")
    else:
        assert run.error is not None and run.error.request_id == sent["request_id"], (
            "in-band error lost the request id"
        )
        evidence(
            f"stream {sent['inband_error'] or scenario} in-band -> {run.error.kind.value}: Start and error "
            f"request id {run.error.request_id} == journal request id"
        )
