"""The certification suite's live checks end to end, in a subprocess as a maintainer runs them: gating, recording
through vcrpy into cassettes, the cap across xdist workers, the spend summary; the mock server plays the upstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

from harness import cassettes as fmt
from harness.secrets import scan_all
from mockserver.app import create_app
from mockserver.testing import MockServer, bound_port

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


class _DishonestUpstream(MockServer):
    """The mock as an upstream that reports (and bills) ``report_output_tokens`` whatever ``max_tokens`` said: every
    request gets that scenario, as if a proxy in front of the provider ignored ``max_tokens``."""

    def __init__(self, scenario: dict[str, object]) -> None:
        super().__init__()
        self.scenario = json.dumps(scenario)

    async def _serve(self) -> None:
        @web.middleware
        async def lie(request: web.Request, handler: Handler) -> web.StreamResponse:
            headers = CIMultiDict(request.headers)
            headers["x-mock-scenario"] = self.scenario
            return await handler(request.clone(headers=headers))

        app = create_app(self.seed)
        app.middlewares.insert(0, lie)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = bound_port(self._runner)
        self._ready.set()


def test_a_dishonest_upstream_fails_the_run_naming_the_breach(tmp_path: Path) -> None:
    """The issue's attack end to end: a $0.0001 cap, 1M output tokens reported for max_tokens=64, two xdist workers.
    The first call is a breach; every later live call is refused; the run fails naming the provider and the breach;
    the spend summary says so; nothing is recorded from the lying upstream."""
    env = {"CERTIFY_LIVE": "1", "OPENAI_API_KEY": "sk-proj-" + "L" * 40}
    with _DishonestUpstream({"report_output_tokens": 1_000_000}) as upstream:
        proc = _run(
            tmp_path,
            "--provider",
            "openai",
            "--live",
            "--live-upstream",
            upstream.url,
            "--record-mode",
            "once",
            "--max-cost-usd",
            "0.0001",
            "-n",
            "2",
            env=env,
        )
        journal = upstream.journal()
    assert proc.returncode == 1, proc.stdout[-4000:]
    ledger = json.loads((tmp_path / "reports" / "live-ledger.json").read_text())
    sent = [c for c in ledger["calls"] if c["sent"]]
    assert (
        1 <= len(ledger["breaches"]) == len(sent) == len(journal) <= 2
    )  # at most one call per worker got out
    assert all(b["provider"] == "openai" for b in ledger["breaches"])
    assert "reported 1000000 output tokens for max_tokens=64" in proc.stdout
    assert "BREACH by openai" in proc.stdout  # the spend summary
    certificate = json.loads((tmp_path / "reports" / "openai" / "certificate.json").read_text())
    assert certificate["verdict"] != "certified"
    failed = {c["id"]: c["detail"] for c in certificate["checks"] if c["status"] == "fail"}
    # the check that made the call fails on the breach; LIV-BUDGET too, unless another worker ran it before the breach
    assert "LIV-SMOKE" in failed and all("reported 1000000 output tokens" in d for d in failed.values()), (
        failed
    )

    # in one process the order is fixed (complete, stream, budget): LIV-BUDGET then always runs after the breach
    with _DishonestUpstream({"report_output_tokens": 1_000_000}) as upstream:
        proc = _run(
            tmp_path,
            "--provider",
            "openai",
            "--live",
            "--live-upstream",
            upstream.url,
            "--max-cost-usd",
            "0.0001",
            "-p",
            "no:xdist",
            env=env,
        )
        assert len(upstream.journal()) == 1
    assert proc.returncode == 1, proc.stdout[-4000:]
    certificate = json.loads((tmp_path / "reports" / "openai" / "certificate.json").read_text())
    [budget] = [c for c in certificate["checks"] if c["id"] == "LIV-BUDGET"]
    assert budget["status"] == "fail" and "breached by openai (openai live-complete)" in budget["detail"], (
        budget
    )
    assert "reported 1000000 output tokens for max_tokens=64" in budget["detail"]
    assert not list((tmp_path / "cassettes").rglob("*.cassette.json"))


def test_a_free_provider_passes_and_leaves_the_budget_to_the_next_one(tmp_path: Path, server) -> None:
    """Ollama's models are priced $0: LIV-BUDGET must not fail for want of a call too dear to send, and its free
    calls must not use up the cap for the provider certified after it (here with a $0 cap: only free calls fit)."""
    env = {"CERTIFY_LIVE": "1", "OPENAI_API_KEY": "sk-proj-" + "L" * 40}
    common = ["--live", "--live-upstream", server.url, "-p", "no:xdist"]
    proc = _run(tmp_path, "--provider", "ollama,openai", *common, "--max-cost-usd", "0.05", env=env)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "6 passed" in proc.stdout, proc.stdout[-2000:]
    ledger = json.loads((tmp_path / "reports" / "live-ledger.json").read_text())
    assert {c["provider"] for c in ledger["calls"] if c["sent"]} == {"ollama", "openai"}
    assert not ledger["breaches"] and not ledger["exhausted"]
    proc = _run(tmp_path, "--provider", "ollama", *common, "--max-cost-usd", "0", env=env)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "3 passed" in proc.stdout, proc.stdout[-2000:]
    ledger = json.loads((tmp_path / "reports" / "live-ledger.json").read_text())
    assert Decimal(ledger["spent"]) == 0 and not ledger["exhausted"]


def test_a_held_ledger_lock_is_a_usage_error_naming_it_not_a_hang(tmp_path: Path) -> None:
    """Another run (or a stuck worker) holds the ledger's lock: the run stops at once with exit 4 and the lock file's
    name, after PROVCERT_LEDGER_LOCK_TIMEOUT seconds, instead of waiting forever."""
    import fcntl
    import time

    lock = tmp_path / "reports" / "live-ledger.json.lock"
    lock.parent.mkdir(parents=True)
    env = {
        "CERTIFY_LIVE": "1",
        "OPENAI_API_KEY": "sk-proj-" + "L" * 40,
        "PROVCERT_LEDGER_LOCK_TIMEOUT": "0.5",
    }
    with open(lock, "a+") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        started = time.monotonic()
        proc = _run(tmp_path, "--provider", "openai", "--live", "-p", "no:xdist", env=env)
        elapsed = time.monotonic() - started
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"{lock}: the live ledger's lock was held for more than 0.5 s" in proc.stdout + proc.stderr
    assert elapsed < 60
    assert not (tmp_path / "reports" / "live-ledger.json").exists()
