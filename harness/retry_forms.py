"""Retry-hint forms for the certification checks (ERR-429, RTY-AFTER): which forms a provider's mock personality
sends, the scenario that asks for one, and what the mock's journal says the hint meant.

The forms come from the personalities themselves (:attr:`mockserver.personalities.base.Personality.retry_hint_forms`),
so a personality that learns a new form is certified on it with no edit to the suite.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from harness.checks import not_applicable
from mockserver.personalities import discover


def retry_forms(entry: Any) -> Mapping[str, str]:
    """The retry-hint forms the provider's mock personality declares (form -> the source it was taken from)."""
    personality = discover().get(entry.wire)
    return personality.retry_hint_forms if personality is not None else {}


#: Every form some personality declares: ERR-429 and RTY-AFTER run each one, so a new form needs no suite edit.
RETRY_FORMS = ["default", *dict.fromkeys(f for p in discover().values() for f in p.retry_hint_forms)]


def retry_scenario(entry: Any, form: str, retry_after: float) -> dict[str, Any]:
    """A rate-limit scenario whose hint takes ``form`` (the personality's default for ``default``); a form the
    provider does not send is not applicable, with the forms it does send as the reason."""
    scenario: dict[str, Any] = {"preset": "rate_limit", "retry_after": retry_after}
    if form == "default":
        return scenario
    forms = retry_forms(entry)
    if form not in forms:
        sends = f"it sends {', '.join(forms)}" if forms else "it sends no retry hint at all"
        not_applicable(f"{entry.wire} does not send a {form} retry hint ({sends})")
    return {**scenario, "retry_after_form": form}


def expected_wait(sent: Mapping[str, Any], *, now: float | None = None) -> tuple[float, float, str]:
    """(seconds the server's hint asked for, tolerance, how it was said) from the journal, never from a constant.

    The mock journals what its hint *means*: a relative wait, or for an absolute form (an HTTP-date, a reset
    timestamp) the deadline, which is compared with the clock now (the adapter read it a moment earlier, so it may
    be a little longer). A personality that journals no hint (an external one) is held to the scenario's value.
    """
    now = time.time() if now is None else now
    hint = sent.get("retry_hint")
    if hint is None:
        return float(sent["scenario"]["retry_after"]), 0.01, "retry_after (no hint journaled)"
    if hint.get("deadline") is not None:
        return float(hint["deadline"]) - now, 0.5, f"{hint['form']} deadline"
    return float(hint["seconds"]), 0.01, str(hint["form"])
