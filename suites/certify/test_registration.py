"""REG: the registry entry is complete, valid and honest about what the adapter can do."""

from __future__ import annotations

import hashlib
import re

from adapters.errors import ErrorKind, ProviderError
from adapters.pricing import cost_for
from adapters.registry import validate_entry
from adapters.types import Usage
from harness.assertions import chat_request, only, run_stream
from harness.checks import check, evidence

KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@check("REG-ID")
def test_registered(entry, provider_id):
    assert entry.provider_id == provider_id
    assert KEBAB.match(provider_id), f"{provider_id!r} is not kebab-case"
    problems = validate_entry(entry)
    assert not problems, "registry entry invalid: " + "; ".join(problems)
    evidence(f"{provider_id}: kebab-case, valid against the registry schema")


@check("REG-CAPS")
async def test_declared_streaming_agrees(make_adapter, mock, entry):
    adapter = make_adapter()
    mock.queue("ok")
    run = await run_stream(adapter.stream(chat_request(entry)))
    if entry.capabilities.streaming:
        assert run.error is None and len(run.ends) == 1, f"declared streaming does not work: {run.error!r}"
        evidence("streaming declared: a stream completed with one End")
    else:
        assert run.error is not None and run.error.kind == ErrorKind.UNSUPPORTED, (
            f"undeclared streaming did not fail as unsupported: {run.error!r}"
        )
        assert not mock.journal(), "an unsupported stream was still sent to the provider"
        evidence("streaming not declared: refused as unsupported, nothing sent")


@check("REG-CAPS")
async def test_declared_tools_agree(make_adapter, mock, entry):
    adapter = make_adapter()
    mock.queue("tool_call")
    request = chat_request(entry, tools=True)
    if entry.capabilities.tools:
        response = await adapter.complete(request)
        sent = only(mock.journal())
        assert [c.name for c in response.tool_calls] == [c["name"] for c in sent["tool_calls_sent"]]
        evidence(f"tools declared: tool call(s) {[c.name for c in response.tool_calls]} = journal")
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
        evidence("tools not declared: refused as unsupported")


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
        evidence("no credential_ref: nothing resolved, nothing sent")
        return
    assert len(credentials.resolved) == 2, (
        f"credential resolved {len(credentials.resolved)} times for 2 calls"
    )
    seen = [e.get("auth_fingerprint") for e in mock.journal()]
    want = [hashlib.sha256(k.encode()).hexdigest()[:12] for k in (first, second)]
    assert seen == want, (
        f"the server saw credentials {seen}; expected the original then the rotated one {want}"
    )
    evidence(
        f"{ref.split('://')[0]}:// resolved per call; the server saw key fingerprints {seen[0]} then {seen[1]}"
    )


@check("REG-PRICE")
def test_models_priced(entry):
    usage = Usage(input_tokens=1000, output_tokens=1000, total_tokens=2000)
    unpriced = [m.id for m in entry.models if not cost_for(entry, m.id, usage).priced]
    assert not unpriced, f"registered models without a price: {unpriced}"
    unknown = cost_for(entry, "provcert-unregistered-model", usage)
    assert not unknown.priced, "an unknown model was costed instead of flagged unpriced"
    evidence(f"{len(entry.models)} model(s) priced; an unregistered model is flagged unpriced")


@check("REG-LIMITS")
def test_limits_declared(entry):
    t, r = entry.timeouts, entry.retry
    assert t.connect > 0 and t.read > 0 and t.stream_idle > 0, f"timeouts {t}"
    assert 1 <= r.max_attempts <= 10, f"max_attempts {r.max_attempts}"
    assert 0 < r.initial_backoff <= r.max_backoff, f"backoff {r.initial_backoff}..{r.max_backoff}"
    assert r.retry_after_cap > 0
    evidence(
        f"timeouts connect {t.connect}/read {t.read}/idle {t.stream_idle} s; retry {r.max_attempts} attempts, "
        f"backoff {r.initial_backoff}..{r.max_backoff} s, retry_after cap {r.retry_after_cap} s"
    )


