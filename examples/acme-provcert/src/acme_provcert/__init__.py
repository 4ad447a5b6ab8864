"""Acme for provcert: a provider that lives outside the provcert repository and is certified the same way.

The entry points in ``pyproject.toml`` point here: ``REGISTRY_PATH`` (group ``provcert.registries``) is the
providers YAML that registers ``acme``, ``SCHEMAS_DIR`` (group ``provcert.schemas``) holds
``acme.request.schema.json``, ``CASSETTES_DIR`` (group ``provcert.cassettes``) holds its golden cassettes,
and :class:`acme_provcert.personality.AcmePersonality` (group
``provcert.personalities``) is mounted by the mock server under ``/acme``.
"""

from __future__ import annotations

from pathlib import Path

REGISTRY_PATH = Path(__file__).with_name("providers.yaml")
SCHEMAS_DIR = Path(__file__).with_name("schemas")
CASSETTES_DIR = Path(__file__).with_name("cassettes") / "acme"
