"""What a certificate certified: the code under test, where it ran, the SDKs beside it, the goldens it replayed.

A certificate is only worth what a reviewer can trace back. Each one names the provcert version, the commit (and
whether the work tree was dirty) of the repository under test, the CI run that produced it, the Python and official
SDK versions installed, and how the provider's golden cassettes were obtained (recorded live, imported from real
traffic upstream, or mock recordings), since a golden contract over mock recordings proves less.

It also says whether the run was live, from the run's spend ledger (:func:`live_summaries`): the only proof that
live calls were made is that they were booked.

Nothing here may fail a run: git missing, not a repository, a slow or broken ``git``: the value is ``"unknown"``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from harness.allure_report import sdk_versions
from harness.fault_provenance import unverified_checks

UNKNOWN = "unknown"
#: seconds any one git command may take (a certificate is never held up by a slow file system)
GIT_TIMEOUT = 10.0
#: golden cassette sources, as ``*.provenance.json`` names them (harness.recording / harness.importer)
GOLDEN_SOURCES = ("live", "imported", "mock")

#: the official SDK packages of each wire (the mock personality the provider speaks); OpenAI-compatible APIs are
#: driven with the OpenAI SDK, Azure OpenAI with its AzureOpenAI client, Bedrock with boto3/botocore
WIRE_SDKS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "azure-openai": ("openai",),
    "openrouter": ("openai",),
    "anthropic": ("anthropic",),
    "gemini": ("google-genai",),
    "mistral": ("mistralai",),
    "ollama": ("ollama",),
    "bedrock": ("boto3", "botocore"),
}
#: what the adapters themselves speak HTTP with: named on every certificate
TRANSPORT_PACKAGES = ("httpx",)


@dataclass(frozen=True)
class GitState:
    commit: str = UNKNOWN
    dirty: bool | None = None


def _git(cwd: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(  # noqa: S603 - a fixed git command, no shell
            ["git", *args],  # noqa: S607 - git from PATH, as the user runs it
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # a read-only look: never take the index lock
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(cwd: Path) -> GitState:
    """The commit of the git repository holding ``cwd`` and whether tracked files differ from it.

    "Dirty" follows ``git describe --dirty``: modified or staged tracked files; untracked files (reports, caches)
    do not count. Outside a repository, or without git, the commit is "unknown" and dirty is None.
    """
    head = _git(cwd, "rev-parse", "--verify", "HEAD")
    if head is None or not head.strip():
        return GitState()
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    return GitState(commit=head.strip(), dirty=None if status is None else bool(status.strip()))


def ci_run_url(env: Mapping[str, str] | None = None) -> str | None:
    """The link to the CI run producing the certificate: GitHub Actions, GitLab CI (CI_JOB_URL), Jenkins (BUILD_URL)."""
    env = os.environ if env is None else env
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server.rstrip('/')}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    for name in ("CI_JOB_URL", "BUILD_URL"):
        if env.get(name):
            return env[name]
    return None


def provider_sdks(wire: str | None) -> dict[str, str]:
    """The installed versions of the provider's official SDK packages (and the adapters' HTTP client)."""
    return sdk_versions((*WIRE_SDKS.get(wire or "", ()), *TRANSPORT_PACKAGES))


def golden_counts(provider: str, root: Path | None = None) -> dict[str, int]:
    """How many of the provider's golden cassettes were recorded live, imported, or recorded against the mock.

    A cassette without a readable provenance file counts as "unknown" (a key present only when there is one).
    """
    from harness.cassettes import CassetteError, golden_paths, read_provenance

    counts = dict.fromkeys(GOLDEN_SOURCES, 0)
    for path in golden_paths(provider, root):
        try:
            source = (read_provenance(path) or {}).get("source")
        except (CassetteError, OSError, ValueError):
            source = None
        key = source if source in GOLDEN_SOURCES else UNKNOWN
        counts[key] = counts.get(key, 0) + 1
    return counts


@dataclass(frozen=True)
class RunProvenance:
    """What is the same for every provider of one run."""

    git: GitState
    ci_run: str | None
    python: str

    @classmethod
    def collect(cls, cwd: Path, env: Mapping[str, str] | None = None) -> RunProvenance:
        return cls(git=git_state(cwd), ci_run=ci_run_url(env), python=platform.python_version())

    def for_provider(self, provider: str, wire: str | None, cassettes: Path | None = None) -> dict[str, Any]:
        """The certificate's ``provenance`` object for one provider."""
        return {
            "repository": {"commit": self.git.commit, "dirty": self.git.dirty},
            "ci_run": self.ci_run,
            "python": self.python,
            "sdks": provider_sdks(wire),
            "golden_cassettes": golden_counts(provider, cassettes),
            "unverified_wire_forms": unverified_checks(wire) if wire else {},
        }


@dataclass
class LiveSummary:
    """Live calls of one provider in this run, from the run's spend ledger: the only proof that "live" is true.

    ``upstream`` is set when ``--live-upstream`` sent the live path to a mock server: those calls are a rehearsal,
    not live traffic, and never make a certificate say live.
    """

    requested: bool = False
    calls: int = 0
    spend_usd: Decimal = field(default_factory=Decimal)
    cap_usd: Decimal | None = None
    upstream: str | None = None

    @property
    def live(self) -> bool:
        return self.calls > 0 and self.upstream is None

    def as_json(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "calls": self.calls,
            "spend_usd": f"{self.spend_usd:f}",  # never exponent notation ("1E-7")
            "cap_usd": None if self.cap_usd is None else f"{self.cap_usd:f}",
            "upstream": self.upstream,
        }


def live_summaries(
    providers: Iterable[str], ledger_state: Mapping[str, Any] | None, *, requested: bool, upstream: str | None
) -> dict[str, LiveSummary]:
    """Per provider: the calls this run's ledger says were really sent, and what they cost."""
    out = {}
    calls = list((ledger_state or {}).get("calls", []))
    cap = (ledger_state or {}).get("cap")
    for provider in providers:
        sent = [c for c in calls if c.get("provider") == provider and c.get("sent")]
        out[provider] = LiveSummary(
            requested=requested,
            calls=len(sent),
            spend_usd=sum((Decimal(str(c.get("booked", "0"))) for c in sent), Decimal(0)),
            cap_usd=Decimal(str(cap)) if cap is not None else None,
            upstream=upstream,
        )
    return out
