"""Adapters called directly never let a raw exception out, never hang, and never report an inconsistent result.

Hypothesis mutates a realistic success body or stream of every wire (one hostile value at one JSON path, or a key
removed) and every stream is cut at every byte; the adapter runs over an httpx.MockTransport, without the gateway.
Bounded for the default suite (about 30 s); heavy runs: PROVCERT_FUZZ_EXAMPLES=5000 (examples per adapter and test,
randomized above 200) and PROVCERT_FUZZ_EVERY_BYTE=1 (cut every stream at every byte, not only near frame boundaries
and in its last two frames), e.g. ``PROVCERT_FUZZ_EXAMPLES=5000 PROVCERT_FUZZ_EVERY_BYTE=1 pytest
tests/adapters/test_fuzz_adapters.py -n 2``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from fuzz_support import (
    DEEP,
    DELETE,
    SEEDS,
    Harness,
    Seed,
    call,
    check_outcome,
    dumps,
    json_paths,
    mutate,
    render_frame,
    render_stream,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.errors import ErrorKind
from adapters.types import TextDelta

EVERY_BYTE = os.environ.get("PROVCERT_FUZZ_EVERY_BYTE") == "1"
EXAMPLES = int(os.environ.get("PROVCERT_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 200,
    database=None,
)
PROVIDERS = sorted(SEEDS)

HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([-1, 10**30, -(10**30), 2**63, 1.5, 12.0, float("inf"), float("-inf"), float("nan")]),
    st.text(max_size=12),
    st.sampled_from(["12", "", "null", "[DONE]", "stop", "end_turn", "STOP", "tool_use"]),
    st.just([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]),
    st.just([{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Hello"}]),
    st.lists(st.one_of(st.integers(), st.text(max_size=4), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=4)), max_size=3),
    st.just(DEEP),
    st.just(DELETE),
)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _expected_text(seed: Seed) -> str:
    return "Hello"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_seeds_are_successes_the_adapter_reads(provider: str) -> None:
    """The harness fuzzes real successes: unmutated, every seed reads as the text and tool call it carries."""
    seed = SEEDS[provider]
    whole = _run(call(seed, dumps(seed.body).encode(), stream=False))
    assert whole.error is None, whole.error
    assert whole.response is not None and whole.response.text == _expected_text(seed)
    assert [t.name for t in whole.response.tool_calls] == ["get_weather"]
    assert whole.response.usage.source == "reported"
    content, _ = render_stream(seed, seed.frames)
    streamed = _run(call(seed, content, stream=True))
    assert streamed.error is None, streamed.error
    assert "".join(e.text for e in streamed.events if isinstance(e, TextDelta)) == _expected_text(seed)
    assert [t.name for t in streamed.events[-1].tool_calls] == ["get_weather"]
    assert streamed.events[-1].usage.source == "reported"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mutated_bodies_give_only_provider_errors_or_consistent_results(provider: str) -> None:
    seed = SEEDS[provider]
    paths = list(json_paths(seed.body))

    @FUZZ
    @given(st.lists(st.tuples(st.sampled_from(paths), HOSTILE), min_size=1, max_size=3))
    def run(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
        body: Any = seed.body
        for path, value in mutations:
            try:
                body = mutate(body, path, value)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation removed or replaced this path's parent
        outcome = _run(call(seed, dumps(body).encode(), stream=False))
        check_outcome(seed, outcome, stream=False)

    run()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mutated_stream_frames_give_only_provider_errors_or_consistent_streams(provider: str) -> None:
    seed = SEEDS[provider]
    targets = [
        (index, path)
        for index, (_, payload) in enumerate(seed.frames)
        if isinstance(payload, dict)
        for path in json_paths(payload)
    ]

    @FUZZ
    @given(st.lists(st.tuples(st.sampled_from(targets), HOSTILE), min_size=1, max_size=3))
    def run(mutations: list[tuple[tuple[int, tuple[Any, ...]], Any]]) -> None:
        frames = list(seed.frames)
        for (index, path), value in mutations:
            name, payload = frames[index]
            try:
                frames[index] = (name, mutate(payload, path, value))
            except (KeyError, IndexError, TypeError):
                continue
        content, _ = render_stream(seed, frames)
        outcome = _run(call(seed, content, stream=True))
        check_outcome(seed, outcome, stream=True)

    run()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_cut_at_any_byte_fails_as_interrupted_or_is_whole(provider: str) -> None:
    """Every cut before the stream's last frame is complete fails (never a success with estimated usage); the
    text delivered before the failure is kept as the error's partial text. Bedrock's cut is ``stream_interrupted``
    always, its trailing metadata frame included."""
    seed = SEEDS[provider]
    content, last_frame_at = render_stream(seed, seed.frames)

    async def every_cut() -> None:
        harness = Harness(seed, stream=True)
        try:
            for cut in cut_points(seed, content):
                outcome = await harness.call(content[:cut])
                check_outcome(seed, outcome, stream=True)
                if outcome.error is None:
                    assert cut > last_frame_at, (
                        f"{provider}: cut at byte {cut} (before the last frame) succeeded"
                    )
                    text = "".join(e.text for e in outcome.events if isinstance(e, TextDelta))
                    assert text == _expected_text(seed), f"{provider}: cut at {cut} succeeded with {text!r}"
                    continue
                assert outcome.error.kind in (ErrorKind.STREAM_INTERRUPTED, ErrorKind.INVALID_RESPONSE), (
                    f"{provider}: cut at {cut}: {outcome.error!r}"
                )
                if seed.framing == "eventstream":
                    assert outcome.error.kind is ErrorKind.STREAM_INTERRUPTED, (
                        f"cut at {cut}: {outcome.error!r}"
                    )
        finally:
            await harness.aclose()

    _run(every_cut())


def cut_points(seed: Seed, content: bytes) -> list[int]:
    """Every byte with PROVCERT_FUZZ_EVERY_BYTE=1; by default every byte of the last two frames (where a stream's
    usage and terminator live), a byte each side of every frame boundary, and every 7th byte elsewhere."""
    if EVERY_BYTE:
        return list(range(len(content)))
    sizes = [len(render_frame(seed.framing, name, payload)) for name, payload in seed.frames]
    bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    cuts = set(range(0, len(content), 7)) | set(range(bounds[-3], len(content)))
    for bound in bounds:
        cuts |= {bound - 1, bound, bound + 1}
    return sorted(c for c in cuts if 0 <= c < len(content))
