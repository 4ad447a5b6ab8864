"""The end of a certification run: everything it leaves under ``--reports-dir``.

Per provider certified in this run: ``certificate.json`` / ``certificate.md`` / ``junit.xml``, and
``allure-results/`` with ``environment.properties``, ``executor.json`` and ``categories.json``; with
``--allure-html``, ``allure-report/index.html``. For the whole fleet on disk: ``matrix.json`` / ``matrix.md`` /
``matrix.svg`` and ``summary.md`` (the matrix and every certificate, for a CI job summary).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from adapters.registry import Registry
from harness.allure_report import RunInfo, environment, executor, generate_reports, write_metadata
from harness.checks import CHECKS
from harness.matrix import write_matrix
from harness.reporting import ResultCollector, distribute_allure_results, provcert_version, write_certificates


def run_mode(mock_url: str | None, live: bool) -> tuple[str, Literal["mock", "live"]]:
    """The certificate's mode ("mock", "mock (external: URL)", either with " + live") and its target."""
    mode = f"mock (external: {mock_url})" if mock_url else "mock"
    return (f"{mode} + live", "live") if live else (mode, "mock")


def publish_run(
    collector: ResultCollector,
    *,
    reports: Path,
    registry: Registry,
    mock_url: str | None = None,
    live: bool = False,
    staging: Path | None = None,
    allure_cli: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    providers = collector.providers()
    mode, target = run_mode(mock_url, live)
    certificates = write_certificates(
        collector, reports, registry=registry, mode=mode, catalogue=CHECKS, target=target
    )
    if staging is not None:
        distribute_allure_results(staging, reports, providers)
    run = RunInfo(provcert_version=provcert_version(), mode=mode, target=target, mock_url=mock_url)
    names = {}
    for provider in providers:
        entry = registry.get(provider) if provider in registry.ids() else None
        names[provider] = f"provcert: {entry.display_name if entry else provider} ({provider})"
        results = reports / provider / "allure-results"
        if results.is_dir():
            write_metadata(
                results,
                environment(
                    provider,
                    run,
                    display_name=entry.display_name if entry else None,
                    adapter=entry.adapter if entry else None,
                    wire=entry.wire if entry else None,
                    models=[m.id for m in entry.models] if entry else (),
                ),
                executor(provider, env),
            )
        # an HTML report left from an earlier run would no longer match these results
        shutil.rmtree(reports / provider / "allure-report", ignore_errors=True)
    outputs: dict[str, Any] = {"certificates": certificates, "matrix": write_matrix(reports)}
    if allure_cli is not None:
        html = generate_reports(allure_cli, reports, names)
        outputs["html"] = html
        outputs["html_errors"] = any(not isinstance(v, Path) for v in html.values())
    return outputs
