"""REQ: what the caller asked for is what reaches the wire, in the provider's own form, or it is refused up front.

A lenient API answers a request that lost its ``max_tokens`` (which the live cost cap relies on), its sampling
parameters, its system prompt or its tool choice, so nothing downstream notices the loss. Each check here sends a
normalized request through the adapter and compares it, field by field, with the mock server's reading of the body it
received (the personality reads its own dialect into the journal's ``asked``; the suite never parses a wire format).
A field the provider cannot take passes only when the adapter refused it as ``unsupported`` before sending anything.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.errors import ErrorKind, ProviderError
from adapters.types import ChatRequest, Message
from harness.assertions import WEATHER_TOOL, chat_request, only, run_stream
from harness.checks import check, evidence, not_applicable

SYSTEM = "You answer in one short sentence."
TURNS = (
    ("user", "Name a colour of the sea."),
    ("assistant", "Blue."),
    ("user", "And of the sky at dusk?"),
)

#: one variant per field of the normalized request: the fields it sets on top of the base request
VARIANTS: dict[str, dict[str, Any]] = {
    "model+system+messages": {},
    "max_tokens": {"max_tokens": 37},
    "temperature": {"temperature": 0.3},
    "top_p": {"top_p": 0.85},
    "stop": {"stop": ("END", "###")},
    "tools": {"tools": (WEATHER_TOOL,)},
    "tool_choice=auto": {"tools": (WEATHER_TOOL,), "tool_choice": "auto"},
    "tool_choice=none": {"tools": (WEATHER_TOOL,), "tool_choice": "none"},
    "tool_choice=required": {"tools": (WEATHER_TOOL,), "tool_choice": "required"},
    "tool_choice=<named tool>": {"tools": (WEATHER_TOOL,), "tool_choice": WEATHER_TOOL.name},
}


def _request(entry: Any, **fields: Any) -> ChatRequest:
    base = chat_request(entry)
    messages = (Message(role="system", content=SYSTEM), *(Message(role=r, content=t) for r, t in TURNS))
    return base.model_copy(update={"messages": messages, "max_tokens": None, "temperature": None, **fields})


def _expected(request: ChatRequest, fields: dict[str, Any]) -> dict[str, Any]:
    """What the wire must say: always the model, system prompt and turns, plus each field the variant set."""
    want: dict[str, Any] = {
        "model": request.model,
        "system": SYSTEM,
        "messages": [[role, text] for role, text in TURNS],
    }
    for name in fields:
        if name == "tools":
            want["tools"] = [t.name for t in request.tools]
        elif name == "stop":
            want["stop"] = list(request.stop)
        else:
            want[name] = getattr(request, name)
    return want


def _differences(want: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    out = []
    for name, value in want.items():
        got = asked.get(name)
        same = got == pytest.approx(value) if isinstance(value, float) and got is not None else got == value
        if not same:
            out.append(f"{name}: asked {value!r}, the wire says {got!r}")
    return out


async def _send(adapter: Any, request: ChatRequest, *, stream: bool) -> ProviderError | None:
    if stream:
        return (await run_stream(adapter.stream(request))).error
    try:
        await adapter.complete(request)
    except ProviderError as exc:
        return exc
    return None


async def _check(make_adapter: Any, mock: Any, entry: Any, fields: dict[str, Any], *, stream: bool) -> None:
    if fields.get("tools") and not entry.capabilities.tools:
        not_applicable("provider declares no tools")
    adapter = make_adapter()
    request = _request(entry, **fields)
    mock.queue("ok")
    error = await _send(adapter, request, stream=stream)
    sent = mock.journal()
    if error is not None and error.kind == ErrorKind.UNSUPPORTED:
        assert not sent, f"refused as unsupported ({error.message}) but the request was sent anyway"
        evidence(
            f"{', '.join(fields) or 'base request'}: refused as unsupported before sending ({error.message})"
        )
        return
    assert error is None, f"the request failed: {error!r}"
    asked = only(sent).get("asked")
    if asked is None:
        not_applicable(
            f"the mock personality of wire {entry.wire!r} does not read requests (Personality.asked)"
        )
    assert "unreadable" not in asked, f"the mock could not read the request: {asked['unreadable']}"
    want = _expected(request, fields)
    problems = _differences(want, asked)
    assert not problems, "the request lost what the caller asked for: " + "; ".join(problems)
    shown = {k: v for k, v in want.items() if k not in ("messages", "system")}
    evidence(
        f"{'stream' if stream else 'complete'}: {shown} + system prompt + {len(TURNS)} turns reached the wire as asked"
    )


@check("REQ-FIELDS")
@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_field_reaches_the_wire(make_adapter, mock, entry, variant):
    await _check(make_adapter, mock, entry, VARIANTS[variant], stream=False)


@check("REQ-FIELDS")
async def test_fields_reach_the_wire_when_streaming(make_adapter, mock, entry):
    if not entry.capabilities.streaming:
        not_applicable("provider declares no streaming")
    fields = {"max_tokens": 41, "temperature": 0.5, "top_p": 0.9, "stop": ("STOP",)}
    await _check(make_adapter, mock, entry, fields, stream=True)
