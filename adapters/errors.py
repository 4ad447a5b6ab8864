"""One error family for every provider.

Callers branch on ``kind`` and ``retryable``, never on a provider's status codes or SDK classes; the gateway decides
retries from the same two fields. Messages are scrubbed of credentials before they are stored, so that an error can be
logged, shown or attached to a report without leaking a key.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

# the retry-hint parser lives in adapters.retry_hints (every form, one place); re-exported for existing callers
from adapters.retry_hints import parse_duration as parse_duration
from adapters.retry_hints import parse_retry_after as parse_retry_after
from mockserver import secrets_policy


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    AUTH = "auth"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH = "context_length"
    CONTENT_FILTER = "content_filter"
    SERVER_ERROR = "server_error"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    STREAM_INTERRUPTED = "stream_interrupted"
    INVALID_RESPONSE = "invalid_response"
    UNSUPPORTED = "unsupported"


#: Kinds worth another attempt by default. A stream that was interrupted is retryable only while nothing reached the
#: caller; the gateway enforces that, not this table.
RETRYABLE_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMITED,
        ErrorKind.SERVER_ERROR,
        ErrorKind.OVERLOADED,
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION,
        ErrorKind.STREAM_INTERRUPTED,
    }
)

_known_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a resolved credential so that :func:`scrub` removes it wherever it appears, whatever its format
    (also escaped, URL-encoded, or split at an inner newline: :func:`mockserver.secrets_policy.variants`)."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def known_secrets() -> tuple[str, ...]:
    """The credentials registered in this process (for surfaces that redact with the same policy: reports, logs)."""
    return tuple(_known_secrets)


def scrub(text: str) -> str:
    """Remove every known credential and anything shaped like a key or named as one from ``text``.

    The definition of a secret is the shared policy's (:mod:`mockserver.secrets_policy`, a standard-library-only
    module the mock, the harness and the adapters all read), so an error says no more than a journal or a cassette.
    """
    return secrets_policy.redact_text(text, _known_secrets)


class ProviderError(Exception):
    """The only exception an adapter or the gateway lets reach a caller."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider_id: str,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        partial_text: str = "",
        provider_code: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.kind = kind
        self.message = scrub(message)
        self.provider_id = provider_id
        self.status = status
        self.retryable = kind in RETRYABLE_KINDS if retryable is None else retryable
        self.retry_after = retry_after
        self.request_id = request_id
        self.partial_text = partial_text
        self.provider_code = provider_code
        #: set by the gateway when stream output already reached the caller
        self.output_delivered = False
        super().__init__(self.message)
        if cause is not None:
            self.__cause__ = cause

    def __str__(self) -> str:
        where = f" (status {self.status})" if self.status is not None else ""
        rid = f" [request id {self.request_id}]" if self.request_id else ""
        # scrubbed again when shown: a credential registered after the error was made (rotation) is hidden too
        return scrub(f"{self.provider_id}: {self.kind.value}{where}: {self.message}{rid}")

    def __repr__(self) -> str:
        return scrub(
            f"ProviderError(kind={self.kind.value!r}, provider_id={self.provider_id!r}, status={self.status!r}, "
            f"retryable={self.retryable!r}, retry_after={self.retry_after!r}, request_id={self.request_id!r}, "
            f"message={self.message!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "message": self.message,
            "provider_id": self.provider_id,
            "status": self.status,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "request_id": self.request_id,
            "partial_text": self.partial_text,
            "provider_code": self.provider_code,
        }
