"""The live-spend cap: a file-locked ledger that every pytest-xdist worker shares, and the guard around live calls.

Before a live call its worst case (an upper bound of the input tokens plus ``max_tokens``, at the model's registry or
genai-prices price) is *reserved*; a call whose worst case does not fit in what remains is refused before anything is
sent. After the call the reservation is *settled* with the real cost from the reported usage (the worst case when the
cost is unknown: an error, an estimated usage). Reservations count against the cap while calls are in flight, so
workers running at once can never overspend together. A call without ``max_tokens`` and a call on an unpriced model are
refused: their cost has no bound.

Below the adapter, :class:`SendGate` (checked by the live transport just before the socket) lets a request out only
against an armed reservation, so an adapter that sent a second, unbudgeted request would be stopped too.

The reservation only bounds an *honest* upstream. One that reports more output than ``max_tokens`` (or more input than
the request's bound), or a proxy that ignores ``max_tokens``, would otherwise be booked at whatever it claims, so the
cap could be passed by any amount. Every call is therefore checked against its own reservation (:class:`CallMeter`):

* a reported usage over ``max_tokens`` or over the input bound, or a cost over the reservation, is a *breach*;
* a stream is metered as it arrives (the project's four-characters-a-token estimate of the text and tool-call
  fragments received) and cut, its connection closed, once the estimate passes what an honest completion of
  ``max_tokens`` tokens can show (:func:`output_allowance`); a cut is a breach too;
* a breach is booked at what it cost (the reported usage, or an upper bound from the bytes received when the
  usage is unknown), persisted in the ledger so that every worker refuses every further live call, and raised as
  :class:`BudgetBreach`, which fails the check that made the call and, through the ledger, LIV-BUDGET.

A model priced at $0 is free: its calls book $0 and never exhaust the cap, but a breach of ``max_tokens`` on it is
still a breach. The ledger's lock is taken with a timeout (:data:`LOCK_TIMEOUT_SECONDS`): a lock held too long, or a
ledger file that is not a ledger, raises :class:`LedgerError` naming the file instead of hanging or crashing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.pricing import cost_for
from adapters.types import ChatRequest, ChatResponse, End, StreamEvent, TextDelta, ToolCallDelta, Usage
from adapters.usage import CHARS_PER_TOKEN
from harness.cassettes import write_atomic

if TYPE_CHECKING:
    from adapters.base import Adapter
    from adapters.registry import ProviderEntry

#: Extra input tokens assumed when tools are declared (providers inject a tool-use system prompt).
TOOLS_OVERHEAD_TOKENS = 500
PER_MESSAGE_TOKENS = 8
PRIMING_TOKENS = 16
#: How long a ledger operation waits for the file lock before giving up with a LedgerError (seconds). Every
#: operation holds the lock for a few milliseconds, so a lock held this long is a stuck or foreign process.
#: ``PROVCERT_LEDGER_LOCK_TIMEOUT`` overrides it (e.g. for a ledger on a slow network file system).
LOCK_TIMEOUT_SECONDS = 10.0
LOCK_TIMEOUT_ENV = "PROVCERT_LEDGER_LOCK_TIMEOUT"
#: An honest completion of ``max_tokens`` tokens is at most ``OUTPUT_SLACK * max_tokens + OUTPUT_SLACK_TOKENS``
#: tokens by the four-characters-a-token estimate: that is eight characters a token on average, which no
#: production tokenizer reaches over a completion (English runs near four, code near five), plus room for one
#: very long token when ``max_tokens`` is tiny. Past it, the output is over ``max_tokens`` whatever the tokenizer.
OUTPUT_SLACK = 2
OUTPUT_SLACK_TOKENS = 16


class BudgetRefused(Exception):
    """A live call refused before it was sent; the message says why and how much remains."""


class UnbudgetedSend(BaseException):
    """Raised by the gate when a request is about to leave without a reservation (never caught by adapters)."""


class BudgetBreach(Exception):
    """A live call cost more than its own reservation allows: booked, persisted as a breach, and every further
    live call in every worker is refused. Not a BudgetRefused: the call *was* sent and may have overspent."""


class LedgerError(RuntimeError):
    """The ledger cannot be used (its lock is held too long, its file is missing or not a ledger); names the file."""


def lock_timeout_default() -> float:
    """:data:`LOCK_TIMEOUT_SECONDS`, or ``PROVCERT_LEDGER_LOCK_TIMEOUT`` when set (a LedgerError if it is no number)."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return LOCK_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise LedgerError(f"{LOCK_TIMEOUT_ENV}={raw[:40]!r} is not a number of seconds >= 0")
    return value


