"""Provider personalities, found rather than listed.

Every module in this package that defines a concrete :class:`~mockserver.personalities.base.Personality` subclass
is a personality, and so is every class an installed package advertises under the ``provcert.personalities``
entry-point group. Adding a provider therefore never edits a central table.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from importlib.metadata import entry_points

from mockserver.personalities.base import Personality

ENTRY_POINT_GROUP = "provcert.personalities"


class PersonalityError(RuntimeError):
    """Two personalities claim one name or prefix, or an advertised one cannot be loaded."""


def _concrete_in(module_name: str) -> list[type[Personality]]:
    module = importlib.import_module(module_name)
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Personality) and obj.__module__ == module_name and not inspect.isabstract(obj)
    ]


def discover() -> dict[str, type[Personality]]:
    """Name -> personality class, from this package and from installed entry points."""
    found: dict[str, type[Personality]] = {}
    sources: dict[str, str] = {}

    def add(cls: type[Personality], source: str) -> None:
        if cls.name in found and found[cls.name] is not cls:
            raise PersonalityError(
                f"personality name {cls.name!r} is claimed by {sources[cls.name]} and {source}"
            )
        clash = [n for n, c in found.items() if c.prefix == cls.prefix and n != cls.name]
        if clash:
            raise PersonalityError(f"prefix {cls.prefix!r} of {source} is already mounted by {clash[0]!r}")
        found[cls.name] = cls
        sources[cls.name] = source

    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        for cls in _concrete_in(f"{__name__}.{info.name}"):
            add(cls, f"{cls.__module__}.{cls.__qualname__}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:
            raise PersonalityError(f"entry point {ep.name} = {ep.value!r} failed to load: {exc}") from exc
        if not (inspect.isclass(cls) and issubclass(cls, Personality)):
            raise PersonalityError(f"entry point {ep.name} = {ep.value!r} is not a Personality subclass")
        add(cls, f"entry point {ep.name} ({ep.value})")
    return found
