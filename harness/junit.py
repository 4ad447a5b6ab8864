"""JUnit XML for CI systems: ``reports/<provider>/junit.xml``, one ``<testcase>`` per DoD check.

A CI system's test view then reads like the certificate (ERR-429, STR-ABORT, ...), not like the suite's internal
test functions: a failed check is a ``<failure>`` whose message is the one-line evidence and whose text lists the
failing tests; a not-applicable check is ``<skipped>`` with its reason; a check no test exercised is ``<skipped>``
too, marked "not run". A passing check's evidence lines (what it verified) are its ``<system-out>``, or
"(no evidence recorded)". The suite's properties carry the certificate's mode, live calls and provenance.
(Per-test JUnit is still available from pytest's own ``--junitxml``.)
Test cases are grouped as ``classname="provcert.<provider>.<AREA>"``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from harness.checks import NO_EVIDENCE

# characters XML 1.0 cannot carry at all (ElementTree would write them and produce an unreadable file)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("?", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _timestamp(date: str) -> str:
    """JUnit's timestamp: ISO 8601 without a zone (the Ant schema's form); the certificate's date is UTC."""
    try:
        return datetime.fromisoformat(date).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return date


def _provenance_properties(certificate: Mapping[str, Any]) -> list[tuple[str, object]]:
    """The certificate's live calls and provenance as flat JUnit properties (absent in older certificates)."""
    props: list[tuple[str, object]] = []
    if certificate.get("mock_server"):
        props.append(("mock_server", certificate["mock_server"]))
    live = certificate.get("live") or {}
    if live.get("requested") or certificate["mode"] == "live":
        props += [("live.calls", live.get("calls", 0)), ("live.spend_usd", live.get("spend_usd", "0"))]
    prov = certificate.get("provenance") or {}
    if prov:
        repo = prov.get("repository") or {}
        dirty = repo.get("dirty")
        props += [
            ("git.commit", repo.get("commit", "unknown")),
            ("git.dirty", "unknown" if dirty is None else str(bool(dirty)).lower()),
            ("python", prov.get("python", "")),
        ]
        if prov.get("ci_run"):
            props.append(("ci.run", prov["ci_run"]))
        props += [(f"sdk.{name}", version) for name, version in (prov.get("sdks") or {}).items()]
        props += [(f"golden.{source}", n) for source, n in (prov.get("golden_cassettes") or {}).items()]
    return props


def junit_xml(certificate: Mapping[str, Any]) -> str:
    provider = certificate["provider"]
    checks = certificate["checks"]
    failures = sum(1 for c in checks if c["status"] == "fail")
    skipped = sum(1 for c in checks if c["status"] in ("not applicable", "not run"))
    total_time = sum(t.get("duration_s", 0.0) for c in checks for t in c["tests"])
    counts = {
        "tests": str(len(checks)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": _seconds(total_time),
    }
    root = ET.Element("testsuites", {"name": "provcert certification", **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {"name": f"provcert.{provider}", **counts, "timestamp": _timestamp(certificate["date"])},
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("provider", provider),
        ("display_name", certificate["display_name"]),
        ("provcert_version", certificate["provcert_version"]),
        ("mode", certificate["mode"]),
        ("verdict", certificate["verdict"]),
        *_provenance_properties(certificate),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _clean(str(value))})
    for check in checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"provcert.{provider}.{check['area']}",
                "name": _clean(f"{check['id']} {check['title']}"),
                "time": _seconds(sum(t.get("duration_s", 0.0) for t in check["tests"])),
            },
        )
        detail = _clean(check["detail"])
        if check["status"] == "fail":
            failure = ET.SubElement(case, "failure", {"message": detail, "type": "DoDCheckFailed"})
            failure.text = _clean(
                "\n".join(
                    f"{t['status']}: {t['nodeid']}" + (f": {t['detail']}" if t["detail"] else "")
                    for t in check["tests"]
                )
            )
        elif check["status"] == "not applicable":
            ET.SubElement(case, "skipped", {"message": f"not applicable: {detail}"})
        elif check["status"] == "not run":
            ET.SubElement(case, "skipped", {"message": f"not run: {detail}"})
        else:  # passed: what it verified
            out = ET.SubElement(case, "system-out")
            out.text = _clean("\n".join(check.get("evidence") or [NO_EVIDENCE]))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
