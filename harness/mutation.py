"""Mutation testing of adapters/ with the certification suite as the oracle (issue 8).

The DoD says a check's power is measured, not assumed: a defect seeded into an adapter must make some check fail. This
module seeds the defects with cosmic-ray (one mutant per subprocess run of ``pytest suites/certify --provider ...``) and
turns its session into ``reports/mutation/``: a score per module and every surviving mutant with its diff and its
triage (equivalent with the reason, a missing check, or "unexplained").

Why cosmic-ray 8 and not mutmut 3: mutmut 3 mutates function bodies only (its trampolines skip decorated functions
other than static and class methods, class bodies and module-level tables such as status maps and prices) and picks
each mutant's tests from coverage, in forks of a process that has already imported the code. cosmic-ray mutates any
AST node and runs an arbitrary test command in a fresh interpreter per mutant, so the oracle can be chosen per module,
and keeps a resumable sqlite session, which a run of many hours needs.

Mutants never touch the shared work tree: every run works in a private copy of the repository (git's tracked and
untracked-but-not-ignored files), put first on ``PYTHONPATH`` so that the copy, not the editable install, is imported.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

ROOT = Path(__file__).resolve().parents[1]
TRIAGE_FILE = ROOT / "tools" / "mutation" / "equivalent.yaml"
DEFAULT_OUT = ROOT / "reports" / "mutation"
SESSIONS_DIR = ROOT / "build" / "mutation"
COSMIC_RAY = (sys.executable, "-m", "cosmic_ray.cli")

# The oracle of each module: the providers whose certification exercises it, the one most likely to fail first. This
# is the only place the mapping lives. Rollout has no module of its own: it is ProviderEntry.rollout (registry.py)
# and the gateway's kill switch (gateway.py).
_FAMILIES = ("openai", "anthropic", "bedrock", "gemini", "ollama")
ORACLES: dict[str, tuple[str, ...]] = {
    "adapters/openai.py": ("openai", "groq", "azure-openai", "mistral", "openrouter"),
    "adapters/anthropic.py": ("anthropic",),
    "adapters/azure_openai.py": ("azure-openai",),
    "adapters/bedrock.py": ("bedrock",),
    "adapters/gemini.py": ("gemini",),
    "adapters/mistral.py": ("mistral",),
    "adapters/ollama.py": ("ollama",),
    "adapters/openrouter.py": ("openrouter",),
    "adapters/base.py": _FAMILIES,
    "adapters/errors.py": _FAMILIES,
    "adapters/streaming.py": _FAMILIES,
    "adapters/usage.py": (
        "openai",
        "ollama",
    ),  # the same pure functions for all; ollama also calls the input half
    "adapters/types.py": ("openai", "anthropic"),
    "adapters/gateway.py": ("openai",),
    "adapters/telemetry.py": ("openai",),
    "adapters/registry.py": ("openai", "bedrock"),
    "adapters/pricing.py": ("openai", "deepseek"),
    "adapters/credentials.py": ("openai", "bedrock"),
    "adapters/retry_hints.py": ("openai", "anthropic", "bedrock", "gemini"),
}

Outcome = Literal["killed", "timeout", "survived", "error"]
Verdict = Literal["killed", "timeout", "error", "equivalent", "needs-check", "unexplained"]
GOAL = 0.9
NOT_SAMPLED = "not sampled"
NO_TESTS_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED, without importing pytest here
NO_CHECK = "no check ran (the mutant broke import or setup)"

_ARITHMETIC = {"Add", "Sub", "Mul", "Div", "FloorDiv", "Mod", "Pow"}
_ARITHMETIC_TARGETS = {"Add", "Sub", "Mul", "Div", "FloorDiv"}
_BITWISE_TARGETS = {"BitOr", "BitAnd", "BitXor"}
_FAILED = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$", re.M)


def modules() -> list[str]:
    """Every module of adapters/ (the package marker excepted), as repository-relative paths."""
    found = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "adapters").glob("*.py"))
    return [m for m in found if not m.endswith("__init__.py")]


def oracle_for(module: str) -> tuple[str, ...]:
    """The providers to certify for a module; a module missing from ORACLES is a bug in this file, not a default."""
    try:
        return ORACLES[module]
    except KeyError:
        raise SystemExit(f"no oracle for {module}: add it to ORACLES in harness/mutation.py") from None


def oracle_command(providers: Sequence[str], reports_dir: Path, select: Sequence[str] = ()) -> list[str]:
    """The certification run that judges one mutant: stop at the first failing check (-x), since one is enough."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(select or ["suites/certify"]),
        "--provider",
        ",".join(providers),
    ]
    return [*command, "-x", "-q", "-p", "no:cacheprovider", "--reports-dir", str(reports_dir)]


