"""The fleet at a glance: ``reports/matrix.{json,md,svg}`` and ``reports/summary.md``, from every certificate on disk.

The matrix is rebuilt from ``reports/*/certificate.json`` after every run, not from the run alone, so certifying one
provider after another still yields the whole fleet (each row says when its provider was certified). A certificate
that does not validate against the schema is left out and named, never half-read.

The chart is an SVG written here, not a matplotlib PNG: it needs no plotting stack in the plugin, is byte-for-byte
deterministic (diffable, and testable by parsing it), stays sharp at any zoom, and GitHub, browsers and editors
render it. Markdown surfaces that show no images at all (a job summary has no place to host one) get the same
numbers as a text bar in the table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from harness.checks import AREAS
from harness.reporting import atomic_write, certificate_errors

STATUSES = ("pass", "fail", "not applicable", "not run")
_VERDICT_ICONS = {"certified": "✅", "not certified": "❌", "incomplete": "⚠️"}
_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "not applicable": "#9e9e9e", "not run": "#f9a825"}


def load_certificates(reports: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every valid ``reports/*/certificate.json`` (sorted by provider), and the ones left out with the reason."""
    certificates, skipped = [], []
    for path in sorted(reports.glob("*/certificate.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            skipped.append({"path": str(path), "reason": f"unreadable: {exc}"})
            continue
        errors = certificate_errors(data)
        if errors:
            skipped.append({"path": str(path), "reason": "breaks the certificate schema: " + errors[0]})
            continue
        if data["provider"] != path.parent.name:
            skipped.append({"path": str(path), "reason": f"certifies {data['provider']!r}, not its folder"})
            continue
        certificates.append(data)
    return certificates, skipped


def build_matrix(reports: Path) -> dict[str, Any]:
    certificates, skipped = load_certificates(reports)
    seen = {c["area"] for cert in certificates for c in cert["checks"]}
    areas = [a for a in AREAS if a in seen] + sorted(seen - set(AREAS))
    providers = []
    for cert in certificates:
        by_area = {area: dict.fromkeys(STATUSES, 0) for area in areas}
        for check in cert["checks"]:
            by_area[check["area"]][check["status"]] += 1
        providers.append(
            {
                "provider": cert["provider"],
                "display_name": cert["display_name"],
                "verdict": cert["verdict"],
                "date": cert["date"],
                "mode": cert["mode"],
                "provcert_version": cert["provcert_version"],
                "totals": cert["totals"],
                "checks": len(cert["checks"]),
                "areas": by_area,
                "failed_checks": [c["id"] for c in cert["checks"] if c["status"] == "fail"],
            }
        )
    verdicts = [p["verdict"] for p in providers]
    return {
        "schema": "provcert-matrix/1",
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "areas": {a: AREAS.get(a, a) for a in areas},
        "fleet": {
            "providers": len(providers),
            **{v: verdicts.count(v) for v in ("certified", "not certified", "incomplete")},
        },
        "providers": providers,
        "skipped": skipped,
    }


def _bar(passed: int, total: int, width: int = 10) -> str:
    filled = round(width * passed / total) if total else 0
    return "█" * filled + "░" * (width - filled)


def _area_cell(counts: Mapping[str, int]) -> str:
    cell = f"{counts['pass']}/{counts['fail']}/{counts['not applicable']}"
    if counts["not run"]:
        cell += f" (+{counts['not run']} not run)"
    if not any(counts.values()):
        return ""
    return f"❌ {cell}" if counts["fail"] else cell


def _human_date(date: str) -> str:
    try:
        return datetime.fromisoformat(date).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return date


def matrix_markdown(matrix: Mapping[str, Any], *, image: str | None = "matrix.svg") -> str:
    fleet = matrix["fleet"]
    areas = list(matrix["areas"])
    lines = [
        "## provcert: provider certification matrix",
        "",
        f"{fleet['providers']} providers: {fleet['certified']} certified, {fleet['not certified']} not certified, "
        f"{fleet['incomplete']} incomplete · matrix built {_human_date(matrix['generated'])}",
        "",
    ]
    if not matrix["providers"]:
        return "\n".join([*lines, "No certificate found.", ""])
    lines += [
        "| Provider | Verdict | Checks passed | " + " | ".join(areas) + " | Certified at |",
        "|---|---|---|" + "---|" * len(areas) + "---|",
    ]
    for p in matrix["providers"]:
        t = p["totals"]
        cells = [
            f"`{p['provider']}`",
            f"{_VERDICT_ICONS.get(p['verdict'], '')} {p['verdict']}",
            f"`{_bar(t['pass'], p['checks'])}` {t['pass']}/{p['checks']}",
            *(_area_cell(p["areas"][a]) for a in areas),
            _human_date(p["date"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Area cells: passed/failed/not applicable checks (❌: the area has a failure). Areas: "
        + ", ".join(f"{a} {name.lower()}" for a, name in matrix["areas"].items())
        + ".",
        "",
    ]
    failing = [p for p in matrix["providers"] if p["failed_checks"]]
    if failing:
        lines += [
            "Failed checks: "
            + "; ".join(f"`{p['provider']}` {', '.join(p['failed_checks'])}" for p in failing)
        ]
        lines.append("")
    if image:
        lines += [f"![Checks passed per provider]({image})", ""]
    for item in matrix["skipped"]:
        lines.append(f"Left out: {item['path']}: {item['reason']}  ")
    return "\n".join(lines).rstrip("\n") + "\n"


def matrix_svg(matrix: Mapping[str, Any]) -> str:
    """A horizontal stacked bar per provider: passed, failed, not applicable, not run, out of its checks."""
    providers = matrix["providers"]
    label_w = max([len(p["provider"]) for p in providers] + [8]) * 7.5 + 16
    bar_w, row_h, top, right = 420.0, 26, 58, 110
    width = label_w + bar_w + right
    height = top + max(1, len(providers)) * row_h + 16
    scale = max([p["checks"] for p in providers] + [1])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        f'viewBox="0 0 {width:.0f} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12" '
        'role="img" aria-labelledby="title">',
        '<title id="title">provcert: checks passed per provider</title>',
        f'<rect width="{width:.0f}" height="{height}" fill="#ffffff"/>',
        '<text x="8" y="20" font-size="14" font-weight="bold" fill="#212121">Checks passed per provider</text>',
    ]
    x = 8.0
    for status in STATUSES:
        out.append(f'<rect x="{x:.0f}" y="32" width="12" height="12" fill="{_COLOURS[status]}"/>')
        out.append(f'<text x="{x + 16:.0f}" y="42" fill="#424242">{escape(status)}</text>')
        x += 16 + len(status) * 7 + 18
    for i, p in enumerate(providers):
        y = top + i * row_h
        t = p["totals"]
        out.append(
            f'<g class="provider" data-provider="{escape(p["provider"])}" data-passed="{t["pass"]}" '
            f'data-checks="{p["checks"]}">'
        )
        out.append(
            f'<text x="{label_w - 8:.0f}" y="{y + 15}" text-anchor="end" fill="#212121">{escape(p["provider"])}</text>'
        )
        x = label_w
        for status in STATUSES:
            if t[status]:
                w = bar_w * t[status] / scale
                out.append(
                    f'<rect class="{status.replace(" ", "-")}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="16" '
                    f'fill="{_COLOURS[status]}"><title>{escape(p["provider"])}: {t[status]} {escape(status)}'
                    "</title></rect>"
                )
                x += w
        mark = f" ({t['fail']} failed)" if t["fail"] else ""
        out.append(
            f'<text x="{x + 6:.1f}" y="{y + 15}" fill="#212121">{t["pass"]}/{p["checks"]}{mark}</text>'
        )
        out.append("</g>")
    if not providers:
        out.append(f'<text x="8" y="{top + 15}" fill="#616161">no certificate found</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def summary_markdown(reports: Path, matrix: Mapping[str, Any] | None = None) -> str:
    """What CI posts as the job summary: the matrix (no image) and every provider's certificate."""
    matrix = build_matrix(reports) if matrix is None else matrix
    parts = [matrix_markdown(matrix, image=None)]
    for p in matrix["providers"]:
        md = reports / p["provider"] / "certificate.md"
        if md.is_file():
            parts.append(md.read_text(encoding="utf-8"))
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def write_matrix(reports: Path) -> dict[str, Any]:
    """Rebuild ``matrix.json``, ``matrix.md``, ``matrix.svg`` and ``summary.md`` under ``reports``."""
    matrix = build_matrix(reports)
    atomic_write(reports / "matrix.json", json.dumps(matrix, indent=2) + "\n")
    atomic_write(reports / "matrix.svg", matrix_svg(matrix))
    atomic_write(reports / "matrix.md", matrix_markdown(matrix))
    atomic_write(reports / "summary.md", summary_markdown(reports, matrix))
    return matrix
