"""GLD: the request on the wire is well formed, and golden cassettes replay to the reviewed results.

Golden cassettes are ``cassettes/<provider>/*.cassette.json`` (see harness/cassettes.py): imported real recordings,
live recordings, or recordings of the mock, each with its provenance. Replaying one through the adapter must give
the reviewed snapshot beside it (``*.expected.json``, rewritten only with ``--update-golden``); the recorded bodies
and the mock server's output must validate against the same response schemas (drift check).
"""

from __future__ import annotations

import json

import pytest

from harness import cassettes as fmt
from harness.assertions import chat_request, run_stream
from harness.checks import check, evidence, not_applicable
from harness.golden import diff_outcomes, golden_results, kind_of, read_snapshot, snapshot, write_snapshot
from harness.schemas import has_schema, request_schema_errors, response_errors


@check("GLD-REQUEST")
async def test_request_well_formed(make_adapter, mock, entry):
    mock.queue("ok", "ok")
    adapter = make_adapter()
    request = chat_request(entry, tools=entry.capabilities.tools)
    await adapter.complete(request)
    if entry.capabilities.streaming:
        await run_stream(adapter.stream(request))
    for sent in mock.journal():
        errors = request_schema_errors(entry.wire, sent["request_body"])
        assert not errors, f"request body invalid for {entry.wire}: " + "; ".join(errors[:5])
        assert sent["path"].startswith(entry.mock_path), f"path {sent['path']} outside {entry.mock_path}"
        if entry.credential_ref:
            assert sent.get("auth_fingerprint"), "no credential reached the server"
        # in the body (OpenAI style) or as a segment of the journaled, decoded path (Bedrock, Gemini, Azure)
        in_path = f"/{request.model}/" in sent["path"] or f"/{request.model}:" in sent["path"]
        assert request.model == sent["request_body"].get("model") or in_path, "the model was not sent"
    evidence(
        f"{len(mock.journal())} request(s) fit the {entry.wire} request schema, path under {entry.mock_path}, "
        f"model {request.model} sent, credential present"
    )


def _no_golden(entry, what):
    """Nothing replayed is nothing certified: a provider without golden cassettes fails GLD, it does not skip."""
    where = fmt.provider_dir(entry.provider_id)
    return (
        f"no {what} cassette for {entry.provider_id} in {where}: record or import one "
        "(python -m harness.golden_tool all, or a provcert.cassettes entry point for an external provider)"
    )


def _load_all(provider_id, root):
    """Every golden cassette of the provider; a malformed one fails the check naming the file and the problem."""
    try:
        return [fmt.load(p) for p in fmt.golden_paths(provider_id, root)]
    except fmt.CassetteError as exc:
        pytest.fail(f"unusable golden cassette: {exc}", pytrace=False)


async def _check_golden(entry, kind, root, update):
    what = "streaming" if kind == "stream" else "non-streaming"
    cassettes = [
        c for c in _load_all(entry.provider_id, root) if any(kind_of(i) == kind for i in c.interactions)
    ]
    if not cassettes:
        if kind == "stream" and not entry.capabilities.streaming:
            not_applicable("provider declares no streaming")
        pytest.fail(_no_golden(entry, what), pytrace=False)
    failures: list[str] = []
    for cassette in cassettes:
        results = await golden_results(entry, cassette)
        failures += [p for r in results for p in r.problems]
        current = snapshot(cassette, entry, results)
        expected = read_snapshot(cassette)
        if update:
            if expected != current:
                write_snapshot(cassette, current)
            continue
        if expected is None:
            failures.append(
                f"{cassette.path.name}: no reviewed snapshot {cassette.expected_path.name}; "
                "run with --update-golden and review what it writes"
            )
            continue
        by_index = {r.get("interaction"): r for r in expected["results"]}
        for result in results:
            if result.kind != kind:
                continue
            diffs = diff_outcomes(by_index.get(result.index), result.outcome)
            if diffs:
                failures.append(
                    f"{cassette.path.name} interaction {result.index}: the adapter's result differs from the "
                    f"reviewed snapshot ({len(diffs)} difference(s); --update-golden accepts it): "
                    + "; ".join(diffs[:3])
                )
        if has_schema(entry.wire, "response"):
            for n, interaction in enumerate(cassette.interactions):
                if kind_of(interaction) != kind:
                    continue
                resp = interaction.response
                errors = response_errors(entry.wire, resp.status, resp.content_type, resp.body)
                if errors:
                    failures.append(
                        f"{cassette.path.name} interaction {n}: the recorded response does not validate against "
                        f"the {entry.wire} schemas: " + "; ".join(errors[:3])
                    )
    assert not failures, f"{len(failures)} golden problem(s): " + " | ".join(failures[:5])
    replayed = sum(1 for c in cassettes for i in c.interactions if kind_of(i) == kind)
    evidence(
        f"{len(cassettes)} golden {what} cassette(s), {replayed} interaction(s) replayed = reviewed snapshots"
    )


