"""What the caller asked for, read from the request the way the provider reads it: the oracle of REQ-FIELDS.

An adapter that drops ``max_tokens`` (which the live cost cap relies on), a sampling parameter, the system prompt or
the tool choice still gets a valid answer from a lenient API; the loss only shows when what reached the wire is
compared with what the caller asked. Each personality reads its own dialect into this one neutral shape (the provider's
facts stay with the personality), the engine journals it as ``asked``, and the certification compares it with the
normalized request. Nothing here is shared with the adapters: the reading is independent of the writing it judges.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Strings kept in the journal's ``asked`` view are cut here (the raw body stays in ``request_body``, bounded).
MAX_TEXT = 2_000

ToolChoice = str  # "auto" | "none" | "required" | the name of the one tool the model must call


@dataclass
class Asked:
    """The request's meaning. ``messages`` are ``[role, text]`` pairs of the non-system turns (roles
    ``user``/``assistant``/``tool``); ``system`` joins every system instruction with a blank line."""

    model: str | None = None
    system: str | None = None
    messages: list[list[str]] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    tool_choice: ToolChoice | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["system"] = clip(self.system)
        out["messages"] = [[role, clip(text) or ""] for role, text in self.messages]
        return out


def turns(
    items: Any,
    *,
    content: str = "content",
    roles: dict[str, str] | None = None,
    skip: tuple[str, ...] = (),
) -> list[list[str]]:
    """``[role, text]`` of each message object in ``items`` (a JSON array): roles renamed by ``roles`` (a missing
    role is ``user``), those in ``skip`` (system turns the dialect keeps among the messages) left out."""
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("role") in skip:
            continue
        role = str(item.get("role") or "user")
        out.append([(roles or {}).get(role, role), text_of(item.get(content))])
    return out


def clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def text_of(content: Any, text_key: str = "text") -> str:
    """The text of a message content: a string, or the text parts of a part list (other parts add nothing)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p[text_key] for p in content if isinstance(p, dict) and isinstance(p.get(text_key), str)
        )
    return ""


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: readers never trip over a wrong type."""
    return value if isinstance(value, dict) else {}


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stop_list(value: Any) -> list[str]:
    """Stop sequences as a list, whether sent as one string or an array."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return []


def join_system(parts: list[str]) -> str | None:
    kept = [p for p in parts if p]
    return "\n\n".join(kept) if kept else None
