"""The official ``boto3`` ``bedrock-runtime`` client against the mock: it must not be able to tell it from Bedrock.

The client is configured as in production except for the endpoint (``{mock}/bedrock``), fake keys and short
timeouts. botocore's standard retry mode is kept at its default of 3 attempts (``total_max_attempts``; throttling
codes, 5xx and ``ModelNotReady`` are retried); only its backoff *scale* is shrunk
(``ExponentialBackoff._DEFAULT_BACKOFF_CONFIG``) so nothing waits a second: the retry decisions and the
``x-amz-retry-after`` handling are botocore's own code. Every expectation is read from the mock's journal.

boto3 refuses Bearer auth (``AWS_BEARER_TOKEN_BEDROCK``) over plain HTTP ("Bearer authorization requires an HTTPS
endpoint"), so the Bedrock API-key path is covered by the adapter and raw-HTTP tests, not here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.eventstream
import pytest
import urllib3.exceptions
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError
from botocore.retries.standard import ExponentialBackoff

from mockserver.testing import MockServer

AKID = "AKIAMOCKFAKE00000001"
SECRET = "mock/Fake+SecretKey000000000000000000000"
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
MESSAGES: list[Any] = [{"role": "user", "content": [{"text": "Hello there, mock!"}]}]
SYSTEM: list[Any] = [{"text": "You are terse."}]
TOOLS: dict[str, Any] = {
    "tools": [
        {
            "toolSpec": {
                "name": "lookup",
                "inputSchema": {
                    "json": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
                },
            }
        }
    ]
}


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink botocore's backoff base (1 s throttling, 50 ms otherwise) so retries take milliseconds."""
    config = dict(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG)
    config.update(throttling_base_scale=0.001, non_throttling_base_scale=0.001)
    monkeypatch.setattr(ExponentialBackoff, "_DEFAULT_BACKOFF_CONFIG", config)


def make_client(
    server: MockServer, sid: str, *, attempts: int = 3, read_timeout: float = 2.0, **kw: Any
) -> Any:
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=f"{server.url}/bedrock",
        region_name="us-east-1",
        aws_access_key_id=kw.pop("akid", AKID),
        aws_secret_access_key=SECRET,
        aws_session_token=kw.pop("token", None),
        config=Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=1,
            read_timeout=read_timeout,
            **kw,
        ),
    )
    client.meta.events.register("before-send.bedrock-runtime.*", _session_header(sid))
    return client


def _session_header(sid: str) -> Callable[..., None]:
    def add(request: Any, **_: Any) -> None:
        request.headers["x-mock-session"] = sid  # after signing: an unsigned header, as a proxy would add

    return add


@pytest.fixture
def bedrock(server: MockServer, sid: str) -> Iterator[Any]:
    client = make_client(server, sid)
    yield client
    client.close()


def converse(client: Any, **kw: Any) -> Any:
    return client.converse(modelId=kw.pop("modelId", MODEL), messages=MESSAGES, system=SYSTEM, **kw)


def converse_stream(client: Any, **kw: Any) -> Any:
    return client.converse_stream(modelId=kw.pop("modelId", MODEL), messages=MESSAGES, system=SYSTEM, **kw)


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


# --- success --------------------------------------------------------------------------------------


def test_converse_text_usage_and_request_id(server: MockServer, sid: str, bedrock: Any) -> None:
    resp = converse(bedrock)
    (e,) = server.journal(sid)
    assert resp["output"]["message"] == {"role": "assistant", "content": [{"text": e["text_sent"]}]}
    assert resp["stopReason"] == "end_turn" == e["finish_reason_sent"]
    assert resp["ResponseMetadata"]["RequestId"] == e["request_id"]
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    truth = e["usage_truth"]
    usage = resp["usage"]
    assert usage["inputTokens"] + usage["cacheReadInputTokens"] == truth["input_tokens"]
    assert (usage["outputTokens"], usage["totalTokens"]) == (truth["output_tokens"], truth["total_tokens"])
    assert resp["metrics"]["latencyMs"] >= 1
    assert e["path"] == f"/bedrock/model/{MODEL}/converse"
    assert e["request_headers"]["authorization"] == "AWS4-HMAC-SHA256 [REDACTED]"
    assert e["auth_fingerprint"] == fingerprint(AKID)
    assert e["request_headers"]["amz-sdk-request"] == "attempt=1; max=3"
    assert SECRET not in json.dumps(e)


