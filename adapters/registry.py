"""The provider registry: ``providers.yaml``, checked by a JSON Schema and then by typed, frozen models.

Adding a provider is a reviewed YAML change, so the loader's job is to make a bad entry impossible to miss: it
reports *every* problem at once, each with its path (``providers[2].timeouts.read``) and the file name,
instead of stopping at the first. The JSON Schema is the published contract (editors and CI can use it); the
pydantic models give the runtime typed access; the cross-entry checks (unique ids, fallback references, plain
http only for localhost) cover what neither can express.

Providers that live outside this repository register themselves through the ``provcert.registries`` entry-point
group: each entry point names a module attribute holding the path of a providers YAML file (``str`` or
``os.PathLike``), or a callable returning one. :func:`load_registry` with no path merges every such file after the
packaged one; a broken entry point, or one that redefines an already registered id, is an error naming it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters.base import DEFAULT_TOTAL_TIMEOUT, Timeouts
from adapters.errors import scrub

if TYPE_CHECKING:
    from adapters.base import Adapter

DEFAULT_REGISTRY_PATH = Path(__file__).with_name("providers.yaml")
SCHEMA_PATH = Path(__file__).with_name("providers.schema.json")
#: Entry-point group through which installed packages contribute providers YAML files.
REGISTRY_ENTRY_POINT_GROUP = "provcert.registries"

#: ``adapter`` aliases, so that an OpenAI-compatible provider needs only a registry entry.
ADAPTER_ALIASES: dict[str, str] = {"openai-compatible": "adapters.openai:OpenAICompatibleAdapter"}

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_CREDENTIAL_HINT = (
    "must be a credential reference (env://NAME, file://path, vault://..., or null for no auth), "
    "never a literal secret; the value is not shown"
)

_PATTERN_HINTS = {
    "provider_id": "is not a kebab-case id (lowercase letters and digits, single hyphens), e.g. 'acme-ai'",
    "adapter": "must be 'module:Class' (e.g. 'adapters.openai:OpenAIAdapter') or 'openai-compatible'",
    "base_url": "must be an absolute http(s) URL without query or fragment",
    "wire": "must be a mock personality name such as 'openai'",
    "mock_path": "must be a path starting with '/'",
}


class RegistryError(Exception):
    """The registry (or an adapter it names) is unusable; ``problems`` lists ``(path, reason)`` pairs."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"  - {path}: {reason}" if path else f"  - {reason}" for path, reason in self.problems]
        count = len(self.problems)
        super().__init__(
            f"{source}: {count} problem{'s' if count != 1 else ''} in the provider registry:\n"
            + "\n".join(lines)
        )


class UnknownProviderError(RegistryError, LookupError):
    """A provider id that the registry does not hold; the message lists the ids it does hold."""

    def __init__(self, provider_id: str, known: Sequence[str], source: str) -> None:
        self.provider_id = provider_id
        self.known = list(known)
        reason = f"unknown provider {provider_id!r}; known providers: {', '.join(known) or '(none)'}"
        super().__init__(source, [("", reason)])

    def __str__(self) -> str:
        return self.problems[0][1] + f" (registry {self.source})"


class AdapterLoadError(RegistryError):
    """An entry's ``adapter`` cannot be imported or is not an :class:`adapters.base.Adapter` subclass."""