def check_tests(box: Path) -> list[tuple[str, str]]:
    """(pytest node id, DoD check ID) of every check, read from the ``@check("...")`` decorators of the suite."""
    found: list[tuple[str, str]] = []
    for path in sorted((box / "suites" / "certify").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Name)
                    and decorator.func.id == "check"
                    and decorator.args
                    and isinstance(decorator.args[0], ast.Constant)
                ):
                    node_id = f"{path.relative_to(box).as_posix()}::{node.name}"
                    found.append((node_id, str(decorator.args[0].value)))
    return found


def check_ids(box: Path) -> dict[str, str]:
    """Test function name -> DoD check ID."""
    return {node_id.rpartition("::")[2]: check for node_id, check in check_tests(box)}


def tests_of(box: Path, check: str) -> list[str]:
    """The tests of one DoD check (an oracle narrowed to a check survives renames of its test functions)."""
    return [node_id for node_id, name in check_tests(box) if name == check]


def killer(output: str, checks: Mapping[str, str]) -> str | None:
    """The check that failed first, from pytest's short summary: 'ERR-429 [openai]' (else the failing test's id)."""
    match = _FAILED.search(output)
    if match is None:
        return None
    node = match.group(2)
    test = re.fullmatch(r"[^:]+::(\w+)(?:\[(.*)\])?", node)
    if test is None or test.group(1) not in checks:
        return node
    return f"{checks[test.group(1)]} [{test.group(2)}]" if test.group(2) else checks[test.group(1)]


def identity(module: str, operator: str, diff: str) -> str:
    """A mutant's name that survives unrelated edits: the module, the operator and the changed lines, hashed.

    cosmic-ray's own name (operator, occurrence) shifts whenever an earlier line of the module changes, and a unified
    diff carries line numbers; neither could key the committed triage file.
    """
    changed = [
        line[0] + line[1:].strip()
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    digest = hashlib.sha256("\n".join([module, operator, *changed]).encode()).hexdigest()
    return digest[:12]


def unified_diff(module: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), f"a/{module}", f"b/{module}", n=1, lineterm=""
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- the sandbox


@contextmanager
def sandbox(worktree: bool = False, root: Path = ROOT) -> Iterator[Path]:
    """A private copy of the repository, removed afterwards: mutants are written there, never in the shared tree.

    By default the copy is the last commit (``git archive HEAD``): a report then describes exactly one commit, and
    half-finished edits in the work tree cannot fail the baseline. ``worktree=True`` copies the work tree instead
    (tracked and untracked-but-not-ignored files), to measure changes before committing them.
    """
    target = Path(tempfile.mkdtemp(prefix="provcert-mutation-"))
    git = ["git", "-C", str(root)]
    try:
        if worktree:
            listing = [*git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
            listed = subprocess.run(listing, capture_output=True, check=True).stdout.split(b"\0")  # noqa: S603
            for raw in filter(None, listed):
                source = root / os.fsdecode(raw)
                if source.is_file():
                    destination = target / os.fsdecode(raw)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, destination)
        else:
            export = [*git, "archive", "--format=tar", "HEAD"]
            archive = subprocess.run(export, capture_output=True, check=True)  # noqa: S603
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(target, filter="data")
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)


