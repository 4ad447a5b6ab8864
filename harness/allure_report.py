"""Allure around the certification: the metadata files of each provider's results, and the HTML report.

Every run writes, next to ``reports/<provider>/allure-results/*-result.json``:

- ``environment.properties``: provcert version, provider, adapter, models, mode, mock or live, SDK versions;
- ``executor.json``: who ran it (GitHub Actions with a link to the run, or a local run);
- ``categories.json``: failure categories by DoD area (wire format, error mapping, streaming, accounting, secrets,
  ...). Allure 2 matches categories on the failure message only, so the distribution step prefixes every failing
  check's message with its id (``[ERR-429] ...``) and each category matches its area's prefix.

The HTML report (``--allure-html``) is rendered by the Allure 2 command line pinned in ``tools/allure`` (npm
package ``allure-commandline``; it needs Java, not a recent Node), as one self-contained ``index.html`` per provider.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.checks import AREAS

#: the Allure command line installed by ``npm ci --prefix tools/allure`` (see tools/allure/package.json)
TOOLS_ALLURE = Path("tools") / "allure"
LOCAL_CLI = TOOLS_ALLURE / "node_modules" / ".bin" / "allure"
INSTALL_HINT = f"npm ci --prefix {TOOLS_ALLURE.as_posix()} (needs Node >= 18 and Java >= 8)"

#: the official SDKs whose versions a report names (the adapters themselves speak HTTP through httpx)
SDK_PACKAGES = ("httpx", "openai", "anthropic", "google-genai", "mistralai", "ollama", "boto3", "botocore")

#: the failure categories, one per DoD area; the five a reviewer asks about first come first
CATEGORY_NAMES: dict[str, str] = {
    "GLD": "Wire format (golden contract, request shape)",
    "REQ": "Request fields (what reached the wire)",
    "ERR": "Error mapping",
    "STR": "Streaming",
    "TOK": "Accounting (tokens and cost)",
    "SEC": "Secrets and egress",
    "REG": "Registration and configuration",
    "RID": "Request ids",
    "RTY": "Resilience (retries, fallback)",
    "TEL": "Telemetry",
    "LIV": "Live drift and budget",
}

_CHECK_PREFIX = re.compile(r"^\[[A-Z]{3}-[A-Z0-9-]+\] ")


# ---------------------------------------------------------------- metadata files
def _escape_property(text: str, *, key: bool = False) -> str:
    """Escape for a Java .properties file (ISO-8859-1 with \\uXXXX escapes), as Allure reads it."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[ch])
        elif (key and ch in "=: ") or (i == 0 and ch in "#! "):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            units = ch.encode("utf-16-be")
            out.extend(f"\\u{int.from_bytes(units[j : j + 2], 'big'):04x}" for j in range(0, len(units), 2))
        else:
            out.append(ch)
    return "".join(out)


def properties_text(values: Mapping[str, str]) -> str:
    return "".join(f"{_escape_property(k, key=True)}={_escape_property(v)}\n" for k, v in values.items())


def sdk_versions(packages: Iterable[str] = SDK_PACKAGES) -> dict[str, str]:
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class RunInfo:
    """What every provider's report says about the run that produced it."""

    provcert_version: str
    mode: str
    target: str  # "mock", or "live" when the live checks ran too
    mock_url: str | None = None