# ----- the typed model -----


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Capabilities(BaseModel):
    """What the provider supports; the certification suite checks behaviour against these declarations.

    Unknown capability names are allowed (booleans only) so that a provider can declare something new without
    a code change; read them with :meth:`has`.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    streaming: bool
    tools: bool
    usage_in_stream: bool = False
    cached_tokens: bool = False
    reasoning_tokens: bool = False

    @model_validator(mode="after")
    def _extras_are_booleans(self) -> Capabilities:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, bool):
                raise ValueError(f"capability {name!r} must be a boolean")
        return self

    def has(self, name: str) -> bool:
        value = getattr(self, name, None)
        return value is True


class TimeoutsConfig(_Frozen):
    """Client-side bounds in seconds. ``total`` bounds one whole call, stream included, and is enforced by the
    adapter itself (default :data:`adapters.base.DEFAULT_TOTAL_TIMEOUT`, 300 s): per-read bounds alone let a
    trickling server or an endless run of empty deltas keep a call busy indefinitely."""

    connect: float = Field(gt=0)
    read: float = Field(gt=0)
    stream_idle: float = Field(gt=0)
    total: float = Field(default=DEFAULT_TOTAL_TIMEOUT, gt=0)

    def as_timeouts(self) -> Timeouts:
        return Timeouts(connect=self.connect, read=self.read, stream_idle=self.stream_idle, total=self.total)


class RetryPolicy(_Frozen):
    """Gateway retry policy: exponential backoff with full jitter, ``retry_after`` honoured up to a cap."""

    max_attempts: int = Field(ge=1, le=10)
    initial_backoff: float = Field(ge=0)
    max_backoff: float = Field(ge=0)
    retry_after_cap: float = Field(ge=0)
    jitter: Literal["full"] = "full"

    @model_validator(mode="after")
    def _ordered(self) -> RetryPolicy:
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be >= initial_backoff")
        return self


def _to_decimal(value: Any) -> Any:
    # YAML floats go through str() so that 0.15 becomes Decimal("0.15"), not its binary approximation.
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


class ModelEntry(_Frozen):
    """A model and, optionally, its price in USD per 1M tokens (absent: the price library is asked)."""

    id: str = Field(min_length=1)
    input_per_1m: Decimal | None = Field(default=None, ge=0)
    output_per_1m: Decimal | None = Field(default=None, ge=0)
    cached_input_per_1m: Decimal | None = Field(default=None, ge=0)

    @field_validator("input_per_1m", "output_per_1m", "cached_input_per_1m", mode="before")
    @classmethod
    def _decimal(cls, value: Any) -> Any:
        return _to_decimal(value)

    @model_validator(mode="after")
    def _complete(self) -> ModelEntry:
        if (self.input_per_1m is None) != (self.output_per_1m is None):
            raise ValueError("input_per_1m and output_per_1m must be given together")
        if self.cached_input_per_1m is not None and self.input_per_1m is None:
            raise ValueError("cached_input_per_1m needs input_per_1m and output_per_1m")
        return self

    @property
    def priced(self) -> bool:
        return self.input_per_1m is not None and self.output_per_1m is not None


class Rollout(_Frozen):
    status: Literal["disabled", "canary", "percentage", "enabled"]
    percentage: float = Field(default=100, ge=0, le=100)
    canary_tenants: tuple[str, ...] = ()

    def admits(self, provider_id: str, *, tenant_id: str | None, key: str | None) -> bool:
        """Whether this request may go to the provider.

        ``percentage`` buckets by a stable hash of ``key`` (tenant, else trace id) so that one tenant
        consistently lands on the same side; with no key at all the request is admitted only at 100 %.
        """
        if self.status == "disabled":
            return False
        if self.status == "enabled":
            return self.percentage > 0
        if self.status == "canary":
            return tenant_id is not None and tenant_id in self.canary_tenants
        if self.percentage >= 100:
            return True
        if self.percentage <= 0 or key is None:
            return False
        digest = hashlib.sha256(f"{provider_id}:{key}".encode()).hexdigest()
        return int(digest[:8], 16) % 10000 < self.percentage * 100


class ProviderEntry(_Frozen):
    """One registered provider; ``mock_path`` and ``allowed_hosts`` default from ``base_url``."""

    provider_id: str = Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
    display_name: str
    adapter: str
    wire: str
    base_url: str
    mock_path: str
    credential_ref: str | None
    capabilities: Capabilities
    timeouts: TimeoutsConfig
    retry: RetryPolicy
    models: tuple[ModelEntry, ...]
    rollout: Rollout
    fallback: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    #: adapter-specific, non-secret settings (e.g. Azure's api_version, Bedrock's region)
    options: dict[str, Any] = Field(default_factory=dict)
    #: ``gen_ai.provider.name`` on its spans (a provider fact, so it lives here, not in a table keyed by wire: Groq
    #: speaks OpenAI's wire but is ``groq``); None means the provider id
    telemetry_name: str | None = None

    @property
    def genai_provider_name(self) -> str:
        return self.telemetry_name or self.provider_id

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("base_url"), str):
            return data
        data = dict(data)
        parts = urlsplit(data["base_url"])
        if data.get("mock_path") is None:
            data["mock_path"] = f"/{data.get('wire', '')}{parts.path.rstrip('/')}"
        if data.get("allowed_hosts") is None and parts.hostname:
            data["allowed_hosts"] = [parts.hostname]
        return data

    @property
    def adapter_path(self) -> str:
        """``module:Class`` with the alias resolved."""
        return ADAPTER_ALIASES.get(self.adapter, self.adapter)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.models)

    def model(self, model_id: str) -> ModelEntry | None:
        return next((m for m in self.models if m.id == model_id), None)


class Registry:
    """An immutable, validated set of providers, in file order.

    ``external_ids`` are providers defined elsewhere that fallbacks may name: an overlay file (a test or
    certification registry) can fall back to a packaged provider, and :meth:`merge` resolves the reference.
    """

    def __init__(
        self,
        entries: Sequence[ProviderEntry],
        *,
        source: str = "<registry>",
        external_ids: Iterable[str] = (),
    ) -> None:
        self.source = source
        self._entries = tuple(entries)
        self._by_id = {e.provider_id: e for e in self._entries}
        self.external_ids = frozenset(external_ids) - set(self._by_id)
        problems = _cross_problems(
            [e.model_dump(mode="json", warnings=False) for e in self._entries], self.external_ids
        )
        if problems:
            raise RegistryError(source, problems)

    @property
    def entries(self) -> tuple[ProviderEntry, ...]:
        return self._entries

    def ids(self) -> list[str]:
        return [e.provider_id for e in self._entries]

    def get(self, provider_id: str) -> ProviderEntry:
        try:
            return self._by_id[provider_id]
        except KeyError:
            raise UnknownProviderError(provider_id, self.ids(), self.source) from None

    def merge(self, other: Registry) -> Registry:
        """A new registry: ``other``'s entries replace same-id entries of this one, new ids are appended."""
        merged = {e.provider_id: e for e in self._entries}
        merged.update({e.provider_id: e for e in other.entries})
        external = self.external_ids | other.external_ids
        return Registry(
            list(merged.values()), source=f"{self.source} + {other.source}", external_ids=external
        )

    def with_entries(self, *entries: ProviderEntry) -> Registry:
        """A new registry with ``entries`` added (replacing same-id ones): for tests and derived setups."""
        merged = {e.provider_id: e for e in self._entries}
        merged.update({e.provider_id: e for e in entries})
        return Registry(list(merged.values()), source=self.source, external_ids=self.external_ids)

    def __contains__(self, provider_id: object) -> bool:
        return provider_id in self._by_id

    def __iter__(self) -> Iterator[ProviderEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry(source={self.source!r}, ids={self.ids()!r})"


# ----- loading and validation -----


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def load_registry(
    path: str | os.PathLike[str] | None = None, *, external_ids: Iterable[str] | None = None
) -> Registry:
    """Load and validate a registry file (default: the packaged ``providers.yaml`` plus plugin registries).

    Fallbacks may name providers of the file or ``external_ids``, which default, for any file other than the
    packaged one, to the packaged registry's ids (so an overlay can fall back to ``openai``). Raises
    :class:`RegistryError` listing every problem with its path, and naming the file. With no ``path``, the files
    advertised under the ``provcert.registries`` entry-point group are merged after the packaged one
    (:func:`plugin_registries`).
    """
    if path is None and external_ids is None:
        packaged = load_registry(DEFAULT_REGISTRY_PATH, external_ids=())
        for plugin in plugin_registries(packaged.ids()):
            clash = sorted(set(plugin.ids()) & set(packaged.ids()))
            if clash:
                raise RegistryError(
                    plugin.source,
                    [
                        (
                            "",
                            f"redefines provider {', '.join(map(repr, clash))} already registered by {packaged.source}",
                        )
                    ],
                )
            packaged = packaged.merge(plugin)
        return packaged
    file = Path(path) if path is not None else DEFAULT_REGISTRY_PATH
    if external_ids is None:
        external_ids = () if _same_file(file, DEFAULT_REGISTRY_PATH) else _packaged_ids()
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(source, [("", f"cannot read the registry file: {exc.strerror or exc}")]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise RegistryError(source, [("", f"not valid YAML{_yaml_where(exc)}")]) from None
    return registry_from_data(data, source=source, external_ids=external_ids)


def plugin_registries(known_ids: Iterable[str] = ()) -> list[Registry]:
    """One validated registry per ``provcert.registries`` entry point, in entry-point name order.

    ``known_ids`` (the packaged providers) may be named as fallbacks. Every failure (import error, missing
    attribute, a value that is not a path, an unreadable or invalid file) raises :class:`RegistryError` whose
    source names the entry point, so a broken plugin says which one it is.
    """
    out = []
    for ep in sorted(entry_points(group=REGISTRY_ENTRY_POINT_GROUP), key=lambda e: e.name):
        file = _entry_point_path(ep)
        try:
            registry = load_registry(file, external_ids=known_ids)
        except RegistryError as exc:
            raise RegistryError(f"{_ep_label(ep)} ({exc.source})", exc.problems) from None
        out.append(Registry(registry.entries, source=f"{_ep_label(ep)} ({file})", external_ids=known_ids))
    return out


def _ep_label(ep: EntryPoint) -> str:
    return f"entry point {ep.group}:{ep.name} = {ep.value}"


def entry_point_path(ep: EntryPoint, *, directory: bool = False) -> Path:
    """The file (or directory) an entry point advertises: a module attribute holding a path, or a callable
    returning one.

    Raises :class:`RegistryError` naming the entry point when it cannot be loaded or does not give an existing
    file (directory). Shared with the harness (schema directories contributed through ``provcert.schemas``).
    """
    return _entry_point_path(ep, directory=directory)


def _entry_point_path(ep: EntryPoint, *, directory: bool = False) -> Path:
    label = _ep_label(ep)
    try:
        value: Any = ep.load()
    except Exception as exc:
        raise RegistryError(label, [("", scrub(f"failed to load: {type(exc).__name__}: {exc}"))]) from exc
    if callable(value):
        try:
            value = value()
        except Exception as exc:
            raise RegistryError(
                label, [("", scrub(f"calling it failed: {type(exc).__name__}: {exc}"))]
            ) from exc
    if not isinstance(value, (str, os.PathLike)):
        raise RegistryError(
            label,
            [
                (
                    "",
                    "must give a file path (str or os.PathLike), or a callable returning one, "
                    f"not {type(value).__name__}",
                )
            ],
        )
    file = Path(value)
    if not (file.is_dir() if directory else file.is_file()):
        raise RegistryError(
            label, [("", f"names {file}, which is not a {'directory' if directory else 'file'}")]
        )
    return file


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _packaged_ids() -> list[str]:
    try:
        return default_registry().ids()
    except RegistryError:
        return []  # the packaged file's own problems are reported when it is loaded, not here


def _yaml_where(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f" at line {mark.line + 1}, column {mark.column + 1}: {scrub(exc.problem or '')}"
    return f": {scrub(str(exc))}"


def registry_from_data(data: Any, *, source: str = "<data>", external_ids: Iterable[str] = ()) -> Registry:
    """Validate already-parsed registry data (as from YAML) and build the registry."""
    external = frozenset(external_ids)
    problems = _schema_problems(data)
    schema_paths = [path for path, _ in problems]
    raw = data.get("providers") if isinstance(data, dict) else None
    raw_entries = raw if isinstance(raw, list) else []
    entries: list[ProviderEntry] = []
    for index, item in enumerate(raw_entries):
        try:
            entries.append(ProviderEntry.model_validate(item))
        except ValidationError as exc:
            # the schema already explained most of these; keep only what it could not see (e.g. cross-field
            # rules)
            problems.extend(
                (path, reason)
                for path, reason in _pydantic_problems(exc, f"providers[{index}]")
                if not any(_related(path, seen) for seen in schema_paths)
            )
    problems.extend(_cross_problems(raw_entries, external))
    if problems:
        ordered = sorted(
            _dedupe(problems), key=lambda p: (_entry_index(p[0]) is not None, _entry_index(p[0]) or 0)
        )
        raise RegistryError(source, ordered)
    return Registry(entries, source=source, external_ids=external)


def validate_entry(entry: ProviderEntry | Mapping[str, Any]) -> list[str]:
    """Problems (``"path: reason"``) of one entry against the schema and single-entry rules; [] if valid.

    For checks that look at one provider (REG-ID): fallback targets are not resolved here, that needs the
    whole registry.
    """
    data = _plain(entry.model_dump(warnings=False) if isinstance(entry, ProviderEntry) else entry)
    problems = _schema_problems({"providers": [data]})
    if not problems:
        try:
            ProviderEntry.model_validate(data)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, "providers[0]"))
    problems.extend(_cross_problems([data], None))
    return [
        f"{path.removeprefix('providers[0]').lstrip('.') or '(entry)'}: {reason}"
        for path, reason in _dedupe(problems)
    ]


def _plain(value: Any) -> Any:
    """Model data as YAML would give it: lists, and prices as decimal strings."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None or k == "credential_ref"}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def load_adapter_class(entry: ProviderEntry) -> type[Adapter]:
    """Import the entry's ``module:Class`` and check that it is an Adapter subclass."""
    from adapters.base import Adapter

    where = f"providers[{entry.provider_id}].adapter"
    module_name, _, class_name = entry.adapter_path.partition(":")
    if not module_name or not class_name:
        raise AdapterLoadError(where, [(where, f"{entry.adapter!r} is not of the form module:Class")])
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        reason = (
            f"cannot import module {module_name!r} for {entry.adapter_path!r}: {type(exc).__name__}: {exc}"
        )
        raise AdapterLoadError(where, [(where, scrub(reason))]) from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise AdapterLoadError(where, [(where, f"module {module_name!r} has no attribute {class_name!r}")])
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise AdapterLoadError(
            where, [(where, f"{entry.adapter_path!r} is not a subclass of adapters.base.Adapter")]
        )
    return cls


# ----- problem collection -----


def _format_path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _entry_index(path: str) -> int | None:
    if not path.startswith("providers["):
        return None
    return int(path[len("providers[") : path.index("]")])


def _schema_problems(data: Any) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in _validator().iter_errors(data):
        base = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            for name in error.validator_value:
                if name not in error.instance:
                    problems.append((_format_path([*base, name]), "required field is missing"))
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = sorted(error.schema.get("properties", {}))
            for name in sorted(set(error.instance) - set(allowed)):
                problems.append(
                    (_format_path([*base, name]), f"unknown field (allowed: {', '.join(allowed)})")
                )
        elif error.validator == "dependentRequired":
            problems.append((_format_path(base), scrub(error.message)))
        elif base and base[-1] == "credential_ref":
            problems.append((_format_path(base), _CREDENTIAL_HINT))
        elif error.validator == "pattern" and base and str(base[-1]) in _PATTERN_HINTS:
            problems.append((_format_path(base), f"{error.instance!r} {_PATTERN_HINTS[str(base[-1])]}"))
        elif error.validator == "pattern" and len(base) >= 2 and base[-2] == "fallback":
            problems.append((_format_path(base), f"{error.instance!r} {_PATTERN_HINTS['provider_id']}"))
        elif error.validator == "oneOf" and base and str(base[-1]).endswith("_per_1m"):
            problems.append((_format_path(base), "price must be a non-negative number or decimal string"))
        else:
            problems.append((_format_path(base), scrub(error.message)))
    return problems


def _pydantic_problems(exc: ValidationError, prefix: str) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors(include_input=False):
        loc = [part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
        path = prefix + (
            "." + _format_path(loc) if loc and not isinstance(loc[0], int) else _format_path(loc)
        )
        problems.append((path, scrub(err["msg"].removeprefix("Value error, "))))
    return problems


def _cross_problems(entries: Sequence[Any], external_ids: Collection[str] | None) -> list[tuple[str, str]]:
    """Checks across entries: unique ids, fallbacks that exist and are not self, http only for localhost.

    ``entries`` is the raw list (non-mapping items, already reported by the schema, are skipped) so that the
    paths keep the file's indexes. Fallback targets may also be ``external_ids``; None skips that check.
    """
    items = [(i, e) for i, e in enumerate(entries) if isinstance(e, Mapping)]
    problems: list[tuple[str, str]] = []
    first_seen: dict[str, int] = {}
    for index, entry in items:
        pid = entry.get("provider_id")
        if isinstance(pid, str):
            if pid in first_seen:
                problems.append(
                    (
                        f"providers[{index}].provider_id",
                        f"duplicate provider_id {pid!r} (first at providers[{first_seen[pid]}])",
                    )
                )
            else:
                first_seen[pid] = index
    known = sorted(set(first_seen) | set(external_ids or ()))
    for index, entry in items:
        fallback = entry.get("fallback")
        if isinstance(fallback, (list, tuple)):
            for j, target in enumerate(fallback):
                if not isinstance(target, str):
                    continue
                if target == entry.get("provider_id"):
                    problems.append(
                        (f"providers[{index}].fallback[{j}]", "a provider cannot fall back to itself")
                    )
                elif external_ids is not None and target not in known:
                    problems.append(
                        (
                            f"providers[{index}].fallback[{j}]",
                            f"unknown provider {target!r}; known: {', '.join(known)}",
                        )
                    )
        url = entry.get("base_url")
        if isinstance(url, str) and url.startswith("http://") and urlsplit(url).hostname not in _LOCAL_HOSTS:
            problems.append(
                (f"providers[{index}].base_url", "plain http is only allowed for localhost; use https")
            )
    return problems


def _related(a: str, b: str) -> bool:
    """Whether two problem paths are the same or one is inside the other."""
    return a == b or a.startswith((b + ".", b + "[")) or b.startswith((a + ".", a + "["))


def _dedupe(problems: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys, which plain YAML silently resolves to the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@cache
def default_registry() -> Registry:
    """The packaged registry, loaded once per process."""
    return load_registry()
