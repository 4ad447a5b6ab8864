from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.errors import (
    ErrorKind,
    ProviderError,
    parse_duration,
    parse_retry_after,
    register_secret,
    scrub,
)


@pytest.mark.parametrize(
    ("headers", "want"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"x-amz-retry-after": "250"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after_forms(headers: dict[str, str], want: float | None) -> None:
    assert parse_retry_after(headers) == want


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0


@pytest.mark.parametrize(
    ("text", "want"),
    [("1s", 1.0), ("6m0s", 360.0), ("12ms", 0.012), ("1h2m3s", 3723.0), ("13s", 13.0), ("0.5s", 0.5)],
)
def test_parse_duration(text: str, want: float) -> None:
    assert parse_duration(text) == pytest.approx(want)


@pytest.mark.parametrize("text", ["", "abc", "5", "5x", "s1"])
def test_parse_duration_rejects(text: str) -> None:
    assert parse_duration(text) is None


def test_scrub_known_and_shaped_secrets() -> None:
    register_secret("my-rotated-vault-secret-123")
    text = (
        "auth Bearer abcdefghijklmnop1234 key=sk-proj-ABCDEFGHIJKLMNOPQRSTUV and my-rotated-vault-secret-123 AIza"
        + "x" * 35
    )
    out = scrub(text)
    for secret in (
        "abcdefghijklmnop1234",
        "sk-proj-ABCDEFGHIJKLMNOPQRSTUV",
        "my-rotated-vault-secret-123",
        "x" * 35,
    ):
        assert secret not in out


@given(
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=20, max_size=60
    )
)
def test_provider_error_never_shows_an_openai_key(body: str) -> None:
    key = "sk-" + body
    err = ProviderError(
        ErrorKind.AUTH, f"Incorrect API key provided: {key}", provider_id="openai", status=401
    )
    assert key not in str(err) and key not in repr(err) and key not in str(err.to_dict())


def test_retryable_defaults_follow_kind() -> None:
    assert ProviderError(ErrorKind.RATE_LIMITED, "x", provider_id="p").retryable
    assert not ProviderError(ErrorKind.BAD_REQUEST, "x", provider_id="p").retryable
    assert not ProviderError(ErrorKind.RATE_LIMITED, "x", provider_id="p", retryable=False).retryable
