"""The certificate tells the truth: its mode (live only with live calls), what it certified (provenance), and what each
passing check verified (evidence lines), on every surface: certificate.md/json, JUnit and Allure."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from _pytest.reports import TestReport
from reporting_helpers import certify, load_certificate, output, parse_xml

from adapters.registry import load_registry
from adapters.types import ChatRequest, Message
from harness.budget import Ledger
from harness.checks import NO_EVIDENCE, evidence, take_evidence
from harness.publish import publish_run
from harness.reporting import ResultCollector
from harness.run_provenance import ci_run_url, git_state
from mockserver.testing import MockServer

Run = Callable[..., CompletedProcess[str]]
#: CI variables blanked so a run is "not in CI" even when these tests themselves run in CI
NOT_IN_CI = {"GITHUB_RUN_ID": "", "GITHUB_REPOSITORY": "", "CI_JOB_URL": "", "BUILD_URL": ""}


def _check(cert: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in cert["checks"] if c["id"] == check_id)


def _junit_case(path: Path, check_id: str) -> Any:
    return next(c for c in parse_xml(path).iter("testcase") if c.get("name", "").startswith(f"{check_id} "))


def _junit_properties(path: Path) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in parse_xml(path).iter("property")}


def _allure_results(folder: Path, check_id: str) -> list[dict[str, Any]]:
    results = []
    for path in folder.glob("*-result.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if {"name": "check_id", "value": check_id} in data.get("labels", []):
            results.append(data)
    return results


def _step_names(result: dict[str, Any]) -> list[str]:
    return [str(step["name"]) for step in result.get("steps", [])]


# ---------------------------------------------------------------- mode
def test_live_without_a_credential_is_mock_and_a_rehearsal_is_not_live(tmp_path: Path) -> None:
    """--live + CERTIFY_LIVE=1: openai has no credential (mock, LIV not applicable, the missing variable named);
    groq has one but --live-upstream sends its live calls to a mock server: a rehearsal, never "live"."""
    groq_key = "gsk_" + "T" * 48
    reports = tmp_path / "reports"
    with MockServer() as upstream:
        proc = certify(
            reports,
            "suites/certify/test_live.py",
            "--provider",
            "openai,groq",
            "--live",
            "--live-upstream",
            upstream.url,
            "--cassettes-dir",
            str(tmp_path / "cassettes"),
            "--max-cost-usd",
            "0.03",
            env={"CERTIFY_LIVE": "1", "OPENAI_API_KEY": "", "GROQ_API_KEY": groq_key},
            timeout=240,
        )
    assert proc.returncode == 0, output(proc)

    openai = load_certificate(reports / "openai" / "certificate.json")
    assert openai["mode"] == "mock" and openai["target"] == "mock"
    assert openai["live"] == {
        "requested": True,
        "calls": 0,
        "spend_usd": "0",
        "cap_usd": "0.03",
        "upstream": upstream.url,
    }
    for check_id in ("LIV-SMOKE", "LIV-BUDGET"):
        check = _check(openai, check_id)
        assert check["status"] == "not applicable", check
        assert "OPENAI_API_KEY" in check["detail"] and "does not resolve" in check["detail"]
    md = (reports / "openai" / "certificate.md").read_text(encoding="utf-8")
    assert "mode: mock; live was requested but no live call was made" in md
    assert "| LIV-SMOKE |" in md and "OPENAI_API_KEY" in md

    groq = load_certificate(reports / "groq" / "certificate.json")
    assert groq["mode"] == "mock", "calls to --live-upstream (a mock) must never make a certificate say live"
    assert groq["live"]["calls"] >= 1 and groq["live"]["upstream"] == upstream.url
    ledger = json.loads((reports / "live-ledger.json").read_text(encoding="utf-8"))
    assert groq["live"]["calls"] == sum(1 for c in ledger["calls"] if c["provider"] == "groq" and c["sent"])
    groq_md = (reports / "groq" / "certificate.md").read_text(encoding="utf-8")
    assert (
        f"rehearsed against {upstream.url} (--live-upstream, {groq['live']['calls']} calls): not live"
        in groq_md
    )
    assert _junit_properties(reports / "groq" / "junit.xml")["live.calls"] == str(groq["live"]["calls"])

    # the key is never printed: not on the terminal, not in any report
    assert groq_key not in proc.stdout + proc.stderr
    for path in reports.rglob("*"):
        if path.is_file():
            assert groq_key not in path.read_text(encoding="utf-8", errors="replace"), path


def _record_pass(collector: ResultCollector, provider: str, check_id: str) -> None:
    report = TestReport(f"t.py::test[{provider}]", ("t.py", 1, "test"), {}, "passed", None, "call", [], 0.01)
    collector.record(provider, check_id, report.nodeid, report, evidence=["what it verified"])


def test_live_calls_booked_in_the_ledger_make_the_certificate_live(tmp_path: Path) -> None:
    """Only calls the run's ledger booked as sent to the provider count; the certificate shows their count and spend."""
    registry = load_registry()
    entry = registry.get("openai")
    ledger_path = tmp_path / "reports" / "live-ledger.json"
    ledger = Ledger.create(ledger_path, Decimal("0.05"))
    request = ChatRequest(
        model=entry.models[0].id, messages=[Message(role="user", content="hi")], max_tokens=8
    )
    for actual, sent in ((Decimal("0.0000123"), True), (Decimal("0.0000021"), True), (None, False)):
        ledger.settle(ledger.reserve(entry, request, "live-complete"), actual, sent=sent)
    collector = ResultCollector()
    _record_pass(collector, "openai", "LIV-SMOKE")
    _record_pass(collector, "anthropic", "LIV-SMOKE")

    outputs = publish_run(
        collector,
        reports=tmp_path / "reports",
        registry=registry,
        live=True,
        ledger=ledger_path,
        cwd=tmp_path,
    )
    openai = load_certificate(tmp_path / "reports" / "openai" / "certificate.json")
    booked = [Decimal(c["booked"]) for c in ledger.state()["calls"] if c["sent"]]
    assert openai["mode"] == "live" and outputs["certificates"]["openai"]["mode"] == "live"
    assert openai["live"]["calls"] == len(booked) == 2
    assert Decimal(openai["live"]["spend_usd"]) == sum(booked)
    md = (tmp_path / "reports" / "openai" / "certificate.md").read_text(encoding="utf-8")
    assert f"mode: live (2 live calls, ${openai['live']['spend_usd']} spent of the $0.05 cap" in md
    props = _junit_properties(tmp_path / "reports" / "openai" / "junit.xml")
    assert props["mode"] == "live" and props["live.calls"] == "2"
    # a provider without booked calls in the same run is certified against the mock, and says so
    anthropic = load_certificate(tmp_path / "reports" / "anthropic" / "certificate.json")
    assert anthropic["mode"] == "mock" and anthropic["live"]["calls"] == 0


