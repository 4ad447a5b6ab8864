"""Deliberately broken gateways (and rollout gates), one defect each, to prove the certification catches each defect.

The gateway decides fallback, rollout and telemetry, so its defects cannot be seeded through an adapter. Loaded as a
pytest plugin (``-p broken_gateways``) in a certification run, this module applies the defect named by the
``PROVCERT_BROKEN_GATEWAY`` environment variable; tests/certify/test_broken_gateways.py certifies each one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from adapters.gateway import Gateway
from adapters.registry import Rollout
from adapters.telemetry import PROVCERT_STREAM, CallSpan
from adapters.types import Cost, Usage


def falls_back_on_everything() -> None:
    """Serves any failure of the primary from the fallback, caller errors and bad keys included. Must fail:
    RTY-FALLBACK."""
    Gateway._falls_back = lambda self, err: not err.output_delivered  # type: ignore[method-assign]


def stream_span_loses_cost() -> None:
    """A stream's span carries no tokens and no cost. Must fail: TEL-FIELDS."""
    original = CallSpan.succeed

    def succeed(self: CallSpan, **kw: Any) -> None:
        if (getattr(self.span, "attributes", None) or {}).get(PROVCERT_STREAM):
            kw["usage"] = Usage(source=kw["usage"].source)
            kw["cost"] = Cost(priced=False)
        original(self, **kw)

    CallSpan.succeed = succeed  # type: ignore[method-assign]


def _gate(change: Callable[[Rollout, bool], bool]) -> None:
    original = Rollout.admits

    def admits(self: Rollout, provider_id: str, *, tenant_id: str | None, key: str | None) -> bool:
        return change(self, original(self, provider_id, tenant_id=tenant_id, key=key))

    Rollout.admits = admits  # type: ignore[method-assign]


def percentage_inverted() -> None:
    """A percentage rollout admits the complement of its bucket (30 % becomes 70 %). Must fail: REG-ROLLOUT."""
    _gate(lambda rollout, admitted: not admitted if rollout.status == "percentage" else admitted)


def canary_cohort_ignored() -> None:
    """A canary admits every tenant. Must fail: REG-ROLLOUT."""
    _gate(lambda rollout, admitted: True if rollout.status == "canary" else admitted)


def kill_switch_ignored() -> None:
    """A disabled provider still serves. Must fail: REG-ROLLOUT, RTY-FALLBACK (its 'disabled' case)."""
    _gate(lambda rollout, admitted: True if rollout.status == "disabled" else admitted)


DEFECTS: dict[str, Callable[[], None]] = {
    f.__name__: f
    for f in (
        falls_back_on_everything,
        stream_span_loses_cost,
        percentage_inverted,
        canary_cohort_ignored,
        kill_switch_ignored,
    )
}

_chosen = os.environ.get("PROVCERT_BROKEN_GATEWAY")
if _chosen:
    DEFECTS[_chosen]()