def head_commit(root: Path = ROOT) -> str:
    git = ["git", "-C", str(root), "rev-parse", "HEAD"]
    return subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603


def sandbox_env(box: Path) -> dict[str, str]:
    """The copy first on sys.path (ahead of the editable finder), and no bytecode a fast mutant swap could reuse."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(box), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_oracle(
    box: Path, providers: Sequence[str], timeout: float, select: Sequence[str] = ()
) -> tuple[Outcome, str | None, float]:
    """Certify in the sandbox: (outcome, the check that failed, seconds). Used for the baseline and seeded mutants."""
    started = time.monotonic()
    try:
        proc = subprocess.run(  # noqa: S603 - our own interpreter running pytest, no shell
            oracle_command(providers, box / "build" / "oracle-reports", select),
            cwd=box,
            env=sandbox_env(box),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "timeout", None, time.monotonic() - started
    elapsed = time.monotonic() - started
    if proc.returncode == 0:
        return "survived", None, elapsed
    if proc.returncode == NO_TESTS_COLLECTED:  # the selection matched nothing: no verdict at all
        return "error", "no tests collected", elapsed
    return "killed", killer(proc.stdout, check_ids(box)) or NO_CHECK, elapsed


# --------------------------------------------------------------------------------------------------------- mutants


@dataclass(frozen=True)
class Candidate:
    """One mutation cosmic-ray can make, before it is run."""

    module: str
    operator: str
    occurrence: int
    line: int
    column: int


def _short(operator: str) -> str:
    return operator.removeprefix("core/")


def operator_filtered(operator: str) -> str | None:
    """Why an operator is left out, or None. Arithmetic is replaced by arithmetic and bitwise by bitwise only.

    cosmic-ray replaces every binary operator by each of the eleven others; '+' to '>>' or '^' tells nothing '+' to
    '-' does not, yet costs a full certification run each. This keeps about a third of them.
    """
    match = re.fullmatch(r"core/ReplaceBinaryOperator_(\w+?)_(\w+)", operator)
    if match is None:
        return None
    source, target = match.groups()
    allowed = _ARITHMETIC_TARGETS if source in _ARITHMETIC else _BITWISE_TARGETS
    return None if target in allowed else "operator subsumed (arithmetic->arithmetic, bitwise->bitwise only)"


def annotation_spans(source: str) -> list[tuple[int, int, int, int]]:
    """Where the function annotations are, if the module postpones them (PEP 563): they are never evaluated there.

    Class-level annotations are kept: pydantic models and dataclasses evaluate theirs.
    """
    tree = ast.parse(source)
    postponed = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not postponed:
        return []
    spans: list[tuple[int, int, int, int]] = []

    def add(node: ast.expr | None) -> None:
        if node is not None and node.end_lineno is not None and node.end_col_offset is not None:
            spans.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset))

    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                add(arg.annotation)
            for star in (arguments.vararg, arguments.kwarg):
                add(star.annotation if star else None)
            add(node.returns)
            for inner in ast.walk(node):
                if isinstance(inner, ast.AnnAssign):
                    add(inner.annotation)
    return spans


def _inside(spans: Iterable[tuple[int, int, int, int]], line: int, column: int) -> bool:
    return any((line, column) >= (a, b) and (line, column) < (c, d) for a, b, c, d in spans)


def candidates(box: Path, module: str) -> Iterator[tuple[Candidate, str | None]]:
    """Every cosmic-ray mutation of a module with the reason it is filtered out (None: it is run).

    Mirrors cosmic-ray's ``init``: every operator plugin, occurrences counted per operator in AST order.
    """
    import cosmic_ray.plugins
    from cosmic_ray.ast import ast_nodes, get_ast

    source = (box / module).read_text(encoding="utf-8")
    spans = annotation_spans(source)
    tree = get_ast(source)
    for name in cosmic_ray.plugins.operator_names():
        operator_class = cosmic_ray.plugins.get_operator(name)
        if operator_class.arguments():
            continue  # parameterized operators (e.g. variable replacers) need configuration we do not give
        operator = operator_class()
        positions = (
            (start, end) for node in ast_nodes(tree) for start, end in operator.mutation_positions(node)
        )
        for occurrence, (start, _end) in enumerate(positions):
            candidate = Candidate(module, name, occurrence, start[0], start[1])
            reason = operator_filtered(name)
            if reason is None and _inside(spans, *start):
                reason = "inside a postponed function annotation (never evaluated)"
            yield candidate, reason


def mutate(box: Path, candidate: Candidate) -> tuple[str, str]:
    """(original source, mutated source) of a candidate; the file is not touched."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    original = (box / candidate.module).read_text(encoding="utf-8")
    mutated = mutate_code(
        original, cosmic_ray.plugins.get_operator(candidate.operator)(), candidate.occurrence
    )
    if mutated is None:
        raise ValueError(f"cosmic-ray made no mutation for {candidate}")
    return original, str(mutated)