def test_the_schema_refuses_live_without_live_calls(tmp_path: Path) -> None:
    collector = ResultCollector()
    _record_pass(collector, "openai", "LIV-SMOKE")
    publish_run(collector, reports=tmp_path, registry=load_registry(), cwd=tmp_path)
    cert = load_certificate(tmp_path / "openai" / "certificate.json")
    from harness.reporting import certificate_errors

    assert certificate_errors(cert) == []
    assert certificate_errors({**cert, "mode": "live", "target": "live"}), (
        "live with 0 calls passed the schema"
    )
    rehearsal = {**cert["live"], "calls": 2, "upstream": "http://127.0.0.1:1"}
    assert certificate_errors({**cert, "mode": "live", "live": rehearsal}), "a rehearsal passed as live"
    assert certificate_errors({**cert, "mode": "mock + live"}), "mode is only mock or live"


# ---------------------------------------------------------------- provenance
def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=provcert", "-c", "user.email=provcert@example.invalid", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return proc.stdout.strip()


def _golden(root: Path, provider: str, sources: list[str | None]) -> None:
    folder = root / provider
    folder.mkdir(parents=True)
    for n, source in enumerate(sources):
        (folder / f"c{n}.cassette.json").write_text("{}", encoding="utf-8")
        if source is not None:
            (folder / f"c{n}.provenance.json").write_text(json.dumps({"source": source}), encoding="utf-8")


