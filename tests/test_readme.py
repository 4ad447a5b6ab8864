"""The README is the user's contract: its preset table and commands must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from mockserver.scenarios import PRESETS, Scenario

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_preset_is_documented() -> None:
    section = README.split("### Scenario presets", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", section, re.M))
    assert documented == set(PRESETS), (
        f"undocumented: {set(PRESETS) - documented}; stale: {documented - set(PRESETS)}"
    )


def test_every_spec_field_is_documented() -> None:
    fields = set(Scenario.model_fields) - {"name"}
    missing = [f for f in fields if f"`{f}`" not in README]
    assert not missing, f"scenario fields missing from the README: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    command = re.search(r"python -m pytest tests[^\n`]*", README)
    assert command is not None
    assert command.group(0).strip() in ci


def test_the_bounds_table_is_limits() -> None:
    """Every scenario bound the server enforces is documented with its value, and nothing else is (issue 9)."""
    from mockserver.scenarios import LIMITS

    section = README.split("### Scenario bounds", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| ([a-z_]+) \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    rows = [row for row in rows if row[0] != "bound"]  # the header row
    documented = {name: allowed.strip() for name, allowed, _why in rows}
    expected = {name: lim.describe()[len(name) + len(" is ") :] for name, lim in LIMITS.items()}
    assert documented == expected
    assert {name: why.strip() for name, _allowed, why in rows} == {n: lim.why for n, lim in LIMITS.items()}