@contextmanager
def applied(box: Path, module: str, mutated: str) -> Iterator[None]:
    """A mutant written into the sandbox for the duration of the block, the original always restored."""
    path = box / module
    original = path.read_text(encoding="utf-8")
    path.write_text(mutated, encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(original, encoding="utf-8")


# ---------------------------------------------------------------------------------------------- triage and report


@dataclass
class MutantResult:
    """One mutant that was run, and what the oracle made of it."""

    module: str
    id: str
    operator: str
    line: int
    outcome: Outcome
    diff: str
    killed_by: str | None = None
    verdict: Verdict | None = None
    note: str | None = None


@dataclass
class ModuleReport:
    module: str
    oracle: list[str]
    mutants: list[MutantResult]
    filtered: dict[str, int] = field(default_factory=dict)
    not_run: int = 0
    seconds: float = 0.0
    source: str = ""

    def counts(self) -> dict[str, int]:
        verdicts = [m.verdict for m in self.mutants]
        return {
            "total": len(self.mutants),
            "killed": verdicts.count("killed"),
            "timeout": verdicts.count("timeout"),
            "survived": sum(v in ("needs-check", "unexplained", "equivalent") for v in verdicts),
            "equivalent": verdicts.count("equivalent"),
            "needs_check": verdicts.count("needs-check"),
            "unexplained": verdicts.count("unexplained"),
            "error": verdicts.count("error"),
        }

    def score(self) -> float | None:
        """Detected / non-equivalent. A mutant that hangs the certification (timeout) was detected; errors (the tool
        could not run the mutant) are not counted either way."""
        c = self.counts()
        denominator = c["total"] - c["equivalent"] - c["error"]
        return (c["killed"] + c["timeout"]) / denominator if denominator else None


def load_triage(path: Path = TRIAGE_FILE) -> dict[tuple[str, str], tuple[Verdict, str]]:
    """(module, id) -> (equivalent | needs-check, reason or check) from the committed triage file."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    triage: dict[tuple[str, str], tuple[Verdict, str]] = {}
    for entry in data.get("equivalent") or []:
        triage[(entry["module"], str(entry["id"]))] = ("equivalent", str(entry["reason"]))
    for entry in data.get("needs_check") or []:
        triage[(entry["module"], str(entry["id"]))] = ("needs-check", str(entry["check"]))
    return triage


def classify(result: MutantResult, triage: dict[tuple[str, str], tuple[Verdict, str]]) -> MutantResult:
    """A survivor is equivalent or a known gap only if the triage file says so; otherwise it is unexplained."""
    if result.outcome != "survived":
        detected: dict[Outcome, Verdict] = {"killed": "killed", "timeout": "timeout", "error": "error"}
        result.verdict = detected[result.outcome]
        return result
    verdict: Verdict
    verdict, note = triage.get((result.module, result.id), ("unexplained", None))
    result.verdict, result.note = verdict, note
    return result


def _stem(module: str) -> str:
    return module.removeprefix("adapters/").removesuffix(".py")


def write_module(out: Path, report: ModuleReport) -> Path:
    data = asdict(report) | {"counts": report.counts(), "score": report.score()}
    path = out / "modules" / f"{_stem(report.module)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def write_summary(
    out: Path, triage: dict[tuple[str, str], tuple[Verdict, str]] | None = None
) -> dict[str, Any]:
    """summary.json and summary.md from every module report on disk (modules run at different times add up).

    Survivors are re-triaged against the current triage file, so declaring an equivalent needs no re-run.
    """
    triage = load_triage() if triage is None else triage
    reports: list[ModuleReport] = []
    for path in sorted((out / "modules").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        mutants = [
            classify(MutantResult(**{**m, "verdict": None, "note": None}), triage) for m in data["mutants"]
        ]
        reports.append(
            ModuleReport(
                data["module"],
                data["oracle"],
                mutants,
                data["filtered"],
                data["not_run"],
                data["seconds"],
                data.get("source", ""),
            )
        )
    measured = {r.module for r in reports}
    not_measured = [m for m in modules() if m not in measured]
    summary = {
        "goal": GOAL,
        "not_measured": not_measured,
        "score": "detected / (total - equivalent - error); detected = killed + timeout",
        "modules": [
            {"module": r.module, "oracle": r.oracle, **r.counts(), "not_run": r.not_run, "score": r.score()}
            for r in reports
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(_markdown(reports, not_measured), encoding="utf-8")
    return summary


def _markdown(reports: Sequence[ModuleReport], not_measured: Sequence[str] = ()) -> str:
    lines = [
        "# Mutation testing: adapters/ against the certification suite",
        "",
        f"Goal: at least {GOAL:.0%} of non-equivalent mutants killed in every module. Score = (killed + timeout) / "
        "(total - equivalent - error). `not run` = mutants left out of a sampled run (`--max-mutants`, `--lines`).",
        "",
        "| module | oracle | total | killed | timeout | survived | equivalent | missing check | unexplained | not run "
        "| score |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        c, score = r.counts(), r.score()
        shown = "n/a" if score is None else f"{score:.1%}" + ("" if score >= GOAL else " (below goal)")
        lines.append(
            f"| `{r.module}` | {', '.join(r.oracle)} | {c['total']} | {c['killed']} | {c['timeout']} | "
            f"{c['survived']} | {c['equivalent']} | {c['needs_check']} | {c['unexplained']} | {r.not_run} | {shown} |"
        )
    if not_measured:
        lines += ["", f"Not measured yet: {', '.join(f'`{m}`' for m in not_measured)}."]
    for r in reports:
        survivors = [m for m in r.mutants if m.outcome == "survived"]
        lines += ["", f"## `{r.module}`: {len(survivors)} surviving", ""]
        lines += [f"Mutated: {r.source}; {r.seconds:.0f} s.", ""]
        killers: dict[str, int] = {}
        for m in r.mutants:
            if m.killed_by:
                name = m.killed_by.split(" [")[0]
                killers[name] = killers.get(name, 0) + 1
        if killers:
            tally = ", ".join(
                f"{name} {n}" for name, n in sorted(killers.items(), key=lambda kv: (-kv[1], kv[0]))
            )
            lines += [f"Killed by: {tally}.", ""]
        if r.filtered:
            left_out = "; ".join(f"{n} {why}" for why, n in sorted(r.filtered.items()))
            lines += [f"Filtered before running: {left_out}.", ""]
        for m in survivors:
            label = {"equivalent": "equivalent", "needs-check": "missing check", "unexplained": "UNEXPLAINED"}
            what = label.get(m.verdict or "", m.verdict)
            lines += [f"### `{m.id}` line {m.line}, {_short(m.operator)}: {what}", ""]
            if m.note:
                lines += [f"{'Why' if m.verdict == 'equivalent' else 'Check'}: {m.note}", ""]
            lines += ["```diff", m.diff, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------------------- cosmic-ray sessions


def _config(
    module: str, providers: Sequence[str], timeout: float, reports_dir: Path, select: Sequence[str]
) -> str:
    command = shlex.join(oracle_command(providers, reports_dir, select))
    return (
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n\n"
        '[cosmic-ray.distributor]\nname = "local"\n'
    )


def _sample(ids: Sequence[str], limit: int | None) -> set[str]:
    """An evenly spread, deterministic sample (the same mutants every time for the same module)."""
    if limit is None or limit >= len(ids):
        return set(ids)
    if limit <= 0:
        return set()
    step = len(ids) / limit
    return {ids[int(i * step)] for i in range(limit)}


def run_module(
    module: str,
    *,
    out: Path = DEFAULT_OUT,
    max_mutants: int | None = None,
    lines: tuple[int, int] | None = None,
    sessions: Path = SESSIONS_DIR,
    worktree: bool = False,
    select: Sequence[str] = (),
    providers: Sequence[str] | None = None,
    resume: bool = False,
    log: Any = print,
) -> ModuleReport:
    """Mutate one module in a sandbox, judge every mutant with its oracle, write modules/<name>.json.

    ``select`` narrows the oracle to some files (or tests) of suites/certify and ``providers`` replaces the module's
    providers: a quicker, weaker oracle, for trying things out. ``resume`` continues the module's last session
    (build/mutation/<module>.sqlite) when the module's source and these options are unchanged.
    """
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome

    providers = tuple(providers or oracle_for(module))
    started = time.monotonic()
    source = "work tree" if worktree else f"commit {head_commit()}"
    with sandbox(worktree) as box:
        if not (box / module).is_file():
            raise SystemExit(f"{module} is not in the {source}")
        outcome, check, baseline = run_oracle(box, providers, timeout=900, select=select)
        if outcome != "survived":
            raise SystemExit(
                f"baseline: the unmutated certification of {', '.join(providers)} fails ({check})"
            )
        timeout = round(max(30.0, 3 * baseline + 10), 1)
        reports_dir = box / "build" / "oracle-reports"
        config = box / "build" / "cosmic-ray.toml"
        config.write_text(_config(module, providers, timeout, reports_dir, select), encoding="utf-8")
        sessions.mkdir(parents=True, exist_ok=True)
        session = sessions / f"{_stem(module)}.sqlite"
        stamp = session.with_suffix(".fingerprint")
        fingerprint = _fingerprint(box, [providers, list(select), max_mutants, lines])
        resuming = resume and session.exists() and stamp.exists() and stamp.read_text() == fingerprint
        if not resuming:
            stamp.unlink(missing_ok=True)
            subprocess.run(  # noqa: S603 - cosmic-ray's CLI in our interpreter, no shell
                [*COSMIC_RAY, "init", "--force", str(config), str(session)],
                cwd=box,
                env=sandbox_env(box),
                check=True,
                capture_output=True,
            )
            _mark_skipped(session, box, module, lines, max_mutants)
            stamp.write_text(fingerprint)
        filtered: dict[str, int] = {}
        skipped = 0
        with use_db(str(session), WorkDB.Mode.open) as db:
            for _job, result in db.results:
                if result.worker_outcome == WorkerOutcome.SKIPPED:
                    why = result.output or "skipped"
                    if why == NOT_SAMPLED:
                        skipped += 1
                    else:
                        filtered[why] = filtered.get(why, 0) + 1
            pending = len(db.pending_work_items)
            chosen = db.num_work_items - skipped - sum(filtered.values())
        log(
            f"{module}: {pending} of {chosen} mutants to run{' (resumed)' if resuming else ''} (oracle: "
            f"{', '.join(providers)}; baseline {baseline:.1f} s, timeout {timeout} s); filtered "
            f"{sum(filtered.values())}, not sampled {skipped}"
        )
        exec_log = box / "build" / "cosmic-ray.log"
        with exec_log.open("wb") as sink:
            exec_proc = subprocess.Popen(  # noqa: S603 - cosmic-ray's CLI in our interpreter, no shell
                [*COSMIC_RAY, "exec", str(config), str(session)],
                cwd=box,
                env=sandbox_env(box),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            while exec_proc.poll() is None:
                time.sleep(0.5 if pending < 5 else 15)
                with use_db(str(session), WorkDB.Mode.open) as db:
                    done = db.num_results - sum(filtered.values()) - skipped
                log(f"{module}: {done}/{chosen} mutants judged")
        if exec_proc.returncode != 0:
            tail = exec_log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise SystemExit(f"cosmic-ray exec failed for {module}: {tail}")

        triage, checks = load_triage(), check_ids(box)
        mutants: list[MutantResult] = []
        with use_db(str(session), WorkDB.Mode.open) as db:
            for item, result in db.completed_work_items:
                if result.worker_outcome == WorkerOutcome.SKIPPED:
                    continue
                spec = item.mutations[0]
                mutants.append(classify(_from_cosmic_ray(module, spec, result, box, checks), triage))
    mutants.sort(key=lambda m: (m.line, m.operator, m.id))
    disambiguate(mutants)
    seconds = round(time.monotonic() - started, 1)
    report = ModuleReport(module, list(providers), mutants, filtered, skipped, seconds, source)
    write_module(out, report)
    return report


def _fingerprint(box: Path, options: list[Any]) -> str:
    """What a session's results depend on: the code and the suite (adapters, harness, mock, checks, cassettes) and
    the options. A resumed session must have been started on exactly these."""
    digest = hashlib.sha256(json.dumps(options).encode())
    for top in ("adapters", "harness", "mockserver", "suites", "cassettes"):
        for path in sorted((box / top).rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(box).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _mark_skipped(
    session: Path, box: Path, module: str, lines: tuple[int, int] | None, max_mutants: int | None
) -> None:
    """Record what is filtered out or not sampled as skipped (as cosmic-ray's own filters do); exec runs the rest."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    reasons = {(c.operator, c.occurrence): why for c, why in candidates(box, module)}
    keep: list[str] = []
    left_out: dict[str, list[str]] = {}
    with use_db(str(session), WorkDB.Mode.open) as db:
        items = sorted(db.work_items, key=lambda w: (w.mutations[0].start_pos, w.mutations[0].operator_name))
        for item in items:
            spec = item.mutations[0]
            why = reasons.get((spec.operator_name, spec.occurrence))
            if why is None and lines and not lines[0] <= spec.start_pos[0] <= lines[1]:
                why = "outside --lines"
            if why is None:
                keep.append(item.job_id)
            else:
                left_out.setdefault(why, []).append(item.job_id)
        chosen = _sample(keep, max_mutants)
        left_out[NOT_SAMPLED] = [j for j in keep if j not in chosen]
        for why, jobs in left_out.items():  # one transaction per reason: a module has hundreds of these
            db.set_multiple_results(jobs, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=why))


def _from_cosmic_ray(
    module: str, spec: Any, result: Any, box: Path, checks: Mapping[str, str]
) -> MutantResult:
    """A cosmic-ray work result as a MutantResult; the diff is recomputed with one line of context (cosmic-ray's
    has three, and it has no diff at all when the worker failed)."""
    candidate = Candidate(module, spec.operator_name, spec.occurrence, spec.start_pos[0], spec.start_pos[1])
    try:
        diff = unified_diff(module, *mutate(box, candidate))
    except ValueError:
        diff = result.diff or ""
    output = result.output or ""
    outcome: Outcome
    if result.worker_outcome != "normal" or result.test_outcome == "incompetent":
        outcome = "error"
    elif result.test_outcome == "survived":
        outcome = "survived"
    elif output == "timeout":
        outcome = "timeout"
    else:
        outcome = "killed"
    return MutantResult(
        module=module,
        id=identity(module, spec.operator_name, diff),
        operator=spec.operator_name,
        line=spec.start_pos[0],
        outcome=outcome,
        diff=diff,
        killed_by=(killer(output, checks) or NO_CHECK) if outcome == "killed" else None,
    )


def disambiguate(mutants: Sequence[MutantResult]) -> None:
    """Give the second and later mutants with the same identity (the same change to identical lines, e.g. two
    ``return False``) a suffix in line order, so that each can be triaged on its own."""
    seen: dict[str, int] = {}
    for m in mutants:
        seen[m.id] = seen.get(m.id, 0) + 1
        if seen[m.id] > 1:
            m.id = f"{m.id}-{seen[m.id]}"


# ------------------------------------------------------------------------------------------------ seeded mutants


@dataclass(frozen=True)
class Seeded:
    """A hand-picked mutant: cosmic-ray's ``operator`` at the first of its positions on the line containing ``line``
    (named by text, so that edits elsewhere in the module do not move it)."""

    module: str
    operator: str
    line: str


def locate(box: Path, seeded: Seeded) -> Candidate:
    source_lines = (box / seeded.module).read_text(encoding="utf-8").splitlines()
    for candidate, _why in candidates(box, seeded.module):
        if candidate.operator == seeded.operator and seeded.line in source_lines[candidate.line - 1]:
            return candidate
    raise LookupError(
        f"{seeded.operator} has no position on a line containing {seeded.line!r} in {seeded.module}"
    )


def run_seeded(
    box: Path,
    seeded: Seeded,
    triage: dict[tuple[str, str], tuple[Verdict, str]],
    *,
    providers: Sequence[str] | None = None,
    select: Sequence[str] = (),
    timeout: float = 120,
) -> MutantResult:
    """One seeded mutant through the same path as a full run: cosmic-ray mutates, the oracle judges, triage names."""
    candidate = locate(box, seeded)
    original, mutated = mutate(box, candidate)
    diff = unified_diff(seeded.module, original, mutated)
    with applied(box, seeded.module, mutated):
        outcome, check, _ = run_oracle(box, providers or oracle_for(seeded.module), timeout, select)
    result = MutantResult(
        seeded.module, identity(seeded.module, candidate.operator, diff), candidate.operator, candidate.line, outcome,
        diff, check if outcome == "killed" else None,
    )  # fmt: skip
    return classify(result, triage)


# ------------------------------------------------------------------------------------------------------ the CLI


def _line_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    return int(first), int(last or first)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="adapters/ modules to mutate (default: every one)")
    parser.add_argument(
        "--max-mutants", type=int, help="run an evenly spread sample of this many mutants per module"
    )
    parser.add_argument("--lines", type=_line_range, help="only mutants on these lines, e.g. 20-40")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="report directory (default reports/mutation)"
    )
    parser.add_argument("--report-only", action="store_true", help="rebuild summary.* from modules/*.json")
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        help="only this suites/certify file as the oracle (repeatable)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue each module's last session if its source is unchanged"
    )
    parser.add_argument("--worktree", action="store_true", help="mutate the work tree, not the last commit")
    parser.add_argument("--no-nice", action="store_true", help="do not lower this run's CPU priority")
    args = parser.parse_args(argv)
    if not args.no_nice and hasattr(os, "nice"):
        os.nice(10)  # the oracles inherit it: a run of hours must not starve the machine
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        chosen = [Path(m).as_posix().removeprefix("./") for m in args.modules] or modules()
        unknown = [m for m in chosen if m not in ORACLES]
        if unknown:
            parser.error(f"no oracle for {', '.join(unknown)}; known: {', '.join(sorted(ORACLES))}")
        for module in chosen:
            report = run_module(
                module,
                out=args.out,
                max_mutants=args.max_mutants,
                lines=args.lines,
                worktree=args.worktree,
                select=args.select,
                resume=args.resume,
            )
            print(f"{module}: {report.counts()} score {report.score()}")
    summary = write_summary(args.out)
    print(f"report: {args.out / 'summary.md'}")
    below = [m["module"] for m in summary["modules"] if m["score"] is not None and m["score"] < GOAL]
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