def test_certificate_names_what_it_certified(fake_suite: Run, tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "adapter.py").write_text("VERSION = 1\n", encoding="utf-8")
    _git(tmp_path, "add", "adapter.py")
    _git(tmp_path, "commit", "-q", "-m", "the adapter under test")
    golden = tmp_path / "golden"
    _golden(golden, "openai", ["live", "imported", "imported", "mock", None])
    ci = {
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": "acme/llm",
        "GITHUB_RUN_ID": "4242",
    }

    proc = fake_suite("pass,evidence", "openai", None, "--cassettes-dir", str(golden))
    assert proc.returncode == 0, output(proc)
    clean = load_certificate(tmp_path / "reports" / "openai" / "certificate.json")["provenance"]
    assert clean["repository"] == {"commit": _git(tmp_path, "rev-parse", "HEAD"), "dirty": False}

    (tmp_path / "adapter.py").write_text("VERSION = 2\n", encoding="utf-8")  # a tracked file modified: dirty
    proc = certify(
        tmp_path / "reports",
        str(tmp_path / "fake_suite" / "test_fake_checks.py"),
        "--provider",
        "openai",
        "--cassettes-dir",
        str(golden),
        cwd=tmp_path,
        env={"PROVCERT_FAKE": "pass", **ci},
        timeout=120,
    )
    assert proc.returncode == 0, output(proc)
    reports = tmp_path / "reports" / "openai"
    cert = load_certificate(reports / "certificate.json")
    prov = cert["provenance"]
    assert prov["repository"] == {"commit": clean["repository"]["commit"], "dirty": True}
    assert prov["ci_run"] == "https://github.example/acme/llm/actions/runs/4242" == ci_run_url(ci)
    assert prov["python"] == __import__("platform").python_version()
    assert prov["sdks"] == {"openai": metadata.version("openai"), "httpx": metadata.version("httpx")}
    assert prov["golden_cassettes"] == {"live": 1, "imported": 2, "mock": 1, "unknown": 1}
    assert cert["provcert_version"] == metadata.version("provcert")

    md = (reports / "certificate.md").read_text(encoding="utf-8")
    commit = prov["repository"]["commit"]
    assert (
        f"Certified: commit `{commit}` (dirty work tree) · CI run {prov['ci_run']} · Python {prov['python']}"
        in md
    )
    assert f"SDKs openai {prov['sdks']['openai']}" in md
    assert "golden cassettes 1 live, 2 imported, 1 mock, 1 unknown" in md
    props = _junit_properties(reports / "junit.xml")
    assert (
        props["git.commit"] == commit and props["git.dirty"] == "true" and props["ci.run"] == prov["ci_run"]
    )
    assert props["golden.imported"] == "2" and props["sdk.openai"] == prov["sdks"]["openai"]
    env_file = (reports / "allure-results" / "environment.properties").read_text(encoding="latin-1")
    assert (
        f"git.commit={commit}\n" in env_file
        and "git.dirty=true\n" in env_file
        and "golden.live=1\n" in env_file
    )


def test_outside_a_repository_the_commit_is_unknown(fake_suite: Run, tmp_path: Path) -> None:
    if git_state(tmp_path).commit != "unknown":
        pytest.skip("the temp folder is inside a git repository here")
    proc = certify(
        tmp_path / "reports",
        str(_fake_suite_file(fake_suite, tmp_path)),
        "--provider",
        "anthropic",
        cwd=tmp_path,
        env={"PROVCERT_FAKE": "pass", **NOT_IN_CI},
        timeout=120,
    )
    assert proc.returncode == 0, output(proc)
    cert = load_certificate(tmp_path / "reports" / "anthropic" / "certificate.json")
    assert cert["provenance"]["repository"] == {"commit": "unknown", "dirty": None}
    assert cert["provenance"]["ci_run"] is None
    assert set(cert["provenance"]["sdks"]) == {"anthropic", "httpx"}
    counts = cert["provenance"]["golden_cassettes"]
    packaged = Path(__file__).resolve().parents[2] / "cassettes" / "anthropic"
    assert sum(counts.values()) == len(list(packaged.glob("*.cassette.json")))
    md = (tmp_path / "reports" / "anthropic" / "certificate.md").read_text(encoding="utf-8")
    assert "commit unknown (not a git repository)" in md and "CI run" not in md


