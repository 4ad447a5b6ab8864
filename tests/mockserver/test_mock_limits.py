"""Issue 9: one request must not be able to exhaust the mock's memory.

Every scenario field has a bound (``LIMITS``), enforced when the spec is parsed and answered with a 400 naming
the field, the value and the bound; the journal is bounded in bytes as well as entries (large bodies cut, their
size and sha256 kept); the enqueue reply carries counts, not the queue; sessions expire and their number and
bytes are bounded. The attacks from the issue are replayed against a real server over loopback.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mock_helpers import FAKE_KEY, HTTP, chat_body, headers

from mockserver.journal import KEEP_BYTES, Journal
from mockserver.scenarios import (
    DEFAULT_STATUS,
    LIMITS,
    Scenario,
    ScenarioError,
    parse_scenario,
    parse_scenario_list,
)
from mockserver.sessions import SessionStore, scenario_cost
from mockserver.testing import MockServer

#: Scenario fields bounded by their type alone (an enumeration or a boolean).
_ENUMERATED = (bool, type(None))


def _bounded_by_type(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Literal or annotation in _ENUMERATED:
        return True
    args = typing.get_args(annotation)
    return bool(args) and all(_bounded_by_type(a) for a in args)


def _field_limits() -> list[str]:
    return [name for name in LIMITS if name in Scenario.model_fields]


def test_every_unbounded_type_has_a_limit() -> None:
    """A new numeric or string field without a LIMITS entry would be a new way to exhaust the server."""
    hints = typing.get_type_hints(Scenario)
    missing = [f for f in Scenario.model_fields if f not in LIMITS and not _bounded_by_type(hints[f])]
    assert not missing, f"scenario fields without a documented bound in LIMITS: {missing}"


def _over(name: str) -> Any:
    """A value just past the bound, in the field's own type."""
    limit = LIMITS[name]
    hints = typing.get_type_hints(Scenario)
    if str in typing.get_args(hints[name]) or hints[name] is str:
        return "x" * (int(limit.high) + 1)
    if int in typing.get_args(hints[name]) or hints[name] is int:
        return int(limit.high) + 1
    return limit.high * 1.5 + 1


def _at(name: str) -> Any:
    limit = LIMITS[name]
    hints = typing.get_type_hints(Scenario)
    if str in typing.get_args(hints[name]) or hints[name] is str:
        return "x" * int(limit.high)
    if int in typing.get_args(hints[name]) or hints[name] is int:
        return int(limit.high)
    return limit.high


@pytest.mark.parametrize("name", _field_limits())
def test_each_field_bound_is_enforced_and_named(name: str) -> None:
    at = parse_scenario({name: _at(name)})
    assert getattr(at, name) == _at(name)
    with pytest.raises(ScenarioError) as info:
        parse_scenario({name: _over(name)})
    message = str(info.value)
    assert message.startswith(f"invalid scenario: {name}:"), message
    assert LIMITS[name].describe() in message
    over = _over(name)
    shown = f"a string of {len(over)} characters" if isinstance(over, str) else repr(over)
    assert f"got {shown}" in message


@pytest.mark.parametrize("name", _field_limits())
def test_each_bound_is_a_400_naming_field_value_and_bound_over_http(
    server: MockServer, sid: str, chat_url: str, name: str
) -> None:
    spec = json.dumps({name: _over(name)})
    if len(spec) > 8000:  # past aiohttp's header size: the admin API carries it instead
        r = HTTP.post(f"{server.url}/_mock/sessions/{sid}/scenarios", json=[{name: _over(name)}])
    else:
        r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid, spec))
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert f"{name}:" in message and LIMITS[name].describe() in message
    assert len(r.content) < 2_000, "a refusal must not echo the payload"


def test_spec_size_and_queue_length_are_bounded() -> None:
    big = "{" + " " * int(LIMITS["spec_bytes"].high) + "}"
    with pytest.raises(ScenarioError, match=LIMITS["spec_bytes"].describe()):
        parse_scenario(big)
    too_many = ["ok"] * (int(LIMITS["queue_length"].high) + 1)
    with pytest.raises(ScenarioError, match=LIMITS["queue_length"].describe()):
        parse_scenario_list(too_many)


