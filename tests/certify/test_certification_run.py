"""The certification as a user runs it: a subprocess, real reports on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checks import CHECKS

ROOT = Path(__file__).resolve().parents[2]


def _certify(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "suites/certify", "--reports-dir", str(tmp), "-q", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def openai_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = tmp_path_factory.mktemp("certify")
    return _certify(tmp, "--provider", "openai"), tmp


def test_openai_is_certified(openai_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, reports = openai_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    cert = json.loads((reports / "openai" / "certificate.json").read_text())
    assert cert["verdict"] == "certified"
    statuses = {c["id"]: c["status"] for c in cert["checks"]}
    assert set(statuses) == set(CHECKS), "the certificate must list every check in the catalogue"
    assert all(s in ("pass", "not applicable") for s in statuses.values()), statuses
    for c in cert["checks"]:
        if c["status"] == "not applicable":
            assert c["detail"], f"{c['id']} is not applicable without a reason"
    assert "openai: CERTIFIED" in proc.stdout


def test_every_passing_test_of_every_check_records_evidence(
    openai_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """No vacuous passes: each passing test says what it verified, so a check that stopped exercising anything
    (an early return, an emptied loop) shows up here instead of passing silently."""
    _, reports = openai_run
    cert = json.loads((reports / "openai" / "certificate.json").read_text())
    silent = [
        t["nodeid"] for c in cert["checks"] for t in c["tests"] if t["status"] == "pass" and not t["evidence"]
    ]
    assert not silent, f"passing tests that recorded no evidence: {silent}"


def test_certificate_markdown_lists_every_check(
    openai_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, reports = openai_run
    md = (reports / "openai" / "certificate.md").read_text()
    assert "**Verdict: CERTIFIED**" in md
    for check_id in CHECKS:
        assert f"| {check_id} |" in md


def test_allure_results_are_labelled(openai_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, reports = openai_run
    results = list((reports / "openai" / "allure-results").glob("*-result.json"))
    assert len(results) >= len(CHECKS)
    stories = set()
    for path in results:
        data = json.loads(path.read_text())
        labels = {(label["name"], label["value"]) for label in data["labels"]}
        names = {name for name, _ in labels}
        assert ("parentSuite", "openai") in labels
        assert {"feature", "story", "severity"} <= names, f"{path.name}: {names}"
        stories |= {v for n, v in labels if n == "story"}
    assert {s.split(" ", 1)[0] for s in stories} == set(CHECKS)
    assert not (reports / ".allure-staging").exists(), "the staging directory was left behind"


def test_unknown_provider_is_a_usage_error(tmp_path: Path) -> None:
    proc = _certify(tmp_path, "--provider", "nope-ai")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "unknown provider nope-ai" in proc.stderr and "openai" in proc.stderr


def test_certify_against_a_standalone_mock_server(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        proc = _certify(tmp_path, "--provider", "openai", "--mock-url", url, "-k", "ERR or STR")
        assert proc.returncode == 0, proc.stdout[-4000:]
        cert = json.loads((tmp_path / "openai" / "certificate.json").read_text())
        assert cert["mode"] == "mock" and cert["mock_server"] == url
        assert any(c["status"] == "pass" and c["id"] == "STR-ABORT" for c in cert["checks"])
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0


def test_bad_mock_url_is_a_usage_error(tmp_path: Path) -> None:
    env = dict(os.environ)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "suites/certify",
            "--provider",
            "openai",
            "--mock-url",
            "http://127.0.0.1:9",
            "--reports-dir",
            str(tmp_path),
            "-q",
            "-k",
            "ERR-404 or not_found",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "is not a provcert mock server" in proc.stdout + proc.stderr
    assert not (tmp_path / "openai").exists(), "a setup error must not write a certificate"


def test_the_certificate_lists_checks_resting_on_unverified_wire_forms(
    openai_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """A reader must know which passes rest on a fault body or retry hint the mock only guessed."""
    from harness.fault_provenance import unverified_checks

    _, reports = openai_run
    cert = json.loads((reports / "openai" / "certificate.json").read_text())
    listed = cert["provenance"]["unverified_wire_forms"]
    assert listed == unverified_checks("openai") and listed, listed
    md = (reports / "openai" / "certificate.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("Resting on wire forms not verified"))
    assert all(check in line for check in listed)
