"""From test outcomes to what a reviewer reads: per-check verdicts, the certificate, per-provider Allure results.

A DoD check may be implemented by several tests (ERR-5XX runs once per status); its verdict is the worst of them:
any failure fails the check, a check whose every test was not applicable is reported so with the reasons, and a check
that no test exercised is "not run", never a silent pass. An expected failure (xfail) of a check is still a failure.

Per provider: ``certificate.json`` (validated against ``harness/schemas/certificate.schema.json`` before it is
written), ``certificate.md`` (compact, for a pull request) and ``junit.xml`` (one test case per check).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator

from adapters.registry import Registry
from harness.allure_report import tag_failure_with_check
from harness.checks import NO_EVIDENCE, NOT_APPLICABLE, Check
from harness.junit import junit_xml
from harness.run_provenance import LiveSummary

Status = Literal["pass", "fail", "not applicable", "not run"]
Mode = Literal["mock", "live"]


@dataclass
class TestOutcome:
    nodeid: str
    status: Status
    detail: str = ""
    duration: float = 0.0
    #: what the test verified, one line each (harness.checks.evidence)
    evidence: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    check: Check
    status: Status
    detail: str = ""
    tests: list[TestOutcome] = field(default_factory=list)
    #: a passing check's evidence: the lines its passing tests recorded, in order, each once
    evidence: list[str] = field(default_factory=list)


def _first_line(text: str, limit: int = 240) -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def _failure_evidence(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return _first_line(str(crash.message))
    return _first_line(str(report.longrepr))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    return reason.removeprefix(NOT_APPLICABLE)


class ResultCollector:
    def __init__(self) -> None:
        self._tests: dict[str, dict[str, dict[str, TestOutcome]]] = defaultdict(lambda: defaultdict(dict))

    def record(
        self,
        provider: str,
        check_id: str,
        nodeid: str,
        report: pytest.TestReport,
        *,
        evidence: Sequence[str] = (),
    ) -> None:
        tests = self._tests[provider][check_id]
        before = tests.get(nodeid)
        xfail = getattr(report, "wasxfail", None)
        if report.failed:
            phase = "" if report.when == "call" else f" (in {report.when})"
            tests[nodeid] = TestOutcome(nodeid, "fail", _failure_evidence(report) + phase)
        elif report.skipped and xfail is not None:
            # an xfail marker must not turn a failing check into "not applicable" (nor into a green run)
            reason = f": {xfail}" if xfail else ""
            tests[nodeid] = TestOutcome(nodeid, "fail", f"expected failure (xfail{reason}); the check failed")
        elif report.skipped:
            tests[nodeid] = TestOutcome(nodeid, "not applicable", _skip_reason(report))
        elif report.when == "call" and nodeid not in tests:
            tests[nodeid] = TestOutcome(nodeid, "pass")
        outcome = tests.get(nodeid)
        if outcome is not None and report.when == "call" and evidence:
            outcome.evidence = list(evidence)
        if outcome is not None:
            outcome.duration = (before.duration if before is not None else 0.0) + float(
                report.duration or 0.0
            )

    def providers(self) -> list[str]:
        return list(self._tests)

    def failed(self, catalogue: Mapping[str, Check]) -> bool:
        """True when any provider has a failed check: the run must then exit non-zero."""
        return any(v.status == "fail" for p in self.providers() for v in self.verdicts(p, catalogue).values())

    def verdicts(self, provider: str, catalogue: Mapping[str, Check]) -> dict[str, Verdict]:
        out: dict[str, Verdict] = {}
        for check_id, check in catalogue.items():
            tests = list(self._tests[provider].get(check_id, {}).values())
            failed = [t for t in tests if t.status == "fail"]
            passed = [t for t in tests if t.status == "pass"]
            if failed:
                evidence = next((t.detail for t in failed if t.detail), "failed without a message")
                out[check_id] = Verdict(check, "fail", evidence, tests)
            elif passed:
                lines = list(dict.fromkeys(line for t in passed for line in t.evidence))
                out[check_id] = Verdict(check, "pass", "", tests, lines)
            elif tests:
                reasons = sorted({t.detail for t in tests if t.detail}) or ["skipped without a reason"]
                out[check_id] = Verdict(check, "not applicable", "; ".join(reasons), tests)
            else:
                out[check_id] = Verdict(check, "not run", "no test ran for this check in this session", tests)
        return out


def provcert_version() -> str:
    try:
        return metadata.version("provcert")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a certificate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for everyone who can read the folder
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


CERTIFICATE_SCHEMA = Path(__file__).with_name("schemas") / "certificate.schema.json"


@cache
def _certificate_validator() -> Draft202012Validator:
    schema = json.loads(CERTIFICATE_SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def certificate_errors(data: Any) -> list[str]:
    """Every way ``data`` breaks the certificate schema, each with its JSON path; empty when valid."""
    return [
        f"{error.json_path}: {error.message}"
        for error in sorted(_certificate_validator().iter_errors(data), key=lambda e: list(e.path))
    ]


def certificate_data(
    provider: str,
    verdicts: Mapping[str, Verdict],
    *,
    registry: Registry,
    mode: Mode = "mock",
    mock_server: str | None = None,
    live: LiveSummary | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One provider's certificate (see certificate.schema.json).

    ``mode`` is "live" only when live calls to the provider's API were made (``live`` says how many and what
    they cost); anything else, ``--live`` included, certifies against the mock and says so.
    """
    entry = registry.get(provider) if provider in registry.ids() else None
    totals = {
        s: sum(1 for v in verdicts.values() if v.status == s)
        for s in ("pass", "fail", "not applicable", "not run")
    }
    if totals["fail"]:
        verdict = "not certified"
    elif totals["not run"]:
        verdict = "incomplete"
    else:
        verdict = "certified"
    return {
        "schema": "provcert-certificate/1",
        "provider": provider,
        "display_name": getattr(entry, "display_name", provider) if entry else provider,
        "adapter": getattr(entry, "adapter", None) if entry else None,
        "provcert_version": provcert_version(),
        "mode": mode,
        "target": mode,
        "mock_server": mock_server or "embedded",
        "live": (live or LiveSummary()).as_json(),
        "provenance": dict(provenance or {}),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "verdict": verdict,
        "totals": totals,
        "checks": [
            {
                "id": v.check.id,
                "title": v.check.title,
                "area": v.check.area,
                "severity": v.check.severity,
                "status": v.status,
                "detail": v.detail,
                "evidence": v.evidence,
                "tests": [
                    {
                        "nodeid": t.nodeid,
                        "status": t.status,
                        "detail": t.detail,
                        "duration_s": round(t.duration, 3),
                        "evidence": t.evidence,
                    }
                    for t in v.tests
                ],
            }
            for v in verdicts.values()
        ],
    }


