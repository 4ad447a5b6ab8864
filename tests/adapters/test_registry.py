"""Registry loading: the packaged file is valid; a bad file is reported completely, with paths."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.base import Timeouts
from adapters.registry import (
    AdapterLoadError,
    Registry,
    RegistryError,
    UnknownProviderError,
    load_adapter_class,
    load_registry,
    registry_from_data,
    validate_entry,
)


def write(tmp_path: Path, providers: list[dict[str, Any]], name: str = "providers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"providers": providers}, sort_keys=False))
    return path


def test_packaged_registry_is_valid_and_has_openai() -> None:
    registry = load_registry()
    entry = registry.get("openai")
    assert entry.base_url == "https://api.openai.com/v1"
    assert entry.credential_ref == "env://OPENAI_API_KEY"
    assert entry.mock_path == "/openai/v1"
    assert entry.allowed_hosts == ("api.openai.com",)
    assert entry.timeouts.as_timeouts() == Timeouts(connect=5, read=60, stream_idle=30)
    assert entry.retry.max_attempts == 3 and entry.retry.retry_after_cap == 60
    mini = entry.model("gpt-4o-mini")
    assert mini is not None
    assert (mini.input_per_1m, mini.output_per_1m, mini.cached_input_per_1m) == (
        Decimal("0.15"),
        Decimal("0.60"),
        Decimal("0.075"),
    )
    unpriced = entry.model("gpt-4.1-mini")
    assert unpriced is not None and not unpriced.priced
    assert entry.capabilities.streaming and entry.capabilities.reasoning_tokens
    assert entry.rollout.status == "enabled" and entry.fallback == ("groq",)


def test_every_problem_is_listed_with_its_path_and_the_file_name(tmp_path: Path, kit: Any) -> None:
    bad_timeouts = kit.entry_data(provider_id="one", timeouts={"connect": 1, "read": 0})
    bad_id = kit.entry_data(provider_id="Bad_Id")
    bad_retry = kit.entry_data(provider_id="three", retry={**kit.entry_data()["retry"], "max_attempts": 11})
    bad_rollout = kit.entry_data(provider_id="four", rollout={"status": "sometimes"}, fallback=["ghost"])
    path = write(tmp_path, [bad_timeouts, bad_id, bad_retry, bad_rollout])

    with pytest.raises(RegistryError) as info:
        load_registry(path)

    message = str(info.value)
    assert str(path) in message
    paths = [p for p, _ in info.value.problems]
    for expected in (
        "providers[0].timeouts.read",
        "providers[0].timeouts.stream_idle",
        "providers[1].provider_id",
        "providers[2].retry.max_attempts",
        "providers[3].rollout.status",
        "providers[3].fallback[0]",
    ):
        assert expected in paths, (expected, message)
        assert expected in message
    assert "kebab-case" in message
    assert "unknown provider 'ghost'" in message


def test_literal_key_is_rejected_without_echoing_it(tmp_path: Path, kit: Any) -> None:
    secret = "sk-proj-ABCDEFGHIJKLMNOPQRSTUV123456"
    path = write(
        tmp_path,
        [kit.entry_data(credential_ref=secret), kit.entry_data(provider_id="b", credential_ref="env://sk-x")],
    )
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert "providers[0].credential_ref" in message and "never a literal secret" in message
    assert "providers[1].credential_ref" in message
    assert secret not in message and "sk-x" not in message


@pytest.mark.parametrize(
    "ref", ["env://ACME_KEY", "file://secrets/acme.key", "file:///run/s/k", "vault://kv/acme#k", None]
)
def test_credential_references_accepted(ref: str | None, kit: Any) -> None:
    registry = kit.make_registry(kit.entry_data(credential_ref=ref))
    assert registry.get("acme").credential_ref == ref


def test_cross_entry_rules(tmp_path: Path, kit: Any) -> None:
    entries = [
        kit.entry_data(provider_id="dup"),
        kit.entry_data(provider_id="dup"),
        kit.entry_data(provider_id="self", fallback=["self"]),
        kit.entry_data(provider_id="plain", base_url="http://api.plain.test/v1"),
        kit.entry_data(provider_id="local", base_url="http://localhost:8080/v1"),
    ]
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, entries))
    problems = dict(info.value.problems)
    assert "duplicate provider_id 'dup'" in problems["providers[1].provider_id"]
    assert "itself" in problems["providers[2].fallback[0]"]
    assert "https" in problems["providers[3].base_url"]
    assert not any(p.startswith("providers[4]") for p in problems)


def test_pydantic_level_rules_are_reported_with_paths(tmp_path: Path, kit: Any) -> None:
    retry = {"max_attempts": 2, "initial_backoff": 5, "max_backoff": 1, "retry_after_cap": 1}
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, [kit.entry_data(retry=retry)]))
    assert info.value.problems == [("providers[0].retry", "max_backoff must be >= initial_backoff")]


def test_yaml_syntax_and_duplicate_keys_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers:\n  - provider_id: a\n    provider_id: b\n")
    with pytest.raises(
        RegistryError, match=r"(?s)broken\.yaml.*line 3, column 5: found duplicate key 'provider_id'"
    ):
        load_registry(broken)
    missing = tmp_path / "missing.yaml"
    with pytest.raises(RegistryError, match=r"missing\.yaml"):
        load_registry(missing)


def test_unknown_provider_lists_known_ids(kit: Any) -> None:
    registry = kit.make_registry(kit.entry_data(), kit.entry_data(provider_id="other"))
    with pytest.raises(UnknownProviderError) as info:
        registry.get("nope")
    assert "unknown provider 'nope'" in str(info.value)
    assert "acme, other" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_defaults_ids_and_merge(kit: Any) -> None:
    base = kit.make_registry(
        kit.entry_data(), kit.entry_data(provider_id="b", mock_path="/custom", allowed_hosts=["x.test"])
    )
    acme = base.get("acme")
    assert acme.mock_path == "/openai/v1" and acme.allowed_hosts == ("api.acme.test",)
    assert base.get("b").mock_path == "/custom" and base.get("b").allowed_hosts == ("x.test",)
    assert base.ids() == ["acme", "b"] and len(base) == 2 and "b" in base

    overlay = kit.make_registry(kit.entry_data(display_name="Acme v2"), kit.entry_data(provider_id="c"))
    merged = base.merge(overlay)
    assert merged.ids() == ["acme", "b", "c"]
    assert merged.get("acme").display_name == "Acme v2"
    assert base.get("acme").display_name == "Acme AI"


def test_merge_rechecks_fallbacks(kit: Any) -> None:
    base = kit.make_registry(kit.entry_data(provider_id="b"), kit.entry_data(fallback=["b"]))
    with pytest.raises(RegistryError, match="unknown provider 'b'"):
        Registry([base.get("acme")], source="x")


def test_prices_parse_to_exact_decimals(kit: Any) -> None:
    registry = kit.make_registry(
        kit.entry_data(models=[{"id": "f", "input_per_1m": 0.15, "output_per_1m": 3}])
    )
    model = registry.get("acme").model("f")
    assert model is not None
    assert model.input_per_1m == Decimal("0.15") and str(model.input_per_1m) == "0.15"
    assert model.output_per_1m == Decimal(3)


def test_half_priced_model_rejected(kit: Any) -> None:
    with pytest.raises(RegistryError, match=r"providers\[0\]\.models\[0\]"):
        kit.make_registry(kit.entry_data(models=[{"id": "x", "input_per_1m": "1"}]))


def test_schema_requires_rollout_and_limits(kit: Any) -> None:
    data = kit.entry_data()
    for key in ("rollout", "fallback", "timeouts", "retry"):
        del data[key]
    with pytest.raises(RegistryError) as info:
        registry_from_data({"providers": [data]})
    paths = {p for p, _ in info.value.problems}
    assert paths == {f"providers[0].{k}" for k in ("rollout", "fallback", "timeouts", "retry")}


def test_rollout_admission(kit: Any) -> None:
    registry = kit.make_registry(
        kit.entry_data(provider_id="off", rollout={"status": "disabled"}),
        kit.entry_data(provider_id="canary", rollout={"status": "canary", "canary_tenants": ["t1"]}),
        kit.entry_data(provider_id="half", rollout={"status": "percentage", "percentage": 50}),
        kit.entry_data(provider_id="zero", rollout={"status": "enabled", "percentage": 0}),
    )
    assert not registry.get("off").rollout.admits("off", tenant_id="t1", key="t1")
    assert not registry.get("zero").rollout.admits("zero", tenant_id="t1", key="t1")
    canary = registry.get("canary").rollout
    assert canary.admits("canary", tenant_id="t1", key="t1")
    assert not canary.admits("canary", tenant_id="t2", key="t2")
    half = registry.get("half").rollout
    admitted = [half.admits("half", tenant_id=None, key=f"tenant-{i}") for i in range(1000)]
    assert 400 < sum(admitted) < 600
    assert admitted == [half.admits("half", tenant_id=None, key=f"tenant-{i}") for i in range(1000)]


def test_load_adapter_class(kit: Any) -> None:
    registry = load_registry()
    cls = load_adapter_class(registry.get("openai"))
    assert cls.__name__ == "OpenAIAdapter"

    alias = kit.make_registry(kit.entry_data(adapter="openai-compatible")).get("acme")
    assert alias.adapter_path == "adapters.openai:OpenAICompatibleAdapter"

    for adapter, pattern in [
        ("adapters.nope_missing:X", "cannot import module 'adapters.nope_missing'"),
        ("adapters.types:NoSuchClass", "has no attribute 'NoSuchClass'"),
        ("adapters.types:ChatRequest", "not a subclass of adapters.base.Adapter"),
    ]:
        entry = kit.make_registry(kit.entry_data(adapter=adapter)).get("acme")
        with pytest.raises(AdapterLoadError, match=pattern):
            load_adapter_class(entry)


def test_overlay_file_may_fall_back_to_packaged_providers(tmp_path: Path, kit: Any) -> None:
    overlay = load_registry(write(tmp_path, [kit.entry_data(fallback=["openai"])]))
    assert "openai" in overlay.external_ids
    merged = load_registry().merge(overlay)
    assert merged.get("acme").fallback == ("openai",) and merged.external_ids == frozenset()
    with pytest.raises(RegistryError, match="unknown provider 'nowhere'"):
        load_registry(write(tmp_path, [kit.entry_data(fallback=["nowhere"])], name="o2.yaml"))


def test_validate_entry_for_single_provider_checks(kit: Any) -> None:
    assert validate_entry(load_registry().get("openai")) == []
    assert (
        validate_entry(kit.entry_data(fallback=["elsewhere"])) == []
    )  # resolving fallbacks needs the registry
    raw = kit.entry_data(credential_ref="sk-abcdefghijklmnopqrstuvwx", fallback=["acme"])
    del raw["timeouts"]["read"]
    problems = validate_entry(raw)
    assert any(p.startswith("credential_ref: ") and "literal secret" in p for p in problems)
    assert "timeouts.read: required field is missing" in problems
    assert "fallback[0]: a provider cannot fall back to itself" in problems
    assert all("sk-abcdefghij" not in p for p in problems)


def test_with_entries_adds_and_replaces(kit: Any) -> None:
    base = kit.make_registry(kit.entry_data())
    acme = base.get("acme")
    backup = acme.model_copy(update={"provider_id": "acme-backup", "fallback": []})
    primary = acme.model_copy(update={"fallback": ["acme-backup"]})
    derived = base.with_entries(primary, backup)
    assert derived.ids() == ["acme", "acme-backup"] and derived.get("acme").fallback == ["acme-backup"]
    assert base.get("acme").fallback == ()
    with pytest.raises(RegistryError, match="unknown provider 'ghost'"):
        base.with_entries(acme.model_copy(update={"fallback": ["ghost"]}))