def test_session_credentials_are_redacted_and_fingerprinted_by_key_id(server: MockServer, sid: str) -> None:
    client = make_client(
        server, sid, akid="ASIAMOCKFAKE00000002", token="FQoGZXIvYXdzEJr-session-token-value"
    )
    converse(client)
    (e,) = server.journal(sid)
    assert e["request_headers"]["x-amz-security-token"] == "[REDACTED]"
    assert e["auth_fingerprint"] == fingerprint("ASIAMOCKFAKE00000002")
    assert "session-token-value" not in json.dumps(e)


def test_arn_model_id_keeps_its_slash_in_one_segment(server: MockServer, sid: str, bedrock: Any) -> None:
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{MODEL}"
    resp = converse(bedrock, modelId=arn)
    (e,) = server.journal(sid)
    assert e["path"] == f"/bedrock/model/{arn}/converse"
    assert resp["ResponseMetadata"]["RequestId"] == e["request_id"]


def test_usage_details_and_missing_usage(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, "usage_details", "null_usage", "missing_usage")
    detailed, null, missing = converse(bedrock), converse(bedrock), converse(bedrock)
    first = server.journal(sid)[0]
    truth = first["usage_truth"]
    assert detailed["usage"]["cacheReadInputTokens"] == truth["cached_tokens"] == 5
    assert detailed["usage"]["inputTokens"] == truth["input_tokens"] - 5
    assert detailed["usage"]["totalTokens"] == truth["total_tokens"]
    assert "usage" not in missing and null.get("usage") is None


def test_converse_tool_use(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, "tool_call")
    resp = converse(bedrock, toolConfig=TOOLS)
    (e,) = server.journal(sid)
    (block,) = resp["output"]["message"]["content"]
    sent = e["tool_calls_sent"][0]
    assert block["toolUse"] == {
        "toolUseId": sent["id"],
        "name": "lookup",
        "input": json.loads(sent["arguments"]),
    }
    assert block["toolUse"]["toolUseId"].startswith("tooluse_")
    assert resp["stopReason"] == "tool_use"


def test_filtered_output_keeps_partial_text(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, "filtered_output")
    resp = converse(bedrock)
    (e,) = server.journal(sid)
    assert resp["stopReason"] == "content_filtered"
    assert resp["output"]["message"]["content"][0]["text"] == e["text_sent"] != ""


def _drain(resp: Any) -> tuple[list[dict[str, Any]], str]:
    events: list[dict[str, Any]] = []
    text = ""
    for event in resp["stream"]:
        events.append(event)
        text += event.get("contentBlockDelta", {}).get("delta", {}).get("text", "")
    return events, text


def test_converse_stream_text_usage_and_request_id(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, {"preset": "ok", "chunks": 9})
    resp = converse_stream(bedrock)
    events, text = _drain(resp)
    (e,) = server.journal(sid)
    assert resp["ResponseMetadata"]["RequestId"] == e["request_id"]
    assert text == e["text_sent"]
    names = [next(iter(ev)) for ev in events]
    assert names[0] == "messageStart" and names[-2:] == ["messageStop", "metadata"]
    assert "contentBlockStart" not in names, "text blocks have no contentBlockStart on Bedrock"
    assert names.count("contentBlockDelta") == 9 and names.count("contentBlockStop") == 1
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    usage = events[-1]["metadata"]["usage"]
    assert (usage["inputTokens"], usage["outputTokens"], usage["totalTokens"]) == tuple(
        e["usage_truth"][k] for k in ("input_tokens", "output_tokens", "total_tokens")
    )
    assert all("p" not in ev[next(iter(ev))] for ev in events), "botocore should drop the padding field"


def test_converse_stream_tool_use(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, "tool_call")
    events, _ = _drain(converse_stream(bedrock, toolConfig=TOOLS))
    (e,) = server.journal(sid)
    start = next(ev["contentBlockStart"] for ev in events if "contentBlockStart" in ev)
    sent = e["tool_calls_sent"][0]
    assert start["start"]["toolUse"] == {"toolUseId": sent["id"], "name": "lookup"}
    arguments = "".join(
        ev["contentBlockDelta"]["delta"]["toolUse"]["input"] for ev in events if "contentBlockDelta" in ev
    )
    assert arguments == sent["arguments"] and json.loads(arguments)["q"]
    assert next(ev for ev in events if "messageStop" in ev)["messageStop"]["stopReason"] == "tool_use"


def test_empty_deltas_reach_the_sdk_as_empty_text(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, "empty_chunks")
    events, text = _drain(converse_stream(bedrock))
    (e,) = server.journal(sid)
    assert text == e["text_sent"]
    empties = [ev for ev in events if ev.get("contentBlockDelta", {}).get("delta") == {"text": ""}]
    assert len(empties) == 4  # no keep-alives exist on this wire: only the empty deltas show


