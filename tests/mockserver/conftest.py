"""Shared fixtures: one in-process mock server per test worker, a fresh session per test, raw HTTP helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mockserver.testing import MockServer


@pytest.fixture(scope="session")
def server() -> Iterator[MockServer]:
    with MockServer() as srv:
        yield srv


@pytest.fixture
def sid(server: MockServer) -> str:
    return server.new_session()


@pytest.fixture
def chat_url(server: MockServer) -> str:
    return f"{server.openai_base_url}/chat/completions"
