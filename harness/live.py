"""One live call, the way every live check and recording makes it: budgeted, gated, recorded, redacted.

``base_url`` sends the call somewhere other than the provider's registered API, e.g. the mock server acting as the
upstream, which is how the whole live path is tested on loopback: the cassette is written, scrubbed and budgeted
exactly as it would be against the real API (and its provenance says where it came from).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from adapters.base import Timeouts, shared_ssl_context
from adapters.errors import ProviderError, register_secret
from adapters.registry import ProviderEntry, load_adapter_class
from adapters.types import ChatRequest, ChatResponse, StreamEvent
from harness.budget import BudgetedAdapter, Ledger, SendGate
from harness.recording import Recorder, TapRecord


class _Static:
    def __init__(self, value: str) -> None:
        self.value = value

    async def resolve(self, ref: str) -> str:
        return self.value


@dataclass
class LiveResult:
    kind: Literal["complete", "stream"]
    response: ChatResponse | None = None
    events: list[StreamEvent] = field(default_factory=list)
    error: ProviderError | None = None
    #: what really came over the wire (status, headers, chunks), for the drift check
    wire: list[TapRecord] = field(default_factory=list)
    saved: bool = False
    booked: Any = None


async def live_call(
    entry: ProviderEntry,
    request: ChatRequest,
    *,
    kind: Literal["complete", "stream"],
    credential: str,
    ledger: Ledger,
    cassette: Path,
    record_mode: str = "none",
    base_url: str | None = None,
    source: str = "live",
    timeouts: Timeouts | None = None,
    label: str | None = None,
    probe: bool = False,
    headers: dict[str, str] | None = None,
) -> LiveResult:
    """Make one budgeted live call; BudgetRefused propagates (nothing was sent)."""
    register_secret(credential)
    gate = SendGate()
    recorder = Recorder(
        entry,
        cassette,
        record_mode=record_mode,
        base_url=base_url,
        secrets=(credential,),
        source=source,
        gate=gate,
    )
    transport = recorder.transport()
    client = httpx.AsyncClient(
        transport=transport, trust_env=False, headers=headers, verify=shared_ssl_context()
    )
    adapter = load_adapter_class(entry)(
        entry,
        base_url=base_url,
        http_client=client,
        credentials=_Static(credential),  # type: ignore[arg-type]
        timeouts=timeouts,
    )
    budgeted = BudgetedAdapter(adapter, entry, ledger, gate)
    result = LiveResult(kind)
    try:
        with recorder.recording(), recorder.call(request):
            try:
                if kind == "complete":
                    result.response = await budgeted.complete(request, label=label or "complete", probe=probe)
                else:
                    async for event in budgeted.stream(request, label=label or "stream", probe=probe):
                        result.events.append(event)
            except ProviderError as exc:
                result.error = exc
            finally:
                if budgeted.costs:
                    result.booked = budgeted.costs[-1]
                    recorder.book(budgeted.costs[-1])
    finally:
        await adapter.aclose()
        await client.aclose()
    result.wire = list(transport.capture.records)
    result.saved = recorder.saved
    return result
