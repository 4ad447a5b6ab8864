"""Telemetry: one span per call, GenAI attribute names, provcert attribution, no raw user id or secret."""

from __future__ import annotations

import hashlib
from typing import Any

from opentelemetry.trace import StatusCode

from adapters.errors import ErrorKind, ProviderError, register_secret
from adapters.gateway import Gateway
from adapters.telemetry import hash_user_id
from adapters.types import TextDelta

META = {
    "trace_id": "trace-123",
    "tenant_id": "tenant-a",
    "user_id": "alice@example.com",
    "profile_id": "prof-9",
}


def build(kit: Any, spans: Any, scripts: dict[str, list[Any]], *entries: dict[str, Any]) -> Gateway:
    provider, _ = spans
    registry = kit.make_registry(*(entries or (kit.entry_data(),)))
    adapters = {pid: kit.FakeAdapter(registry.get(pid), s) for pid, s in scripts.items()}
    return Gateway(registry, adapters, tracer_provider=provider, sleep=kit.RecordingSleep())


def only_span(spans: Any) -> Any:
    _, exporter = spans
    finished = exporter.get_finished_spans()
    assert len(finished) == 1, [s.name for s in finished]
    return finished[0]


def assert_no_leak(span: Any, *values: str) -> None:
    blobs = [str(dict(span.attributes))] + [str(dict(e.attributes or {})) for e in span.events]
    for value in values:
        assert all(value not in blob for blob in blobs), value


async def test_success_span_has_genai_and_provcert_fields(kit: Any, spans: Any) -> None:
    gateway = build(kit, spans, {"acme": [kit.err(ErrorKind.SERVER_ERROR), kit.response("acme")]})
    await gateway.complete("acme", kit.request(**META))
    span = only_span(spans)
    attrs = dict(span.attributes)
    assert span.name == "chat m-1"
    expected = {
        "gen_ai.operation.name": "chat",
        # no telemetry_name registered: the provider id (the wire, OpenAI's, says nothing about who serves)
        "gen_ai.provider.name": "acme",
        "gen_ai.system": "acme",
        "gen_ai.request.model": "m-1",
        "gen_ai.response.model": "m-1",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 500,
        "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.response.id": "req-acme",
        "gen_ai.response.finish_reasons": ("stop",),
        "server.address": "api.acme.test",
        "provcert.trace_id": "trace-123",
        "provcert.tenant_id": "tenant-a",
        "provcert.user_id_hash": hashlib.sha256(b"alice@example.com").hexdigest()[:16],
        "provcert.profile_id": "prof-9",
        "provcert.provider_id": "acme",
        # 800 * 1.00 + 200 * 0.50 + 500 * 2.00 = 1900 per 1M tokens
        "provcert.cost_usd": "0.0019",
        "provcert.cost_priced": True,
        "provcert.retry_count": 1,
        "provcert.attempts": 2,
        "provcert.outcome": "success",
        "provcert.usage_source": "reported",
    }
    assert {k: attrs.get(k) for k in expected} == expected
    assert attrs["provcert.latency_ms"] >= 0
    assert "provcert.fallback_from" not in attrs and "provcert.ttft_ms" not in attrs
    assert span.status.status_code is not StatusCode.ERROR
    assert [e.name for e in span.events] == ["provcert.attempt", "provcert.attempt"]
    assert span.events[0].attributes["error.type"] == "server_error"
    assert_no_leak(span, "alice@example.com", "alice")
    assert len(hash_user_id("x")) == 16