@pytest.mark.parametrize(
    "raw",
    [
        "{" * 5000,  # RecursionError inside json
        '{"chunks": ' + "9" * 5000 + "}",  # an int of more than 4300 digits: ValueError, not JSONDecodeError
        '{"retry_after": Infinity}',
        '{"ttft": NaN}',
        '{"text": "\\ud800"}',  # a lone surrogate cannot be encoded on the wire
        '{"content_type": "text/html\\r\\nx-injected: 1"}',
        '{"status": 101}',
        '{"' + "k" * 3000 + '": 1}',
    ],
)
def test_hostile_specs_are_scenario_errors(raw: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(raw)
    assert len(str(info.value)) < 1_000


# ------------------------------------------------------------------------------------------- hypothesis fuzz
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
)
#: Values that mean something to some field (fault kinds, usage modes, numbers at and past the bounds), so the
#: fuzz reaches the personalities' renderers and not only the validator.
_MEANINGFUL = st.sampled_from(
    [*DEFAULT_STATUS, "null", "missing", "stop", "length", "content_filter", "text/html", True, False]
    + [v for lim in LIMITS.values() for v in (lim.high, lim.high + 1, lim.low) if v is not None]
)
_VALUES = _MEANINGFUL | st.recursive(_JSON_SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
_FIELDS = st.sampled_from([*sorted(Scenario.model_fields), "preset", "bogus"])
_SPECS = st.dictionaries(_FIELDS, _VALUES, max_size=6)
#: Keys that make a valid scenario wait (hang, delays, stalls): turned off so the fuzz stays fast.
_NO_WAIT = {"hang": False, "headers_delay": 0, "ttft": 0, "chunk_delay": 0, "stall_after": None}


def _crashed(r: httpx.Response) -> bool:
    """An unhandled exception in a handler is aiohttp's own text/plain 500, never a provider's JSON error."""
    return r.status_code == 500 and r.headers.get("content-type", "").startswith("text/plain")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_SPECS, stream=st.booleans())
def test_fuzzed_specs_validate_or_get_a_400_never_a_500(
    server: MockServer, chat_url: str, spec: dict[str, Any], stream: bool
) -> None:
    """Any spec either answers within its bounds or gets a 400 naming a field: the server never fails."""
    spec = {**spec, **{k: v for k, v in _NO_WAIT.items() if k in spec}}
    if spec.get("reset") is True:
        spec["reset"] = False
    raw = json.dumps(spec)  # ASCII (surrogates and non-ASCII escaped): a valid header value
    try:
        expected: ScenarioError | None = None
        parse_scenario(spec)
    except ScenarioError as exc:
        expected = exc
    try:
        r = HTTP.post(chat_url, json=chat_body(stream=stream), headers=headers(server.new_session(), raw))
        r.read()
    except httpx.HTTPError:  # abort_after and friends drop the connection on purpose
        assert expected is None, f"{spec} should have been refused: {expected}"
        return
    assert not _crashed(r), (spec, r.text)
    if expected is not None:
        assert r.status_code == 400 and r.json()["error"]["type"] == "mock_scenario_error", (spec, r.text)
        assert r.json()["error"]["message"].endswith(str(expected))
        named = [f for f in [*Scenario.model_fields, "preset", "bogus", "scenario"] if f in str(expected)]
        assert named or "at most one" in str(expected) or "cannot be combined" in str(expected), str(expected)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(_SPECS | st.text(max_size=20), min_size=1, max_size=4))
def test_fuzzed_enqueues_validate_or_get_a_400_never_a_500(server: MockServer, specs: list[Any]) -> None:
    sid = server.new_session()
    r = HTTP.post(f"{server.url}/_mock/sessions/{sid}/scenarios", content=json.dumps({"scenarios": specs}))
    assert r.status_code in (200, 400), r.text
    try:
        parsed = parse_scenario_list(specs)
    except ScenarioError as exc:
        assert r.status_code == 400 and r.json()["error"]["message"] == str(exc)
    else:
        assert r.status_code == 200 and r.json()["added"] == len(parsed)
    server.clear(sid)


# ---------------------------------------------------------------------------------------------- the journal
def _open(journal: Journal, path: str = "/x") -> Any:
    return journal.open(session="s", provider="openai", method="POST", path=path, query=[], headers=[])


def test_journal_is_bounded_in_bytes_dropping_oldest() -> None:
    journal = Journal(max_entries=1_000, max_bytes=200_000)
    for i in range(40):
        entry = _open(journal, f"/{i}")
        entry.record_wire(b"w" * 20_000)
        entry.finish()
        assert journal.bytes <= journal.max_bytes
        assert journal.bytes == sum(e.cost() for e in journal.entries())
    kept = [e.path for e in journal.entries()]
    assert kept == [f"/{i}" for i in range(40 - len(kept), 40)] and 1 < len(kept) < 40
    assert journal.dropped == 40 - len(kept)
    assert journal.clear() == len(kept) and journal.bytes == 0


