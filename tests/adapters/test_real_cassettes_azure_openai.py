"""The Azure OpenAI adapter on every real Azure OpenAI recording in ../shared/real-cassettes (#13, #49, #50).

Expected values are read from each recording here, independently of the adapter. The replay also checks what the
adapter sent: the recorded path (deployment and ``api-version``) and the ``api-key`` header.

Embeddings interactions (#50's two 200s) are not chat completions: their bodies have no ``choices`` to parse, so
they are skipped with that reason. #50's 401s come from Azure's gateway and are the same for every operation, so they
are parsed through the chat adapter's error mapping.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adapters.azure_openai import AzureOpenAIAdapter
from adapters.errors import ErrorKind, ProviderError
from adapters.registry import load_registry
from adapters.types import ChatRequest, Message
from harness.real_cassettes import Interaction, load, recordings, replay_transport

#: every deployment endpoint: chat completions, and embeddings (whose recorded errors a chat adapter maps the same way)
DEPLOYMENTS = recordings("Azure OpenAI", r"^/openai/deployments/[^/]+/(chat/completions|embeddings)$")
FILES = [r.path for r in DEPLOYMENTS]
KEY = "azure-replay-key-0123456789"
#: what a recorded status means in the taxonomy (none of these is retryable)
STATUS_KINDS = {401: ErrorKind.AUTH, 404: ErrorKind.NOT_FOUND}


def test_the_deployment_recordings_cover_chat_and_errors() -> None:
    """A guard against a selection that matches nothing."""
    assert any(r.endpoint.endswith("/chat/completions") for r in DEPLOYMENTS)
    assert {401, 404} <= {status for r in DEPLOYMENTS for status in r.statuses}


def _deployment_and_version(recorded: Interaction) -> tuple[str, str]:
    parts = urlsplit(recorded.uri)
    path = parts.path.split("/openai/deployments/", 1)[1]
    return path.split("/", 1)[0], parse_qs(parts.query)["api-version"][0]


def _request(recorded: Interaction, deployment: str) -> ChatRequest:
    body = recorded.request_json() or {}
    messages = tuple(
        Message(role=m["role"], content=m["content"] if isinstance(m.get("content"), str) else "")
        for m in body.get("messages") or []
        if m.get("role") in ("system", "user", "assistant", "tool")
    ) or (Message(role="user", content=str(body.get("input", "hi"))),)
    return ChatRequest(model=deployment, messages=messages)


class Key:
    async def resolve(self, ref: str) -> str:
        return KEY


async def _run(recorded: Interaction) -> tuple[AzureOpenAIAdapter, httpx.AsyncClient, httpx.MockTransport]:
    _, version = _deployment_and_version(recorded)
    entry = load_registry().get("azure-openai")
    origin = "{0.scheme}://{0.netloc}/openai".format(urlsplit(recorded.uri))
    entry = entry.model_copy(update={"options": {**entry.options, "api_version": version}})
    transport = replay_transport([recorded])
    client = httpx.AsyncClient(transport=transport)
    adapter = AzureOpenAIAdapter(entry, base_url=origin, http_client=client, credentials=Key())  # type: ignore[arg-type]
    return adapter, client, transport


def _expected_request_id(recorded: Interaction) -> str | None:
    headers = recorded.response_headers
    return headers.get("x-request-id") or headers.get("apim-request-id")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_adapter_reads_real_recording(path: Path) -> None:
    checked = 0
    for recorded in load(path):
        if not urlsplit(recorded.uri).path.endswith("/chat/completions") and recorded.status == 200:
            continue  # an embeddings body: nothing a chat adapter parses (see the module docstring)
        adapter, client, transport = await _run(recorded)
        deployment, version = _deployment_and_version(recorded)
        try:
            request = _request(recorded, deployment)
            if recorded.status != 200:
                with pytest.raises(ProviderError) as info:
                    await adapter.complete(request)
                err = info.value
                error = recorded.response_json()["error"]
                assert err.kind == STATUS_KINDS[recorded.status], (err, error)
                assert err.status == recorded.status and not err.retryable
                assert err.message == error["message"]
                assert err.provider_code == error["code"]
                assert err.request_id == _expected_request_id(recorded)
                assert (
                    err.request_id == recorded.response_headers["apim-request-id"]
                )  # no x-request-id on these
            else:
                response = await adapter.complete(request)
                body = recorded.response_json()
                choice = body["choices"][0]
                assert response.text == (choice["message"].get("content") or "")
                assert [(c.name, c.arguments) for c in response.tool_calls] == [
                    (c["function"]["name"], json.loads(c["function"]["arguments"]))
                    for c in choice["message"].get("tool_calls") or []
                ]
                assert response.raw_finish_reason == choice["finish_reason"]
                usage = body["usage"]
                assert (
                    response.usage.input_tokens,
                    response.usage.output_tokens,
                    response.usage.total_tokens,
                ) == (
                    usage["prompt_tokens"],
                    usage["completion_tokens"],
                    usage["total_tokens"],
                )
                assert response.usage.cached_tokens == usage["prompt_tokens_details"]["cached_tokens"]
                assert (
                    response.usage.reasoning_tokens == usage["completion_tokens_details"]["reasoning_tokens"]
                )
                assert response.usage.source == "reported"
                assert response.request_id == _expected_request_id(recorded)
                assert response.model == body["model"]
            (sent,) = transport.sent  # type: ignore[attr-defined]
            assert sent.url.path == urlsplit(recorded.uri).path.replace("/embeddings", "/chat/completions")
            assert sent.url.params["api-version"] == version
            assert sent.headers["api-key"] == KEY and "authorization" not in sent.headers
            checked += 1
        finally:
            await adapter.aclose()
            await client.aclose()
    assert checked, f"{path.name}: no interaction was checked"
