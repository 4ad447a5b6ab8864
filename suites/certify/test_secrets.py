"""SEC: the credential never shows up anywhere a person or a log pipeline can read, and egress stays on one host."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from adapters.base import Timeouts
from adapters.errors import ProviderError
from harness.assertions import chat_request, run_stream
from harness.checks import check, evidence, not_applicable
from harness.secrets import scan_all


@check("SEC-CASSETTE")
def test_cassettes_clean(provider_id, golden_root):
    """Provider key patterns and detect-secrets over every file in cassettes/<provider>/ (cassettes, provenance,
    snapshots): any finding fails, naming the file, the line and the kind of secret (never the value)."""
    folder = golden_root / provider_id
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    if not files:
        not_applicable(f"no cassettes recorded for {provider_id} yet (cassettes/{provider_id}/ is empty)")
    findings = scan_all(files)
    assert not findings, "secrets in cassettes: " + "; ".join(str(f) for f in findings[:5])
    evidence(
        f"{len(files)} files in cassettes/{provider_id}/ scanned (provider key patterns, detect-secrets): "
        "0 findings"
    )


@check("SEC-SURFACE")
async def test_no_secret_on_any_surface(
    make_adapter, mock, entry, credentials, caplog, make_gateway, span_exporter
):
    if entry.credential_ref is None:
        not_applicable(f"{entry.provider_id} has no credential (credential_ref: null): no secret can leak")
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter(timeouts=Timeouts(connect=1, read=0.15, stream_idle=0.3))
    gateway = make_gateway({entry.provider_id: adapter})
    surfaces: list[str] = [repr(adapter), str(adapter)]
    request = chat_request(entry)
    faults = ("auth_error", "rate_limit", "bad_request", "timeout", "malformed_body")
    for fault in faults:
        spec = {"preset": fault, "times": entry.retry.max_attempts}
        mock.queue({**spec, "retry_after": 0.01} if fault == "rate_limit" else spec)
        try:
            if fault == "timeout":  # once, straight through the adapter: retrying a hang proves nothing more
                await adapter.complete(request)
            else:
                await gateway.complete(entry.provider_id, request)
        except ProviderError as exc:
            surfaces += [str(exc), repr(exc), json.dumps(exc.to_dict()), repr(exc.__cause__)]
        except Exception as exc:  # a raw exception is the ERR checks' finding; here only its text matters
            surfaces += [str(exc), repr(exc)]
        surfaces += [json.dumps(e, default=str) for e in mock.journal()]
        mock.client.clear(mock.id)  # drop what a non-retried fault left queued
    if entry.capabilities.streaming:
        mock.queue("error_mid_stream")
        run = await run_stream(gateway.stream(entry.provider_id, request))
        surfaces += [repr(e) for e in run.events] + [str(run.error), repr(run.error)]
    mock.queue("ok")
    response = await gateway.complete(entry.provider_id, request)
    surfaces += [repr(response), response.model_dump_json()]
    surfaces.append(caplog.text)
    surfaces += [
        json.dumps(dict(span.attributes or {}), default=str) for span in span_exporter.get_finished_spans()
    ]
    surfaces += [json.dumps(e, default=str) for e in mock.journal()]
    spans = len(span_exporter.get_finished_spans())
    assert len(credentials.resolved) > 0, (
        "the adapter never resolved its credential; the check proved nothing"
    )
    leaks = [s[:120] for s in surfaces if credentials.current in s]
    assert not leaks, f"the credential leaked into {len(leaks)} surface(s), e.g. {leaks[0]!r}"
    calls = f"{len(faults)} faults, " + ("an in-band stream error, " if entry.capabilities.streaming else "")
    evidence(
        f"credential resolved {len(credentials.resolved)}x; absent from all {len(surfaces)} surfaces after "
        f"{calls}a success (errors, reprs, {len(caplog.records)} log records, {spans} spans, journal)"
    )


@check("SEC-EGRESS")
async def test_only_registered_host(make_adapter, mock, entry):
    adapter = make_adapter()
    mock.queue("ok", "ok")
    await adapter.complete(chat_request(entry))
    if entry.capabilities.streaming:
        await run_stream(adapter.stream(chat_request(entry)))
    allowed = urlsplit(adapter.base_url)
    urls = make_adapter.requested_urls
    assert urls, "no request was recorded; the check proved nothing"
    strays = [u for u in urls if (urlsplit(u).hostname, urlsplit(u).port) != (allowed.hostname, allowed.port)]
    assert not strays, f"requests left the registered host {allowed.netloc}: {strays}"
    off_path = [u for u in urls if not urlsplit(u).path.startswith(allowed.path)]
    assert not off_path, f"requests outside the registered base path {allowed.path}: {off_path}"
    evidence(f"all {len(urls)} requests went to the registered {allowed.netloc}, under {allowed.path or '/'}")
