"""Allure metadata (environment, executor, categories), the CLI lookup, and JUnit's robustness, in-process."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from reporting_helpers import FAKE_SUITE, certify, parse_xml

from harness.allure_report import (
    AllureUnavailable,
    RunInfo,
    categories,
    environment,
    executor,
    find_allure_cli,
    generate_reports,
    properties_text,
    tag_failure_with_check,
)
from harness.checks import AREAS
from harness.junit import junit_xml


def _read_properties(text: str) -> dict[str, str]:
    """Java's Properties.load for what we write: one key=value a line, backslash escapes, \\uXXXX (surrogates too)."""
    out = {}
    for line in text.splitlines():
        key, value = re.split(r"(?<!\\)=", line, maxsplit=1)

        def unescape(s: str) -> str:
            s = re.sub(r"\\([=: #!])", r"\1", s)
            return (
                s.encode("latin-1")
                .decode("unicode_escape")
                .encode("utf-16", "surrogatepass")
                .decode("utf-16")
            )

        out[unescape(key)] = unescape(value)
    return out


def test_properties_escape_and_round_trip() -> None:
    values = {
        "plain": "adapters.openai:OpenAIAdapter",
        "key with: colon=equals": "a=b",
        "models": "gpt-4o, claude-3 ✅ 🚀",
        "multi": "line one\nline two\\",
        "lead": " #not a comment",
    }
    text = properties_text(values)
    assert text.isascii()
    assert _read_properties(text) == values


def test_environment_names_the_run() -> None:
    run = RunInfo(provcert_version="9.9.9", mode="mock (external: http://127.0.0.1:1)", target="mock",
                  mock_url="http://127.0.0.1:1")  # fmt: skip
    env = environment("acme", run, display_name="Acme", adapter="x:Y", wire="openai", models=["m1", "m2"])
    assert env["provcert.version"] == "9.9.9" and env["provider"] == "acme" and env["provider.name"] == "Acme"
    assert (
        env["models"] == "m1, m2" and env["mock.server"] == "http://127.0.0.1:1" and env["target"] == "mock"
    )
    assert env["sdk.httpx"]
    live = environment("acme", RunInfo(provcert_version="1", mode="mock + live", target="live"))
    assert live["target"] == "live" and live["mock.server"] == "embedded" and "adapter" not in live


def test_executor_links_a_github_run() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "123",
        "GITHUB_RUN_NUMBER": "45",
        "GITHUB_REPOSITORY": "acme/provcert",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_WORKFLOW": "certify",
    }
    data = executor("openai", env)
    assert data["type"] == "github" and data["buildOrder"] == 45
    assert data["buildUrl"] == "https://github.example/acme/provcert/actions/runs/123"
    assert data["buildName"] == "certify #45" and data["reportName"] == "provcert certification: openai"
    assert executor("openai", {})["type"] == "local"


def test_every_area_has_exactly_one_category() -> None:
    cats = categories()
    for area in AREAS:
        message = f"[{area}-SOMETHING] AssertionError: it broke\nacross lines"
        assert [c["name"] for c in cats if re.fullmatch(c["messageRegex"], message)] != []
        assert len([c for c in cats if re.fullmatch(c["messageRegex"], message)]) == 1
    assert not any(re.fullmatch(c["messageRegex"], "AssertionError: no check id") for c in cats)
    assert all(c["matchedStatuses"] == ["failed", "broken"] for c in cats)


def _result(status: str, check: str | None, message: str | None) -> dict[str, Any]:
    labels = [{"name": "check_id", "value": check}] if check else []
    return {"status": status, "labels": labels, "statusDetails": {"message": message} if message else {}}


def test_failures_are_tagged_with_their_check_once() -> None:
    tagged = tag_failure_with_check(_result("failed", "ERR-429", "AssertionError: x"))
    assert tagged["statusDetails"]["message"] == "[ERR-429] AssertionError: x"
    assert tag_failure_with_check(tagged)["statusDetails"]["message"] == "[ERR-429] AssertionError: x"
    assert tag_failure_with_check(_result("broken", "STR-ABORT", None))["statusDetails"]["message"] == (
        "[STR-ABORT] check failed"
    )
    passed = _result("passed", "ERR-429", None)
    assert tag_failure_with_check(passed) is passed
    untagged = _result("failed", None, "boom")
    assert tag_failure_with_check(untagged) is untagged


def test_missing_allure_cli_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PROVCERT_ALLURE_CLI", raising=False)
    with pytest.raises(AllureUnavailable, match=r"npm ci --prefix tools/allure"):
        find_allure_cli([tmp_path])
    with pytest.raises(AllureUnavailable, match="does not exist"):
        find_allure_cli([tmp_path], str(tmp_path / "nope"))


def test_allure_html_without_the_cli_is_a_usage_error(tmp_path: Path) -> None:
    suite = tmp_path / "test_fake_checks.py"
    suite.write_text(FAKE_SUITE, encoding="utf-8")
    proc = certify(
        tmp_path / "reports",
        str(suite),
        "--provider",
        "openai",
        "--allure-html",
        "--allure-cli",
        str(tmp_path / "no-allure"),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--allure-html: the Allure command line" in proc.stderr


def test_a_failing_generation_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "acme" / "allure-results").mkdir(parents=True)
    failing = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    outcome = generate_reports(failing, tmp_path, {"acme": "Acme", "ghost": "Ghost"})
    assert isinstance(outcome["acme"], str) and "exited 3" in outcome["acme"] and "boom" in outcome["acme"]
    assert isinstance(outcome["ghost"], str) and "no Allure results" in outcome["ghost"]


def test_junit_survives_characters_xml_cannot_carry(tmp_path: Path) -> None:
    check = {
        "id": "ERR-429",
        "title": "Rate limit <&>",
        "area": "ERR",
        "severity": "critical",
        "status": "fail",
        "detail": "bad \x00\x1b[31m bytes \ufffe",
        "tests": [{"nodeid": "t::x", "status": "fail", "detail": "\x07bell", "duration_s": 0.5}],
    }
    cert = {"provider": "acme", "display_name": "Acme", "provcert_version": "1", "mode": "mock",
            "verdict": "not certified", "date": "2026-01-02T03:04:05+00:00", "checks": [check]}  # fmt: skip
    (tmp_path / "junit.xml").write_text(junit_xml(cert), encoding="utf-8")
    root = parse_xml(tmp_path / "junit.xml")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message", "").startswith("bad ?")
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == "ERR-429 Rate limit <&>" and case.get("time") == "0.500"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("timestamp") == "2026-01-02T03:04:05"
