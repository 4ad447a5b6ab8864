"""A small fixed sample of mutants through the real mutation machinery, so that it cannot rot between full runs.

A full run (``tox -e mutation``) takes hours; this runs a handful of hand-picked cosmic-ray mutants of adapters/ in a
private copy of HEAD against the real certification checks over loopback, and asserts that each is killed by the check
that exists to catch it, and that a mutant declared equivalent in tools/mutation/equivalent.yaml survives and is
reported as equivalent (not as an unexplained survivor). The oracle is narrowed to one suites/certify file per mutant
to stay under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import default_registry
from harness import mutation
from harness.mutation import Seeded

pytest.importorskip("cosmic_ray", reason="the mutation extra (cosmic-ray) is part of the test extra")

# (seeded mutant, the provider and the check whose tests judge it, the check that must kill it; None = equivalent)
SAMPLE = [
    # an OpenAI 503 that says "overloaded" only in prose is no longer recognised as overloaded
    (
        Seeded("adapters/openai.py", "core/AddNot", 'if kind is None and "overloaded" in message.lower():'),
        ("openai", "ERR-OVERLOADED"),
        "ERR-OVERLOADED",
    ),
    # a bare 500 is no longer a server error (ollama's errors carry no code of their own, so only the status tells)
    (
        Seeded("adapters/base.py", "core/ReplaceComparisonOperator_GtE_Gt", "if status >= 500:"),
        ("ollama", "ERR-5XX"),
        "ERR-5XX",
    ),
    # the kill switch inverted: a disabled provider is admitted and an enabled one refused
    (
        Seeded(
            "adapters/registry.py", "core/ReplaceComparisonOperator_Eq_NotEq", 'if self.status == "disabled":'
        ),
        ("openai", "RTY-FALLBACK"),
        "RTY-FALLBACK",
    ),
    # the usage estimate (for a stream without usage) counts characters per token wrong
    (
        Seeded("adapters/usage.py", "core/NumberReplacer", "CHARS_PER_TOKEN = 4"),
        ("openai", "GLD-STREAM"),
        "GLD-STREAM",
    ),
    # percentage is validated >= 0, so "> 0" and "!= 0" agree on every value a Rollout can hold
    (
        Seeded(
            "adapters/registry.py", "core/ReplaceComparisonOperator_Gt_NotEq", "return self.percentage > 0"
        ),
        ("openai", "RTY-FALLBACK"),
        None,
    ),
]


@pytest.fixture(scope="module")
def box() -> Iterator[Path]:
    with mutation.sandbox() as path:
        yield path


@pytest.mark.parametrize(("seeded", "oracle", "check"), SAMPLE, ids=[f"{s[0].module}:{s[2]}" for s in SAMPLE])
def test_seeded_mutant_is_judged_by_its_check(
    box: Path, seeded: Seeded, oracle: tuple[str, str], check: str | None
) -> None:
    triage = mutation.load_triage()
    original = (box / seeded.module).read_text(encoding="utf-8")
    provider, judge = oracle
    select = mutation.tests_of(box, judge)
    assert select, f"suites/certify has no test of {judge}"
    result = mutation.run_seeded(box, seeded, triage, providers=[provider], select=select)

    assert (box / seeded.module).read_text(encoding="utf-8") == original, "the sandbox was not restored"
    changed = [line for line in result.diff.splitlines()[2:] if line[:1] in "+-"]
    assert len(changed) == 2 and seeded.line in changed[0], result.diff
    if check is None:
        assert result.outcome == "survived", (
            f"an 'equivalent' mutant was killed by {result.killed_by}: {result.diff}"
        )
        assert result.verdict == "equivalent", f"{result.id} is not declared in {mutation.TRIAGE_FILE}"
        assert result.note
    else:
        assert result.outcome == "killed", f"{seeded} {result.outcome}:\n{result.diff}"
        assert result.killed_by is not None and result.killed_by.startswith(check), result.killed_by


def test_identity_ignores_line_numbers_but_not_the_change() -> None:
    diff = "--- a/m.py\n+++ b/m.py\n@@ -10,1 +10,1 @@\n-    x = a + b\n+    x = a - b"
    moved = diff.replace("@@ -10,1 +10,1 @@", "@@ -42,1 +42,1 @@").replace("    x", "        x")
    other = diff.replace("+    x = a - b", "+    x = a * b")
    assert mutation.identity("m.py", "op", diff) == mutation.identity("m.py", "op", moved)
    assert mutation.identity("m.py", "op", diff) != mutation.identity("m.py", "op", other)
    assert mutation.identity("m.py", "op", diff) != mutation.identity("n.py", "op", diff)


def test_every_adapters_module_has_an_oracle_of_registered_providers() -> None:
    known = {entry.provider_id for entry in default_registry().entries}
    missing = [m for m in mutation.modules() if m not in mutation.ORACLES]
    assert not missing, f"add an oracle to ORACLES in harness/mutation.py for {missing}"
    unknown = {p for providers in mutation.ORACLES.values() for p in providers} - known
    assert not unknown, f"ORACLES names unregistered providers {unknown}"


def test_a_session_runs_end_to_end_reports_and_resumes(tmp_path: Path) -> None:
    """cosmic-ray init + exec on one mutant, the module JSON and the summary it feeds; a resumed run reuses it."""
    with mutation.sandbox() as head:  # the session mutates HEAD, so the line number is HEAD's
        source = (head / "adapters" / "registry.py").read_text(encoding="utf-8").splitlines()
        quick = mutation.tests_of(head, "REG-LIMITS")  # no traffic: the machinery is under test, not a check
    line = next(i for i, text in enumerate(source, 1) if "return self.percentage > 0" in text)
    messages: list[str] = []
    options: dict[str, Any] = {
        "out": tmp_path,
        "sessions": tmp_path / "sessions",
        "lines": (line, line),
        "max_mutants": 1,
        "select": quick,
        "providers": ["openai"],
        "log": messages.append,
    }
    report = mutation.run_module("adapters/registry.py", **options)
    assert not any("(resumed)" in m for m in messages)
    assert len(report.mutants) == 1
    assert all(m.line == line and m.verdict is not None for m in report.mutants)
    assert report.not_run > 0 and sum(report.filtered.values()) > 0  # the rest of the module was filtered out

    summary = mutation.write_summary(tmp_path)
    (row,) = summary["modules"]
    assert row["total"] == 1 and row["killed"] + row["timeout"] + row["survived"] + row["error"] == 1
    saved = json.loads((tmp_path / "modules" / "registry.json").read_text(encoding="utf-8"))
    assert {m["id"] for m in saved["mutants"]} == {m.id for m in report.mutants}
    markdown = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "`adapters/registry.py`" in markdown
    for m in report.mutants:
        if m.outcome == "survived":
            assert m.id in markdown and m.diff in markdown

    resumed = mutation.run_module("adapters/registry.py", **options, resume=True)
    assert any("0 of 1 mutants to run (resumed)" in m for m in messages), messages
    assert [(m.id, m.outcome) for m in resumed.mutants] == [(m.id, m.outcome) for m in report.mutants]
