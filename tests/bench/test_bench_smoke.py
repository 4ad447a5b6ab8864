"""The benchmarks run and report sane, complete results (tiny sizes; speed is never asserted here)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mock_throughput_bench_runs_and_reports_every_figure() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_mock_throughput import KINDS, SERVERS, run
    finally:
        sys.path.remove(str(ROOT / "bench"))
    result = run(requests=60, concurrency=10, rounds=2, warmup=10, batch_timeout=30)
    assert result["stream_writes"] == 10 and result["json_body_bytes"] > 0
    for name in SERVERS:
        for kind in KINDS:
            stats = result["servers"][name][kind]
            assert (stats["completed"], stats["failed"]) == (60, 0), (name, kind, stats)
            assert stats["rps_median"] > 0 and 0 < stats["p50_ms"] <= stats["p99_ms"]
    for kind in KINDS:
        for key in ("mock_vs_baseline_rps", "mock_no_journal_vs_baseline_rps"):
            ratio = result["ratios"][kind][key]
            assert isinstance(ratio, float) and ratio > 0 and math.isfinite(ratio)
        overhead = result["journal_overhead"][kind]["rps"]
        assert isinstance(overhead, float) and overhead > -1
