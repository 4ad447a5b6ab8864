"""Parallel tool calls (issue 8): the plan draws N calls round-robin from the declared tools, and every wire renders all
of them in its real form. Anthropic and Bedrock have their own block-sequence tests in their wire files; here are the
plan, the bound, the index-keyed wires (interleaved), and the wires that send whole calls.

Expectations come from the journal's ``tool_calls_sent`` (what the mock says it sent), compared with the bytes read back
over HTTP, never from constants.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from mock_helpers import FAKE_KEY, HTTP, SSE, chat_body, headers, stream_raw

from harness.real_cassettes import chat_recordings
from mockserver.plan import ChatRequest, ToolDef, make_plan
from mockserver.scenarios import LIMITS, ScenarioError, parse_scenario
from mockserver.testing import MockServer
from mockserver.truth import count_tokens

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
CLOCK = {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
#: two tools in OpenAI's (and Mistral's) dialect
TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "get_time", "parameters": CLOCK}},
]
THREE = {"tool_calls": 3, "chunks": 4}


def last(server: MockServer, sid: str) -> dict[str, Any]:
    entries = server.journal(sid)
    assert entries, "nothing journaled"
    return entries[-1]


def assert_three_distinct(sent: list[dict[str, Any]]) -> None:
    """Three calls, round-robin over the two tools, each with its own id (when the wire has ids) and arguments."""
    assert [c["name"] for c in sent] == ["get_weather", "get_time", "get_weather"]
    assert [c["index"] for c in sent] == [0, 1, 2]
    assert sent[0]["arguments"] != sent[2]["arguments"], "two calls of one tool must differ"
    ids = [c["id"] for c in sent]
    assert ids == [None] * 3 or len(set(ids)) == 3


# --- the plan ------------------------------------------------------------------------------------------------------


def _chat(*tools: tuple[str, Any]) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        contents=["hi"],
        tools=[ToolDef(name=n, parameters=p, raw={"name": n, "parameters": p}) for n, p in tools],
    )


def _ids() -> Any:
    counter = iter(range(1000))
    return lambda: f"id{next(counter)}"


def test_plan_draws_calls_round_robin_with_their_own_ids_and_arguments() -> None:
    chat = _chat(("a", WEATHER), ("b", CLOCK))
    plan = make_plan(chat, parse_scenario({"tool_calls": 5}), seed=7, new_tool_id=_ids())
    assert [c.name for c in plan.tool_calls] == ["a", "b", "a", "b", "a"]
    assert len({c.id for c in plan.tool_calls}) == 5
    per_tool = [c.arguments for c in plan.tool_calls if c.name == "a"]
    assert len(set(per_tool)) == len(per_tool), "calls of one tool got identical arguments"
    assert plan.text == "" and plan.finish_reason == "tool_calls"
    assert plan.usage.output_tokens == sum(
        count_tokens(c.name) + count_tokens(c.arguments) for c in plan.tool_calls
    )
    assert plan.content_chunks == sum(1 + len(c.fragments) for c in plan.tool_calls)


def test_one_call_is_what_tool_call_always_was() -> None:
    """``tool_calls: 1`` and ``tool_call: true`` give the same answer (same seeded arguments, same usage)."""
    chat = _chat(("a", WEATHER), ("b", CLOCK))
    old = make_plan(chat, parse_scenario("tool_call"), seed=3, new_tool_id=_ids())
    new = make_plan(chat, parse_scenario({"tool_calls": 1}), seed=3, new_tool_id=_ids())
    assert old == new and len(old.tool_calls) == 1 and old.tool_call is old.tool_calls[0]
    assert make_plan(chat, parse_scenario("ok"), seed=3, new_tool_id=_ids()).tool_calls == ()


def test_schedule_interleaves_only_when_asked() -> None:
    plan = make_plan(_chat(("a", WEATHER), ("b", CLOCK)), parse_scenario(THREE), seed=1, new_tool_id=_ids())
    sequential = plan.tool_schedule(interleave=False)
    interleaved = plan.tool_schedule(interleave=True)
    assert sorted(sequential) == sorted(interleaved) and len(sequential) == plan.content_chunks
    assert [c for c, _ in sequential] == sorted(c for c, _ in sequential)
    assert [c for c, _ in interleaved][:3] == [0, 1, 2] and interleaved[:3] == [(0, 0), (1, 0), (2, 0)]
    for schedule in (sequential, interleaved):  # within a call, header first, then its pieces in order
        for call in range(3):
            assert [k for c, k in schedule if c == call] == list(
                range(1 + len(plan.tool_calls[call].fragments))
            )


def test_tool_calls_is_bounded() -> None:
    bound = LIMITS["tool_calls"]
    assert parse_scenario({"tool_calls": int(bound.high)}).tool_call_count == bound.high
    for bad in (0, int(bound.high) + 1):
        with pytest.raises(ScenarioError, match="tool_calls"):
            parse_scenario({"tool_calls": bad})


def test_an_over_bound_header_is_a_400_naming_the_field(server: MockServer, sid: str) -> None:
    r = HTTP.post(
        server.openai_base_url + "/chat/completions",
        json=chat_body(tools=TOOLS),
        headers=headers(sid, {"tool_calls": 9}),
    )
    assert r.status_code == 400 and "tool_calls" in r.text and "1 .. 8" in r.text


# --- OpenAI-style wires: index-keyed, interleaved ---------------------------------------------------------------


def _openai_fragments(raw: bytes) -> list[dict[str, Any]]:
    return [
        call
        for chunk in SSE.parse(raw).chunks()
        for choice in chunk.get("choices") or []
        for call in (choice.get("delta") or {}).get("tool_calls") or []
    ]


def _rebuild(fragments: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    calls: dict[int, dict[str, Any]] = {}
    for f in fragments:
        call = calls.setdefault(f["index"], {"id": None, "name": None, "arguments": ""})
        call["id"] = f.get("id") or call["id"]
        call["name"] = (f.get("function") or {}).get("name") or call["name"]
        call["arguments"] += (f.get("function") or {}).get("arguments") or ""
    return calls


#: wire -> (its chat URL, its auth header, whether its body names the model)
WIRES: dict[str, Callable[[MockServer], tuple[str, dict[str, str], bool]]] = {
    "openai": lambda s: (
        s.openai_base_url + "/chat/completions",
        {"Authorization": f"Bearer {FAKE_KEY}"},
        True,
    ),
    "azure": lambda s: (
        f"{s.url}/azure/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
        {"api-key": FAKE_KEY},
        False,
    ),
    "openrouter": lambda s: (
        f"{s.url}/openrouter/api/v1/chat/completions",
        {"Authorization": "Bearer sk-or-v1-FAKE0123456789abcdef0123456789abcdef"},
        True,
    ),
}


@pytest.mark.parametrize("wire", sorted(WIRES))
def test_index_keyed_wires_interleave_every_call(server: MockServer, sid: str, wire: str) -> None:
    url, auth, model = WIRES[wire](server)
    body = chat_body(stream=True, tools=TOOLS)
    if not model:
        del body["model"]
    _, raw = stream_raw(url, body, {**auth, "x-mock-session": sid, "x-mock-scenario": json.dumps(THREE)})
    e = last(server, sid)
    sent = e["tool_calls_sent"]
    assert_three_distinct(sent)
    fragments = _openai_fragments(raw)
    order = [f["index"] for f in fragments]
    assert order[:3] == [0, 1, 2] and order != sorted(order), f"not interleaved: {order}"
    rebuilt = _rebuild(fragments)
    assert [rebuilt[i] for i in sorted(rebuilt)] == [
        {"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in sent
    ]
    assert len(fragments) == e["chunks_sent"]


@pytest.mark.parametrize("wire", sorted(WIRES))
def test_index_keyed_wires_complete_with_every_call(server: MockServer, sid: str, wire: str) -> None:
    url, auth, model = WIRES[wire](server)
    body = chat_body(tools=TOOLS)
    if not model:
        del body["model"]
    r = HTTP.post(
        url, json=body, headers={**auth, "x-mock-session": sid, "x-mock-scenario": json.dumps(THREE)}
    )
    e = last(server, sid)
    message = r.json()["choices"][0]["message"]
    got = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]]
    assert got == [(c["id"], c["name"], c["arguments"]) for c in e["tool_calls_sent"]]
    assert_three_distinct(e["tool_calls_sent"])
    assert r.json()["choices"][0]["finish_reason"] == "tool_calls"


def test_abort_between_interleaved_fragments_journals_what_was_sent(server: MockServer, sid: str) -> None:
    """Cut after the three headers and one piece: the journal holds three calls, only the first with any text."""
    spec = {**THREE, "abort_after": 4}
    with pytest.raises(httpx.RemoteProtocolError):
        stream_raw(
            server.openai_base_url + "/chat/completions",
            chat_body(stream=True, tools=TOOLS),
            headers(sid, spec),
        )
    e = last(server, sid)
    assert e["aborted"] and e["aborted_after_chunks"] == 4
    sent = e["tool_calls_sent"]
    assert [c["name"] for c in sent] == ["get_weather", "get_time", "get_weather"]
    assert sent[0]["arguments"] and sent[1]["arguments"] == sent[2]["arguments"] == ""


# --- wires that send each call whole ----------------------------------------------------------------------------


def test_mistral_sends_each_call_whole_with_its_index(server: MockServer, sid: str) -> None:
    url = f"{server.url}/mistral/v1/chat/completions"
    body = {"model": "mistral-small-latest", "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS}
    _, raw = stream_raw(url, {**body, "stream": True}, headers(sid, THREE))
    e = last(server, sid)
    sent = e["tool_calls_sent"]
    assert_three_distinct(sent)
    fragments = _openai_fragments(raw)
    assert [(f["index"], f["id"], f["function"]["name"], f["function"]["arguments"]) for f in fragments] == [
        (c["index"], c["id"], c["name"], c["arguments"]) for c in sent
    ]
    whole = HTTP.post(url, json=body, headers=headers(sid, THREE)).json()["choices"][0]["message"][
        "tool_calls"
    ]
    e = last(server, sid)
    assert [(c["index"], c["id"], c["function"]["arguments"]) for c in whole] == [
        (c["index"], c["id"], c["arguments"]) for c in e["tool_calls_sent"]
    ]


def test_gemini_sends_one_function_call_per_chunk_and_all_parts_whole(server: MockServer, sid: str) -> None:
    base = f"{server.url}/gemini/v1beta/models/gemini-2.5-flash"
    tools = [{"functionDeclarations": [{"name": t["function"]["name"], "parameters": t["function"]["parameters"]}
                                       for t in TOOLS]}]  # fmt: skip
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "tools": tools}
    hdrs = {"x-goog-api-key": "AIzaFAKE-mock-0123456789abcdefghijkl", "x-mock-session": sid}
    _, raw = stream_raw(
        f"{base}:streamGenerateContent?alt=sse", body, {**hdrs, "x-mock-scenario": json.dumps(THREE)}
    )
    e = last(server, sid)
    sent = e["tool_calls_sent"]
    assert_three_distinct(sent)
    chunks = [
        json.loads(line[len("data: ") :]) for line in raw.decode().splitlines() if line.startswith("data: ")
    ]
    per_chunk = [
        [
            p["functionCall"]
            for p in c["candidates"][0].get("content", {}).get("parts", [])
            if "functionCall" in p
        ]
        for c in chunks
    ]
    calls = [calls for calls in per_chunk if calls]
    assert calls == [[{"name": c["name"], "args": json.loads(c["arguments"])}] for c in sent]
    r = HTTP.post(
        f"{base}:generateContent", json=body, headers={**hdrs, "x-mock-scenario": json.dumps(THREE)}
    )
    e = last(server, sid)
    parts = r.json()["candidates"][0]["content"]["parts"]
    assert parts == [
        {"functionCall": {"name": c["name"], "args": json.loads(c["arguments"])}}
        for c in e["tool_calls_sent"]
    ]


def test_ollama_sends_one_whole_call_per_line(server: MockServer, sid: str) -> None:
    url = f"{server.url}/ollama/api/chat"
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS}
    hdrs = {"x-mock-session": sid, "x-mock-scenario": json.dumps(THREE)}
    _, raw = stream_raw(url, {**body, "stream": True}, hdrs)
    e = last(server, sid)
    sent = e["tool_calls_sent"]
    assert_three_distinct(sent)
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    with_calls = [line["message"]["tool_calls"] for line in lines if line["message"].get("tool_calls")]
    assert with_calls == [
        [{"function": {"name": c["name"], "arguments": json.loads(c["arguments"])}}] for c in sent
    ]
    r = HTTP.post(url, json={**body, "stream": False}, headers=hdrs)
    e = last(server, sid)
    assert r.json()["message"]["tool_calls"] == [
        {"function": {"name": c["name"], "arguments": json.loads(c["arguments"])}}
        for c in e["tool_calls_sent"]
    ]


# --- against real recordings --------------------------------------------------------------------------------------


def _recording(number: int) -> Any:
    (rec,) = [r for r in chat_recordings("openai") if r.number == number]
    return rec.interactions()[0]


def _shape(call: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(sorted(call)), tuple(sorted(call.get("function") or {}))


def test_openai_parallel_calls_have_the_shape_of_real_ones(server: MockServer, sid: str) -> None:
    """real-cassettes #126 (two parallel calls in one body) and #127 (two streamed, tool_calls index 0 and 1): the
    mock's calls carry the same keys, whole and as header/argument fragments (the mock interleaves; the recording
    happens to be sequential, which the index-keyed protocol does not require)."""
    real_body = _recording(126).response_json()["choices"][0]["message"]["tool_calls"]
    r = HTTP.post(
        server.openai_base_url + "/chat/completions", json=chat_body(tools=TOOLS), headers=headers(sid, THREE)
    )
    mine_body = r.json()["choices"][0]["message"]["tool_calls"]
    assert len(real_body) == 2 and {_shape(c) for c in mine_body} == {_shape(c) for c in real_body}
    real = _openai_fragments(_recording(127).response_body)
    _, raw = stream_raw(
        server.openai_base_url + "/chat/completions", chat_body(stream=True, tools=TOOLS), headers(sid, THREE)
    )
    mine = _openai_fragments(raw)
    assert sorted({f["index"] for f in real}) == [0, 1]
    assert {_shape(f) for f in mine} == {_shape(f) for f in real}
    assert [_shape(f) for f in mine if "id" in f] == [_shape(f) for f in real if "id" in f][:1] * 3
