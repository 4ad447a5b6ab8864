"""Secret scanning for anything provcert writes to disk (cassettes, reports).

Provider key formats are matched by explicit patterns, so a leak of any supported provider's key is caught even when a
generic entropy detector would miss it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

KEY_PATTERNS: dict[str, re.Pattern[str]] = {
    "openai": re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    "anthropic": re.compile(r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}"),
    "google": re.compile(r"AIza[0-9A-Za-z_-]{35}"),
    "aws-access-key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "aws-sigv4-signature": re.compile(r"Signature=[0-9a-f]{64}"),
    "openrouter": re.compile(r"sk-or-v1-[0-9a-f]{64}"),
    "bearer-token": re.compile(r"(?i)bearer\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{16,}"),
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str

    def __str__(self) -> str:  # never includes the matched value
        return f"{self.path}:{self.line}: {self.kind}"


def scan_text(text: str, path: str = "<text>") -> list[Finding]:
    findings = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for kind, pattern in KEY_PATTERNS.items():
            if pattern.search(line):
                findings.append(Finding(path, lineno, kind))
    return findings


def scan_paths(paths: Iterable[Path]) -> list[Finding]:
    findings: list[Finding] = []
    for path in paths:
        findings += scan_text(path.read_text(encoding="utf-8", errors="replace"), str(path))
    return findings
