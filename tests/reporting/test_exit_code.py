"""CI gates on the exit code: a failed applicable check always fails the run; not applicable or not run never does.

A tiny fake suite (conftest.FAKE_SUITE) gives each outcome on demand, so every direction costs a second or two.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from reporting_helpers import load_certificate, output, parse_xml

Run = Callable[..., CompletedProcess[str]]


@pytest.mark.parametrize(
    ("want", "code", "verdict"),
    [
        ("pass,na", 0, "incomplete"),  # not applicable and not run: never a failure
        ("na", 0, "incomplete"),  # only not applicable: pytest's "all skipped" is still a success
        ("pass,na,fail", 1, "not certified"),
        ("pass,na,xfail", 1, "not certified"),  # an xfail marker cannot hide a failing check
        ("pass,na,error", 1, "not certified"),  # a fixture error fails its check too
    ],
)
def test_exit_code_follows_the_checks(
    fake_suite: Run, tmp_path: Path, want: str, code: int, verdict: str
) -> None:
    proc = fake_suite(want)
    assert proc.returncode == code, output(proc)
    cert = load_certificate(tmp_path / "reports" / "openai" / "certificate.json")
    assert cert["verdict"] == verdict
    statuses = {c["id"]: c["status"] for c in cert["checks"]}
    assert statuses["REG-CAPS"] == "not applicable"
    if "xfail" in want:
        assert statuses["STR-ABORT"] == "fail"
        assert "xfail" in next(c["detail"] for c in cert["checks"] if c["id"] == "STR-ABORT")
    if "error" in want:
        detail = next(c["detail"] for c in cert["checks"] if c["id"] == "TOK-NULL")
        assert "the mock could not be reached" in detail and "(in setup)" in detail
    # the JUnit file agrees with the exit code
    suite = parse_xml(tmp_path / "reports" / "openai" / "junit.xml").find("testsuite")
    assert suite is not None
    assert (int(suite.get("failures", "0")) > 0) == bool(code)


def test_failure_evidence_and_reason_reach_every_report(fake_suite: Run, tmp_path: Path) -> None:
    proc = fake_suite("pass,na,fail")
    assert proc.returncode == 1
    reports = tmp_path / "reports"
    cert = load_certificate(reports / "openai" / "certificate.json")
    err = next(c for c in cert["checks"] if c["id"] == "ERR-429")
    assert err["status"] == "fail"
    assert "retry_after was None" in err["detail"]
    md = (reports / "openai" / "certificate.md").read_text(encoding="utf-8")
    # the failure is visible above the collapsed table, with its evidence made inert for markdown
    failed_table, _, full_table = md.partition("<details>")
    assert "| ERR-429 | Rate limit" in failed_table
    assert "`AssertionError: retry_after was None \\| expected <3.0>`" in failed_table
    assert (
        "| REG-CAPS | Capabilities declared and behaviour agrees | ⏭️ n/a | this provider declares no such"
        in (full_table)
    )
    assert "⚠️ not run" in full_table
    case = next(
        c
        for c in parse_xml(reports / "openai" / "junit.xml").iter("testcase")
        if c.get("name", "").startswith("ERR-429 ")
    )
    failure = case.find("failure")
    assert failure is not None and "retry_after was None" in failure.get("message", "")
    assert "test_fails[openai]" in (failure.text or "")


def test_progress_line_as_each_provider_completes(fake_suite: Run) -> None:
    proc = fake_suite("pass,na", "openai,groq")
    assert proc.returncode == 0, output(proc)
    lines = proc.stdout.splitlines()
    progress = [line for line in lines if line.startswith("provcert: ") and " checked (" in line]
    assert progress == ["provcert: openai checked (1/2 providers): 1 passed, 0 failed, 1 not applicable"]
    # pytest's own lines stay whole: the progress line is never glued to a line of results
    assert all(line.count("provcert:") <= 1 and not line.startswith(".") for line in progress)
    summary = lines[lines.index(next(ln for ln in lines if "provcert certification" in ln)) :]
    assert any(ln.startswith("openai: INCOMPLETE") for ln in summary)
    assert any(ln.startswith("groq: INCOMPLETE") for ln in summary)
    assert any(ln.startswith("matrix (2 providers on disk") for ln in summary)


def test_progress_in_quiet_mode_keeps_pytest_lines_intact(fake_suite: Run, tmp_path: Path) -> None:
    proc = fake_suite("pass,na", "openai,groq,anthropic", None, "-q")
    assert proc.returncode == 0, output(proc)
    lines = proc.stdout.splitlines()
    assert "provcert: openai checked (1/3 providers): 1 passed, 0 failed, 1 not applicable" in lines
    assert "provcert: groq checked (2/3 providers): 1 passed, 0 failed, 1 not applicable" in lines


def test_xdist_run_reports_once_on_the_controller(fake_suite: Run, tmp_path: Path) -> None:
    """Under pytest-xdist the verdicts travel with the reports to the controller, which alone writes the reports."""
    proc = fake_suite("pass,na,fail", "openai,groq", None, "-n", "2")
    assert proc.returncode == 1, output(proc)
    for provider in ("openai", "groq"):
        cert = load_certificate(tmp_path / "reports" / provider / "certificate.json")
        statuses = {c["id"]: c["status"] for c in cert["checks"]}
        assert (statuses["REG-ID"], statuses["REG-CAPS"], statuses["ERR-429"]) == (
            "pass",
            "not applicable",
            "fail",
        )
        results = list((tmp_path / "reports" / provider / "allure-results").glob("*-result.json"))
        assert len(results) == 3
    assert "openai: NOT CERTIFIED" in proc.stdout and "groq: NOT CERTIFIED" in proc.stdout
