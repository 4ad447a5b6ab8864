"""Fixtures for the cassette, recording and budget tests: a real mock server on loopback, the registry, a ledger."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.registry import Registry, load_registry
from harness.budget import Ledger
from mockserver.testing import MockServer

FAKE_KEY = "sk-proj-FAKEfakeFAKEfake0123456789abcdefABCDEF"


@pytest.fixture(scope="session")
def server() -> Iterator[MockServer]:
    with MockServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.create(tmp_path / "ledger.json", Decimal("0.05"))
