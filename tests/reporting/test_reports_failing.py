"""A real certification of a broken adapter: a non-zero exit, the evidence, and failures sorted into categories."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from reporting_helpers import HERE, load_certificate, output, parse_xml, render, shared_certification

from harness.allure_report import AllureUnavailable, categories, find_allure_cli

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"ERR-429", "RTY-AFTER"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path, bool]:
    try:
        find_allure_cli([ROOT])
        html = True
    except AllureUnavailable:
        html = False
    proc, reports = shared_certification(
        tmp_path_factory,
        "failing",
        "--provider",
        "broken-retry-hint",
        "--registry",
        str(HERE / "broken.yaml"),
        "-k",
        "rate_limit or retry_after or registration",
        *(["--allure-html"] if html else []),
    )
    return proc, reports, html


def test_a_failed_check_fails_the_run(run: tuple[subprocess.CompletedProcess[str], Path, bool]) -> None:
    proc, reports, _ = run
    assert proc.returncode == 1, output(proc)
    cert = load_certificate(reports / "broken-retry-hint" / "certificate.json")
    assert cert["verdict"] == "not certified"
    assert {c["id"] for c in cert["checks"] if c["status"] == "fail"} == EXPECTED
    assert "broken-retry-hint: NOT CERTIFIED" in proc.stdout
    md = (reports / "broken-retry-hint" / "certificate.md").read_text()
    assert md.startswith("### ❌ Broken retry hint (`broken-retry-hint`): NOT CERTIFIED")
    assert "| ERR-429 | Rate limit: rate_limited, retryable, retry_after parsed | `AssertionError:" in md
    junit = parse_xml(reports / "broken-retry-hint" / "junit.xml")
    failed = {
        c.get("name", "").split(" ")[0] for c in junit.iter("testcase") if c.find("failure") is not None
    }
    assert failed == EXPECTED
    matrix = json.loads((reports / "matrix.json").read_text())
    row = matrix["providers"][0]
    assert sorted(row["failed_checks"]) == sorted(EXPECTED)
    assert row["areas"]["ERR"]["fail"] == 1 and row["areas"]["RTY"]["fail"] == 1


def test_failures_land_in_their_category(run: tuple[subprocess.CompletedProcess[str], Path, bool]) -> None:
    """Allure 2 matches a category's messageRegex against the whole message (Java String.matches): so does this."""
    _, reports, _ = run
    results = reports / "broken-retry-hint" / "allure-results"
    cats = json.loads((results / "categories.json").read_text())
    assert cats == categories()
    failed = [
        data
        for path in results.glob("*-result.json")
        if (data := json.loads(path.read_text()))["status"] in ("failed", "broken")
    ]
    assert failed
    for data in failed:
        labels = {label["name"]: label["value"] for label in data["labels"]}
        message = data["statusDetails"]["message"]
        assert message.startswith(f"[{labels['check_id']}] "), message
        matched = [c["name"] for c in cats if re.fullmatch(c["messageRegex"], message)]
        expected = (
            "Error mapping" if labels["check_id"].startswith("ERR-") else "Resilience (retries, fallback)"
        )
        assert matched == [expected], (message[:200], matched)


def test_html_shows_the_failure_categories(
    run: tuple[subprocess.CompletedProcess[str], Path, bool], chromium: str, tmp_path: Path
) -> None:
    proc, reports, html = run
    if not html:
        pytest.skip("the Allure command line is not installed")
    index = reports / "broken-retry-hint" / "allure-report" / "index.html"
    assert index.is_file(), output(proc)
    text = render(chromium, index, "categories", tmp_path, expand=True)
    assert "Error mapping" in text and "Resilience (retries, fallback)" in text, text[:2000]
    assert "Product defects" not in text, "a failure fell outside the provcert categories"
    assert "test_rate_limit" in text and "test_retry_after_honoured_and_capped" in text
