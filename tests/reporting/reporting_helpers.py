"""Helpers for the reporting tests: certification runs in subprocesses, the tools the HTML needs, Chromium.

Imported by name (``reporting_helpers``, unique across the test tree) rather than as ``conftest``, which other test
folders also have; ``conftest.py`` here only re-exports the fixtures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from harness.allure_report import AllureUnavailable, find_allure_cli

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCHEMA = json.loads((ROOT / "harness" / "schemas" / "certificate.schema.json").read_text(encoding="utf-8"))
IN_CI = bool(os.environ.get("CI"))


def certify(
    reports: Path, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    """``pytest`` as a user runs it (suites/certify unless ``args`` name another path), reports under ``reports``."""
    paths = [] if any(a.endswith(".py") or a.startswith("suites") for a in args) else ["suites/certify"]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *paths,
            "--reports-dir",
            str(reports),
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])},
    )


def shared_certification(
    tmp_path_factory: pytest.TempPathFactory, name: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One certification run per test run, shared by the xdist workers whose tests read its reports.

    Without xdist it simply runs in a fresh temp dir. Under xdist, the first worker to take the lock runs it in a
    directory keyed by the test run's id; the others wait and read what it left.
    """
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not uid:
        reports = tmp_path_factory.mktemp(name) / "reports"
        return certify(reports, *args), reports
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent / f"provcert-{name}-{uid}"
    shared.mkdir(exist_ok=True)
    reports, done = shared / "reports", shared / "done.json"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            proc = certify(reports, *args)
            done.write_text(json.dumps([proc.args, proc.returncode, proc.stdout, proc.stderr]))
    cmd, code, out, err = json.loads(done.read_text())
    return subprocess.CompletedProcess(cmd, code, out, err), reports


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout[-6000:] + proc.stderr[-3000:]


def parse_xml(path: Path) -> ET.Element:
    """Parse XML this project wrote (junit.xml, matrix.svg): trusted input, so the stdlib parser is fine."""
    return ET.fromstring(path.read_text(encoding="utf-8"))  # noqa: S314 - our own output, not untrusted data


def schema_errors(data: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in Draft202012Validator(SCHEMA).iter_errors(data)]


def load_certificate(path: Path) -> dict[str, Any]:
    """Every certificate a test reads is validated against the schema file first, independently of the writer."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    errors = schema_errors(data)
    assert not errors, f"{path} breaks certificate.schema.json: {errors}"
    return data


def require(what: str, found: object) -> None:
    """Skip a test whose tool is missing on a developer machine; in CI (.ci/run installs it) fail instead."""
    if not found:
        message = f"{what} is not installed (.ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def allure_cli() -> list[str]:
    try:
        return find_allure_cli([ROOT])
    except AllureUnavailable as exc:
        require(f"the Allure command line ({exc})", None)
        raise


@pytest.fixture(scope="session")
def chromium() -> str:
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
    require("chromium (apt-get install chromium)", browser)
    assert browser is not None
    return browser


#: clicks every collapsed group of Allure's tree until none is left, so the checks (stories) are in the DOM
_EXPAND = """<script>
(function () {
  var rounds = 0;
  function expand() {
    document.querySelectorAll('.node[data-node-kind="group"] > .node__title').forEach(function (title) {
      if (!title.parentElement.querySelector('.node__children')) { title.click(); }
    });
    if (++rounds < 15) { setTimeout(expand, 300); }
  }
  setTimeout(expand, 500);
})();
</script>"""


def render(chromium: str, html: Path, fragment: str, tmp: Path, *, expand: bool = False) -> str:
    """The visible text of ``html#fragment`` after headless Chromium ran its scripts (loopback only, no network)."""
    page = html
    if expand:
        page = tmp / f"expanded-{html.parent.parent.name}.html"
        text = html.read_text(encoding="utf-8")
        cut = text.rfind("</body>")
        page.write_text(text[:cut] + _EXPAND + text[cut:], encoding="utf-8")
    profile = tmp / f"chromium-profile-{os.getpid()}-{fragment or 'overview'}"
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page.as_uri() + (f"#{fragment}" if fragment else ""),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    body = dom[dom.find("<body") :]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


FAKE_SUITE = textwrap.dedent(
    '''
    """A tiny certification suite: one test per outcome a DoD check can have, those named in PROVCERT_FAKE."""
    import os

    import pytest

    from harness.checks import check, evidence, not_applicable

    WANT = set(os.environ.get("PROVCERT_FAKE", "pass,na").split(","))

    if "pass" in WANT:

        @check("REG-ID")
        def test_passes(provider_id):
            assert provider_id

    if "evidence" in WANT:

        @check("REG-PRICE")
        def test_with_evidence(provider_id):
            evidence(f"{provider_id}: 3 models priced | per 1M tokens")
            evidence("key sk-proj-" + "Q" * 40 + " must never reach a report")
            evidence("long " + "x" * 400)

    if "na" in WANT:

        @check("REG-CAPS")
        def test_not_applicable(provider_id):
            not_applicable("this provider declares no such capability")

    if "fail" in WANT:

        @check("ERR-429")
        def test_fails(provider_id):
            assert False, "retry_after was None | expected <3.0>"

    if "xfail" in WANT:

        @pytest.mark.xfail(reason="known defect")
        @check("STR-ABORT")
        def test_xfails(provider_id):
            assert False, "stream reported complete"

    if "error" in WANT:

        @pytest.fixture
        def broken_fixture():
            raise RuntimeError("the mock could not be reached")

        @check("TOK-NULL")
        def test_setup_error(provider_id, broken_fixture):
            pass
    '''
)


@pytest.fixture
def fake_suite(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the fake suite above for ``providers`` with the outcomes in ``want``; reports go to tmp/reports."""
    suite = tmp_path / "fake_suite" / "test_fake_checks.py"
    suite.parent.mkdir()
    suite.write_text(FAKE_SUITE, encoding="utf-8")

    def run(
        want: str, providers: str = "openai", reports: Path | None = None, *args: str
    ) -> subprocess.CompletedProcess[str]:
        return certify(
            reports or tmp_path / "reports",
            str(suite),
            "--provider",
            providers,
            *args,
            cwd=tmp_path,
            env={"PROVCERT_FAKE": want},
            timeout=120,
        )

    return run
