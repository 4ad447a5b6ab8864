"""Lint and types are part of the test suite, so CI rejects code that ruff or mypy would reject."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ["adapters", "mockserver", "harness", "suites", "tests"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", *TREES], ["ruff", "format", "--check", *TREES], [sys.executable, "-m", "mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_clean(command: list[str]) -> None:
    if command[0] == "ruff":
        ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
        command = [ruff, *command[1:]]
    proc = _run(*command)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
