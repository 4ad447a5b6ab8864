"""A real certification of OpenAI (subprocess, embedded mock, --allure-html): every report, as people read it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from reporting_helpers import load_certificate, output, parse_xml, render, shared_certification

from harness.allure_report import AllureUnavailable, find_allure_cli
from harness.checks import CHECKS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path, bool]:
    try:
        find_allure_cli([ROOT])
        html = True
    except AllureUnavailable:
        html = False
    proc, reports = shared_certification(
        tmp_path_factory, "certified", "--provider", "openai", *(["--allure-html"] if html else [])
    )
    return proc, reports, html


@pytest.fixture(scope="module")
def cert(run: tuple[subprocess.CompletedProcess[str], Path, bool]) -> dict[str, Any]:
    proc, reports, _ = run
    assert proc.returncode == 0, output(proc)
    return load_certificate(reports / "openai" / "certificate.json")


def _properties(path: Path) -> dict[str, str]:
    """A reader for the simple .properties Allure gets from us (key=value, backslash escapes)."""
    values = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        key, _, value = line.partition("=")
        values[key.replace("\\", "")] = value.encode("latin-1").decode("unicode_escape").replace("\\", "")
    return values


def test_certified_exits_zero_with_a_valid_certificate(cert: dict[str, Any]) -> None:
    assert cert["verdict"] == "certified"
    assert [c["id"] for c in cert["checks"]] == list(CHECKS)
    assert cert["target"] == "mock" and cert["mode"] == "mock"
    assert sum(cert["totals"].values()) == len(CHECKS)
    assert all(t["duration_s"] >= 0 for c in cert["checks"] for t in c["tests"])


def test_certificate_markdown_is_compact_and_complete(
    run: tuple[subprocess.CompletedProcess[str], Path, bool], cert: dict[str, Any]
) -> None:
    md = (run[1] / "openai" / "certificate.md").read_text(encoding="utf-8")
    lines = md.splitlines()
    assert lines[0] == "### ✅ OpenAI (`openai`): CERTIFIED"
    t = cert["totals"]
    assert (
        f"**Verdict: CERTIFIED** · {t['pass']} passed · 0 failed · {t['not applicable']} not applicable" in md
    )
    assert re.search(r"provcert \S+ · mode: mock · \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", md)
    assert "Failed check" not in md  # nothing failed: no failure table
    # one row per check and a few lines around them: compact enough for a PR comment
    # the check table, plus a header: verdict, totals, mode, provenance, unverified wire forms, failures, details
    assert len(lines) <= len(CHECKS) + 13
    for check in cert["checks"]:
        row = next(line for line in lines if line.startswith(f"| {check['id']} |"))
        assert check["title"] in row
        if check["status"] == "not applicable":
            assert "⏭️ n/a" in row and check["detail"][:30] in row
    assert f"<details><summary>All {len(CHECKS)} checks</summary>" in md and md.rstrip().endswith(
        "</details>"
    )


def test_junit_has_one_testcase_per_check(
    run: tuple[subprocess.CompletedProcess[str], Path, bool], cert: dict[str, Any]
) -> None:
    root = parse_xml(run[1] / "openai" / "junit.xml")
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    assert [c.get("name", "").split(" ")[0] for c in cases] == list(CHECKS)
    assert {c.get("classname") for c in cases} == {
        f"provcert.openai.{check.area}" for check in CHECKS.values()
    }
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(skipped) == cert["totals"]["not applicable"] == int(suite.get("skipped", "-1"))
    assert suite.get("failures") == "0" and suite.get("tests") == str(len(CHECKS))
    assert all(float(c.get("time", "x")) >= 0 for c in cases)
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "certified" and props["provider"] == "openai"


def test_allure_results_carry_environment_executor_and_categories(
    run: tuple[subprocess.CompletedProcess[str], Path, bool],
) -> None:
    results = run[1] / "openai" / "allure-results"
    env = _properties(results / "environment.properties")
    assert env["provider"] == "openai" and env["provider.name"] == "OpenAI"
    assert env["adapter"] == "adapters.openai:OpenAIAdapter"
    assert env["mode"] == "mock" and env["target"] == "mock" and env["mock.server"] == "embedded"
    assert "gpt-4o-mini" in env["models"]
    assert env["provcert.version"] and env["sdk.httpx"] and env["sdk.openai"]
    executor = json.loads((results / "executor.json").read_text())
    assert executor["name"] and executor["type"] in ("local", "github") and executor["reportName"]
    categories = json.loads((results / "categories.json").read_text())
    names = [c["name"] for c in categories]
    for wanted in ("Wire format", "Error mapping", "Streaming", "Accounting", "Secrets"):
        assert any(n.startswith(wanted) for n in names), names
    assert len(list(results.glob("*-result.json"))) >= len(CHECKS)


def test_allure_html_renders_every_check(
    run: tuple[subprocess.CompletedProcess[str], Path, bool], chromium: str, tmp_path: Path
) -> None:
    proc, reports, html = run
    if not html:
        pytest.skip("the Allure command line is not installed")
    index = reports / "openai" / "allure-report" / "index.html"
    assert index.is_file(), output(proc)
    assert not list(index.parent.glob("data")), "a single-file report has no data/ folder beside it"
    assert f"Allure HTML: {index}" in proc.stdout
    behaviors = render(chromium, index, "behaviors", tmp_path, expand=True)
    missing = [check_id for check_id in CHECKS if f"{check_id} {CHECKS[check_id].title}" not in behaviors]
    assert not missing, f"checks missing from the rendered Allure report: {missing}\n{behaviors[:2000]}"
    overview = render(chromium, index, "", tmp_path)
    assert "provcert: OpenAI (openai)" in overview
    assert "provcert.version" in overview and "Environment" in overview
    assert "Executors" in overview


def test_matrix_and_summary_include_the_provider(
    run: tuple[subprocess.CompletedProcess[str], Path, bool], cert: dict[str, Any]
) -> None:
    reports = run[1]
    matrix = json.loads((reports / "matrix.json").read_text())
    assert [p["provider"] for p in matrix["providers"]] == ["openai"]
    assert matrix["fleet"] == {"providers": 1, "certified": 1, "not certified": 0, "incomplete": 0}
    summary = (reports / "summary.md").read_text()
    assert "## provcert: provider certification matrix" in summary
    assert "### ✅ OpenAI (`openai`): CERTIFIED" in summary
    assert "matrix.svg" not in summary  # a job summary cannot show a local image
    assert "![Checks passed per provider](matrix.svg)" in (reports / "matrix.md").read_text()
