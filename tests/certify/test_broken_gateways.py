"""The certification fails a broken gateway (fallback, rollout gate, stream telemetry) on exactly the checks its
defect touches. Each defect is seeded by tests/certify/broken_gateways.py into a real certification run of the
OpenAI provider; only the checks that exercise the gateway run, so each run takes seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: defect -> the checks it must fail (and no others among those run)
EXPECTED_FAILURES: dict[str, set[str]] = {
    "falls_back_on_everything": {"RTY-FALLBACK"},
    "stream_span_loses_cost": {"TEL-FIELDS"},
    "percentage_inverted": {"REG-ROLLOUT"},
    "canary_cohort_ignored": {"REG-ROLLOUT"},
    "kill_switch_ignored": {"REG-ROLLOUT", "RTY-FALLBACK"},
}
#: the modules whose checks go through the gateway
GATEWAY_CHECKS = [
    "suites/certify/test_resilience.py",
    "suites/certify/test_registration.py",
    "suites/certify/test_telemetry.py",
]


def _certify(tmp: Path, defect: str | None) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
        "PROVCERT_BROKEN_GATEWAY": defect or "",
    }
    args = [
        "--provider",
        "openai",
        "-p",
        "broken_gateways",
        "--reports-dir",
        str(tmp),
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *GATEWAY_CHECKS, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads((tmp / "openai" / "certificate.json").read_text())


def _failed(cert: dict) -> dict[str, str]:
    return {c["id"]: c["detail"] for c in cert["checks"] if c["status"] == "fail"}


def test_the_unbroken_gateway_passes_the_same_checks(tmp_path: Path) -> None:
    """The control: without a seeded defect the same selection fails nothing (so a failure below is the defect's)."""
    assert _failed(_certify(tmp_path, None)) == {}


@pytest.mark.parametrize("defect", list(EXPECTED_FAILURES))
def test_broken_gateway_fails_exactly_its_checks(tmp_path: Path, defect: str) -> None:
    failed = _failed(_certify(tmp_path, defect))
    assert set(failed) == EXPECTED_FAILURES[defect], (
        f"{defect}: failed {sorted(failed)}, expected {sorted(EXPECTED_FAILURES[defect])}: {failed}"
    )
    assert all(failed.values()), f"{defect}: a failure without evidence: {failed}"
