"""``python -m harness.report``: the reports on disk, after (or between) certification runs.

    python -m harness.report summary [--reports-dir reports]   # markdown for a CI job summary, on stdout
    python -m harness.report matrix  [--reports-dir reports]   # rebuild matrix.{json,md,svg} and summary.md
    python -m harness.report html    [--reports-dir reports] [--provider a,b]   # Allure HTML from allure-results/
    python -m harness.report validate [--reports-dir reports]  # every certificate.json against its schema

Exit status: 0 on success; 1 when ``validate`` finds an invalid certificate or ``html`` cannot render one;
2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.allure_report import AllureUnavailable, find_allure_cli, generate_reports
from harness.matrix import summary_markdown, write_matrix
from harness.reporting import certificate_errors


def _providers_on_disk(reports: Path, wanted: str | None) -> list[str]:
    found = sorted(p.parent.name for p in reports.glob("*/allure-results"))
    if not wanted:
        return found
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"no allure-results under {reports} for: {', '.join(missing)}")
    return names


def _display_name(reports: Path, provider: str) -> str:
    try:
        cert = json.loads((reports / provider / "certificate.json").read_text(encoding="utf-8"))
        return f"provcert: {cert['display_name']} ({provider})"
    except (OSError, ValueError, KeyError, TypeError):
        return f"provcert: {provider}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["summary", "matrix", "html", "validate"])
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("--provider", default=None, help="html: only these providers (comma-separated)")
    parser.add_argument("--allure-cli", default=None, help="html: the Allure 2 command line to use")
    args = parser.parse_args(argv)
    reports: Path = args.reports_dir
    if args.command == "summary":
        sys.stdout.write(summary_markdown(reports))
        return 0
    if args.command == "matrix":
        matrix = write_matrix(reports)
        print(f"{reports / 'matrix.md'}: {matrix['fleet']['providers']} providers")
        return 0
    if args.command == "validate":
        paths = sorted(reports.glob("*/certificate.json"))
        bad = 0
        for path in paths:
            try:
                errors = certificate_errors(json.loads(path.read_text(encoding="utf-8")))
            except ValueError as exc:
                errors = [f"not JSON: {exc}"]
            for error in errors:
                print(f"{path}: {error}", file=sys.stderr)
            bad += bool(errors)
        print(f"{len(paths) - bad} of {len(paths)} certificates valid")
        return 1 if bad or not paths else 0
    try:
        cli = find_allure_cli([Path.cwd(), Path(__file__).resolve().parents[1]], args.allure_cli)
    except AllureUnavailable as exc:
        print(f"html: {exc}", file=sys.stderr)
        return 1
    providers = _providers_on_disk(reports, args.provider)
    results = generate_reports(cli, reports, {p: _display_name(reports, p) for p in providers})
    for provider, outcome in results.items():
        print(f"{provider}: {outcome}" if isinstance(outcome, Path) else f"{provider}: FAILED: {outcome}")
    return 0 if all(isinstance(o, Path) for o in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
