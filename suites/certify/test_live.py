"""LIV: live checks, only with --live and CERTIFY_LIVE=1; never by accident."""

from __future__ import annotations

from harness.checks import check, not_applicable

REASON = "live checks need --live and CERTIFY_LIVE=1 (live recording is not available in this version)"


@check("LIV-SMOKE")
def test_live_smoke(provider_id):
    not_applicable(REASON)


@check("LIV-BUDGET")
def test_live_budget(provider_id):
    not_applicable(REASON)
