"""Credentials: resolved at call time (rotation picked up), pluggable schemes, errors that never leak."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.credentials import CredentialError, CredentialResolver, default_resolver, register_scheme
from adapters.errors import ErrorKind, ProviderError, scrub


async def test_env_rotation_is_picked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = CredentialResolver()
    monkeypatch.setenv("PROVCERT_TEST_KEY", "first-secret-value")
    assert await resolver.resolve("env://PROVCERT_TEST_KEY") == "first-secret-value"
    monkeypatch.setenv("PROVCERT_TEST_KEY", "rotated-secret-value\n")
    assert await resolver.resolve("env://PROVCERT_TEST_KEY") == "rotated-secret-value"


async def test_file_rotation_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = CredentialResolver()
    key = tmp_path / "key.txt"
    key.write_text("file-secret-one\n")
    assert await resolver.resolve(f"file://{key}") == "file-secret-one"
    key.write_text("file-secret-two\r\n")
    assert await resolver.resolve(f"file://{key}") == "file-secret-two"
    monkeypatch.chdir(tmp_path)
    assert await resolver.resolve("file://key.txt") == "file-secret-two"


async def test_resolved_values_are_scrubbed_from_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVCERT_ODD_KEY", "odd%format%credential%42")
    value = await CredentialResolver().resolve("env://PROVCERT_ODD_KEY")
    assert "odd%format" not in scrub(f"server said: bad key {value}")
    error = ProviderError(ErrorKind.AUTH, f"rejected {value}", provider_id="acme")
    assert value not in str(error) and value not in repr(error)


async def test_missing_env_and_file_name_the_ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = CredentialResolver()
    monkeypatch.delenv("PROVCERT_ABSENT", raising=False)
    with pytest.raises(CredentialError, match=r"PROVCERT_ABSENT.*not set") as info:
        await resolver.resolve("env://PROVCERT_ABSENT")
    assert info.value.kind is ErrorKind.AUTH and not info.value.retryable
    assert isinstance(info.value, ProviderError)
    with pytest.raises(CredentialError, match="does not exist"):
        await resolver.resolve(f"file://{tmp_path / 'nope'}")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(CredentialError, match="is empty"):
        await resolver.resolve(f"file://{empty}")


async def test_literal_value_is_not_echoed() -> None:
    secret = "sk-live-THIS-IS-A-PASTED-KEY-123456"
    with pytest.raises(CredentialError) as info:
        await CredentialResolver().resolve(secret)
    assert secret not in str(info.value) and "not a reference" in str(info.value)


async def test_vault_unregistered_then_registered() -> None:
    resolver = CredentialResolver()
    with pytest.raises(CredentialError) as info:
        await resolver.resolve("vault://kv/acme#api_key")
    message = str(info.value)
    assert "no resolver for scheme 'vault'" in message and "register_scheme" in message
    assert "vault://kv/acme#api_key" in message

    seen: list[str] = []

    async def vault(target: str) -> str:
        seen.append(target)
        return "vault-secret-value"

    resolver.register_scheme("vault", vault)
    assert await resolver.resolve("vault://kv/acme#api_key") == "vault-secret-value"
    assert seen == ["kv/acme#api_key"]
    resolver.register_scheme("sync", lambda target: f"sync-{target}-value")
    assert await resolver.resolve("sync://x") == "sync-x-value"


async def test_failing_resolver_does_not_leak_its_message() -> None:
    resolver = CredentialResolver()

    def broken(target: str) -> str:
        raise ValueError("could not parse 'hunter2-super-secret'")

    resolver.register_scheme("vault", broken)
    with pytest.raises(CredentialError) as info:
        await resolver.resolve("vault://kv/acme")
    assert "hunter2" not in str(info.value) and "ValueError" in str(info.value)
    assert info.value.__cause__ is None


async def test_default_resolver_is_shared_and_pluggable() -> None:
    assert default_resolver() is default_resolver()
    register_scheme("provcert-test", lambda target: "from-default-" + target)
    try:
        assert await default_resolver().resolve("provcert-test://abc") == "from-default-abc"
    finally:
        default_resolver().unregister_scheme("provcert-test")
    assert "provcert-test" not in default_resolver().schemes


async def test_adapter_names_itself_in_credential_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.credentials import CredentialError
    from adapters.openai import OpenAIAdapter
    from adapters.registry import load_registry
    from adapters.types import ChatRequest, Message

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    adapter = OpenAIAdapter(load_registry().get("openai"), base_url="http://127.0.0.1:9/v1")
    try:
        with pytest.raises(CredentialError) as info:
            await adapter.complete(
                ChatRequest(model="gpt-4o-mini", messages=(Message(role="user", content="hi"),))
            )
    finally:
        await adapter.aclose()
    assert info.value.provider_id == "openai"
    assert "OPENAI_API_KEY" in str(info.value)
