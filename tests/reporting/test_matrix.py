"""The fleet matrix merges every certificate on disk: certifying providers one by one still gives the whole fleet."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from reporting_helpers import ROOT, load_certificate, output, parse_xml, schema_errors

from harness.checks import AREAS, CHECKS
from harness.matrix import build_matrix, matrix_markdown, matrix_svg, write_matrix

Run = Callable[..., CompletedProcess[str]]
SVG = "{http://www.w3.org/2000/svg}"


def test_successive_runs_merge_into_one_matrix(fake_suite: Run, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    assert fake_suite("pass,na", "openai", reports).returncode == 0
    first = json.loads((reports / "matrix.json").read_text())
    assert [p["provider"] for p in first["providers"]] == ["openai"]
    proc = fake_suite("pass,na,fail", "groq", reports)
    assert proc.returncode == 1, output(proc)
    matrix = json.loads((reports / "matrix.json").read_text())
    assert [p["provider"] for p in matrix["providers"]] == ["groq", "openai"]
    assert matrix["fleet"] == {"providers": 2, "certified": 0, "not certified": 1, "incomplete": 1}
    groq = matrix["providers"][0]
    assert groq["failed_checks"] == ["ERR-429"]
    assert groq["areas"]["ERR"] == {
        "pass": 0,
        "fail": 1,
        "not applicable": 0,
        "not run": len([c for c in CHECKS.values() if c.area == "ERR"]) - 1,
    }
    assert groq["areas"]["REG"]["pass"] == 1 and groq["areas"]["REG"]["not applicable"] == 1
    assert list(matrix["areas"]) == list(AREAS)
    # the openai certificate written by the first run is untouched and still in the matrix
    assert load_certificate(reports / "openai" / "certificate.json")["date"] == first["providers"][0]["date"]
    md = (reports / "matrix.md").read_text()
    assert "| `groq` | ❌ not certified |" in md and "| `openai` | ⚠️ incomplete |" in md
    assert "Failed checks: `groq` ERR-429" in md
    summary = (reports / "summary.md").read_text()
    assert summary.index("provider certification matrix") < summary.index("(`groq`): NOT CERTIFIED")
    assert "(`groq`): NOT CERTIFIED" in summary and "(`openai`): INCOMPLETE" in summary
    assert "matrix (2 providers on disk" in proc.stdout


def _certificate(provider: str, statuses: dict[str, str]) -> dict[str, Any]:
    checks = []
    for check in CHECKS.values():
        status = statuses.get(check.id, "pass")
        detail = {"fail": "boom", "not applicable": "absent"}.get(status, "")
        tests = (
            []
            if status == "not run"
            else [{"nodeid": f"t::{check.id}", "status": status, "detail": detail, "duration_s": 0.01}]
        )
        checks.append(
            {
                "id": check.id,
                "title": check.title,
                "area": check.area,
                "severity": check.severity,
                "status": status,
                "detail": detail,
                "tests": tests,
            }
        )
    totals = {
        s: sum(1 for c in checks if c["status"] == s) for s in ("pass", "fail", "not applicable", "not run")
    }
    verdict = "not certified" if totals["fail"] else "incomplete" if totals["not run"] else "certified"
    return {
        "schema": "provcert-certificate/1",
        "provider": provider,
        "display_name": provider.title(),
        "adapter": None,
        "provcert_version": "0.1.0",
        "mode": "mock",
        "target": "mock",
        "date": "2026-01-02T03:04:05+00:00",
        "verdict": verdict,
        "totals": totals,
        "checks": checks,
    }


def _write(reports: Path, cert: dict[str, Any], folder: str | None = None) -> None:
    path = reports / (folder or cert["provider"]) / "certificate.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(cert))


def test_schema_rejects_inconsistent_certificates() -> None:
    good = _certificate("acme", {"ERR-429": "fail"})
    assert schema_errors(good) == []
    lying = {**good, "verdict": "certified"}
    assert schema_errors(lying), "a certificate with a failure cannot claim to be certified"
    silent_na = _certificate("acme", {"GLD-STREAM": "not applicable"})
    silent_na["checks"][7]["detail"] = ""
    assert any("detail" in e for e in schema_errors(silent_na)), "not applicable needs its reason"
    assert schema_errors({**good, "provider": "Not Kebab"})
    assert schema_errors({**good, "extra": 1})


def test_invalid_or_misplaced_certificates_are_left_out_and_named(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _write(reports, _certificate("acme", {}))
    _write(reports, {**_certificate("bad", {}), "verdict": "maybe"})
    _write(reports, _certificate("other", {}), folder="elsewhere")
    (reports / "torn").mkdir()
    (reports / "torn" / "certificate.json").write_text("{")
    matrix = write_matrix(reports)
    assert [p["provider"] for p in matrix["providers"]] == ["acme"]
    reasons = {Path(s["path"]).parent.name: s["reason"] for s in matrix["skipped"]}
    assert set(reasons) == {"bad", "elsewhere", "torn"}
    assert (
        "schema" in reasons["bad"]
        and "not its folder" in reasons["elsewhere"]
        and "unreadable" in reasons["torn"]
    )
    assert "Left out:" in (reports / "matrix.md").read_text()


def test_chart_is_a_deterministic_svg_with_one_bar_per_provider(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _write(reports, _certificate("acme", {"ERR-429": "fail", "LIV-SMOKE": "not applicable"}))
    _write(reports, _certificate("zeta-ai", {"TOK-NULL": "not run"}))
    matrix = build_matrix(reports)
    svg = matrix_svg(matrix)
    assert svg == matrix_svg(json.loads(json.dumps(matrix))), "same matrix, same bytes"
    (tmp_path / "chart.svg").write_text(svg, encoding="utf-8")
    root = parse_xml(tmp_path / "chart.svg")
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "provider"]
    assert [g.get("data-provider") for g in groups] == ["acme", "zeta-ai"]
    acme = groups[0]
    assert acme.get("data-passed") == str(len(CHECKS) - 2) and acme.get("data-checks") == str(len(CHECKS))
    widths = {r.get("class"): float(r.get("width", "0")) for r in acme.iter(f"{SVG}rect")}
    assert set(widths) == {"pass", "fail", "not-applicable"}
    assert widths["pass"] / widths["fail"] == pytest.approx(len(CHECKS) - 2, rel=0.02)
    assert any(r.get("class") == "not-run" for r in groups[1].iter(f"{SVG}rect"))
    md = matrix_markdown(matrix)
    assert "| `acme` | ❌ not certified | `" in md and f"{len(CHECKS) - 2}/{len(CHECKS)}" in md
    assert "(+1 not run)" in md


def test_chart_renders_in_a_browser(tmp_path: Path, chromium: str) -> None:
    reports = tmp_path / "reports"
    _write(reports, _certificate("acme", {"ERR-429": "fail"}))
    write_matrix(reports)
    png = tmp_path / "matrix.png"
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'p'}",
            "--window-size=700,160",
            f"--screenshot={png}",
            (reports / "matrix.svg").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and png.stat().st_size > 2000, proc.stderr[-2000:]


def test_report_cli_rebuilds_validates_and_summarises(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _write(reports, _certificate("acme", {}))

    def cli(*args: str) -> CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness.report", *args, "--reports-dir", str(reports)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert cli("matrix").returncode == 0 and (reports / "matrix.svg").is_file()
    summary = cli("summary")
    assert summary.returncode == 0 and "## provcert: provider certification matrix" in summary.stdout
    assert cli("validate").returncode == 0
    _write(reports, {**_certificate("bad", {}), "totals": {}})
    bad = cli("validate")
    assert bad.returncode == 1 and "bad/certificate.json" in bad.stderr