_ICONS = {"pass": "✅ pass", "fail": "❌ fail", "not applicable": "⏭️ n/a", "not run": "⚠️ not run"}
_VERDICT_ICONS = {"certified": "✅", "not certified": "❌", "incomplete": "⚠️"}


def _cell(text: str) -> str:
    """Plain text in a GitHub table cell: one line, no HTML, no column breaks."""
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def _code_cell(text: str) -> str:
    """Evidence (an assertion message) as inline code in a table cell: shown verbatim, markup inert."""
    text = " ".join(text.split()).replace("`", "'").replace("|", "\\|")
    return f"`{text}`" if text else ""


def _human_date(date: str) -> str:
    try:
        return datetime.fromisoformat(date).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return date


def _usd(amount: str) -> str:
    return f"${amount}"


def mode_text(data: Mapping[str, Any]) -> str:
    """The certificate's mode as a reviewer reads it: mock (and which mock server) or live (calls and spend)."""
    live = data.get("live") or {}
    server = data.get("mock_server", "embedded")
    if data["mode"] == "live":
        cap = f" of the {_usd(live['cap_usd'])} cap" if live.get("cap_usd") is not None else ""
        return f"live ({live['calls']} live calls, {_usd(live['spend_usd'])} spent{cap}; other checks: mock)"
    text = "mock" if server == "embedded" else f"mock (external: {server})"
    if live.get("upstream") and live.get("calls"):
        text += (
            f"; the live path was rehearsed against {live['upstream']} (--live-upstream, "
            f"{live['calls']} calls): not live"
        )
    elif live.get("requested"):
        text += "; live was requested but no live call was made (see the LIV checks)"
    return text


def provenance_lines(data: Mapping[str, Any]) -> list[str]:
    """What was certified: the repository's commit, the CI run, Python and SDK versions, the golden cassettes."""
    prov = data.get("provenance") or {}
    if not prov:
        return []
    repo = prov.get("repository") or {}
    commit = str(repo.get("commit", "unknown"))
    dirty = repo.get("dirty")
    state = " (dirty work tree)" if dirty else "" if dirty is False else " (work tree state unknown)"
    parts = [f"commit `{commit}`{state}" if commit != "unknown" else "commit unknown (not a git repository)"]
    if prov.get("ci_run"):
        parts.append(f"CI run {prov['ci_run']}")
    parts.append(f"Python {prov.get('python', '?')}")
    sdks = prov.get("sdks") or {}
    if sdks:
        parts.append("SDKs " + ", ".join(f"{name} {version}" for name, version in sdks.items()))
    golden = prov.get("golden_cassettes") or {}
    if golden:
        parts.append("golden cassettes " + ", ".join(f"{n} {source}" for source, n in golden.items()))
    out = ["Certified: " + " · ".join(_cell(p) if not p.startswith("commit `") else p for p in parts)]
    unverified = prov.get("unverified_wire_forms") or {}
    if unverified:
        out.append(
            "Resting on wire forms not verified against the real provider (the mock's imitation is a guess): "
            + "; ".join(f"{check} ({_cell(' / '.join(why))})" for check, why in unverified.items())
        )
    return out


