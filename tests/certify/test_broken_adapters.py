"""The certification suite fails a broken adapter on exactly the checks its defect touches, and passes the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: broken adapter class -> the checks its defect must fail (and no others)
EXPECTED_FAILURES: dict[str, set[str]] = {
    "IgnoresRetryAfter": {"ERR-429", "RTY-AFTER"},
    "WholeSecondsRetryAfter": {"ERR-429", "RTY-AFTER"},
    # RTY-FALLBACK's content-filter case too: the error surfaces with the wrong kind
    "InvalidPromptIsBadRequest": {"ERR-FILTER", "RTY-FALLBACK"},
    "CountsReasoningTwice": {"TOK-DETAIL", "TOK-COST"},
    "CachedOutsideInput": {"TOK-DETAIL", "TOK-COST"},
    "DropsMaxTokens": {"REQ-FIELDS"},
    "DropsSamplingParameters": {"REQ-FIELDS"},
    # the mock's usage truth counts what it received, so the adapter's estimate (made from the whole request,
    # system prompt included) no longer matches it either
    "DropsSystemPrompt": {"REQ-FIELDS", "TOK-NULL"},
    "IgnoresToolChoice": {"REQ-FIELDS"},
    "DropsRequestId": {
        "RID-OK",
        "RID-ERR",
        "RID-STREAM",
        "ERR-429",
        "ERR-QUOTA",
        "ERR-401",
        "ERR-403",
        "ERR-404",
        "ERR-400",
        "ERR-CONTEXT",
        "ERR-FILTER",
        "ERR-5XX",
        "ERR-OVERLOADED",
        "ERR-MALFORMED",
        "STR-ABORT",
        "STR-INBAND",
        "STR-TRUNCATED",
        "STR-MALFORMED",
        "STR-STALL",
        "STR-END",
        "TEL-FIELDS",
        # the golden replays' reviewed results carry the recorded request ids
        "GLD-COMPLETE",
        "GLD-STREAM",
        # the Start a retried stream shows must be the serving attempt's (its id is lost)
        "RTY-STREAM",
    },
    # golden streams replay real empty deltas: the event sequence differs from the reviewed one
    # and a forwarded empty delta counts as output, so a stream dying right after it is no longer retried
    "ForwardsEmptyDeltas": {"STR-EMPTY", "GLD-STREAM", "RTY-STREAM"},
    "TrustsEveryStreamEnd": {"STR-TRUNCATED"},
    # a golden stream recorded without usage replays to zero usage instead of the reviewed estimate
    "ZeroUsageWhenMissing": {"TOK-NULL", "GLD-STREAM"},
    "LogsHeaders": {"SEC-SURFACE"},
    "RetriesEverything": {
        "ERR-QUOTA",
        "ERR-401",
        "ERR-403",
        "ERR-404",
        "ERR-400",
        "ERR-CONTEXT",
        "ERR-FILTER",
        "RTY-NONRETRY",
        # caller errors marked retryable are retried and then served by the fallback; golden 4xx replays differ
        "RTY-FALLBACK",
        "GLD-COMPLETE",
    },
    "IgnoresContentType": {"ERR-MALFORMED"},
    "LeaksRawExceptions": {"ERR-TIMEOUT", "ERR-CONN", "ERR-MALFORMED"},
    # parallel tool calls (issue 8): one call for all fragments, or fragments keyed by arrival instead of index
    "MergesParallelToolCalls": {"STR-TOOLS"},
    "AppendsToLatestToolCall": {"STR-TOOLS"},
}


def _kebab(name: str) -> str:
    return "broken-" + "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _registry(path: Path) -> None:
    entries = []
    for cls in EXPECTED_FAILURES:
        entries.append(
            textwrap.dedent(f"""\
          - provider_id: {_kebab(cls)}
            display_name: Broken ({cls})
            adapter: broken_adapters:{cls}
            wire: openai
            base_url: https://api.openai.com/v1
            credential_ref: env://OPENAI_API_KEY
            capabilities:
              {{streaming: true, tools: true, usage_in_stream: true, cached_tokens: true, reasoning_tokens: true}}
            timeouts: {{connect: 5, read: 60, stream_idle: 30}}
            retry: {{max_attempts: 3, initial_backoff: 0.5, max_backoff: 8, retry_after_cap: 60}}
            models:
              - {{id: gpt-4o-mini, input_per_1m: "0.15", output_per_1m: "0.60", cached_input_per_1m: "0.075"}}
            rollout: {{status: enabled, percentage: 100}}
            fallback: [openai]
        """)
        )
    path.write_text("providers:\n" + textwrap.indent("".join(entries), "  "), encoding="utf-8")


def _golden(root: Path) -> None:
    """Every broken adapter is the OpenAI adapter under another id: it replays OpenAI's golden cassettes, and its
    reviewed snapshots are OpenAI's with the provider id renamed (GLD fails where the defect changes a result)."""
    source = ROOT / "cassettes" / "openai"
    for cls in EXPECTED_FAILURES:
        folder = root / _kebab(cls)
        folder.mkdir(parents=True)
        for path in source.iterdir():
            text = path.read_text(encoding="utf-8")
            if path.name.endswith(".expected.json") or path.name.endswith(".provenance.json"):
                text = text.replace('"openai"', json.dumps(_kebab(cls)))
            (folder / path.name).write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("broken")
    registry = tmp / "broken.yaml"
    _registry(registry)
    _golden(tmp / "cassettes")
    providers = ",".join(_kebab(c) for c in EXPECTED_FAILURES)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "suites/certify",
            "--provider",
            providers,
            "--registry",
            str(registry),
            "--reports-dir",
            str(tmp / "reports"),
            "--cassettes-dir",
            str(tmp / "cassettes"),
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, (
        f"expected test failures (exit 1), got {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    certificates = {
        cls: json.loads((tmp / "reports" / _kebab(cls) / "certificate.json").read_text())
        for cls in EXPECTED_FAILURES
    }
    certificates["_reports"] = {"path": str(tmp / "reports")}
    return certificates


