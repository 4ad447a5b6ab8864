"""The CI entry points: the GitHub workflow (valid, and its shell steps really work), tox -e certify, .ci/run."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from reporting_helpers import ROOT, load_certificate, require

from adapters.registry import load_registry

WORKFLOW = ROOT / ".github" / "workflows" / "certify.yml"


def _workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def _steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _workflow()["jobs"]["certify"]["steps"]
    return steps


def _check_jsonschema() -> str | None:
    return shutil.which("check-jsonschema") or (
        str(Path(sys.executable).with_name("check-jsonschema"))
        if Path(sys.executable).with_name("check-jsonschema").exists()
        else None
    )


def test_workflow_parses_and_does_what_the_readme_says() -> None:
    data = _workflow()
    assert data["name"] == "certify"
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert {"pull_request", "push", "workflow_dispatch"} <= set(triggers)
    assert data["permissions"] == {"contents": "read"}
    steps = _steps()
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses == [
        "actions/checkout",
        "actions/setup-python",
        "actions/setup-node",
        "actions/setup-java",
        "actions/upload-artifact",
    ]
    assert all("@v" in s["uses"] for s in steps if "uses" in s), "actions are pinned to a major version"
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "npm ci --prefix tools/allure" in runs
    assert "python -m mockserver --host 127.0.0.1 --port 0" in runs
    assert '--provider "$PROVIDERS" --mock-url "$MOCK_URL"' in " ".join(runs.split())
    certify_step = next(s for s in steps if s.get("name") == "Certify every provider")
    assert certify_step["env"]["PROVIDERS"] == "${{ inputs.providers || 'all' }}"  # all, unless dispatched
    assert "--allure-html" in runs
    assert '>> "$GITHUB_STEP_SUMMARY"' in runs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "reports/" in upload["with"]["path"] and upload["if"] == "${{ !cancelled() }}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".github/workflows/certify.yml" in readme and "tox -e certify" in readme


def test_workflow_validates_against_the_github_workflow_schema(tmp_path: Path) -> None:
    tool = _check_jsonschema()
    require("check-jsonschema (pip install -e '.[test]')", tool)
    assert tool is not None
    ok = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"))
    bad = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0, "the validator must reject a job without runs-on"


def test_workflow_shell_steps_run_end_to_end(tmp_path: Path, allure_cli: list[str]) -> None:
    """Every `run:` step but the installs, in order, as the runner would (bash -eo pipefail, GITHUB_ENV between
    steps, a step summary file), against a real standalone mock server; two providers (as a manual dispatch can ask
    for) and -k keep it to a few seconds."""
    providers = ["openai", "anthropic"]
    work = tmp_path / "checkout"
    work.mkdir()
    for name in ("suites", "tools", "pyproject.toml"):
        (work / name).symlink_to(ROOT / name)
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    github_env = tmp_path / "github_env"
    summary = tmp_path / "step_summary.md"
    github_env.touch()
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_ENV": str(github_env),
        "GITHUB_STEP_SUMMARY": str(summary),
        "PYTEST_ADDOPTS": "-k test_registered -p no:cacheprovider -q",
    }
    ran = []
    try:
        for step in _steps():
            if "run" not in step or step["name"].startswith("Install"):
                continue
            for line in github_env.read_text().splitlines():
                key, _, value = line.partition("=")
                env[key] = value
            for key, value in step.get(
                "env", {}
            ).items():  # expressions: as GitHub evaluates them for a dispatch
                env[key] = ",".join(providers) if key == "PROVIDERS" else str(value)
                assert "${{" not in env[key], f"unhandled expression in {step['name']}: {key}={value}"
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            ran.append(step["name"])
            assert proc.returncode == 0, f"step {step['name']!r}: {proc.stdout[-4000:]}{proc.stderr[-3000:]}"
    finally:
        for line in github_env.read_text().splitlines():
            if line.startswith("MOCK_PID="):
                subprocess.run(["kill", line.split("=", 1)[1]], capture_output=True, check=False)
    assert ran == [
        "Start the mock server",
        "Certify every provider",
        "Post the certificates as the job summary",
        "Stop the mock server",
    ]
    assert set(load_registry().ids()) >= set(providers)
    text = summary.read_text(encoding="utf-8")
    assert "## provcert: provider certification matrix" in text
    assert sorted(p.name for p in (work / "reports").iterdir() if p.is_dir()) == sorted(providers)
    for provider in providers:
        cert = load_certificate(work / "reports" / provider / "certificate.json")
        assert cert["mode"] == "mock" and cert["mock_server"].startswith("http://127.0.0.1:")
        assert f"(`{provider}`): INCOMPLETE" in text  # -k ran one check of each
        assert (work / "reports" / provider / "allure-report" / "index.html").is_file()
        assert (work / "reports" / provider / "junit.xml").is_file()


def test_tox_certify_renders_the_html_with_the_pinned_cli() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    env = tox["testenv:certify"]
    assert "npm ci --prefix" in env["commands_pre"] and "tools" in env["commands_pre"]
    assert "npm" in env["allowlist_externals"].split()
    assert "pytest suites/certify --provider all --allure-html" in env["commands"]


def test_ci_installs_what_the_reports_need() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "npm ci --prefix tools/allure" in ci
    assert "apt-get install" in ci and "chromium" in ci


def test_the_allure_cli_is_pinned_with_a_lockfile() -> None:
    import json

    package = json.loads((ROOT / "tools" / "allure" / "package.json").read_text())
    lock = json.loads((ROOT / "tools" / "allure" / "package-lock.json").read_text())
    version = package["dependencies"]["allure-commandline"]
    assert version[0].isdigit(), "an exact version, not a range"
    locked = lock["packages"]["node_modules/allure-commandline"]
    assert locked["version"] == version and locked["integrity"].startswith("sha512-")
    assert version.startswith("2."), "Allure 2 runs on Java; Allure 3 needs Node >= 22 for some commands"


@pytest.mark.parametrize("path", ["tools/allure/node_modules", "reports/.allure-staging"])
def test_generated_folders_are_ignored(path: str) -> None:
    proc = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", path],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if proc.returncode == 128:
        pytest.skip("not a git checkout")
    assert proc.returncode == 0, f"{path} is not git-ignored"