async def test_error_span_records_kind_status_and_scrubbed_exception(kit: Any, spans: Any) -> None:
    secret = "tel-secret-value-0000"
    register_secret(secret)
    failure = ProviderError(
        ErrorKind.AUTH, f"key {secret} rejected", provider_id="acme", status=401, request_id="req-err"
    )
    gateway = build(kit, spans, {"acme": [failure]})
    try:
        await gateway.complete("acme", kit.request(**META))
    except ProviderError as raised:
        assert raised.kind is ErrorKind.AUTH
    span = only_span(spans)
    attrs = dict(span.attributes)
    assert attrs["error.type"] == "auth" and attrs["provcert.outcome"] == "error"
    assert attrs["gen_ai.response.id"] == "req-err" and attrs["provcert.retry_count"] == 0
    assert span.status.status_code is StatusCode.ERROR and span.status.description == "auth"
    exception_events = [e for e in span.events if e.name == "exception"]
    assert len(exception_events) == 1
    assert exception_events[0].attributes["exception.type"].endswith("ProviderError")
    assert_no_leak(span, secret)
    assert "cost_usd" not in str(attrs)


async def test_stream_span_records_ttft_and_usage(kit: Any, spans: Any) -> None:
    gateway = build(kit, spans, {"acme": [kit.stream_ok("acme", ["a", "b"])]})
    events = [e async for e in gateway.stream("acme", kit.request(**META))]
    assert sum(isinstance(e, TextDelta) for e in events) == 2
    attrs = dict(only_span(spans).attributes)
    assert 0 <= attrs["provcert.ttft_ms"] <= attrs["provcert.latency_ms"]
    assert attrs["provcert.outcome"] == "success" and attrs["provcert.stream"] is True
    assert attrs["gen_ai.usage.output_tokens"] == 500 and attrs["gen_ai.response.id"] == "req-acme"


async def test_stream_failure_after_output_is_an_error_span(kit: Any, spans: Any) -> None:
    from adapters.types import Start

    broken = [
        Start(provider_id="acme", model="m-1"),
        TextDelta(text="x"),
        kit.err(ErrorKind.STREAM_INTERRUPTED),
    ]
    gateway = build(kit, spans, {"acme": [broken]})
    try:
        async for _ in gateway.stream("acme", kit.request()):
            pass
    except ProviderError:
        pass
    attrs = dict(only_span(spans).attributes)
    assert attrs["error.type"] == "stream_interrupted" and "provcert.ttft_ms" in attrs


async def test_stream_stopped_by_caller_is_cancelled_not_success(kit: Any, spans: Any) -> None:
    gateway = build(kit, spans, {"acme": [kit.stream_ok("acme", ["a", "b", "c"])]})
    stream = gateway.stream("acme", kit.request())
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert dict(only_span(spans).attributes)["provcert.outcome"] == "cancelled"


async def test_fallback_and_unpriced_attributes(kit: Any, spans: Any) -> None:
    entries = (
        kit.entry_data(rollout={"status": "disabled"}, fallback=["backup"]),
        kit.entry_data(provider_id="backup", wire="nobody", base_url="https://backup.test/v1", models=[]),
    )
    gateway = build(kit, spans, {"backup": [kit.response("backup", model="mystery-1")]}, *entries)
    await gateway.complete("acme", kit.request(model="mystery-1"))
    attrs = dict(only_span(spans).attributes)
    assert attrs["provcert.fallback_from"] == "acme" and attrs["provcert.provider_id"] == "backup"
    assert attrs["server.address"] == "backup.test"
    assert attrs["provcert.cost_priced"] is False and "provcert.cost_usd" not in attrs


async def test_the_registered_telemetry_name_is_the_provider_name(kit: Any, spans: Any) -> None:
    """Groq speaks OpenAI's wire but is ``groq`` to OpenTelemetry: the name comes from the registry entry."""
    registry = kit.make_registry(kit.entry_data(telemetry_name="groq"))
    gateway = Gateway(
        registry,
        {"acme": kit.FakeAdapter(registry.get("acme"), [kit.response("acme")])},
        tracer_provider=spans[0],
    )
    await gateway.complete("acme", kit.request())
    attrs = dict(only_span(spans).attributes)
    assert (attrs["gen_ai.provider.name"], attrs["gen_ai.system"]) == ("groq", "groq")
