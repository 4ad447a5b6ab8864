"""A deliberately broken OpenAI adapter for the reporting tests: it drops the provider's retry hint."""

from __future__ import annotations

import httpx

from adapters.errors import ProviderError
from adapters.openai import OpenAIAdapter


class DropsRetryAfter(OpenAIAdapter):
    """Must fail ERR-429 (retry_after not parsed) and RTY-AFTER (the hint is not honoured)."""

    def status_error(self, response: httpx.Response) -> ProviderError:
        err = super().status_error(response)
        err.retry_after = None
        return err
