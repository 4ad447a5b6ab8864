"""Secret scanning for anything provcert writes to disk (cassettes, reports).

Two scanners, and a finding from either fails SEC-CASSETTE:

* provider key formats matched by explicit patterns (:data:`KEY_PATTERNS`), so a leak of any supported provider's key
  is caught even where a generic detector would miss it (Anthropic, Gemini, OpenRouter, AWS SigV4, Azure keys);
* detect-secrets with its format detectors and keyword detector (high-entropy detectors are left out: request ids,
  base64 event-stream bodies and signatures in recorded traffic are high-entropy by nature).

A finding names the file, the line and the kind of secret, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_B = r"(?<![A-Za-z0-9_-])"  # a key starts at a token boundary, not inside a word ("risk-assessment-...")

KEY_PATTERNS: dict[str, re.Pattern[str]] = {
    "openai": re.compile(_B + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    "anthropic": re.compile(_B + r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}"),
    "google": re.compile(_B + r"AIza[0-9A-Za-z_-]{35}"),
    "aws-access-key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "aws-sigv4-signature": re.compile(r"(?i)Signature=[0-9a-f]{64}"),
    "aws-session-token": re.compile(
        r"(?i)x-amz-security-token[\"']?\s*[:=]\s*[\"'\[]*\s*[\"']?(?!\[?REDACTED)[A-Za-z0-9/+=]{40,}"
    ),
    "openrouter": re.compile(_B + r"sk-or-v1-[0-9a-f]{64}"),
    "groq": re.compile(_B + r"gsk_[A-Za-z0-9]{40,}"),
    "api-key-header": re.compile(  # Azure api-key, Anthropic x-api-key, Gemini x-goog-api-key (also JSON-escaped)
        r"(?i)\\?[\"']?(?:api-key|x-api-key|x-goog-api-key)\\?[\"']?\s*[:=]\s*\[?\s*\\?[\"']?"
        r"(?!\[?REDACTED)[A-Za-z0-9_-]{24,}"
    ),
    "key-query-parameter": re.compile(r"[?&](?:key|api_key|apikey)=(?!REDACTED)[A-Za-z0-9_-]{16,}"),
    "bearer-token": re.compile(r"(?i)bearer\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{16,}"),
}

#: detect-secrets plugins used (format detectors and keywords; no entropy detectors, see the module docstring)
DETECT_SECRETS_PLUGINS = [
    "AWSKeyDetector",
    "ArtifactoryDetector",
    "AzureStorageKeyDetector",
    "BasicAuthDetector",
    "CloudantDetector",
    "DiscordBotTokenDetector",
    "GitHubTokenDetector",
    "GitLabTokenDetector",
    "IbmCloudIamDetector",
    "JwtTokenDetector",
    "KeywordDetector",
    "MailchimpDetector",
    "NpmDetector",
    "OpenAIDetector",
    "PrivateKeyDetector",
    "PypiTokenDetector",
    "SendGridDetector",
    "SlackDetector",
    "SquareOAuthDetector",
    "StripeDetector",
    "TelegramBotTokenDetector",
    "TwilioKeyDetector",
]


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


def detect_secrets_scan(paths: Iterable[Path]) -> list[Finding]:
    """detect-secrets over the files, with :data:`DETECT_SECRETS_PLUGINS`."""
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import transient_settings

    findings: list[Finding] = []
    config = {
        "plugins_used": [{"name": name} for name in DETECT_SECRETS_PLUGINS],
        "filters_used": [
            {"path": "detect_secrets.filters.heuristic.is_likely_id_string"},
            {"path": "detect_secrets.filters.heuristic.is_templated_secret"},
            {"path": "detect_secrets.filters.heuristic.is_sequential_string"},
        ],
    }
    with transient_settings(config):
        for path in paths:
            for secret in scan_file(str(path)):
                findings.append(Finding(str(path), secret.line_number, f"detect-secrets: {secret.type}"))
    return findings


def scan_all(paths: Iterable[Path]) -> list[Finding]:
    """Both scanners; what SEC-CASSETTE and the recorder's last check before writing use."""
    files = list(paths)
    return scan_paths(files) + detect_secrets_scan(files)
