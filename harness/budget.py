"""The live-spend cap: a file-locked ledger that every pytest-xdist worker shares, and the guard around live calls.

Before a live call its worst case (an upper bound of the input tokens plus ``max_tokens``, at the model's registry or
genai-prices price) is *reserved*; a call whose worst case does not fit in what remains is refused before anything is
sent. After the call the reservation is *settled* with the real cost from the reported usage (the worst case when the
cost is unknown: an error, an estimated usage). Reservations count against the cap while calls are in flight, so
workers running at once can never overspend together. A call without ``max_tokens`` and a call on an unpriced model are
refused: their cost has no bound.

Below the adapter, :class:`SendGate` (checked by the live transport just before the socket) lets a request out only
against an armed reservation, so an adapter that sent a second, unbudgeted request would be stopped too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.pricing import cost_for
from adapters.types import ChatRequest, ChatResponse, End, StreamEvent, Usage
from harness.cassettes import write_atomic

if TYPE_CHECKING:
    from adapters.base import Adapter
    from adapters.registry import ProviderEntry

#: Extra input tokens assumed when tools are declared (providers inject a tool-use system prompt).
TOOLS_OVERHEAD_TOKENS = 500
PER_MESSAGE_TOKENS = 8
PRIMING_TOKENS = 16


class BudgetRefused(Exception):
    """A live call refused before it was sent; the message says why and how much remains."""


class UnbudgetedSend(BaseException):
    """Raised by the gate when a request is about to leave without a reservation (never caught by adapters)."""


def input_token_bound(request: ChatRequest) -> int:
    """An upper bound of the input tokens: byte-level BPE never yields more tokens than UTF-8 bytes."""
    total = PRIMING_TOKENS
    for message in request.messages:
        total += PER_MESSAGE_TOKENS + len(message.content.encode()) + len((message.name or "").encode())
        for call in message.tool_calls:
            total += PER_MESSAGE_TOKENS + len(call.name.encode()) + len(json.dumps(call.arguments).encode())
    if request.tools:
        total += TOOLS_OVERHEAD_TOKENS
        total += sum(len(json.dumps(t.model_dump()).encode()) for t in request.tools)
    return total


def worst_case(entry: ProviderEntry, request: ChatRequest) -> Decimal:
    """The most a call can cost; BudgetRefused when it cannot be bounded."""
    if request.max_tokens is None:
        raise BudgetRefused(
            f"refused a live call to {entry.provider_id}/{request.model} without max_tokens: its cost has no bound"
        )
    bound = input_token_bound(request)
    usage = Usage(
        input_tokens=bound, output_tokens=request.max_tokens, total_tokens=bound + request.max_tokens
    )
    cost = cost_for(entry, request.model, usage)
    if not cost.priced:
        raise BudgetRefused(
            f"refused a live call to {entry.provider_id}/{request.model}: the model has no price, "
            "so its cost cannot be bounded (add prices to the registry)"
        )
    return cost.total_usd


@dataclass(frozen=True)
class Reservation:
    id: str
    label: str
    provider_id: str
    model: str
    worst_case: Decimal


def usd(value: Decimal | str) -> str:
    return f"${Decimal(value):.6f}"


class Ledger:
    """One run's spend, in a JSON file guarded by an exclusive ``flock`` (one budget across xdist workers)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @classmethod
    def create(cls, path: Path, cap: Decimal) -> Ledger:
        """A fresh ledger (the run's controller does this once; workers open it with ``Ledger(path)``)."""
        ledger = cls(path)
        with ledger._locked(fresh=True) as state:
            state.clear()
            state.update(cap=str(cap), spent="0", reserved={}, calls=[], refused=[], exhausted=None)
        return ledger

    @contextlib.contextmanager
    def _locked(self, fresh: bool = False) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                if fresh or not self.path.exists():
                    state: dict[str, Any] = {}
                else:
                    state = json.loads(self.path.read_text(encoding="utf-8"))
                before = json.dumps(state, sort_keys=True)
                yield state
                if json.dumps(state, sort_keys=True) != before:
                    write_atomic(self.path, json.dumps(state, indent=2) + "\n")
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    # ----- queries
    def state(self) -> dict[str, Any]:
        with self._locked() as state:
            copy: dict[str, Any] = json.loads(json.dumps(state))
        return copy

    @property
    def cap(self) -> Decimal:
        return Decimal(self.state()["cap"])

    @property
    def spent(self) -> Decimal:
        return Decimal(self.state()["spent"])

    def exhausted(self) -> str | None:
        """Why the budget is used up (then the remaining live checks are skipped), or None."""
        return self.state().get("exhausted")

    # ----- reserve and settle
    def reserve(
        self, entry: ProviderEntry, request: ChatRequest, label: str, *, probe: bool = False
    ) -> Reservation:
        """Book the call's worst case, or raise BudgetRefused before anything is sent.

        A regular refusal ends the live run (the remaining live checks are skipped); a ``probe`` (LIV-BUDGET asking
        on purpose for more than remains) is refused and logged without ending it.
        """
        try:
            worst = worst_case(entry, request)
        except BudgetRefused as exc:
            self._refuse(label, str(exc))
            raise
        with self._locked() as state:
            if state.get("exhausted"):
                raise BudgetRefused(f"refused {label}: {state['exhausted']}")
            cap, spent = Decimal(state["cap"]), Decimal(state["spent"])
            in_flight = sum((Decimal(v) for v in state["reserved"].values()), Decimal(0))
            remaining = cap - spent - in_flight
            if worst > remaining:
                reason = (
                    f"refused {label} before sending: its worst case {usd(worst)} exceeds what remains of the "
                    f"{usd(cap)} cap ({usd(remaining)}; spent {usd(spent)}, in flight {usd(in_flight)})"
                )
                state["refused"].append(
                    {"label": label, "worst_case": str(worst), "reason": reason, "probe": probe}
                )
                if not probe:
                    state["exhausted"] = (
                        f"live budget reached: spent {usd(spent)} of the {usd(cap)} cap; the next call "
                        f"({label}, worst case {usd(worst)}) did not fit, so the remaining live checks are skipped"
                    )
                refused = reason  # raised once the ledger is written
            else:
                refused = None
                reservation = Reservation(uuid.uuid4().hex, label, entry.provider_id, request.model, worst)
                state["reserved"][reservation.id] = str(worst)
        if refused is not None:
            raise BudgetRefused(refused)
        return reservation

    def _refuse(self, label: str, reason: str) -> None:
        with self._locked() as state:
            state["refused"].append({"label": label, "worst_case": None, "reason": f"{label}: {reason}"})

    def settle(self, reservation: Reservation, actual: Decimal | None, *, sent: bool) -> Decimal:
        """Release the reservation and book what the call cost: 0 if nothing was sent, the worst case if unknown."""
        booked = Decimal(0) if not sent else (reservation.worst_case if actual is None else actual)
        with self._locked() as state:
            state["reserved"].pop(reservation.id, None)
            spent = Decimal(state["spent"]) + booked
            state["spent"] = str(spent)
            state["calls"].append(
                {
                    "label": reservation.label,
                    "provider": reservation.provider_id,
                    "model": reservation.model,
                    "worst_case": str(reservation.worst_case),
                    "booked": str(booked),
                    "actual_known": actual is not None,
                    "sent": sent,
                    "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
                }
            )
            cap = Decimal(state["cap"])
            if spent >= cap and not state.get("exhausted"):
                state["exhausted"] = f"live budget reached: spent {usd(spent)} of the {usd(cap)} cap"
        return booked

    def summary(self) -> list[str]:
        """The run's spend summary, one line each."""
        state = self.state()
        if not state:
            return ["no live spend recorded"]
        cap, spent = Decimal(state["cap"]), Decimal(state["spent"])
        sent = [c for c in state["calls"] if c["sent"]]
        lines = [
            f"live spend {usd(spent)} of the {usd(cap)} cap ({usd(cap - spent)} left): "
            f"{len(sent)} call(s) sent, {len(state['refused'])} refused before sending"
        ]
        by_provider: dict[str, Decimal] = {}
        for call in sent:
            by_provider[call["provider"]] = by_provider.get(call["provider"], Decimal(0)) + Decimal(
                call["booked"]
            )
        lines += [f"  {provider}: {usd(amount)}" for provider, amount in sorted(by_provider.items())]
        lines += [f"  refused: {r['reason']}" for r in state["refused"]]
        if state["reserved"]:
            held = sum((Decimal(v) for v in state["reserved"].values()), Decimal(0))
            lines.append(
                f"  {len(state['reserved'])} interrupted call(s) still held at their worst case ({usd(held)})"
            )
        if state.get("exhausted"):
            lines.append(f"  {state['exhausted']}")
        return lines