def environment(
    provider: str,
    run: RunInfo,
    *,
    display_name: str | None = None,
    adapter: str | None = None,
    wire: str | None = None,
    models: Sequence[str] = (),
    provenance: Mapping[str, Any] | None = None,
    live: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Allure's environment widget: the run, the provider, and what the certificate certified (its provenance)."""
    values = {
        "provcert.version": run.provcert_version,
        "provider": provider,
        "provider.name": display_name or provider,
        "adapter": adapter or "",
        "wire": wire or "",
        "models": ", ".join(models),
        "mode": run.mode,
        "target": run.target,
        "mock.server": run.mock_url or "embedded",
        "python": platform.python_version(),
    }
    values.update({f"sdk.{name}": version for name, version in sdk_versions().items()})
    if provenance:
        repo = provenance.get("repository") or {}
        dirty = repo.get("dirty")
        values["git.commit"] = str(repo.get("commit", "unknown"))
        values["git.dirty"] = "unknown" if dirty is None else str(bool(dirty)).lower()
        values["ci.run"] = str(provenance.get("ci_run") or "")
        for source, count in (provenance.get("golden_cassettes") or {}).items():
            values[f"golden.{source}"] = str(count)
    if live and live.get("requested"):
        values["live.calls"] = str(live.get("calls", 0))
        values["live.spend_usd"] = str(live.get("spend_usd", "0"))
        if live.get("upstream"):
            values["live.upstream"] = str(live["upstream"])
    return {k: v for k, v in values.items() if v != ""}


def executor(provider: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Allure's executor widget: the CI run that produced the report (GitHub Actions), else a local run."""
    env = os.environ if env is None else env
    report_name = f"provcert certification: {provider}"
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        repo = env.get("GITHUB_REPOSITORY", "")
        run_url = f"{server}/{repo}/actions/runs/{env['GITHUB_RUN_ID']}"
        number = env.get("GITHUB_RUN_NUMBER", "")
        data: dict[str, Any] = {
            "name": "GitHub Actions",
            "type": "github",
            "url": f"{server}/{repo}",
            "buildName": f"{env.get('GITHUB_WORKFLOW', 'certify')} #{number}".strip(),
            "buildUrl": run_url,
            "reportName": report_name,
        }
        if number.isdigit():
            data["buildOrder"] = int(number)
        return data
    name = "CI" if env.get("CI") else "local run"
    return {
        "name": f"provcert ({name})",
        "type": "local",
        "buildName": report_name,
        "reportName": report_name,
    }


def categories() -> list[dict[str, Any]]:
    """Failure categories by DoD area; each matches the ``[AREA-...]`` prefix the distribution step adds."""
    areas = list(CATEGORY_NAMES) + [a for a in AREAS if a not in CATEGORY_NAMES]
    return [
        {
            "name": CATEGORY_NAMES.get(area, AREAS.get(area, area)),
            "description": f"{area}: {AREAS.get(area, area)} checks that failed or broke",
            "matchedStatuses": ["failed", "broken"],
            # Allure 2 matches the whole message (Java's String.matches), hence (?s) and the trailing .*
            "messageRegex": rf"(?s)\[{area}-[A-Z0-9-]+\].*",
        }
        for area in areas
    ]


def write_metadata(
    results_dir: Path, environment_values: Mapping[str, str], executor_data: Mapping[str, Any]
) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "environment.properties").write_text(
        properties_text(environment_values), encoding="latin-1"
    )
    (results_dir / "executor.json").write_text(json.dumps(executor_data, indent=2) + "\n", encoding="utf-8")
    (results_dir / "categories.json").write_text(json.dumps(categories(), indent=2) + "\n", encoding="utf-8")


def tag_failure_with_check(result: dict[str, Any]) -> dict[str, Any]:
    """Prefix a failing or broken DoD result's message with its check id, which the categories match on."""
    if result.get("status") not in ("failed", "broken"):
        return result
    labels = {label.get("name"): label.get("value") for label in result.get("labels", [])}
    check_id = labels.get("check_id")
    if not check_id:
        return result
    details = dict(result.get("statusDetails") or {})
    message = str(details.get("message") or "").strip() or "check failed"
    if not _CHECK_PREFIX.match(message):
        details["message"] = f"[{check_id}] {message}"
    return {**result, "statusDetails": details}


# ---------------------------------------------------------------- the HTML report
class AllureUnavailable(RuntimeError):
    """No usable Allure command line (or no Java for it)."""


def _is_allure2(command: Sequence[str]) -> bool:
    try:
        proc = subprocess.run(  # noqa: S603 - a fixed command found on PATH, no shell
            [*command, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip().startswith("2.")


def find_allure_cli(roots: Iterable[Path], override: str | None = None) -> list[str]:
    """The Allure 2 command to run: ``override`` (--allure-cli / PROVCERT_ALLURE_CLI), else the pinned one in
    ``<root>/tools/allure``, else an ``allure`` 2.x on PATH. Raises :class:`AllureUnavailable` with the fix."""
    override = override or os.environ.get("PROVCERT_ALLURE_CLI")
    if override:
        path = Path(override)
        if not (path.is_file() or shutil.which(override)):
            raise AllureUnavailable(f"the Allure command line {override!r} does not exist")
        command = [str(path) if path.is_file() else override]
    else:
        candidates = [root / LOCAL_CLI for root in roots]
        found = next((c for c in candidates if c.is_file()), None)
        if found is not None:
            command = [str(found)]
        elif shutil.which("allure") and _is_allure2(["allure"]):
            command = ["allure"]
        else:
            raise AllureUnavailable(
                f"the Allure command line is not installed; install it with: {INSTALL_HINT}"
            )
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise AllureUnavailable(
            "the Allure 2 command line needs Java (>= 8): no java on PATH and no JAVA_HOME"
        )
    return command


def generate_html(command: Sequence[str], results: Path, output: Path, *, name: str) -> Path:
    """Render one self-contained ``output/index.html`` from ``results``; raises RuntimeError with Allure's output."""
    proc = subprocess.run(  # noqa: S603 - the resolved Allure command, no shell
        [*command, "generate", "--single-file", "--clean", "--name", name, "-o", str(output), str(results)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    index = output / "index.html"
    if proc.returncode != 0 or not index.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"allure generate exited {proc.returncode}: " + " | ".join(tail))
    return index


def generate_reports(
    command: Sequence[str], reports: Path, providers: Mapping[str, str], *, jobs: int = 2
) -> dict[str, Path | str]:
    """One HTML report per provider (``reports/<provider>/allure-report/index.html``), ``jobs`` at a time.

    ``providers`` maps provider id to the report's display name. Returns, per provider, the index.html or the
    reason it could not be generated.
    """

    def one(provider: str) -> Path | str:
        results = reports / provider / "allure-results"
        if not results.is_dir():
            return f"no Allure results in {results}"
        try:
            return generate_html(
                command, results, reports / provider / "allure-report", name=providers[provider]
            )
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(zip(providers, pool.map(one, providers), strict=True))