def _request(entry, tenant):
    request = chat_request(entry)
    return request.model_copy(update={"metadata": request.metadata.model_copy(update={"tenant_id": tenant})})


async def _served_by(chain, entry, tenant):
    response = await chain.gateway.complete(chain.primary.provider_id, _request(entry, tenant))
    return response.provider_id


@check("REG-ROLLOUT")
async def test_disabled_serves_the_fallback(mock, fallback_chain, entry):
    """The kill switch: a disabled provider gets no request at all, whoever asks; the fallback serves."""
    chain = fallback_chain({"status": "disabled"})
    served = [await _served_by(chain, entry, tenant) for tenant in ("tenant-a", "tenant-b", None)]
    assert set(served) == {chain.fallback.provider_id}, f"served by {served}"
    assert not mock.journal(), f"a disabled provider received {len(mock.journal())} request(s)"
    evidence(f"disabled: 3 of 3 requests served by the fallback, 0 reached {entry.provider_id}")


@check("REG-ROLLOUT")
async def test_canary_serves_its_cohort_only(mock, fallback_chain, entry):
    cohort = ("tenant-canary-1", "tenant-canary-2")
    chain = fallback_chain({"status": "canary", "canary_tenants": cohort})
    inside = [await _served_by(chain, entry, t) for t in cohort]
    outside = [await _served_by(chain, entry, t) for t in ("tenant-other", None)]
    assert set(inside) == {chain.primary.provider_id}, f"the canary cohort was served by {inside}"
    assert set(outside) == {chain.fallback.provider_id}, (
        f"tenants outside the cohort were served by {outside}"
    )
    reached = len(mock.journal())
    assert reached == len(cohort), f"{reached} requests reached the canary, expected {len(cohort)}"
    evidence(f"canary: cohort {len(cohort)}/{len(cohort)} on {entry.provider_id}, others 2/2 on the fallback")


#: keys bucketed in REG-ROLLOUT's percentage check: fixed, so the verdict never depends on chance
ROLLOUT_KEYS = [f"tenant-{n:03d}" for n in range(120)]


@check("REG-ROLLOUT")
async def test_percentage_is_sticky_and_proportional(mock, fallback_chain, entry):
    """A 30 % rollout admits about 30 % of tenants (not 70 %: an inverted gate fails here), always the same ones."""
    share = 30.0
    chain = fallback_chain({"status": "percentage", "percentage": share})
    first = {key: await _served_by(chain, entry, key) for key in ROLLOUT_KEYS}
    admitted = [key for key, pid in first.items() if pid == chain.primary.provider_id]
    measured = 100 * len(admitted) / len(ROLLOUT_KEYS)
    assert abs(measured - share) <= 12, (
        f"{measured:.0f}% of {len(ROLLOUT_KEYS)} tenants admitted at {share:.0f}%"
    )
    again = {key: await _served_by(chain, entry, key) for key in ROLLOUT_KEYS[:40]}
    moved = [key for key, pid in again.items() if pid != first[key]]
    assert not moved, f"bucketing is not sticky: {moved[:5]} changed provider on a second request"
    assert len(mock.journal()) == len(admitted) + sum(1 for k in ROLLOUT_KEYS[:40] if k in admitted)
    evidence(
        f"percentage {share:.0f}: {len(admitted)}/{len(ROLLOUT_KEYS)} tenants ({measured:.0f}%) on "
        f"{entry.provider_id}, 40 repeated requests kept their provider"
    )


@check("REG-ROLLOUT")
def test_rollout_declared(entry, provcert_registry):
    assert entry.rollout.status in {"disabled", "canary", "percentage", "enabled"}
    assert entry.fallback, f"{entry.provider_id} declares no fallback provider"
    unknown = [f for f in entry.fallback if f not in provcert_registry.ids()]
    assert not unknown, f"fallback names unknown providers: {unknown}"
    assert entry.provider_id not in entry.fallback, "a provider cannot be its own fallback"
    evidence(f"rollout {entry.rollout.status}; fallback {list(entry.fallback)} registered")
