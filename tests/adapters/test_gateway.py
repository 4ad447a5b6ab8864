"""Gateway policy against scripted in-process adapters: retries, backoff, stream safety, fallback."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from adapters.errors import ErrorKind, ProviderError
from adapters.gateway import AttemptRecord, Gateway
from adapters.types import End, Start, TextDelta

E = ErrorKind


def gateway_for(
    kit: Any, scripts: dict[str, list[Any]], *entries: dict[str, Any], **kw: Any
) -> tuple[Gateway, dict[str, Any]]:
    registry = kit.make_registry(*(entries or (kit.entry_data(),)))
    adapters = {pid: kit.FakeAdapter(registry.get(pid), script) for pid, script in scripts.items()}
    return Gateway(registry, adapters, **kw), adapters


async def collect(gateway: Gateway, pid: str, request: Any) -> list[Any]:
    return [event async for event in gateway.stream(pid, request)]


async def test_retries_then_succeeds_with_seeded_full_jitter(kit: Any, sleep: Any) -> None:
    script = [kit.err(E.SERVER_ERROR), kit.err(E.RATE_LIMITED), kit.response("acme")]
    gateway, adapters = gateway_for(kit, {"acme": script}, sleep=sleep, rng=random.Random(7))
    result = await gateway.complete("acme", kit.request())
    assert result.provider_id == "acme" and adapters["acme"].calls == 3
    expected_rng = random.Random(7)
    expected = [expected_rng.uniform(0, 0.5), expected_rng.uniform(0, 1.0)]  # initial 0.5 * 2**n, max 8
    assert sleep.delays == expected
    assert gateway.last_attempts == [
        AttemptRecord("acme", 1, "server_error", expected[0]),
        AttemptRecord("acme", 2, "rate_limited", expected[1]),
        AttemptRecord("acme", 3, None, None),
    ]


async def test_attempts_bounded_and_last_error_raised(kit: Any, sleep: Any) -> None:
    script = [kit.err(E.SERVER_ERROR, request_id=f"r{i}") for i in range(5)]
    gateway, adapters = gateway_for(kit, {"acme": script}, sleep=sleep)
    with pytest.raises(ProviderError) as info:
        await gateway.complete("acme", kit.request())
    assert info.value.kind is E.SERVER_ERROR and info.value.request_id == "r2"
    assert adapters["acme"].calls == 3 and len(sleep.delays) == 2
    assert [a.delay is None for a in gateway.last_attempts] == [False, False, True]


@pytest.mark.parametrize("seed", range(30))
async def test_full_jitter_within_exponential_cap(kit: Any, sleep: Any, seed: int) -> None:
    retry = {"max_attempts": 6, "initial_backoff": 1, "max_backoff": 3, "retry_after_cap": 10}
    script = [kit.err(E.OVERLOADED)] * 5 + [kit.response("acme")]
    gateway, _ = gateway_for(
        kit, {"acme": script}, kit.entry_data(retry=retry), sleep=sleep, rng=random.Random(seed)
    )
    await gateway.complete("acme", kit.request())
    caps = [1, 2, 3, 3, 3]
    assert len(sleep.delays) == 5
    assert all(0 <= d <= cap for d, cap in zip(sleep.delays, caps, strict=True)), sleep.delays


def test_jitter_is_spread_over_the_whole_range(kit: Any) -> None:
    gateway, _ = gateway_for(kit, {}, rng=random.Random(1))
    policy = kit.make_registry(kit.entry_data()).get("acme").retry
    delays = [gateway.backoff_delay(policy, 4, None) for _ in range(2000)]  # cap min(8, 0.5 * 2**3) = 4
    assert max(delays) <= 4 and min(delays) >= 0
    assert min(delays) < 0.5 and max(delays) > 3.5


async def test_retry_after_is_honoured_and_capped(kit: Any, sleep: Any) -> None:
    script = [
        kit.err(E.RATE_LIMITED, retry_after=2.5),
        kit.err(E.RATE_LIMITED, retry_after=100),
        kit.response("acme"),
    ]
    gateway, _ = gateway_for(kit, {"acme": script}, sleep=sleep)
    await gateway.complete("acme", kit.request())
    assert sleep.delays == [2.5, 10]  # retry_after_cap is 10
    assert [a.retry_after for a in gateway.last_attempts] == [2.5, 100, None]


@pytest.mark.parametrize("kind", [E.BAD_REQUEST, E.CONTEXT_LENGTH, E.CONTENT_FILTER, E.NOT_FOUND])
async def test_caller_errors_neither_retried_nor_fall_back(kit: Any, sleep: Any, kind: ErrorKind) -> None:
    entries = (kit.entry_data(fallback=["backup"]), kit.entry_data(provider_id="backup"))
    gateway, adapters = gateway_for(
        kit, {"acme": [kit.err(kind)], "backup": [kit.response("backup")]}, *entries, sleep=sleep
    )
    with pytest.raises(ProviderError) as info:
        await gateway.complete("acme", kit.request())
    assert info.value.kind is kind
    assert adapters["acme"].calls == 1 and adapters["backup"].calls == 0 and sleep.delays == []


async def test_explicitly_non_retryable_is_not_retried(kit: Any, sleep: Any) -> None:
    gateway, adapters = gateway_for(kit, {"acme": [kit.err(E.SERVER_ERROR, retryable=False)]}, sleep=sleep)
    with pytest.raises(ProviderError):
        await gateway.complete("acme", kit.request())
    assert adapters["acme"].calls == 1 and sleep.delays == []


async def test_foreign_exception_is_wrapped_as_invalid_response(kit: Any, sleep: Any) -> None:
    gateway, adapters = gateway_for(kit, {"acme": [KeyError("choices")]}, sleep=sleep)
    with pytest.raises(ProviderError) as info:
        await gateway.complete("acme", kit.request())
    assert info.value.kind is E.INVALID_RESPONSE and info.value.provider_id == "acme"
    assert isinstance(info.value.__cause__, KeyError) and adapters["acme"].calls == 1


async def test_stream_retried_when_failing_before_any_delta(kit: Any, sleep: Any) -> None:
    first = [Start(provider_id="acme", model="m-1", request_id="req-1"), kit.err(E.STREAM_INTERRUPTED)]
    gateway, adapters = gateway_for(
        kit, {"acme": [kit.err(E.CONNECTION), first, kit.stream_ok("acme")]}, sleep=sleep
    )
    events = await collect(gateway, "acme", kit.request())
    assert [type(e).__name__ for e in events] == ["Start", "TextDelta", "TextDelta", "End"]
    assert events[0].request_id == "req-acme"  # the Start of the attempt that served, once
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hello"
    assert adapters["acme"].calls == 3 and len(sleep.delays) == 2
    assert adapters["acme"].closed_streams == 3


async def test_stream_not_retried_after_a_delta(kit: Any, sleep: Any) -> None:
    broken = [Start(provider_id="acme", model="m-1"), TextDelta(text="par"), kit.err(E.STREAM_INTERRUPTED)]
    entries = (kit.entry_data(fallback=["backup"]), kit.entry_data(provider_id="backup"))
    gateway, adapters = gateway_for(
        kit,
        {"acme": [broken, kit.stream_ok("acme")], "backup": [kit.stream_ok("backup")]},
        *entries,
        sleep=sleep,
    )
    received: list[Any] = []
    with pytest.raises(ProviderError) as info:
        async for event in gateway.stream("acme", kit.request()):
            received.append(event)
    assert [type(e) for e in received] == [Start, TextDelta]
    assert info.value.kind is E.STREAM_INTERRUPTED and info.value.output_delivered
    assert info.value.partial_text == "par"
    assert adapters["acme"].calls == 1 and adapters["backup"].calls == 0 and sleep.delays == []


async def test_stream_without_end_is_interrupted_not_complete(kit: Any, sleep: Any) -> None:
    truncated = [Start(provider_id="acme", model="m-1"), TextDelta(text="abc")]
    gateway, _ = gateway_for(kit, {"acme": [truncated]}, sleep=sleep)
    with pytest.raises(ProviderError) as info:
        await collect(gateway, "acme", kit.request())
    assert info.value.kind is E.STREAM_INTERRUPTED and info.value.output_delivered
    assert info.value.partial_text == "abc"


async def test_stream_closed_early_closes_the_adapter_stream(kit: Any) -> None:
    gateway, adapters = gateway_for(kit, {"acme": [kit.stream_ok("acme", ["a", "b", "c"])]})
    stream = gateway.stream("acme", kit.request())
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert adapters["acme"].closed_streams == 1


async def test_fallback_on_exhaustion(kit: Any, sleep: Any) -> None:
    entries = (
        kit.entry_data(fallback=["backup"]),
        kit.entry_data(provider_id="backup", retry={**kit.BASE_ENTRY["retry"], "max_attempts": 1}),
    )
    scripts = {"acme": [kit.err(E.SERVER_ERROR)] * 3, "backup": [kit.response("backup")]}
    gateway, adapters = gateway_for(kit, scripts, *entries, sleep=sleep)
    result = await gateway.complete("acme", kit.request())
    assert result.provider_id == "backup"
    assert adapters["acme"].calls == 3 and adapters["backup"].calls == 1
    assert [(a.provider_id, a.attempt) for a in gateway.last_attempts] == [
        ("acme", 1),
        ("acme", 2),
        ("acme", 3),
        ("backup", 1),
    ]
    assert gateway.last_call is not None and gateway.last_call.fallback_from == "acme"


@pytest.mark.parametrize(
    ("kind", "falls_back"),
    [
        (E.AUTH, False),
        (E.BAD_REQUEST, False),
        (E.CONTEXT_LENGTH, False),
        (E.CONTENT_FILTER, False),
        (E.NOT_FOUND, False),
        (E.QUOTA_EXHAUSTED, True),
        (E.PERMISSION, True),
    ],
)
async def test_fallback_only_for_failures_of_the_provider_service(
    kit: Any, kind: E, falls_back: bool
) -> None:
    """A rejected key is our misconfiguration and a caller error fails everywhere: neither reaches the fallback."""
    entries = (kit.entry_data(fallback=["backup"]), kit.entry_data(provider_id="backup"))
    scripts = {"acme": [kit.err(kind, retryable=False)], "backup": [kit.response("backup")]}
    gateway, adapters = gateway_for(kit, scripts, *entries)
    if falls_back:
        assert (await gateway.complete("acme", kit.request())).provider_id == "backup"
    else:
        with pytest.raises(ProviderError) as info:
            await gateway.complete("acme", kit.request())
        assert info.value.kind is kind and info.value.provider_id == "acme"
    assert adapters["backup"].calls == (1 if falls_back else 0)


async def test_fallback_when_primary_disabled(kit: Any, sleep: Any) -> None:
    entries = (
        kit.entry_data(rollout={"status": "disabled"}, fallback=["backup"]),
        kit.entry_data(provider_id="backup"),
    )
    gateway, adapters = gateway_for(
        kit, {"acme": [], "backup": [kit.stream_ok("backup")]}, *entries, sleep=sleep
    )
    events = await collect(gateway, "acme", kit.request())
    assert isinstance(events[0], Start) and events[0].provider_id == "backup"
    assert isinstance(events[-1], End)
    assert adapters["acme"].calls == 0
    assert gateway.last_call is not None and gateway.last_call.skipped == [("acme", "rollout disabled")]


async def test_canary_routes_only_canary_tenants(kit: Any) -> None:
    entries = (
        kit.entry_data(rollout={"status": "canary", "canary_tenants": ["t-canary"]}, fallback=["backup"]),
        kit.entry_data(provider_id="backup"),
    )
    scripts = {"acme": [kit.response("acme")], "backup": [kit.response("backup")]}
    gateway, _ = gateway_for(kit, scripts, *entries)
    assert (await gateway.complete("acme", kit.request(tenant_id="t-canary"))).provider_id == "acme"
    assert (await gateway.complete("acme", kit.request(tenant_id="t-other"))).provider_id == "backup"


async def test_disabled_without_fallback_is_a_clear_error(kit: Any) -> None:
    gateway, _ = gateway_for(kit, {"acme": []}, kit.entry_data(rollout={"status": "disabled"}))
    with pytest.raises(ProviderError, match="rollout disabled") as info:
        await gateway.complete("acme", kit.request())
    assert info.value.kind is E.UNSUPPORTED and not info.value.retryable


async def test_stream_fallback_on_exhaustion_before_output(kit: Any, sleep: Any) -> None:
    entries = (kit.entry_data(fallback=["backup"]), kit.entry_data(provider_id="backup"))
    scripts = {"acme": [kit.err(E.TIMEOUT)] * 3, "backup": [kit.stream_ok("backup", ["x"])]}
    gateway, adapters = gateway_for(kit, scripts, *entries, sleep=sleep)
    events = await collect(gateway, "acme", kit.request())
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["x"]
    assert adapters["acme"].calls == 3 and adapters["backup"].calls == 1


async def test_unknown_provider_is_a_provider_error(kit: Any) -> None:
    gateway, _ = gateway_for(kit, {})
    with pytest.raises(ProviderError, match=r"unknown provider 'ghost'.*acme") as info:
        await gateway.complete("ghost", kit.request())
    assert info.value.kind is E.BAD_REQUEST


async def test_missing_credential_gets_the_provider_id(kit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.credentials import CredentialResolver

    class NeedsKey(kit.FakeAdapter):  # type: ignore[misc]
        async def complete(self, request: Any) -> Any:
            await self.credential()
            return await super().complete(request)

    monkeypatch.delenv("ACME_API_KEY", raising=False)
    registry = kit.make_registry(kit.entry_data())
    adapter = NeedsKey(registry.get("acme"), [kit.response("acme")])
    adapter._credentials = CredentialResolver()
    gateway = Gateway(registry, {"acme": adapter})
    with pytest.raises(ProviderError) as info:
        await gateway.complete("acme", kit.request())
    assert info.value.kind is E.AUTH and info.value.provider_id == "acme"
    assert "ACME_API_KEY" in str(info.value)


async def test_factory_builds_each_adapter_once(kit: Any) -> None:
    registry = kit.make_registry(kit.entry_data())
    built: list[str] = []

    def factory(entry: Any) -> Any:
        built.append(entry.provider_id)
        return kit.FakeAdapter(entry, [kit.response("acme"), kit.response("acme")])

    gateway = Gateway(registry, factory)
    await gateway.complete("acme", kit.request())
    await gateway.complete("acme", kit.request())
    assert built == ["acme"]
    await gateway.aclose()


async def test_on_attempt_callback_sees_every_attempt(kit: Any, sleep: Any) -> None:
    seen: list[AttemptRecord] = []
    gateway, _ = gateway_for(
        kit, {"acme": [kit.err(E.SERVER_ERROR), kit.response("acme")]}, sleep=sleep, on_attempt=seen.append
    )
    await gateway.complete("acme", kit.request())
    assert seen == gateway.last_attempts and len(seen) == 2 and seen[0].delay == sleep.delays[0]


FAST = {"connect": 0.01, "read": 0.02, "stream_idle": 0.02}


async def test_safety_net_times_out_a_hanging_adapter(kit: Any, sleep: Any) -> None:
    entry = kit.entry_data(timeouts=FAST)
    gateway, adapters = gateway_for(kit, {"acme": [kit.Hang(), kit.response("acme")]}, entry, sleep=sleep)
    result = await gateway.complete("acme", kit.request())  # the timeout is retryable: attempt 2 serves
    assert result.provider_id == "acme" and adapters["acme"].calls == 2
    assert gateway.last_attempts[0].error_kind == "timeout"


async def test_safety_net_bounds_a_stalled_stream_after_output(kit: Any, sleep: Any) -> None:
    stalled = [Start(provider_id="acme", model="m-1"), TextDelta(text="so far"), kit.Hang()]
    gateway, adapters = gateway_for(kit, {"acme": [stalled]}, kit.entry_data(timeouts=FAST), sleep=sleep)
    with pytest.raises(ProviderError) as info:
        await collect(gateway, "acme", kit.request())
    assert info.value.kind is E.TIMEOUT and info.value.output_delivered
    assert info.value.partial_text == "so far" and adapters["acme"].calls == 1


FAST = {"connect": 0.02, "read": 0.04, "stream_idle": 0.02}


async def test_safety_net_deadline_for_an_adapter_that_never_answers(kit: Any) -> None:
    """An adapter that ignores its own timeouts cannot hang a call: the gateway gives up after (connect + read)
    x 1.5, and says so."""
    retry = {**kit.BASE_ENTRY["retry"], "max_attempts": 1}
    entry = kit.entry_data(timeouts=FAST, retry=retry)
    gateway, _ = gateway_for(kit, {"acme": [kit.Hang()]}, entry)
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(gateway.complete("acme", kit.request()), 5)
    assert info.value.kind is E.TIMEOUT
    assert f"within {(FAST['connect'] + FAST['read']) * 1.5:g}s" in info.value.message


async def test_safety_net_deadline_for_a_stream_that_never_starts(kit: Any) -> None:
    retry = {**kit.BASE_ENTRY["retry"], "max_attempts": 1}
    entry = kit.entry_data(timeouts=FAST, retry=retry)
    gateway, _ = gateway_for(kit, {"acme": [[kit.Hang()]]}, entry)
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(collect(gateway, "acme", kit.request()), 5)
    assert info.value.kind is E.TIMEOUT
    assert f"within {(FAST['connect'] + FAST['read'] + FAST['stream_idle']) * 1.5:g}s" in info.value.message


async def test_a_provider_without_an_adapter_is_refused_not_retried(kit: Any, sleep: Any) -> None:
    gateway = Gateway(kit.make_registry(kit.entry_data()), {}, sleep=sleep)
    with pytest.raises(ProviderError, match="no adapter configured for provider 'acme'") as info:
        await gateway.complete("acme", kit.request())
    assert info.value.kind is E.UNSUPPORTED and not info.value.retryable
    assert sleep.delays == [], "a missing adapter was retried"
