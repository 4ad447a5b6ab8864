"""One in-process mock server per test worker for the SDK compatibility tests."""

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
