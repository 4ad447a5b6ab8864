"""JUnit XML for CI systems: ``reports/<provider>/junit.xml``, one ``<testcase>`` per DoD check.

A CI system's test view then reads like the certificate (ERR-429, STR-ABORT, ...), not like the suite's internal
test functions: a failed check is a ``<failure>`` whose message is the one-line evidence and whose text lists the
failing tests; a not-applicable check is ``<skipped>`` with its reason; a check no test exercised is ``<skipped>``
too, marked "not run". (Per-test JUnit is still available from pytest's own ``--junitxml``.)
Test cases are grouped as ``classname="provcert.<provider>.<AREA>"``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
