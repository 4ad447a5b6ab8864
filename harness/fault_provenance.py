"""Which certification checks rest on wire forms nobody has verified against the real provider.

A check is only as good as the mock's imitation of the provider: if the mock's 403 body is a guess, ERR-403 proves the
adapter maps the guess. Every personality therefore says where each fault body comes from
(:attr:`~mockserver.personalities.base.Personality.fault_sources`: a real recording or a public source) or marks it
unverified (:attr:`~mockserver.personalities.base.Personality.unverified_faults`, with the reason, also for retry-hint
forms as ``retry:<form>``). :func:`unverified_checks` turns that into the list a certificate shows, so a reader knows
which passes to trust less.
"""

from __future__ import annotations

from typing import get_args

from mockserver.personalities import discover
from mockserver.scenarios import FaultKind

#: Fault kind -> the checks whose verdict depends on how that fault looks on the wire.
FAULT_CHECKS: dict[str, tuple[str, ...]] = {
    "rate_limit": ("ERR-429", "RTY-AFTER"),
    "quota_exhausted": ("ERR-QUOTA", "RTY-NONRETRY"),
    "auth_error": ("ERR-401", "RTY-NONRETRY"),
    "permission_denied": ("ERR-403",),
    "not_found": ("ERR-404",),
    "bad_request": ("ERR-400", "RTY-NONRETRY"),
    "context_length": ("ERR-CONTEXT", "RTY-NONRETRY"),
    "content_filter": ("ERR-FILTER",),
    "server_error": ("ERR-5XX", "RTY-BACKOFF", "RTY-STREAM"),
    "bad_gateway": ("ERR-5XX",),
    "service_unavailable": ("ERR-5XX", "RTY-FALLBACK"),
    "gateway_timeout": ("ERR-5XX",),
    "overloaded": ("ERR-OVERLOADED",),
}

#: A retry-hint form is what ERR-429 parses and RTY-AFTER waits for.
RETRY_FORM_CHECKS: tuple[str, ...] = ("ERR-429", "RTY-AFTER")

ALL_FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


def checks_resting_on(key: str) -> tuple[str, ...]:
    """The checks a fault kind (``rate_limit``) or a retry-hint form (``retry:http_date``) is behind."""
    if key.startswith("retry:"):
        return RETRY_FORM_CHECKS
    return FAULT_CHECKS.get(key, ())


def unverified_checks(wire: str) -> dict[str, list[str]]:
    """Check id -> why it rests on an unverified wire form (``"<fault or retry:form>: <reason>"``), for the mock
    personality ``wire``; empty when the personality is unknown or every form it renders is sourced."""
    personality = discover().get(wire)
    if personality is None:
        return {}
    out: dict[str, list[str]] = {}
    for key, why in sorted(personality.unverified_faults.items()):
        for check_id in checks_resting_on(key):
            out.setdefault(check_id, []).append(f"{key}: {why}")
    return dict(sorted(out.items()))