def output_allowance(max_tokens: int) -> int:
    """The most estimated output tokens an honest completion of ``max_tokens`` tokens can show (see OUTPUT_SLACK)."""
    return OUTPUT_SLACK * max_tokens + OUTPUT_SLACK_TOKENS


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
    return _bounded_cost(entry, request, input_token_bound(request), request.max_tokens)


def _bounded_cost(
    entry: ProviderEntry, request: ChatRequest, input_tokens: int, output_tokens: int
) -> Decimal:
    """The most ``input_tokens`` in and ``output_tokens`` out can cost: priced with no cache hit and with every input
    token a cache hit, the dearer of the two (a registry or library may price cached input above plain input)."""
    costs = []
    for cached in (None, input_tokens):
        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            cached_tokens=cached,
        )
        cost = cost_for(entry, request.model, usage)
        if not cost.priced:
            raise BudgetRefused(
                f"refused a live call to {entry.provider_id}/{request.model}: the model has no price, "
                "so its cost cannot be bounded (add prices to the registry)"
            )
        costs.append(cost.total_usd)
    return max(costs)


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
    """One run's spend, in a JSON file guarded by an exclusive ``flock`` (one budget across xdist workers).

    ``lock_timeout`` bounds the wait for the lock (default :func:`lock_timeout_default`): a run must fail with a
    message naming the lock file, never hang, when another process holds it.
    """

    def __init__(self, path: Path, *, lock_timeout: float | None = None) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout_default() if lock_timeout is None else lock_timeout

    @classmethod
    def create(cls, path: Path, cap: Decimal, *, lock_timeout: float | None = None) -> Ledger:
        """A fresh ledger (the run's controller does this once; workers open it with ``Ledger(path)``)."""
        ledger = cls(path, lock_timeout=lock_timeout)
        with ledger._locked(fresh=True) as state:
            state.clear()
            state.update(
                cap=str(cap), spent="0", reserved={}, calls=[], refused=[], breaches=[], exhausted=None
            )
        return ledger

    def _acquire(self, fd: int) -> None:
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LedgerError(
                        f"{self._lock_path}: the live ledger's lock was held for more than {self.lock_timeout:g} s "
                        "(another provcert run or a stuck worker holds it); no live call was made"
                    ) from None
                time.sleep(0.01)

    def _load(self) -> dict[str, Any]:
        """The ledger's state, or a LedgerError naming the file and what is wrong with it."""
        if not self.path.exists():
            raise LedgerError(
                f"{self.path}: no live ledger here (the run's controller creates it when --live is on)"
            )
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise LedgerError(
                f"{self.path}: the live ledger is unreadable or not JSON ({type(exc).__name__}); "
                "delete it (a new run starts a fresh one)"
            ) from None
        problem = _ledger_problem(state)
        if problem is not None:
            raise LedgerError(
                f"{self.path}: not a provcert live ledger ({problem}); delete it (a new run starts a fresh one)"
            )
        state.setdefault("breaches", [])  # ledgers written before breaches were booked
        return dict(state)

    @contextlib.contextmanager
    def _locked(self, fresh: bool = False) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+") as lock:
            self._acquire(lock.fileno())
            try:
                state: dict[str, Any] = {} if fresh else self._load()
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

    def breaches(self) -> list[dict[str, Any]]:
        """Every breach booked in this run (any worker, any provider), oldest first."""
        return list(self.state()["breaches"])

    # ----- reserve and settle
    def reserve(
        self, entry: ProviderEntry, request: ChatRequest, label: str, *, probe: bool = False
    ) -> Reservation:
        """Book the call's worst case, or raise BudgetRefused before anything is sent.

        A regular refusal ends the live run (the remaining live checks are skipped); a ``probe`` (LIV-BUDGET asking
        on purpose for more than remains) is refused and logged without ending it. After a breach every call is
        refused, probes included: an upstream that broke its bound once is not trusted with another request.
        """
        try:
            worst = worst_case(entry, request)
        except BudgetRefused as exc:
            self._refuse(label, str(exc))
            raise
        with self._locked() as state:
            if state["breaches"]:
                first = state["breaches"][0]
                raise BudgetRefused(
                    f"refused {label}: live calls stopped after a budget breach by {first['provider']} "
                    f"({first['label']}: {first['reason']})"
                )
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

    def settle(
        self, reservation: Reservation, actual: Decimal | None, *, sent: bool, breach: str | None = None
    ) -> Decimal:
        """Release the reservation and book what the call cost: 0 if nothing was sent, the worst case if unknown.

        ``breach`` (why the call passed its own reservation) books the call as a breach: ``actual`` is then what it
        cost even beyond the reservation, and every later :meth:`reserve` in any worker is refused.
        """
        booked = Decimal(0) if not sent else (reservation.worst_case if actual is None else actual)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
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
                    "breach": breach is not None,
                    "worker": worker,
                }
            )
            if breach is not None:
                state["breaches"].append(
                    {
                        "label": reservation.label,
                        "provider": reservation.provider_id,
                        "model": reservation.model,
                        "reason": breach,
                        "worst_case": str(reservation.worst_case),
                        "booked": str(booked),
                        "worker": worker,
                    }
                )
            cap = Decimal(state["cap"])
            # a call that booked nothing (a free model, an unsent call) cannot have used the budget up: with a $0
            # cap or price, "spent >= cap" would otherwise end the live run for every later provider
            # and a breach is not an exhausted budget: it is its own stop, and LIV-BUDGET must fail on it, not skip
            if booked > 0 and spent >= cap and breach is None and not state.get("exhausted"):
                state["exhausted"] = f"live budget reached: spent {usd(spent)} of the {usd(cap)} cap"
        return booked

    def summary(self) -> list[str]:
        """The run's spend summary, one line each (a ledger that cannot be read says so, naming the file)."""
        try:
            state = self.state()
        except LedgerError as exc:
            return [str(exc)]
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
        lines += [
            f"  BREACH by {b['provider']} ({b['label']}): {b['reason']}; booked {usd(b['booked'])} against a "
            f"worst case of {usd(b['worst_case'])}; every further live call was refused"
            for b in state["breaches"]
        ]
        lines += [f"  refused: {r['reason']}" for r in state["refused"]]
        if state["reserved"]:
            held = sum((Decimal(v) for v in state["reserved"].values()), Decimal(0))
            lines.append(
                f"  {len(state['reserved'])} interrupted call(s) still held at their worst case ({usd(held)})"
            )
        if state.get("exhausted"):
            lines.append(f"  {state['exhausted']}")
        return lines