def test_truncated_stream_just_ends_for_the_sdk(server: MockServer, sid: str, bedrock: Any) -> None:
    """No terminator frame exists: boto3 simply stops iterating, without messageStop or metadata."""
    server.queue(sid, "truncated_stream")
    events, text = _drain(converse_stream(bedrock))
    (e,) = server.journal(sid)
    assert text == e["text_sent"] and not e["terminated"]
    assert not any("messageStop" in ev or "metadata" in ev for ev in events)


# --- errors: the SDK's own exception classes ------------------------------------------------------

ERRORS: list[tuple[str, str, int, bool]] = [
    # preset, error code, status, modelled (client.exceptions.<Code>)
    ("rate_limit", "ThrottlingException", 429, True),
    ("quota_exhausted", "ServiceQuotaExceededException", 400, True),
    ("auth_error", "UnrecognizedClientException", 403, False),
    ("permission_denied", "AccessDeniedException", 403, True),
    ("not_found", "ResourceNotFoundException", 404, True),
    ("bad_request", "ValidationException", 400, True),
    ("context_length", "ValidationException", 400, True),
    ("content_filter", "ValidationException", 400, True),
    ("server_error", "InternalServerException", 500, True),
    ("bad_gateway", "502", 502, False),
    ("service_unavailable", "ServiceUnavailableException", 503, True),
    ("gateway_timeout", "504", 504, False),
    ("overloaded", "ServiceUnavailableException", 503, True),
]


@pytest.mark.parametrize(("preset", "code", "status", "modelled"), ERRORS)
def test_faults_raise_the_sdk_exception(
    server: MockServer, sid: str, preset: str, code: str, status: int, modelled: bool
) -> None:
    client = make_client(server, sid, attempts=1)
    server.queue(sid, preset)
    with pytest.raises(ClientError) as info:
        converse(client)
    (e,) = server.journal(sid)
    err = info.value
    if modelled:
        assert type(err) is getattr(client.exceptions, code)
    assert err.response["Error"]["Code"] == code
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status == e["status"]
    assert err.response["ResponseMetadata"]["RequestId"] == e["request_id"]
    assert err.response["Error"]["Message"] == json.loads(e["wire"])["message"]
    assert SECRET not in str(err)


def test_context_length_message(server: MockServer, sid: str) -> None:
    client = make_client(server, sid, attempts=1)
    server.queue(sid, "context_length")
    with pytest.raises(client.exceptions.ValidationException) as info:
        converse(client)
    assert info.value.response["Error"]["Message"] == "Input is too long for requested model."


def test_unsigned_request_is_refused_like_aws(server: MockServer, sid: str) -> None:
    client = make_client(server, sid, attempts=1, signature_version=UNSIGNED)
    with pytest.raises(ClientError) as info:
        converse(client)
    (e,) = server.journal(sid)
    assert info.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403 == e["status"]


# --- retries, counted in the journal --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "attempts", "code"),
    [
        ({"preset": "rate_limit", "retry_after": 0.01}, 3, "ThrottlingException"),
        ({"preset": "service_unavailable", "retry_after": 0.01}, 3, "ServiceUnavailableException"),
        ({"preset": "overloaded"}, 3, "ServiceUnavailableException"),
        ("server_error", 3, "InternalServerException"),
        ("bad_gateway", 3, "502"),
        ("bad_request", 1, "ValidationException"),
        ("quota_exhausted", 1, "ServiceQuotaExceededException"),
        ("auth_error", 1, "UnrecognizedClientException"),
    ],
)
def test_standard_retry_attempts(
    server: MockServer, sid: str, bedrock: Any, spec: str | dict[str, Any], attempts: int, code: str
) -> None:
    server.queue(sid, {**spec, "times": 5} if isinstance(spec, dict) else {"preset": spec, "times": 5})
    with pytest.raises(ClientError) as info:
        converse(bedrock)
    entries = server.journal(sid)
    assert info.value.response["Error"]["Code"] == code
    assert len(entries) == attempts
    # botocore numbers its attempts in amz-sdk-request ("attempt=1; max=3", then "ttl=...; attempt=2; max=3")
    numbers = [re.findall(r"attempt=(\d+)", e["request_headers"]["amz-sdk-request"]) for e in entries]
    assert numbers == [[str(i + 1)] for i in range(attempts)]
    assert info.value.response["ResponseMetadata"]["RetryAttempts"] == attempts - 1