def test_failed_checks_carry_the_journal_and_wire_bytes(certified: dict[str, dict]) -> None:
    results = Path(certified["_reports"]["path"]) / _kebab("IgnoresRetryAfter") / "allure-results"
    failed = []
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text())
        if data["status"] == "failed":
            failed.append(data)
    assert failed, "no failed result in the Allure output"
    for data in failed:
        names = [a["name"] for a in data.get("attachments", [])]
        assert "mock journal" in names, f"{data['name']}: attachments {names}"
        assert any(n.startswith("wire bytes") for n in names), f"{data['name']}: attachments {names}"
        for attachment in data["attachments"]:
            assert (results / attachment["source"]).is_file(), (
                f"attachment file missing: {attachment['source']}"
            )
        journal = json.loads(
            (
                results / next(a["source"] for a in data["attachments"] if a["name"] == "mock journal")
            ).read_text()
        )
        assert journal and all("usage_truth" in e for e in journal)


@pytest.mark.parametrize("cls", list(EXPECTED_FAILURES))
def test_broken_adapter_fails_exactly_its_checks(certified: dict[str, dict], cls: str) -> None:
    cert = certified[cls]
    failed = {c["id"] for c in cert["checks"] if c["status"] == "fail"}
    assert failed == EXPECTED_FAILURES[cls], (
        f"{cls}: failed {sorted(failed)}, expected {sorted(EXPECTED_FAILURES[cls])}; details: "
        + json.dumps({c["id"]: c["detail"] for c in cert["checks"] if c["status"] == "fail"}, indent=1)
    )
    assert cert["verdict"] == "not certified"
    for check in cert["checks"]:
        if check["status"] == "fail":
            assert check["detail"], f"{check['id']} failed without evidence"