def certificate_markdown(data: Mapping[str, Any]) -> str:
    """The certificate for a pull request: verdict and totals up front, failures visible, every check one click away."""
    t = data["totals"]
    verdict = str(data["verdict"])
    failed = [c for c in data["checks"] if c["status"] == "fail"]
    lines = [
        f"### {_VERDICT_ICONS.get(verdict, '')} {_cell(data['display_name'])} (`{data['provider']}`): "
        f"{verdict.upper()}",
        "",
        f"**Verdict: {verdict.upper()}** · {t['pass']} passed · {t['fail']} failed · "
        f"{t['not applicable']} not applicable · {t['not run']} not run  ",
        f"provcert {data['provcert_version']} · mode: {_cell(mode_text(data))} · {_human_date(data['date'])}  ",
        *provenance_lines(data),
        "",
    ]
    if failed:
        lines += ["| Failed check | Title | Evidence |", "|---|---|---|"]
        lines += [f"| {c['id']} | {_cell(c['title'])} | {_code_cell(c['detail'])} |" for c in failed]
        lines.append("")
    lines += [
        f"<details><summary>All {len(data['checks'])} checks</summary>",
        "",
        "| Check | Title | Status | Evidence / reason |",
        "|---|---|---|---|",
    ]
    for check in data["checks"]:
        if check["status"] == "pass":
            detail = _cell("; ".join(check.get("evidence") or [NO_EVIDENCE]))
        elif check["status"] == "fail":
            detail = _code_cell(check["detail"])
        else:
            detail = _cell(check["detail"])
        lines.append(f"| {check['id']} | {_cell(check['title'])} | {_ICONS[check['status']]} | {detail} |")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def write_certificates(
    collector: ResultCollector,
    reports: Path,
    *,
    registry: Registry,
    catalogue: Mapping[str, Check],
    mock_server: str | None = None,
    live: Mapping[str, LiveSummary] | None = None,
    provenance: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Write each provider's certificate.json, certificate.md and junit.xml; returns the certificates."""
    written = {}
    for provider in collector.providers():
        summary = (live or {}).get(provider) or LiveSummary()
        data = certificate_data(
            provider,
            collector.verdicts(provider, catalogue),
            registry=registry,
            mode="live" if summary.live else "mock",
            mock_server=mock_server,
            live=summary,
            provenance=(provenance or {}).get(provider),
        )
        errors = certificate_errors(data)
        if errors:  # a bug in provcert, not in the adapter: never publish a certificate the schema rejects
            raise ValueError(f"{provider}: the certificate breaks its schema: " + "; ".join(errors[:5]))
        atomic_write(reports / provider / "certificate.json", json.dumps(data, indent=2) + "\n")
        atomic_write(reports / provider / "certificate.md", certificate_markdown(data))
        atomic_write(reports / provider / "junit.xml", junit_xml(data))
        written[provider] = data
    return written


def _attachment_sources(node: Mapping[str, Any]) -> Iterable[str]:
    for attachment in node.get("attachments", []) or []:
        if attachment.get("source"):
            yield attachment["source"]
    for step in node.get("steps", []) or []:
        yield from _attachment_sources(step)
    for key in ("befores", "afters"):
        for fixture in node.get(key, []) or []:
            yield from _attachment_sources(fixture)


def distribute_allure_results(staging: Path, reports: Path, providers: Iterable[str]) -> None:
    """Split one run's Allure results into ``reports/<provider>/allure-results`` by the parent-suite label.

    allure-pytest writes one directory per run; a reviewer wants one report per provider, so results, their
    attachments and the fixture containers that reference them are copied to each provider's directory.
    """
    if not staging.is_dir():
        return
    targets = {p: reports / p / "allure-results" for p in providers}
    for target in targets.values():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
    owner: dict[str, str] = {}
    for result_file in staging.glob("*-result.json"):
        data = json.loads(result_file.read_text(encoding="utf-8"))
        labels = {label["name"]: label["value"] for label in data.get("labels", [])}
        provider = labels.get("parentSuite")
        if provider not in targets:
            continue
        owner[data["uuid"]] = provider
        tagged = tag_failure_with_check(data)
        # a result and its attachments belong to one provider: move them (thousands of files in a fleet run)
        if tagged is data:
            os.replace(result_file, targets[provider] / result_file.name)
        else:  # failure messages carry their check id, which the Allure categories match on
            (targets[provider] / result_file.name).write_text(json.dumps(tagged), encoding="utf-8")
        for source in _attachment_sources(data):
            if (staging / source).exists():
                os.replace(staging / source, targets[provider] / source)
    for container_file in staging.glob("*-container.json"):
        data = json.loads(container_file.read_text(encoding="utf-8"))
        for provider in {owner[c] for c in data.get("children", []) if c in owner}:
            shutil.copy2(container_file, targets[provider] / container_file.name)
            for source in _attachment_sources(data):
                if (staging / source).exists():
                    shutil.copy2(staging / source, targets[provider] / source)
    shutil.rmtree(staging, ignore_errors=True)
