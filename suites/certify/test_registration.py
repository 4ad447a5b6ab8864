"""REG: the registry entry is complete, valid and honest about what the adapter can do."""

from __future__ import annotations

import hashlib
import re

from adapters.errors import ErrorKind, ProviderError
from adapters.pricing import cost_for
from adapters.registry import validate_entry
from adapters.types import Usage
from harness.assertions import chat_request, only, run_stream
from harness.checks import check

KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@check("REG-ID")
def test_registered(entry, provider_id):
    assert entry.provider_id == provider_id
    assert KEBAB.match(provider_id), f"{provider_id!r} is not kebab-case"
    problems = validate_entry(entry)
    assert not problems, "registry entry invalid: " + "; ".join(problems)


@check("REG-CAPS")
async def test_declared_streaming_agrees(make_adapter, mock, entry):
    adapter = make_adapter()
    mock.queue("ok")
    run = await run_stream(adapter.stream(chat_request(entry)))
    if entry.capabilities.streaming:
        assert run.error is None and len(run.ends) == 1, f"declared streaming does not work: {run.error!r}"
    else:
        assert run.error is not None and run.error.kind == ErrorKind.UNSUPPORTED, (
            f"undeclared streaming did not fail as unsupported: {run.error!r}"
        )
        assert not mock.journal(), "an unsupported stream was still sent to the provider"


@check("REG-CAPS")
async def test_declared_tools_agree(make_adapter, mock, entry):
    adapter = make_adapter()
    mock.queue("tool_call")
    request = chat_request(entry, tools=True)
    if entry.capabilities.tools:
        response = await adapter.complete(request)
        sent = only(mock.journal())
        assert [c.name for c in response.tool_calls] == [c["name"] for c in sent["tool_calls_sent"]]
    else:
        try:
            await adapter.complete(request)
        except ProviderError as exc:
            assert exc.kind == ErrorKind.UNSUPPORTED, (
                f"tools on a tool-less provider failed as {exc.kind.value}"
            )
        else:
            raise AssertionError(
                "a request with tools succeeded although the provider declares no tool calling"
            )


@check("REG-CRED")
async def test_credential_ref_and_rotation(make_adapter, mock, entry, credentials):
    ref = entry.credential_ref
    if ref is not None:
        assert re.match(r"^[a-z][a-z0-9+.-]*://.+", ref), f"credential_ref {ref!r} is not a reference URI"
    adapter = make_adapter()
    mock.queue("ok", "ok")
    await adapter.complete(chat_request(entry))
    first = credentials.current
    second = credentials.rotate()
    await adapter.complete(chat_request(entry))
    if ref is None:
        assert credentials.resolved == [], "a provider without a credential_ref resolved a credential"
        return
    assert len(credentials.resolved) == 2, (
        f"credential resolved {len(credentials.resolved)} times for 2 calls"
    )
    seen = [e.get("auth_fingerprint") for e in mock.journal()]
    want = [hashlib.sha256(k.encode()).hexdigest()[:12] for k in (first, second)]
    assert seen == want, (
        f"the server saw credentials {seen}; expected the original then the rotated one {want}"
    )


@check("REG-PRICE")
def test_models_priced(entry):
    usage = Usage(input_tokens=1000, output_tokens=1000, total_tokens=2000)
    unpriced = [m.id for m in entry.models if not cost_for(entry, m.id, usage).priced]
    assert not unpriced, f"registered models without a price: {unpriced}"
    unknown = cost_for(entry, "provcert-unregistered-model", usage)
    assert not unknown.priced, "an unknown model was costed instead of flagged unpriced"


@check("REG-LIMITS")
def test_limits_declared(entry):
    t, r = entry.timeouts, entry.retry
    assert t.connect > 0 and t.read > 0 and t.stream_idle > 0, f"timeouts {t}"
    assert 1 <= r.max_attempts <= 10, f"max_attempts {r.max_attempts}"
    assert 0 < r.initial_backoff <= r.max_backoff, f"backoff {r.initial_backoff}..{r.max_backoff}"
    assert r.retry_after_cap > 0


@check("REG-ROLLOUT")
def test_rollout_declared(entry, provcert_registry):
    assert entry.rollout.status in {"disabled", "canary", "percentage", "enabled"}
    assert entry.fallback, f"{entry.provider_id} declares no fallback provider"
    unknown = [f for f in entry.fallback if f not in provcert_registry.ids()]
    assert not unknown, f"fallback names unknown providers: {unknown}"
    assert entry.provider_id not in entry.fallback, "a provider cannot be its own fallback"