@check("GLD-COMPLETE")
async def test_golden_complete(entry, golden_root, update_golden):
    await _check_golden(entry, "complete", golden_root, update_golden)


@check("GLD-STREAM")
async def test_golden_stream(entry, golden_root, update_golden):
    await _check_golden(entry, "stream", golden_root, update_golden)


@check("GLD-REQUEST")
async def test_golden_requests_well_formed(entry, golden_root):
    """What the adapter sends while replaying, and what it sent when the cassette was recorded, fit the schema."""
    cassettes = _load_all(entry.provider_id, root=golden_root)
    if not cassettes:
        pytest.fail(_no_golden(entry, "golden"), pytrace=False)
    failures: list[str] = []
    for cassette in cassettes:
        for result in await golden_results(entry, cassette):
            for sent in result.sent:
                body = json.loads(sent.content) if sent.content else None
                errors = request_schema_errors(entry.wire, body) if body is not None else []
                if errors:
                    failures.append(
                        f"{cassette.path.name} #{result.index} (replay): " + "; ".join(errors[:3])
                    )
        provenance = fmt.read_provenance(cassette.path) or {}
        if provenance.get("source") not in ("live", "mock"):
            continue  # imported recordings were sent by other clients: only their replay (above) is our adapter's
        for n, interaction in enumerate(cassette.interactions):
            if interaction.request.body[:1] != b"{":
                continue
            errors = request_schema_errors(entry.wire, interaction.request.json())
            if errors:
                failures.append(f"{cassette.path.name} #{n} (recorded): " + "; ".join(errors[:3]))
    assert not failures, "requests that do not fit the request schema: " + " | ".join(failures[:5])
    evidence(f"replayed requests of {len(cassettes)} golden cassette(s) fit the {entry.wire} request schema")


@check("GLD-COMPLETE")
async def test_mock_output_matches_golden_schemas(entry, mock, tmp_path):
    """Drift: the mock's answers (a completion, a tool call, an error, a text stream, a tool-call stream) validate
    against the same response schemas as the provider's real recordings, through the same live path that records
    cassettes."""
    if not has_schema(entry.wire, "response"):
        not_applicable(
            f"no response schemas for wire {entry.wire!r} yet (harness/schemas/{entry.wire}.response.schema.json)"
        )
    from decimal import Decimal

    from harness.budget import Ledger
    from harness.live import live_call

    ledger = Ledger.create(tmp_path / "ledger.json", Decimal(1))
    problems: list[str] = []
    cases = [("ok", "complete", False), ("bad_request", "complete", False)]
    if entry.capabilities.tools:
        cases.append(("tool_call", "complete", True))
    if entry.capabilities.streaming:
        cases.append(("ok", "stream", False))
        if entry.capabilities.tools:
            cases.append(("tool_call", "stream", True))
    for scenario, kind, tools in cases:
        mock.queue(scenario)
        result = await live_call(
            entry,
            chat_request(entry, tools=tools),
            kind=kind,
            credential="sk-provcert-drift-not-a-secret-0000",
            ledger=ledger,
            cassette=tmp_path / "unused.cassette.json",
            base_url=mock.client.url + entry.mock_path,
            headers=mock.headers,
        )
        for wire in result.wire:
            ctype = wire.headers.get("content-type", "")
            problems += [
                f"{scenario}/{kind}: {e}" for e in response_errors(entry.wire, wire.status, ctype, wire.body)
            ]
    assert not problems, f"the mock's {entry.wire} output drifted from the golden schemas: " + "; ".join(
        problems[:5]
    )
    evidence(
        f"the mock's {', '.join(f'{s}/{k}' for s, k, _ in cases)} validate against the {entry.wire} schemas"
    )
