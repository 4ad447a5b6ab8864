"""``python -m harness.golden_tool``: maintain the golden cassettes in ``cassettes/``.

    import-real   convert ../shared/real-cassettes/ recordings into cassettes/<provider>/real-*.cassette.json
    record-mock   record mock-complete / mock-stream through the live path (mock server as upstream) for providers
                  that lack a real recording of that kind (or all with --force), labelled source "mock"
    snapshot      (re)write <name>.expected.json for cassettes without one (all with --force): review the diff

The GLD checks never write snapshots unless pytest is given ``--update-golden``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from adapters.registry import ProviderEntry, Registry, load_registry
from harness import cassettes as fmt
from harness.golden import golden_results, kind_of, snapshot, write_snapshot
from harness.importer import import_all

MOCK_CREDENTIAL = "sk-provcert-mock-upstream-not-a-secret-000000"


def kinds_present(provider_id: str, root: Path) -> set[str]:
    kinds: set[str] = set()
    for cassette in fmt.iter_golden(provider_id, root):
        kinds |= {kind_of(i) for i in cassette.interactions if 200 <= i.response.status < 300}
    return kinds


async def record_mock(entries: list[ProviderEntry], root: Path, *, force: bool = False) -> list[Path]:
    from harness.assertions import chat_request
    from harness.budget import Ledger
    from harness.live import live_call
    from mockserver.testing import MockServer

    written = []
    with MockServer() as server, tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger.create(Path(tmp) / "ledger.json", Decimal("1"))
        for entry in entries:
            present = set() if force else kinds_present(entry.provider_id, root)
            kinds = ["complete"] + (["stream"] if entry.capabilities.streaming else [])
            for kind in kinds:
                if kind in present:
                    continue
                path = fmt.provider_dir(entry.provider_id, root) / f"mock-{kind}{fmt.CASSETTE_SUFFIX}"
                result = await live_call(
                    entry,
                    chat_request(entry),
                    kind=kind,  # type: ignore[arg-type]
                    credential=MOCK_CREDENTIAL,
                    ledger=ledger,
                    cassette=path,
                    record_mode="rewrite",
                    base_url=server.url + entry.mock_path,
                    source="mock",
                )
                if result.error is not None or not result.saved:
                    print(f"{entry.provider_id} {kind}: not recorded: {result.error}", file=sys.stderr)
                    continue
                written.append(path)
    return written


async def snapshots(entries: list[ProviderEntry], root: Path, *, force: bool = False) -> list[Path]:
    written = []
    for entry in entries:
        for cassette in fmt.iter_golden(entry.provider_id, root):
            if cassette.expected_path.exists() and not force:
                continue
            results = await golden_results(entry, cassette)
            written.append(write_snapshot(cassette, snapshot(cassette, entry, results)))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.golden_tool", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["import-real", "record-mock", "snapshot", "all"])
    parser.add_argument(
        "--provider", action="append", help="only these providers (default: every registered one)"
    )
    parser.add_argument(
        "--root", type=Path, default=fmt.DEFAULT_ROOT, help="cassettes folder (default: cassettes/)"
    )
    parser.add_argument("--registry", type=Path, action="append", default=[], help="extra registry file(s)")
    parser.add_argument("--force", action="store_true", help="record / snapshot even where one exists")
    args = parser.parse_args(argv)
    registry: Registry = load_registry()
    for extra in args.registry:
        registry = registry.merge(load_registry(extra))
    entries = [e for e in registry if not args.provider or e.provider_id in args.provider]
    done: list[Path] = []
    if args.command in ("import-real", "all"):
        done += import_all(registry, args.root, providers=[e.provider_id for e in entries])
    if args.command in ("record-mock", "all"):
        done += asyncio.run(record_mock(entries, args.root, force=args.force))
    if args.command in ("snapshot", "all"):
        done += asyncio.run(snapshots(entries, args.root, force=args.force or args.command == "all"))
    for path in done:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
