"""pytest options and fixtures for golden cassettes and live recording (loaded by :mod:`harness.plugin`).

* ``--update-golden``: let the GLD checks rewrite the reviewed snapshots (``<name>.expected.json``);
* ``--cassettes-dir``: where golden cassettes live (default: the project's ``cassettes/``);
* ``--live``, ``--record-mode``, ``--max-cost-usd``, ``--live-upstream``: live checks (with ``CERTIFY_LIVE=1``).

Live checks run only when ``CERTIFY_LIVE=1`` *and* ``--live`` are given and the provider's ``credential_ref``
resolves; otherwise the :func:`live` fixture ends the check as not applicable, naming exactly what is missing. The
run's ledger (``<reports-dir>/live-ledger.json``) is created once by the controller, shared by xdist workers, and
summarized at the end of the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest
import pytest_asyncio

from harness.checks import not_applicable

if TYPE_CHECKING:
    from adapters.registry import ProviderEntry
    from adapters.types import ChatRequest
    from harness.budget import Ledger
    from harness.live import LiveResult

RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
DEFAULT_MAX_COST = "0.05"
LEDGER_KEY = pytest.StashKey[Path | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("provcert", "provcert certification")
    group.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden snapshots (<cassette>.expected.json) from this run; review the diff before committing",
    )
    group.addoption(
        "--cassettes-dir", default=None, help="folder of golden cassettes (default: the project's cassettes/)"
    )
    group.addoption(
        "--live",
        action="store_true",
        default=False,
        help="run the live checks (also needs CERTIFY_LIVE=1 and the provider's credential)",
    )
    group.addoption(
        "--record-mode",
        default="none",
        choices=RECORD_MODES,
        help="how live calls are recorded into golden cassettes (default none: nothing is written)",
    )
    group.addoption(
        "--max-cost-usd",
        default=DEFAULT_MAX_COST,
        help=f"live spend cap for the whole run, in USD (default {DEFAULT_MAX_COST})",
    )
    group.addoption(
        "--live-upstream",
        default=None,
        help="send live calls to this mock server (as the provider's upstream) instead of the real API: "
        "tests the live path on loopback",
    )


def _cap(config: pytest.Config) -> Decimal:
    raw = config.getoption("max_cost_usd")
    try:
        cap = Decimal(str(raw))
    except InvalidOperation:
        raise pytest.UsageError(f"--max-cost-usd {raw!r} is not a number") from None
    if not cap.is_finite() or cap < 0:
        raise pytest.UsageError(f"--max-cost-usd {raw!r} must be a non-negative amount")
    return cap


def _live_requested(config: pytest.Config) -> bool:
    return bool(config.getoption("live")) and os.environ.get("CERTIFY_LIVE") == "1"


def ledger_path(config: pytest.Config) -> Path:
    return Path(config.getoption("reports_dir")) / "live-ledger.json"


def pytest_configure(config: pytest.Config) -> None:
    cap = _cap(config)
    config.stash[LEDGER_KEY] = None
    if _live_requested(config) and not hasattr(config, "workerinput"):
        from harness.budget import Ledger, LedgerError

        try:
            Ledger.create(ledger_path(config), cap)  # once per run: xdist workers share it
        except LedgerError as exc:  # its lock held by another run: a usage error naming the file, not a hang
            raise pytest.UsageError(f"provcert: {exc}") from None
        config.stash[LEDGER_KEY] = ledger_path(config)


@pytest.fixture(scope="session")
def golden_root(pytestconfig: pytest.Config) -> Path:
    from harness.cassettes import DEFAULT_ROOT

    raw = pytestconfig.getoption("cassettes_dir")
    return Path(raw) if raw else DEFAULT_ROOT


@pytest.fixture(scope="session")
def update_golden(pytestconfig: pytest.Config) -> bool:
    return bool(pytestconfig.getoption("update_golden"))


@dataclass
class LiveContext:
    """What a live check needs: the ledger, where calls go, how they are recorded, and the resolved credential."""

    entry: ProviderEntry
    ledger: Ledger
    credential: str
    record_mode: str
    cassettes: Path
    base_url: str | None

    @property
    def source(self) -> str:
        return "mock" if self.base_url else "live"

    async def call(
        self,
        request: ChatRequest,
        kind: Literal["complete", "stream"],
        *,
        cassette: str | None = None,
        probe: bool = False,
    ) -> LiveResult:
        """One budgeted live call recorded into ``cassettes/<provider>/<cassette>``; a refused call skips the check
        (the budget is reached) unless ``probe`` (then BudgetRefused propagates to the caller)."""
        from harness.budget import BudgetRefused
        from harness.cassettes import CASSETTE_SUFFIX
        from harness.live import live_call

        name = cassette or f"live-{kind}"
        try:
            return await live_call(
                self.entry,
                request,
                kind=kind,
                credential=self.credential,
                ledger=self.ledger,
                cassette=self.cassettes / self.entry.provider_id / f"{name}{CASSETTE_SUFFIX}",
                record_mode="none" if probe else self.record_mode,
                base_url=self.base_url,
                source=self.source,
                label=f"{name}{' (probe)' if probe else ''}",
                probe=probe,
            )
        except BudgetRefused as exc:
            if probe:
                raise
            pytest.skip(f"live budget: {exc}")


@pytest_asyncio.fixture
async def live(pytestconfig: pytest.Config, entry: ProviderEntry, golden_root: Path) -> LiveContext:
    """The live context, or the check ends as not applicable saying exactly what is missing."""
    from adapters.credentials import CredentialError, default_resolver
    from harness.budget import Ledger

    missing = []
    if os.environ.get("CERTIFY_LIVE") != "1":
        missing.append("the environment variable CERTIFY_LIVE=1 is not set")
    if not pytestconfig.getoption("live"):
        missing.append("the --live option was not given")
    credential = ""
    if entry.credential_ref is not None:
        try:
            credential = await default_resolver().resolve(entry.credential_ref)
        except CredentialError as exc:
            missing.append(
                f"{entry.provider_id}'s credential {entry.credential_ref} does not resolve ({exc})"
            )
    if missing:
        not_applicable(
            "live checks need CERTIFY_LIVE=1, --live and a resolvable credential: " + "; ".join(missing)
        )
    ledger = Ledger(ledger_path(pytestconfig))
    exhausted = ledger.exhausted()
    # after a breach no live call is made (the ledger refuses them all), but LIV-BUDGET must still run to fail it
    if exhausted and not ledger.breaches():
        pytest.skip(f"live budget: {exhausted}")
    upstream = pytestconfig.getoption("live_upstream")
    return LiveContext(
        entry=entry,
        ledger=ledger,
        credential=credential,
        record_mode=str(pytestconfig.getoption("record_mode")),
        cassettes=golden_root,
        base_url=upstream.rstrip("/") + entry.mock_path if upstream else None,
    )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    path = config.stash.get(LEDGER_KEY, None)
    if path is None or not path.exists():
        return
    from harness.budget import Ledger

    terminalreporter.section("provcert live spend")
    for line in Ledger(path).summary():
        terminalreporter.write_line(line)
