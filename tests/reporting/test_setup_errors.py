"""Setup errors are not adapter failures: exit 4 before any check runs, one line naming the real cause, no certificate.

Each case runs the real certification suite in a subprocess against a reports folder that already holds a
certificate from an earlier run; the folder must come out byte-identical (nothing written, nothing overwritten).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from reporting_helpers import certify, output

from adapters.registry import load_registry

#: a module no environment has: its import fails with Python's own "No module named ..." message
MISSING_MODULE = "provcert_setup_error_missing_pkg"


def _registry_with(tmp_path: Path, **changes: str) -> Path:
    """A registry file holding one copy of the packaged OpenAI entry, as provider 'acme', with ``changes``."""
    entry = load_registry().get("openai").model_dump(mode="json", exclude_none=True)
    entry.update(provider_id="acme", display_name="Acme", fallback=["openai"], **changes)
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump({"providers": [entry]}), encoding="utf-8")
    return path


def _free_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


Case = Callable[[Path], tuple[list[str], str]]


def _unimportable_adapter(tmp: Path) -> tuple[list[str], str]:
    registry = _registry_with(tmp, adapter=f"{MISSING_MODULE}.adapter:AcmeAdapter")
    return (
        ["--provider", "acme", "--registry", str(registry)],
        f"provcert: cannot import adapter for provider 'acme' ({MISSING_MODULE}.adapter:AcmeAdapter): "
        f"No module named '{MISSING_MODULE}'",
    )


def _invalid_registry(tmp: Path) -> tuple[list[str], str]:
    registry = _registry_with(tmp, base_url="not a url")
    return (
        ["--provider", "openai", "--registry", str(registry)],
        f"provcert: invalid provider registry: {registry}: providers[0].base_url",
    )


def _unreachable_mock(tmp: Path) -> tuple[list[str], str]:
    url = f"http://127.0.0.1:{_free_port()}"
    return (
        ["--provider", "openai", "--mock-url", url],
        f"provcert: --mock-url {url} is not a provcert mock server:",
    )


def _missing_allure(tmp: Path) -> tuple[list[str], str]:
    cli = tmp / "no-such-allure"
    return (
        ["--provider", "openai", "--allure-html", "--allure-cli", str(cli)],
        f"provcert: --allure-html: the Allure command line '{cli}' does not exist",
    )


def _unknown_provider(tmp: Path) -> tuple[list[str], str]:
    return (["--provider", "openai,nope-ai"], "provcert: unknown provider nope-ai; known providers: openai")


@pytest.mark.parametrize(
    "case",
    [_unimportable_adapter, _invalid_registry, _unreachable_mock, _missing_allure, _unknown_provider],
    ids=[
        "adapter-import",
        "invalid-registry",
        "unreachable-mock-url",
        "missing-allure-cli",
        "unknown-provider",
    ],
)
def test_setup_error_exits_4_with_one_line_and_leaves_the_certificate(tmp_path: Path, case: Case) -> None:
    reports = tmp_path / "reports"
    earlier = reports / "openai"
    earlier.mkdir(parents=True)
    for name in ("certificate.json", "certificate.md", "junit.xml"):
        (earlier / name).write_bytes(f"an earlier run's {name}\n".encode())
    (reports / "matrix.md").write_bytes(b"an earlier matrix\n")
    before = _snapshot(reports)

    args, expected = case(tmp_path)
    proc = certify(reports, *args, "-q", cwd=tmp_path, timeout=120)

    assert proc.returncode == 4, output(proc)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{output(proc)}"
    assert "Traceback" not in proc.stderr and "passed" not in proc.stdout and "error" not in proc.stdout
    assert expected in lines[0], lines[0]
    assert _snapshot(reports) == before, "a setup error wrote or overwrote something under --reports-dir"