def test_queued_sequence_succeeds_on_third_attempt(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, {"preset": "rate_limit", "retry_after": 0.01, "times": 2}, "ok")
    resp = converse(bedrock)
    entries = server.journal(sid)
    assert [e["status"] for e in entries] == [429, 429, 200]
    assert resp["ResponseMetadata"]["RequestId"] == entries[-1]["request_id"]
    assert resp["ResponseMetadata"]["RetryAttempts"] == 2


def test_x_amz_retry_after_is_honoured(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, {"preset": "rate_limit", "retry_after": 0.3}, "ok")
    converse(bedrock)
    first, second = server.journal(sid)
    assert first["response_headers"]["x-amz-retry-after"] == "300"
    assert "retry-after" not in {k.lower() for k in first["response_headers"]}
    gap = second["started_at"] - first["started_at"]
    assert gap >= 0.3, f"botocore waited {gap:.3f}s, the mock asked for 0.3s"


# --- stream faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "member"),
    [
        ("server_error", "internalServerException"),
        ("rate_limit", "throttlingException"),
        ("overloaded", "serviceUnavailableException"),
        ("gateway_timeout", "modelStreamErrorException"),
    ],
)
def test_inband_exception_raises_event_stream_error(
    server: MockServer, sid: str, bedrock: Any, kind: str, member: str
) -> None:
    server.queue(sid, {"preset": "error_mid_stream", "error_after_kind": kind})
    text = ""
    with pytest.raises(EventStreamError) as info:
        for event in converse_stream(bedrock)["stream"]:
            text += event.get("contentBlockDelta", {}).get("delta", {}).get("text", "")
    entries = server.journal(sid)
    assert len(entries) == 1, "in-band errors are never retried"
    assert info.value.response["Error"]["Code"] == member
    assert info.value.response["Error"]["Message"]
    assert text == entries[0]["text_sent"] != ""


def test_malformed_frame_fails_the_checksum(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, "malformed_chunk")
    with pytest.raises(botocore.eventstream.ChecksumMismatch):
        _drain(converse_stream(bedrock))
    (e,) = server.journal(sid)
    assert e["malformed"] and e["chunks_sent"] == 2


def test_abort_mid_stream_raises_after_partial_text(server: MockServer, sid: str, bedrock: Any) -> None:
    server.queue(sid, "abort_mid_stream")
    text = ""
    with pytest.raises(urllib3.exceptions.ProtocolError):  # botocore does not wrap errors of a streamed body
        for event in converse_stream(bedrock)["stream"]:
            text += event.get("contentBlockDelta", {}).get("delta", {}).get("text", "")
    (e,) = server.journal(sid)
    assert text == e["text_sent"] and e["aborted_after_chunks"] == 3


def test_hang_raises_read_timeout(server: MockServer, sid: str) -> None:
    client = make_client(server, sid, attempts=1, read_timeout=0.3)
    server.queue(sid, "timeout")
    with pytest.raises(ReadTimeoutError):
        converse(client)
    (e,) = server.journal(sid)
    assert e["status"] is None and e["client_disconnected"]


def test_stall_mid_stream_raises_read_timeout(server: MockServer, sid: str) -> None:
    client = make_client(server, sid, attempts=1, read_timeout=0.3)
    server.queue(sid, "stall_mid_stream")
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):  # raw urllib3 here, botocore's before headers
        _drain(converse_stream(client))
    (e,) = server.journal(sid)
    assert e["stalled"] and e["chunks_sent"] == 2


def test_converse_stream_parallel_tool_use_blocks(server: MockServer, sid: str, bedrock: Any) -> None:
    """One block per call, each keyed by its contentBlockIndex from start to stop: botocore parses every event."""
    server.queue(sid, {"tool_calls": 3})
    events, _ = _drain(converse_stream(bedrock, toolConfig=TOOLS))
    (e,) = server.journal(sid)
    sent = e["tool_calls_sent"]
    starts = [ev["contentBlockStart"] for ev in events if "contentBlockStart" in ev]
    assert [(s["contentBlockIndex"], s["start"]["toolUse"]) for s in starts] == [
        (c["index"], {"toolUseId": c["id"], "name": c["name"]}) for c in sent
    ]
    for call in sent:
        arguments = "".join(
            ev["contentBlockDelta"]["delta"]["toolUse"]["input"]
            for ev in events
            if ev.get("contentBlockDelta", {}).get("contentBlockIndex") == call["index"]
        )
        assert arguments == call["arguments"]
    stops = [ev["contentBlockStop"]["contentBlockIndex"] for ev in events if "contentBlockStop" in ev]
    assert stops == [0, 1, 2] and len({c["arguments"] for c in sent}) == 3
