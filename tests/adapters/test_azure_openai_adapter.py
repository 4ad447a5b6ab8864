"""Azure-specific adapter behaviour that the neutral certification does not single out: both surfaces' routing,
the deployment map, Entra auth, the request-id fallback and the Azure-only error codes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from adapters.azure_openai import AzureOpenAIAdapter
from adapters.errors import ErrorKind, ProviderError
from adapters.registry import ProviderEntry, load_registry
from adapters.types import ChatRequest, Message

KEY = "azure-unit-key-0123456789"
REQUEST = ChatRequest(model="gpt-4o-mini", messages=(Message(role="user", content="hi"),))
OK_BODY = {
    "choices": [{"finish_reason": "stop", "index": 0, "message": {"content": "hello", "role": "assistant"}}],
    "created": 1,
    "id": "chatcmpl-x",
    "model": "gpt-4o-mini-2024-07-18",
    "object": "chat.completion",
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class Key:
    async def resolve(self, ref: str) -> str:
        return KEY


def entry(**options: Any) -> ProviderEntry:
    base = load_registry().get("azure-openai")
    return base.model_copy(update={"options": {**base.options, **options}})


async def call(
    e: ProviderEntry, status: int = 200, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[Any, httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=OK_BODY if body is None else body, headers=headers or {})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = AzureOpenAIAdapter(e, http_client=client, credentials=Key())  # type: ignore[arg-type]
        try:
            result: Any = await adapter.complete(REQUEST)
        except ProviderError as exc:
            result = exc
    return result, seen[0]


async def test_classic_surface_routes_by_deployment_with_api_version_and_api_key() -> None:
    response, sent = await call(entry())
    assert sent.url.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert sent.url.params["api-version"] == "2024-10-21"
    assert sent.headers["api-key"] == KEY and "authorization" not in sent.headers
    assert json.loads(sent.content)["model"] == "gpt-4o-mini"
    assert response.text == "hello"


async def test_deployment_map_and_api_version_option() -> None:
    _, sent = await call(entry(deployments={"gpt-4o-mini": "prod mini"}, api_version="2025-04-01-preview"))
    assert sent.url.raw_path.decode().startswith("/openai/deployments/prod%20mini/chat/completions?")
    assert sent.url.params["api-version"] == "2025-04-01-preview"


async def test_v1_surface_and_entra_token() -> None:
    _, sent = await call(entry(surface="v1", auth="entra"))
    assert sent.url.path == "/openai/v1/chat/completions" and "api-version" not in sent.url.params
    assert sent.headers["authorization"] == f"Bearer {KEY}" and "api-key" not in sent.headers


@pytest.mark.parametrize(("option", "value"), [("surface", "classic"), ("auth", "basic")])
def test_unknown_options_are_refused(option: str, value: str) -> None:
    with pytest.raises(ValueError, match=option):
        AzureOpenAIAdapter(entry(**{option: value}))


@pytest.mark.parametrize(
    ("headers", "want"),
    [
        ({"x-request-id": "backend-id", "apim-request-id": "gateway-id"}, "backend-id"),
        ({"apim-request-id": "gateway-id"}, "gateway-id"),
        ({}, None),
    ],
)
async def test_request_id_prefers_x_request_id(headers: dict[str, str], want: str | None) -> None:
    response, _ = await call(entry(), headers=headers)
    assert response.request_id == want


@pytest.mark.parametrize(
    ("status", "error", "kind", "retryable"),
    [
        (403, {"code": "403", "message": "Out of call volume quota for OpenAI API. Quota will be replenished in 0.01:00:00."}, ErrorKind.QUOTA_EXHAUSTED, False),  # noqa: E501
        (403, {"code": "PermissionDenied", "message": "Principal does not have access to API/Operation."}, ErrorKind.PERMISSION, False),  # noqa: E501
        (404, {"type": "invalid_request_error", "code": "DeploymentNotFound", "message": "gone"}, ErrorKind.NOT_FOUND, False),  # noqa: E501
        (429, {"code": "429", "message": "Requests to the ChatCompletions_Create Operation ..."}, ErrorKind.RATE_LIMITED, True),  # noqa: E501
        (400, {"code": "content_filter", "param": "prompt", "message": "filtered", "innererror": {"code": "ResponsibleAIPolicyViolation"}}, ErrorKind.CONTENT_FILTER, False),  # noqa: E501
        (400, {"code": "BadRequest", "message": "x", "innererror": {"code": "ResponsibleAIPolicyViolation"}}, ErrorKind.CONTENT_FILTER, False),  # noqa: E501
        (200, {"code": "429", "message": "in a 200"}, ErrorKind.RATE_LIMITED, True),
    ],
)  # fmt: skip
async def test_azure_error_codes(
    status: int, error: dict[str, Any], kind: ErrorKind, retryable: bool
) -> None:
    err, _ = await call(entry(), status=status, body={"error": error}, headers={"apim-request-id": "gw-1"})
    assert isinstance(err, ProviderError)
    assert (err.kind, err.retryable, err.status, err.request_id) == (kind, retryable, status, "gw-1")
    assert KEY not in str(err)