def test_large_wire_and_text_are_cut_with_size_and_sha256_kept() -> None:
    journal = Journal()
    entry = _open(journal)
    frames = [bytes([65 + i % 26]) * 10_000 for i in range(30)]
    for frame in frames:
        entry.record_wire(frame)
    sent = b"".join(frames)
    entry.text_sent = "é" * (KEEP_BYTES + 10)
    entry.finish()
    dumped = entry.to_dict()
    assert dumped["truncated"]["wire"] == {
        "size": len(sent),
        "sha256": hashlib.sha256(sent).hexdigest(),
        "kept": KEEP_BYTES,
    }
    assert dumped["wire"].encode() == sent[:KEEP_BYTES]
    text = ("é" * (KEEP_BYTES + 10)).encode()
    assert dumped["truncated"]["text_sent"]["sha256"] == hashlib.sha256(text).hexdigest()
    assert dumped["truncated"]["text_sent"]["size"] == len(text)
    assert len(dumped["text_sent"]) == KEEP_BYTES
    assert journal.bytes == entry.cost() < 3 * KEEP_BYTES + 16_384


def test_a_large_request_body_is_journaled_cut_with_its_hash(
    server: MockServer, sid: str, chat_url: str
) -> None:
    body = chat_body()
    body["messages"][1]["content"] = "y" * 900_000
    raw = json.dumps(body).encode()
    r = HTTP.post(chat_url, content=raw, headers={**headers(sid), "content-type": "application/json"})
    assert r.status_code == 200
    (entry,) = server.journal(sid)
    assert entry["truncated"]["request_body"] == {
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "kept": KEEP_BYTES,
    }
    assert entry["request_body"] == raw[:KEEP_BYTES].decode()
    small = chat_body()
    HTTP.post(chat_url, json=small, headers=headers(sid))
    assert server.journal(sid)[-1]["request_body"] == small and server.journal(sid)[-1]["truncated"] == {}


# --------------------------------------------------------------------------------------------- the sessions
class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_idle_sessions_expire_without_waiting() -> None:
    clock = FakeClock()
    store = SessionStore(ttl=60, clock=clock)
    store.enqueue("a", [Scenario(), Scenario()])
    store.enqueue("b", [Scenario()])
    clock.now += 59
    assert store.pop("a") is not None  # "a" was used: its idle time restarts
    clock.now += 2
    assert store.pending("b") == [] and len(store) == 1 and store.expired == 1
    assert [q.remaining for q in store.pending("a")] == [1]
    clock.now += 61
    assert store.pop("a") is None and len(store) == 0 and store.queued_bytes == 0


def test_session_count_is_bounded_least_recently_used_first() -> None:
    clock = FakeClock()
    store = SessionStore(max_sessions=3, clock=clock)
    for sid in "abc":
        clock.now += 1
        store.enqueue(sid, [Scenario(times=5)])
    clock.now += 1
    store.pop("a")  # "a" is now the most recently used: "b" is the oldest
    done = store.enqueue("d", [Scenario()])
    assert done.evicted_sessions == 1 and store.evicted == 1
    assert store.pending("b") == [] and all(store.pending(s) for s in "acd")


def test_queued_bytes_are_bounded() -> None:
    text = Scenario(text="t" * 30_000)
    store = SessionStore(max_bytes=10 * scenario_cost(text))
    for i in range(30):
        store.enqueue(f"s{i}", [text])
        assert store.queued_bytes <= store.max_bytes
    assert len(store) < 10 and store.evicted > 0
    with pytest.raises(ScenarioError, match="at most"):
        store.enqueue("greedy", [text] * 11)
    assert store.pending("greedy") == []


def test_queue_length_per_session_is_a_400(server: MockServer, sid: str) -> None:
    url = f"{server.url}/_mock/sessions/{sid}/scenarios"
    bound = int(LIMITS["queue_length"].high)
    assert HTTP.post(url, json=["ok"] * (bound - 1)).json()["queued"] == bound - 1
    assert HTTP.post(url, json=["ok"]).json()["queued"] == bound
    r = HTTP.post(url, json=["ok"])
    assert r.status_code == 400 and LIMITS["queue_length"].describe() in r.json()["error"]["message"]
    server.clear(sid)


def test_session_id_length_is_a_400(server: MockServer) -> None:
    sid = "s" * (int(LIMITS["session_id"].high) + 1)
    r = HTTP.post(f"{server.url}/_mock/sessions/{sid}/scenarios", json=["ok"])
    assert r.status_code == 400 and LIMITS["session_id"].describe() in r.json()["error"]["message"]


