"""Azure OpenAI: OpenAI Chat Completions behind Azure's routing, auth and gateway (provider-wire-formats.md §3).

Only what Azure does differently from OpenAI lives here; bodies, streams and most errors are OpenAI's, so this is a
subclass of :class:`adapters.openai.OpenAIAdapter`.

* **Routing.** Two surfaces, chosen by ``options.surface``:
  ``deployments`` (classic): ``POST {base}/deployments/{deployment}/chat/completions?api-version=...``, where the
  deployment comes from the request's model (``options.deployments`` may map a model id to another deployment name)
  and ``api-version`` is mandatory (``options.api_version``, default ``2024-10-21``). The body keeps ``model``, as
  the ``AzureOpenAI`` SDK does; Azure routes by the path and ignores it.
  ``v1``: ``POST {base}/v1/chat/completions`` with the deployment as the body's ``model`` and no ``api-version``.
* **Auth.** ``api-key: <key>`` (``options.auth: api-key``, the default), or ``Authorization: Bearer <token>`` when the
  credential is a Microsoft Entra ID token (``options.auth: entra``).
* **Request id.** ``x-request-id`` (what the SDK reads, and what Azure's own 500 messages quote), falling back to
  ``apim-request-id``: responses made by Azure's gateway (401, DeploymentNotFound 404, 429) carry only the latter.
* **Errors.** Gateway errors have a *string* status as ``code`` and no ``type`` (``{"code": "429", ...}``), which the
  OpenAI mapping already reads through the status. Azure-only cases are refined here: the Cognitive Services quota
  403 ("Out of call volume quota ...") is ``quota_exhausted``, not ``permission``; ``DeploymentNotFound`` is
  ``not_found``; a ``ResponsibleAIPolicyViolation`` inner error is ``content_filter``.
* **Streams.** Tolerated by the OpenAI parser as they are: the leading ``choices: []`` prompt-filter chunk with empty
  id and model, and async-filter chunks whose choices carry no ``delta``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

import httpx

from adapters.errors import ErrorKind
from adapters.openai import OpenAIAdapter

if TYPE_CHECKING:
    from adapters.base import Timeouts
    from adapters.credentials import CredentialResolver
    from adapters.registry import ProviderEntry

DEFAULT_API_VERSION = "2024-10-21"
Surface = Literal["deployments", "v1"]

#: Azure ``error.code`` (or inner error code) values that name a kind more precisely than the status does.
AZURE_CODE_KINDS: dict[str, ErrorKind] = {
    "DeploymentNotFound": ErrorKind.NOT_FOUND,
    "ResponsibleAIPolicyViolation": ErrorKind.CONTENT_FILTER,
    "content_filter": ErrorKind.CONTENT_FILTER,
    "InsufficientQuota": ErrorKind.QUOTA_EXHAUSTED,
}
#: Message prefixes of Azure's quota-exhausted answers (Cognitive Services' 403).
QUOTA_MESSAGES = ("out of call volume quota",)


class AzureOpenAIAdapter(OpenAIAdapter):
    wire: ClassVar[str] = "azure-openai"
    #: preferred first; the gateway-made responses carry only the second
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id", "apim-request-id")

    def __init__(
        self,
        entry: ProviderEntry,
        *,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        credentials: CredentialResolver | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        super().__init__(
            entry, base_url=base_url, http_client=http_client, credentials=credentials, timeouts=timeouts
        )
        options = entry.options
        surface = options.get("surface", "deployments")
        if surface not in ("deployments", "v1"):
            raise ValueError(
                f"{entry.provider_id}: options.surface must be 'deployments' or 'v1', not {surface!r}"
            )
        auth = options.get("auth", "api-key")
        if auth not in ("api-key", "entra"):
            raise ValueError(f"{entry.provider_id}: options.auth must be 'api-key' or 'entra', not {auth!r}")
        self.surface: Surface = surface
        self.auth: str = auth
        self.api_version: str = str(options.get("api_version") or DEFAULT_API_VERSION)
        self.deployments: dict[str, str] = {
            str(k): str(v) for k, v in (options.get("deployments") or {}).items()
        }

    # ----- request -----
    def request_id_of(self, headers: httpx.Headers) -> str | None:
        for name in self.request_id_headers:
            value: str | None = headers.get(name)
            if value:
                return value
        return None

    async def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = await self.credential()
        if key:
            if self.auth == "entra":
                headers["authorization"] = f"Bearer {key}"
            else:
                headers["api-key"] = key
        return headers

    def route(
        self, path: str, body: Mapping[str, Any], params: Mapping[str, str] | None
    ) -> tuple[str, dict[str, str] | None]:
        """The surface's path and query for an OpenAI-relative ``path`` such as ``chat/completions``."""
        if self.surface == "v1":
            return f"v1/{path}", dict(params) if params else None
        model = str(body.get("model") or "")
        deployment = quote(self.deployments.get(model, model), safe="")
        return f"deployments/{deployment}/{path}", {**(params or {}), "api-version": self.api_version}

    async def post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        routed, query = self.route(path, body, params)
        return await super().post_json(routed, body, headers, params=query)

    @asynccontextmanager
    async def post_stream(
        self,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        routed, query = self.route(path, body, params)
        async with super().post_stream(routed, body, headers, params=query) as response:
            yield response

    # ----- errors -----
    def dialect_kind(self, error: dict[str, Any], status: int | None) -> ErrorKind | None:
        return azure_kind(error)


def azure_kind(error: Any) -> ErrorKind | None:
    """The kind an Azure-specific code, inner error code or quota message implies, if any."""
    if not isinstance(error, dict):
        return None
    inner = error.get("innererror")
    for code in (error.get("code"), inner.get("code") if isinstance(inner, dict) else None):
        if isinstance(code, str) and code in AZURE_CODE_KINDS:
            return AZURE_CODE_KINDS[code]
    message = error.get("message")
    if isinstance(message, str) and message.strip().lower().startswith(QUOTA_MESSAGES):
        return ErrorKind.QUOTA_EXHAUSTED
    return None
