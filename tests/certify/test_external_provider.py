"""A provider that lives outside this repository (examples/acme-provcert) is certified exactly like a built-in one.

The example package is made importable and its entry points visible *without* installing it into the venv: its
``src`` goes on PYTHONPATH beside a generated ``acme_provcert-0.0.0.dist-info`` (METADATA + entry_points.txt, the
entry points read from the example's own pyproject.toml), which ``importlib.metadata`` discovers like any installed
distribution. Then ``pytest suites/certify --provider acme`` runs in a subprocess, as a user would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from adapters import registry as registry_module
from adapters.registry import DEFAULT_REGISTRY_PATH, RegistryError, load_registry
from harness.checks import CHECKS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "acme-provcert"


def _entry_points(drop: frozenset[str] = frozenset(), extra: str = "") -> str:
    groups = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "entry-points"
    ]
    out = [
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items())
        for group, eps in groups.items()
        if group not in drop
    ]
    return "\n".join(out) + extra


def _site(tmp: Path, entry_points: str) -> str:
    """A directory that looks like site-packages holding the example's metadata; returns the PYTHONPATH to use."""
    info = tmp / "site" / "acme_provcert-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-provcert\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    return os.pathsep.join([str(EXAMPLE / "src"), str(tmp / "site")])


def _certify(tmp: Path, pythonpath: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "suites/certify",
            "--reports-dir",
            str(tmp / "reports"),
            "-q",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_external_provider_is_certified_through_entry_points(tmp_path: Path) -> None:
    proc = _certify(tmp_path, _site(tmp_path, _entry_points()), "--provider", "acme")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    cert = json.loads((tmp_path / "reports" / "acme" / "certificate.json").read_text())
    assert cert["verdict"] == "certified"
    statuses = {c["id"]: c["status"] for c in cert["checks"]}
    assert set(statuses) == set(CHECKS)
    assert all(s in ("pass", "not applicable") for s in statuses.values()), statuses
    # the external wire was really exercised: its schema, its errors, its stream
    for check_id in ("GLD-REQUEST", "ERR-429", "STR-ORDER", "STR-TOOLS", "RID-STREAM", "ERR-FILTER"):
        assert statuses[check_id] == "pass", (check_id, statuses[check_id])
    assert "acme: CERTIFIED" in proc.stdout


def test_external_provider_via_registry_option(tmp_path: Path) -> None:
    """``--registry <file>`` registers the entry; only the personality and schema come from entry points."""
    pythonpath = _site(tmp_path, _entry_points(drop=frozenset({"provcert.registries"})))
    registry = EXAMPLE / "src" / "acme_provcert" / "providers.yaml"
    selection = "test_registered or test_request_well_formed or test_complete_usage or test_order"
    proc = _certify(tmp_path, pythonpath, "--provider", "acme", "--registry", str(registry), "-k", selection)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "4 passed" in proc.stdout, proc.stdout[-2000:]


def test_broken_registry_entry_point_names_itself(tmp_path: Path) -> None:
    broken = "\n[provcert.registries]\nbroken = acme_provcert:NO_SUCH_ATTRIBUTE\n"
    proc = _certify(
        tmp_path, _site(tmp_path, _entry_points(drop=frozenset({"provcert.registries"}), extra=broken))
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "entry point provcert.registries:broken = acme_provcert:NO_SUCH_ATTRIBUTE" in proc.stderr
    assert "failed to load" in proc.stderr


# --- in-process: the loader's own rules, with fake entry points ------------------------------------------


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: EntryPoint) -> None:
    def fake(group: str, **kw: str) -> list[EntryPoint]:
        return [e for e in eps if e.group == group and all(getattr(e, k) == v for k, v in kw.items())]

    monkeypatch.setattr(registry_module, "entry_points", fake)


def test_plugin_may_not_redefine_a_registered_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint("dup", "adapters.registry:DEFAULT_REGISTRY_PATH", "provcert.registries")
    _fake_entry_points(monkeypatch, ep)
    with pytest.raises(RegistryError) as info:
        load_registry()
    message = str(info.value)
    assert "entry point provcert.registries:dup" in message
    assert "redefines provider" in message and "'openai'" in message


def test_plugin_value_must_be_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint("num", "adapters.registry:REGISTRY_ENTRY_POINT_GROUP", "provcert.registries")
    _fake_entry_points(monkeypatch, ep)
    with pytest.raises(
        RegistryError, match=r"(?s)provcert.registries:num .* names provcert.registries, which is not a file"
    ):
        load_registry()


def test_plugin_callable_is_called_and_merged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = (EXAMPLE / "src" / "acme_provcert" / "providers.yaml").read_text()
    (tmp_path / "p.yaml").write_text(text.replace("provider_id: acme", "provider_id: acme-two"))
    monkeypatch.setattr(registry_module, "_TEST_PLUGIN_PATH", lambda: tmp_path / "p.yaml", raising=False)
    _fake_entry_points(
        monkeypatch, EntryPoint("two", "adapters.registry:_TEST_PLUGIN_PATH", "provcert.registries")
    )
    merged = load_registry()
    assert merged.ids()[-1] == "acme-two" and "openai" in merged
    assert merged.ids()[:-1] == load_registry(DEFAULT_REGISTRY_PATH).ids()