def test_health_reports_what_the_server_holds(server: MockServer, sid: str) -> None:
    server.queue(sid, {"text": "z" * 1000})
    usage = HTTP.get(f"{server.url}/_mock/health").json()["usage"]
    assert usage["sessions"] >= 1 and usage["queued_bytes"] >= 1000 and usage["journal_bytes"] >= 0
    assert math.isfinite(usage["journal_entries"])
    server.clear(sid)


def test_fake_key_never_reaches_a_limit_message(server: MockServer, sid: str, chat_url: str) -> None:
    r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid, json.dumps({"message": FAKE_KEY * 200})))
    assert r.status_code == 400 and FAKE_KEY not in r.text


# ------------------------------------------------------------------------------------------ memory ceiling
MIB = 1024 * 1024


def memory_ceiling(journal_bytes: int, queue_bytes: int) -> int:
    """The README's documented ceiling on the mock's memory growth above its idle footprint."""
    return int(1.5 * (journal_bytes + queue_bytes)) + 32 * MIB


def _rss(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"{key} not in /proc/{pid}/status")


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the server's RSS from /proc (Linux)"
)
def test_the_issue_attacks_stay_under_the_memory_ceiling() -> None:
    """Replays issue 9 against a real ``python -m mockserver`` over loopback and measures its peak RSS growth."""
    journal_bytes, queue_bytes = 1 * MIB, 4 * MIB
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "--port", "0", "--journal-bytes", str(journal_bytes),
         "--queue-bytes", str(queue_bytes)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        chat = f"{url}/openai/v1/chat/completions"
        with httpx.Client(timeout=30) as client:
            for stream in (False, True) * 10:  # warm up every code path the attacks take
                client.post(chat, json=chat_body(stream=stream), headers=headers("warm"))
            client.post(f"{url}/_mock/sessions/warm/scenarios", json=["ok"])
            idle = _rss(proc.pid, "VmRSS")
            # a ~30-byte header asking for a huge stream: refused, naming the field
            for spec in ('{"empty_chunks":99999999}', '{"keepalives":99999999}', '{"chunks":99999999}'):
                r = client.post(chat, json=chat_body(stream=True), headers=headers("a", spec))
                assert r.status_code == 400 and spec[2:8] in r.json()["error"]["message"]
            # the most one header may ask for (8 kB of header): answered, the journal keeps 64 KiB of it
            most = {"chunks": 10_000, "empty_chunks": 1_000, "keepalives": 1_000, "text": "x" * 8_000}
            r = client.post(chat, json=chat_body(stream=True), headers=headers("a", json.dumps(most)))
            assert r.status_code == 200 and len(r.content) > KEEP_BYTES
            # a 900 kB queued text: refused
            r = client.post(
                f"{url}/_mock/sessions/q/scenarios", json=[{"text": "t" * 900_000, "times": 10_000}]
            )
            assert r.status_code == 400 and "spec_bytes" in r.json()["error"]["message"]
            # the largest texts allowed, queued over and over in many sessions: counts back, LRU eviction
            biggest = {"text": "é" * int(LIMITS["text"].high), "times": int(LIMITS["times"].high)}
            evicted = 0
            for i in range(24):
                r = client.post(f"{url}/_mock/sessions/q{i}/scenarios", json=[biggest] * 4)
                assert r.status_code == 200 and "queue" not in r.json() and len(r.content) < 200
                evicted += r.json()["evicted_sessions"]
            assert evicted > 0
            # 900 kB request bodies, journaled: cut to 64 KiB each, oldest entries dropped past the byte bound
            body = chat_body()
            body["messages"][1]["content"] = "y" * 900_000
            for _ in range(16):
                assert client.post(chat, json=body, headers=headers("b")).status_code == 200
            usage = client.get(f"{url}/_mock/health").json()["usage"]
            kept = client.get(f"{url}/_mock/journal", params={"session": "b", "wait": 0}).json()["entries"]
            grown = _rss(proc.pid, "VmHWM") - idle
    finally:
        proc.terminate()
        proc.wait(10)
    assert usage["journal_bytes"] <= journal_bytes and usage["queued_bytes"] <= queue_bytes
    assert 0 < len(kept) < 16, "the byte bound, not the entry count, must have dropped the oldest entries"
    assert all(e["truncated"]["request_body"]["size"] > 900_000 for e in kept)
    assert grown < memory_ceiling(journal_bytes, queue_bytes), f"grew {grown / MIB:.0f} MiB"