class SendGate:
    """Lets a request reach the network only against an armed reservation (checked by the live transport)."""

    def __init__(self) -> None:
        self.armed = 0
        self.sent = 0

    def arm(self, count: int = 1) -> None:
        self.armed += count

    def disarm(self) -> None:
        self.armed = 0

    def consume(self, what: str) -> None:
        if self.armed <= 0:
            raise UnbudgetedSend(f"refused to send {what}: no live-budget reservation covers it")
        self.armed -= 1
        self.sent += 1


class BudgetedAdapter:
    """Wraps an adapter for live calls: reserve, arm the gate for one request, call, settle with the real cost."""

    def __init__(self, adapter: Adapter, entry: ProviderEntry, ledger: Ledger, gate: SendGate | None = None):
        self.adapter = adapter
        self.entry = entry
        self.ledger = ledger
        self.gate = gate
        self.costs: list[Decimal] = []

    def _cost(self, request: ChatRequest, usage: Usage) -> Decimal | None:
        if usage.source != "reported":
            return None
        cost = cost_for(self.entry, request.model, usage)
        return cost.total_usd if cost.priced else None

    @contextlib.asynccontextmanager
    async def _guard(
        self, request: ChatRequest, label: str, probe: bool
    ) -> AsyncIterator[list[Decimal | None]]:
        reservation = self.ledger.reserve(self.entry, request, label, probe=probe)
        sent_before = self.gate.sent if self.gate else 0
        if self.gate:
            self.gate.arm(1)
        actual: list[Decimal | None] = [None]
        try:
            yield actual
        except UnbudgetedSend as exc:
            raise BudgetRefused(str(exc)) from None
        finally:
            if self.gate:
                self.gate.disarm()
            sent = self.gate.sent > sent_before if self.gate else True
            self.costs.append(self.ledger.settle(reservation, actual[0], sent=sent))

    async def complete(
        self, request: ChatRequest, *, label: str = "complete", probe: bool = False
    ) -> ChatResponse:
        async with self._guard(request, f"{self.entry.provider_id} {label}", probe) as actual:
            response = await self.adapter.complete(request)
            actual[0] = self._cost(request, response.usage)
        return response

    async def stream(
        self, request: ChatRequest, *, label: str = "stream", probe: bool = False
    ) -> AsyncIterator[StreamEvent]:
        async with self._guard(request, f"{self.entry.provider_id} {label}", probe) as actual:
            async for event in self.adapter.stream(request):
                if isinstance(event, End):
                    actual[0] = self._cost(request, event.usage)
                yield event
