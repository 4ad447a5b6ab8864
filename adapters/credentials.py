"""Credential references, resolved at call time through pluggable per-scheme resolvers.

The registry only ever holds a reference (``env://OPENAI_API_KEY``, ``file://secrets/key``, ``vault://...``),
so a key never sits in a reviewed file. Resolution happens on every call, with no cache, so that a rotated
environment variable or secret file is used by the very next request without a restart. Every resolved value
is registered with :func:`adapters.errors.register_secret`, so it is scrubbed from any error message that
might later contain it.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from adapters.errors import ErrorKind, ProviderError, register_secret

#: A scheme resolver gets what follows ``scheme://`` and returns the secret (sync or async).
SchemeResolver = Callable[[str], Awaitable[str] | str]

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://(.+)$", re.DOTALL)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CredentialError(ProviderError):
    """A credential could not be resolved. The message names the reference, never the secret.

    It is a :class:`ProviderError` of kind ``auth`` (not retryable) so that an adapter that fails to resolve
    its key still fails inside the taxonomy. ``provider_id`` is empty until a caller that knows it (the
    gateway) fills it in.
    """

    def __init__(self, ref: str | None, message: str, *, provider_id: str = "") -> None:
        self.ref = ref
        super().__init__(ErrorKind.AUTH, message, provider_id=provider_id, retryable=False)

    def __str__(self) -> str:
        who = f"{self.provider_id}: " if self.provider_id else ""
        return f"{who}credential error: {self.message}"


class CredentialResolver:
    """Resolves credential references through a table of scheme resolvers (``env`` and ``file`` built in)."""

    def __init__(self) -> None:
        self._schemes: dict[str, SchemeResolver] = {"env": _resolve_env, "file": _resolve_file}

    def register_scheme(self, scheme: str, resolver: SchemeResolver) -> None:
        """Add or replace the resolver for ``scheme://...`` references (e.g. ``vault``)."""
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
            raise ValueError(f"invalid scheme name {scheme!r}")
        self._schemes[scheme] = resolver

    def unregister_scheme(self, scheme: str) -> None:
        self._schemes.pop(scheme, None)

    @property
    def schemes(self) -> list[str]:
        return sorted(self._schemes)

    async def resolve(self, ref: str) -> str:
        """Return the secret that ``ref`` points to, read now; raise :class:`CredentialError` otherwise."""
        match = _SCHEME.match(ref) if isinstance(ref, str) else None
        if match is None:
            # the value may itself be a pasted key, so it is not echoed
            raise CredentialError(
                None, "credential_ref is not a reference like env://NAME or file://path (value not shown)"
            )
        scheme, target = match.group(1), match.group(2)
        resolver = self._schemes.get(scheme)
        if resolver is None:
            raise CredentialError(
                ref,
                f"no resolver for scheme {scheme!r} (ref {ref}); register one with register_scheme"
                f"({scheme!r}, resolver); known schemes: {', '.join(self.schemes)}",
            )
        try:
            result = resolver(target)
            value = await result if inspect.isawaitable(result) else result
        except CredentialError:
            raise
        except Exception as exc:
            # the resolver's own message might quote the secret (int("sk-...") does), so only its type is kept
            raise CredentialError(
                ref,
                f"resolver for scheme {scheme!r} failed for {ref}: {type(exc).__name__} (details withheld)",
            ) from None
        if not isinstance(value, str) or not value:
            raise CredentialError(ref, f"{ref} resolved to an empty credential")
        register_secret(value)
        return value


async def _resolve_env(name: str) -> str:
    if not _ENV_NAME.match(name):
        raise CredentialError(f"env://{name}", "env:// needs an environment variable name (value not shown)")
    value = os.environ.get(name)
    if value is None or not value.strip():
        raise CredentialError(
            f"env://{name}", f"environment variable {name} (env://{name}) is not set or empty"
        )
    return value.strip()


async def _resolve_file(target: str) -> str:
    ref = f"file://{target}"
    path = Path(target)
    try:
        text = await asyncio.to_thread(_read_text, path)
    except FileNotFoundError:
        raise CredentialError(ref, f"credential file {path} ({ref}) does not exist") from None
    except OSError as exc:
        raise CredentialError(ref, f"cannot read credential file {path} ({ref}): {exc.strerror}") from None
    value = text.strip()
    if not value:
        raise CredentialError(ref, f"credential file {path} ({ref}) is empty")
    return value


def _read_text(path: Path) -> str:
    return path.expanduser().read_text(encoding="utf-8")


_default: CredentialResolver | None = None


def default_resolver() -> CredentialResolver:
    """The process-wide resolver adapters use when none is injected; its schemes apply everywhere."""
    global _default
    if _default is None:
        _default = CredentialResolver()
    return _default


def register_scheme(scheme: str, resolver: SchemeResolver) -> None:
    """Register a scheme on the :func:`default_resolver`."""
    default_resolver().register_scheme(scheme, resolver)