def _ledger_problem(state: Any) -> str | None:
    """What makes ``state`` not a ledger, or None (checked on every read: a raw KeyError helps nobody)."""
    if not isinstance(state, dict):
        return f"a JSON {type(state).__name__}, not an object"
    for key, kind in (("cap", str), ("spent", str), ("reserved", dict), ("calls", list), ("refused", list)):
        if not isinstance(state.get(key), kind):
            return f"{key!r} is missing or not a {kind.__name__}"
    if not isinstance(state.get("breaches", []), list):
        return "'breaches' is not a list"
    amounts = [state["cap"], state["spent"], *state["reserved"].values()]
    try:
        if not all(isinstance(a, str) and Decimal(a).is_finite() for a in amounts):
            return "an amount is not a finite decimal string"
    except InvalidOperation:
        return "an amount is not a decimal number"
    return None


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


@dataclass
class CallMeter:
    """What one live call has shown so far, checked against the call's own reservation.

    Fed the text and tool-call fragments as they arrive and the usage at the end; :meth:`over_allowance` says when a
    stream must be cut, :meth:`verdict` what to book and whether the call was a breach.
    """

    entry: ProviderEntry
    request: ChatRequest
    input_bound: int
    chars: int = 0
    bytes: int = 0
    usage: Usage | None = None
    cut: bool = False

    @property
    def max_tokens(self) -> int:
        return self.request.max_tokens or 0

    @property
    def estimated_output(self) -> int:
        """The output received so far by the project's estimate (four characters a token)."""
        return math.ceil(self.chars / CHARS_PER_TOKEN)

    def add_text(self, text: str) -> None:
        self.chars += len(text)
        self.bytes += len(text.encode("utf-8", errors="surrogatepass"))

    def add_event(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self.add_text(event.text)
        elif isinstance(event, ToolCallDelta):
            self.add_text((event.name or "") + event.arguments_fragment)
        elif isinstance(event, End):
            self.usage = event.usage

    def add_response(self, response: ChatResponse) -> None:
        self.add_text(response.text)
        for call in response.tool_calls:
            self.add_text(call.name + json.dumps(call.arguments))
        self.usage = response.usage

    def over_allowance(self) -> bool:
        """True once the text received is more than an honest completion of ``max_tokens`` tokens can be."""
        return self.estimated_output > output_allowance(self.max_tokens)

    def _upper_bound(self) -> Decimal:
        """What the call can have cost when its usage cannot be trusted: the input bound, and the larger of
        ``max_tokens`` and the bytes received as output (byte-level BPE never yields more tokens than bytes)."""
        return _bounded_cost(self.entry, self.request, self.input_bound, max(self.max_tokens, self.bytes))

    def verdict(self, worst: Decimal) -> tuple[Decimal | None, str | None]:
        """``(cost to book or None when unknown, breach reason or None)`` for a call that was sent.

        A breach books the most the call can have cost: its reported usage, and when the text ran past the allowance
        (or the stream was cut) at least the bound from the bytes received, whichever is more."""
        problems = []
        booked: list[Decimal] = []
        if self.cut or self.over_allowance():
            problems.append(
                f"about {self.estimated_output} tokens of output arrived ({self.chars} characters) for "
                f"max_tokens={self.max_tokens}"
                + ("; the stream was cut" if self.cut else " (a proxy or upstream that ignores max_tokens)")
            )
            booked.append(self._upper_bound())
        usage = self.usage
        actual: Decimal | None = None
        if usage is not None and usage.source == "reported":
            if usage.output_tokens > self.max_tokens:
                problems.append(
                    f"the upstream reported {usage.output_tokens} output tokens for max_tokens={self.max_tokens}"
                )
            if usage.input_tokens > self.input_bound:
                problems.append(
                    f"the upstream reported {usage.input_tokens} input tokens, "
                    f"over the request's bound of {self.input_bound}"
                )
            cost = cost_for(self.entry, self.request.model, usage)
            actual = cost.total_usd if cost.priced else None
            if actual is not None:
                booked.append(actual)
                if actual > worst and not problems:
                    problems.append(
                        f"its reported usage costs {usd(actual)}, over its reservation of {usd(worst)}"
                    )
        if not problems:
            return actual, None  # None (no reported usage, text within max_tokens): booked at the worst case
        return max(booked, default=self._upper_bound()), "; ".join(problems)


@contextlib.asynccontextmanager
async def _closing(events: AsyncIterator[StreamEvent]) -> AsyncIterator[AsyncIterator[StreamEvent]]:
    """Close an adapter's stream however the block ends (a cut included), so its HTTP response is closed now."""
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


class BudgetedAdapter:
    """Wraps an adapter for live calls: reserve, arm the gate for one request, call and meter, settle with the real
    cost; a call that passed its own reservation is booked as a breach and raised as :class:`BudgetBreach`."""

    def __init__(self, adapter: Adapter, entry: ProviderEntry, ledger: Ledger, gate: SendGate | None = None):
        self.adapter = adapter
        self.entry = entry
        self.ledger = ledger
        self.gate = gate
        self.costs: list[Decimal] = []

    @contextlib.asynccontextmanager
    async def _guard(self, request: ChatRequest, label: str, probe: bool) -> AsyncIterator[CallMeter]:
        reservation = self.ledger.reserve(self.entry, request, label, probe=probe)
        sent_before = self.gate.sent if self.gate else 0
        if self.gate:
            self.gate.arm(1)
        meter = CallMeter(self.entry, request, input_token_bound(request))
        breach: str | None = None
        try:
            try:
                yield meter
            except UnbudgetedSend as exc:
                raise BudgetRefused(str(exc)) from None
            finally:
                if self.gate:
                    self.gate.disarm()
                sent = self.gate.sent > sent_before if self.gate else True
                actual, breach = meter.verdict(reservation.worst_case) if sent else (None, None)
                self.costs.append(self.ledger.settle(reservation, actual, sent=sent, breach=breach))
        finally:
            if breach is not None:
                raise BudgetBreach(
                    f"live budget breach: {label}: {breach}; booked {usd(self.costs[-1])} against its reservation "
                    f"of {usd(reservation.worst_case)}; every further live call is refused"
                )

    async def complete(
        self, request: ChatRequest, *, label: str = "complete", probe: bool = False
    ) -> ChatResponse:
        async with self._guard(request, f"{self.entry.provider_id} {label}", probe) as meter:
            response = await self.adapter.complete(request)
            meter.add_response(response)
        return response

    async def stream(
        self, request: ChatRequest, *, label: str = "stream", probe: bool = False
    ) -> AsyncIterator[StreamEvent]:
        # aclosing: cutting the stream closes the adapter's generator, and with it the HTTP response
        async with (
            self._guard(request, f"{self.entry.provider_id} {label}", probe) as meter,
            _closing(self.adapter.stream(request)) as events,
        ):
            async for event in events:
                meter.add_event(event)
                if meter.over_allowance():
                    meter.cut = True
                    break
                yield event
