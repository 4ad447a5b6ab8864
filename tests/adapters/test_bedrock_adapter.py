"""The Bedrock adapter's own contract beyond the certification suite: the credential formats, SigV4 over the exact
bytes sent (re-verified here with botocore's signer), the Bearer path, the secret never leaving the process, and the
body it builds. The mock serves the requests; the journal says what arrived."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from adapters.bedrock import AwsKeys, BedrockAdapter, error_code, parse_credential
from adapters.errors import ErrorKind, ProviderError
from adapters.registry import load_registry
from adapters.types import ChatRequest, End, Message, TextDelta, ToolCall, ToolSpec
from mockserver.testing import MockServer

AKID = "AKIAMOCKADAPTER00001"
SECRET = "adapter/Secret+Key00000000000000000000000"
TOKEN = "IQoJb3JpZ2luX2VjEAdapterSessionToken"
ARN = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-micro-v1:0"


class Resolver:
    def __init__(self, value: str) -> None:
        self.value = value

    async def resolve(self, ref: str) -> str:
        return self.value


@pytest.fixture(scope="module")
def server() -> Any:
    with MockServer() as srv:
        yield srv


@pytest_asyncio.fixture
async def run(server: MockServer) -> AsyncIterator[Any]:
    """Build an adapter for a credential (and region), pointed at the mock, capturing the httpx requests."""
    clients: list[httpx.AsyncClient] = []

    def build(
        credential: str, *, region: str = "us-east-1"
    ) -> tuple[BedrockAdapter, list[httpx.Request], str]:
        sid = server.new_session()
        sent: list[httpx.Request] = []

        async def keep(request: httpx.Request) -> None:
            sent.append(request)

        client = httpx.AsyncClient(headers={"x-mock-session": sid}, event_hooks={"request": [keep]})
        clients.append(client)
        entry = load_registry().get("bedrock")
        entry = entry.model_copy(update={"options": {"region": region}})
        adapter = BedrockAdapter(
            entry,
            base_url=f"{server.url}/bedrock",
            http_client=client,
            credentials=Resolver(credential),  # type: ignore[arg-type]
        )
        return adapter, sent, sid

    yield build
    for client in clients:
        await client.aclose()


def chat(model: str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0", **kw: Any) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=(Message(role="system", content="Be terse."), Message(role="user", content="Hi there")),
        max_tokens=32,
        **kw,
    )


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def test_credential_formats() -> None:
    assert parse_credential(f"{AKID}:{SECRET}") == AwsKeys(AKID, SECRET)
    assert parse_credential(f"{AKID}:{SECRET}:{TOKEN}") == AwsKeys(AKID, SECRET, TOKEN)
    as_json = json.dumps({"access_key_id": AKID, "secret_access_key": SECRET, "session_token": TOKEN})
    assert parse_credential(as_json) == AwsKeys(AKID, SECRET, TOKEN)
    process = json.dumps({"Version": 1, "AccessKeyId": AKID, "SecretAccessKey": SECRET})
    assert parse_credential(process) == AwsKeys(AKID, SECRET)
    assert parse_credential("ABSKQmVkcm9ja0FQSUtleS1mYWtl") == "ABSKQmVkcm9ja0FQSUtleS1mYWtl"
    assert parse_credential("sk-provcert-FAKE-bedrock-0123") == "sk-provcert-FAKE-bedrock-0123"
    assert SECRET not in repr(parse_credential(f"{AKID}:{SECRET}"))
    with pytest.raises(ValueError):
        parse_credential('{"access_key_id": "x"}')


def test_error_codes_are_normalised() -> None:
    assert (
        error_code("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/")
        == "ThrottlingException"
    )
    assert error_code("throttlingException") == "ThrottlingException"
    assert error_code(None) is None


async def test_sigv4_signs_the_exact_bytes_sent(run: Any, server: MockServer) -> None:
    credential = json.dumps({"access_key_id": AKID, "secret_access_key": SECRET, "session_token": TOKEN})
    adapter, sent, sid = run(credential, region="eu-west-1")
    response = await adapter.complete(chat(model=ARN))
    (e,) = server.journal(sid)
    assert response.text == e["text_sent"] and response.request_id == e["request_id"]
    (request,) = sent
    assert request.url.raw_path.decode().endswith(
        "/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.amazon.nova-micro-v1%3A0/converse"
    )
    assert e["path"] == f"/bedrock/model/{ARN}/converse"
    auth = request.headers["authorization"]
    assert (
        auth.startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/") and "/eu-west-1/bedrock/aws4_request" in auth
    )
    assert request.headers["x-amz-security-token"] == TOKEN
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "host" in signed and "x-amz-date" in signed and "x-amz-security-token" in signed
    # recompute the signature with botocore over what went on the wire: it must match
    again = AWSRequest(
        method="POST",
        url=str(request.url),
        data=request.content,
        headers={h: request.headers[h] for h in signed},
    )
    again.context["timestamp"] = request.headers["x-amz-date"]
    signer = SigV4Auth(Credentials(AKID, SECRET, TOKEN), "bedrock", "eu-west-1")
    signature = signer.signature(signer.string_to_sign(again, signer.canonical_request(again)), again)
    assert auth.endswith(f"Signature={signature}")
    # the secret never travels, and the journal names the key by its access key id
    assert SECRET.encode() not in request.content and all(SECRET not in v for v in request.headers.values())
    assert e["auth_fingerprint"] == fingerprint(AKID)
    assert e["request_headers"]["authorization"] == "AWS4-HMAC-SHA256 [REDACTED]"
    assert TOKEN not in json.dumps(e)


async def test_bedrock_api_key_goes_as_bearer(run: Any, server: MockServer) -> None:
    adapter, sent, sid = run("ABSKQmVkcm9ja0FQSUtleS1mYWtl")
    events = [e async for e in adapter.stream(chat())]
    (e,) = server.journal(sid)
    assert "".join(ev.text for ev in events if isinstance(ev, TextDelta)) == e["text_sent"]
    assert isinstance(events[-1], End) and events[-1].usage.total_tokens == e["usage_truth"]["total_tokens"]
    assert sent[0].headers["authorization"] == "Bearer ABSKQmVkcm9ja0FQSUtleS1mYWtl"
    assert "x-amz-date" not in sent[0].headers
    assert e["auth_fingerprint"] == fingerprint("ABSKQmVkcm9ja0FQSUtleS1mYWtl")
    assert sent[0].headers["accept"] == "application/vnd.amazon.eventstream"


async def test_secret_never_in_errors(run: Any, server: MockServer) -> None:
    adapter, _, sid = run(f"{AKID}:{SECRET}")
    server.queue(sid, "auth_error")
    with pytest.raises(ProviderError) as info:
        await adapter.complete(chat())
    assert info.value.kind == ErrorKind.AUTH and info.value.status == 403
    assert info.value.provider_code == "UnrecognizedClientException"
    for surface in (str(info.value), repr(info.value), json.dumps(info.value.to_dict())):
        assert SECRET not in surface


async def test_unusable_credential_is_an_auth_error_without_the_value(run: Any) -> None:
    adapter, sent, _ = run('{"access_key_id": "AKIAONLY", "secret": "hunter2-secret-value"}')
    with pytest.raises(ProviderError) as info:
        await adapter.complete(chat())
    assert info.value.kind == ErrorKind.AUTH and not info.value.retryable
    assert "hunter2" not in str(info.value) and not sent


async def test_body_is_converse_shaped(run: Any, server: MockServer) -> None:
    adapter, _, sid = run(f"{AKID}:{SECRET}")
    server.queue(sid, "tool_call")
    tool = ToolSpec(name="lookup", parameters={"type": "object", "properties": {"q": {"type": "string"}}})
    request = ChatRequest(
        model="amazon.nova-lite-v1:0",
        messages=(
            Message(role="system", content="Be terse."),
            Message(role="user", content="Find it"),
            Message(
                role="assistant", tool_calls=(ToolCall(id="tooluse_1", name="lookup", arguments={"q": "x"}),)
            ),
            Message(role="tool", tool_call_id="tooluse_1", content="found"),
            Message(role="user", content="And?"),
        ),
        temperature=0.5,
        tools=(tool,),
    )
    response = await adapter.complete(request)
    (e,) = server.journal(sid)
    body = e["request_body"]
    assert body["system"] == [{"text": "Be terse."}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"toolUse": {"toolUseId": "tooluse_1", "name": "lookup", "input": {"q": "x"}}}
    ]
    assert body["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "found"}]}},
        {"text": "And?"},
    ]
    assert body["inferenceConfig"] == {"temperature": 0.5}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": tool.parameters}
    assert response.finish_reason == "tool_calls" and response.tool_calls[0].name == "lookup"
    assert response.tool_calls[0].id == e["tool_calls_sent"][0]["id"]
