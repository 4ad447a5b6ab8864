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
from harness.run_provenance import LiveSummary, RunProvenance, live_summaries


def _ledger_state(ledger: Path | None) -> dict[str, Any] | None:
    """This run's live-spend ledger (None when the run made no live preparations)."""
    if ledger is None or not ledger.exists():
        return None
    from harness.budget import Ledger

    return Ledger(ledger).state()


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
    ledger: Path | None = None,
    live_upstream: str | None = None,
    cassettes: Path | None = None,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """Write every report of the run.

    ``live`` says live checks were requested (``--live`` and CERTIFY_LIVE=1); whether a certificate says "live"
    is decided by ``ledger``, the run's spend ledger: only calls really sent to the provider count.
    ``cwd`` is the repository under test (its commit goes on the certificate), ``cassettes`` the golden root.
    """
    providers = collector.providers()
    summaries = live_summaries(
        providers,
        _ledger_state(ledger) if live else None,
        requested=live,
        upstream=live_upstream if live else None,
    )
    run_provenance = RunProvenance.collect(cwd or Path.cwd(), env)
    entries = {p: registry.get(p) if p in registry.ids() else None for p in providers}
    provenance = {
        p: run_provenance.for_provider(p, e.wire if e else None, cassettes) for p, e in entries.items()
    }
    certificates = write_certificates(
        collector,
        reports,
        registry=registry,
        catalogue=CHECKS,
        mock_server=mock_url,
        live=summaries,
        provenance=provenance,
    )
    if staging is not None:
        distribute_allure_results(staging, reports, providers)
    names = {}
    for provider in providers:
        entry = entries[provider]
        summary = summaries.get(provider) or LiveSummary()
        mode: Literal["mock", "live"] = "live" if summary.live else "mock"
        run = RunInfo(provcert_version=provcert_version(), mode=mode, target=mode, mock_url=mock_url)
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
                    provenance=provenance[provider],
                    live=summary.as_json(),
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
