"""A cassette and its provenance are one unit: a process killed between the two writes leaves them matched.

The kill is real (``os._exit`` in a child process at each step of the write); the parent then reads the pair the
way replay and the certification do and checks that the provenance describes the cassette on disk.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import cassettes as fmt

_CHILD = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from harness import cassettes as fmt

    path, text, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    calls = {"replace": 0, "fsync": 0}
    real_replace, real_fsync = os.replace, os.fsync

    def replace(src, dst):
        calls["replace"] += 1
        if calls["replace"] == kill_at:
            os._exit(9)  # killed before this rename
        real_replace(src, dst)

    os.replace = replace
    fmt.save_with_provenance(path, text, {"source": "mock", "marker": json.loads(text)["marker"]})
    """
)


def _cassette_text(marker: str) -> str:
    return json.dumps({"provcert_cassette": 1, "interactions": [], "marker": marker}) + "\n"


def _write_in_child(path: Path, text: str, kill_at: int) -> int:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), text, str(kill_at)], check=False, timeout=60
    ).returncode


@pytest.mark.parametrize("kill_at", [1, 2, 3, 4, 99])
def test_a_kill_at_any_step_leaves_a_matched_pair(tmp_path: Path, kill_at: int) -> None:
    path = tmp_path / "openai" / "golden.cassette.json"
    old, new = _cassette_text("old-pair"), _cassette_text("new-pair")
    assert _write_in_child(path, old, 99) == 0
    code = _write_in_child(path, new, kill_at)
    assert code in (0, 9)
    cassette = fmt.load(path)  # a reader finishes an interrupted replacement first
    provenance = fmt.read_provenance(path)
    assert provenance is not None
    on_disk = path.read_text(encoding="utf-8")
    assert on_disk in (old, new)
    assert provenance["cassette_sha256"] == hashlib.sha256(on_disk.encode()).hexdigest()
    assert provenance["marker"] == json.loads(on_disk)["marker"]
    assert fmt.provenance_matches(path) is True
    assert cassette.interactions == []
    assert not fmt.sibling(path, fmt.COMMIT_SUFFIX).exists()
    if code == 0:
        assert on_disk == new


def test_a_mismatched_pair_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "x.cassette.json"
    fmt.save_with_provenance(path, _cassette_text("a"), {"source": "mock"})
    assert fmt.provenance_matches(path) is True
    fmt.write_atomic(path, _cassette_text("b"))  # a writer that bypassed the unit
    assert fmt.provenance_matches(path) is False
