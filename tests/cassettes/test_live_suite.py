"""The certification suite's live checks end to end, in a subprocess as a maintainer runs them: gating, recording
through vcrpy into cassettes, the cap across xdist workers, the spend summary; the mock server plays the upstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from harness import cassettes as fmt
from harness.secrets import scan_all

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if k not in ("CERTIFY_LIVE", "OPENAI_API_KEY", "GROQ_API_KEY")
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "suites/certify/test_live.py",
        "-q",
        "-rs",
        "-p",
        "no:randomly",
    ]
    command += [
        "--reports-dir",
        str(tmp_path / "reports"),
        "--cassettes-dir",
        str(tmp_path / "cassettes"),
        *args,
    ]
    return subprocess.run(
        command, cwd=ROOT, env={**base, **(env or {})}, capture_output=True, text=True, timeout=240
    )


def test_live_checks_say_exactly_what_is_missing(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--provider", "openai")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "CERTIFY_LIVE=1 is not set" in proc.stdout and "--live option was not given" in proc.stdout
    proc = _run(tmp_path, "--provider", "openai", "--live", env={"CERTIFY_LIVE": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "CERTIFY_LIVE=1 is not set" not in proc.stdout
    assert "credential env://OPENAI_API_KEY does not resolve" in proc.stdout
    assert not (tmp_path / "cassettes").exists() and "passed" not in proc.stdout.splitlines()[-1]


def test_live_recording_under_a_cap_shared_by_xdist_workers(tmp_path: Path, server) -> None:
    env = {"CERTIFY_LIVE": "1", "OPENAI_API_KEY": "sk-proj-" + "L" * 40, "GROQ_API_KEY": "gsk_" + "G" * 48}
    common = ["--live", "--live-upstream", server.url, "--record-mode", "once", "-n", "2"]
    # a roomy cap: every live check runs and records
    proc = _run(tmp_path, "--provider", "openai,groq", *common, "--max-cost-usd", "0.05", env=env)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "6 passed" in proc.stdout, proc.stdout[-2000:]
    assert "provcert live spend" in proc.stdout and "4 call(s) sent" in proc.stdout
    written = sorted(
        p.relative_to(tmp_path / "cassettes").as_posix() for p in (tmp_path / "cassettes").rglob("*.json")
    )
    assert written == [
        f"{p}/live-{k}.{s}.json"
        for p in ("groq", "openai")
        for k in ("complete", "stream")
        for s in ("cassette", "provenance")
    ]
    assert not scan_all(p for p in (tmp_path / "cassettes").rglob("*") if p.is_file())
    assert "sk-proj-LLLL" not in "".join(p.read_text() for p in (tmp_path / "cassettes").rglob("*.json"))
    ledger = json.loads((tmp_path / "reports" / "live-ledger.json").read_text())
    assert {c["worker"] for c in ledger["calls"]} <= {"gw0", "gw1"} and Decimal(ledger["spent"]) <= Decimal(
        "0.05"
    )
    snapshot = {p: p.read_bytes() for p in (tmp_path / "cassettes").rglob("*.json")}

    # a tight cap: calls that cannot fit are refused before sending, the rest are skipped; goldens untouched
    tight = "0.00012"
    proc = _run(
        tmp_path,
        "--provider",
        "openai,groq",
        *common[:-2],
        "--record-mode",
        "all",
        "--max-cost-usd",
        tight,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "live budget" in proc.stdout and "refused" in proc.stdout
    ledger = json.loads((tmp_path / "reports" / "live-ledger.json").read_text())
    assert Decimal(ledger["spent"]) <= Decimal(tight) and ledger["refused"] and ledger["exhausted"]
    changed = [p for p, data in snapshot.items() if p.read_bytes() != data]
    sent = [c for c in ledger["calls"] if c["sent"]]
    assert len(changed) <= 2 * len(sent), "only cassettes of calls that were really made may be re-recorded"
    for path in (tmp_path / "cassettes").rglob("*.cassette.json"):
        fmt.load(path)  # every cassette still whole