def _fake_suite_file(fake_suite: Run, tmp_path: Path) -> Path:
    """The fake suite's file (the fixture writes it when it is created)."""
    path = tmp_path / "fake_suite" / "test_fake_checks.py"
    assert path.is_file()
    return path


def test_ci_run_links() -> None:
    assert (
        ci_run_url({"GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "7"})
        == "https://github.com/o/r/actions/runs/7"
    )
    assert (
        ci_run_url({"CI_JOB_URL": "https://gitlab.example/o/r/-/jobs/9"})
        == "https://gitlab.example/o/r/-/jobs/9"
    )
    assert ci_run_url({"BUILD_URL": "https://jenkins.example/job/x/3/"}) == "https://jenkins.example/job/x/3/"
    assert ci_run_url({"CI": "true"}) is None


# ---------------------------------------------------------------- evidence
def test_evidence_reaches_every_surface(fake_suite: Run, tmp_path: Path) -> None:
    """Under xdist too: the lines travel with the reports to the controller, which writes the reports."""
    proc = fake_suite("pass,evidence", "openai", None, "-n", "2")
    assert proc.returncode == 0, output(proc)
    reports = tmp_path / "reports" / "openai"
    cert = load_certificate(reports / "certificate.json")
    price = _check(cert, "REG-PRICE")
    assert price["status"] == "pass"
    lines = price["evidence"]
    assert lines[0] == "openai: 3 models priced | per 1M tokens"
    assert "[REDACTED]" in lines[1] and "QQQQ" not in lines[1], "a key-shaped string reached the evidence"
    assert len(lines[2]) == 200 and lines[2].endswith("..."), "evidence lines are kept short"
    assert price["tests"][0]["evidence"] == lines
    no_evidence = _check(cert, "REG-ID")
    assert no_evidence["status"] == "pass" and no_evidence["evidence"] == []

    md = (reports / "certificate.md").read_text(encoding="utf-8")
    assert (
        "| REG-PRICE | " in md and "✅ pass | openai: 3 models priced \\| per 1M tokens; key [REDACTED]" in md
    )
    assert f"| REG-ID | {_check(cert, 'REG-ID')['title']} | ✅ pass | {NO_EVIDENCE} |" in md

    junit = reports / "junit.xml"
    assert (_junit_case(junit, "REG-PRICE").findtext("system-out") or "").splitlines() == lines
    assert _junit_case(junit, "REG-ID").findtext("system-out") == NO_EVIDENCE

    [price_result] = _allure_results(reports / "allure-results", "REG-PRICE")
    assert _step_names(price_result) == [f"evidence: {line}" for line in lines]
    [id_result] = _allure_results(reports / "allure-results", "REG-ID")
    assert _step_names(id_result) == [NO_EVIDENCE]

    everything = "".join(
        p.read_text(encoding="utf-8", errors="replace") for p in reports.rglob("*") if p.is_file()
    )
    assert "sk-proj-QQQQ" not in everything


def test_evidence_outside_a_running_check_is_refused() -> None:
    assert take_evidence() == []  # ends this test's collection, as the plugin does once a test's call is over
    with pytest.raises(RuntimeError, match="from inside the check"):
        evidence("nothing is running")


def test_the_worked_example_err_401_end_to_end(tmp_path: Path) -> None:
    """ERR-401 of the real suite records what the journal says was sent and what the adapter made of it."""
    reports = tmp_path / "reports"
    proc = certify(reports, "--provider", "openai", "-k", "test_auth", timeout=240)
    assert proc.returncode == 0, output(proc)
    cert = load_certificate(reports / "openai" / "certificate.json")
    [line] = _check(cert, "ERR-401")["evidence"]
    assert line.startswith("401 auth_error -> auth, retryable False, status 401, request id req_")
    request_id = line.split("request id ", 1)[1].split(",", 1)[0]
    md = (reports / "openai" / "certificate.md").read_text(encoding="utf-8")
    assert request_id in md
    assert request_id in (
        _junit_case(reports / "openai" / "junit.xml", "ERR-401").findtext("system-out") or ""
    )
    [result] = _allure_results(reports / "openai" / "allure-results", "ERR-401")
    assert _step_names(result) == [f"evidence: {line}"]
