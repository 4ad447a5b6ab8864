"""The mock tokenizer and deterministic content: the contract the certification suite computes truth from."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.personalities.base import random_token
from mockserver.truth import (
    VOCABULARY,
    UsageTruth,
    count_tokens,
    input_tokens,
    partial_text,
    request_rng,
    seeded_text,
    split_text,
    split_utf8,
    usage_truth,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   \n\t", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("hello world", 4),  # 5 letters → 2, twice
        ("Hi!", 2),
        ("a_b", 3),  # underscore is not a letter: a, _, b
        ("café", 1),
        ("東京", 1),
        ("🚀", 1),
        ("🚀🚀", 2),
        ("well-known", 4),  # well, -, know+n
        ("v2", 1),
        ("1234567890", 3),
        ('{"a": 1}', 7),  # { " a " : 1 }
    ],
)
def test_tokenizer_examples(text: str, tokens: int) -> None:
    assert count_tokens(text) == tokens


@given(st.text())
def test_whitespace_is_free_and_separates(text: str) -> None:
    assert count_tokens(text) == count_tokens(" " + text + "\n")
    words = text.split()
    assert count_tokens(text) == sum(count_tokens(w) for w in words)


@given(st.text(), st.text())
def test_tokens_are_additive_across_whitespace(a: str, b: str) -> None:
    assert count_tokens(a + " " + b) == count_tokens(a) + count_tokens(b)


@given(st.text(alphabet=st.characters(categories=["Lu", "Ll", "Nd"]), min_size=1))
def test_alnum_run_is_ceil_quarter(run: str) -> None:
    assert count_tokens(run) == math.ceil(len(run) / 4)


def _count_tokens_by_definition(text: str) -> int:
    """The tokenizer exactly as the module docstring states it, one character at a time."""
    tokens = run = 0
    for ch in [*text, " "]:
        if ch.isalnum():
            run += 1
            continue
        tokens += math.ceil(run / 4) + (0 if ch.isspace() else 1)
        run = 0
    return tokens


@given(st.text(alphabet=st.characters(codec=None)))
def test_tokenizer_matches_its_definition(text: str) -> None:
    assert count_tokens(text) == _count_tokens_by_definition(text)


def test_tokenizer_matches_its_definition_for_every_character() -> None:
    every = "".join(chr(cp) for cp in range(0x110000))
    assert count_tokens(every) == _count_tokens_by_definition(every)
    for ch in "_\u00a0\u2028\u0660\u00b2\u2167\u3000\x1c":
        assert count_tokens(f"a{ch}{ch}b") == _count_tokens_by_definition(f"a{ch}{ch}b")


def test_input_tokens_formula() -> None:
    contents = [
        "You are terse.",
        "Hi",
        None,
        [{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}],
    ]
    expected = sum(count_tokens(c) + 4 for c in ["You are terse.", "Hi", ""]) + (2 + 1 + 4) + 3
    assert input_tokens(contents) == expected
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    assert input_tokens(["x"], [tool]) == (1 + 4) + 3 + count_tokens(json.dumps(tool))


def test_usage_truth_arithmetic() -> None:
    u = usage_truth(10, "hello world", tool_tokens=3, cached=50, reasoning=7)
    assert u == UsageTruth(input_tokens=10, output_tokens=4 + 3 + 7, total_tokens=24, cached_tokens=10,
                           reasoning_tokens=7)  # fmt: skip
    assert u.as_dict()["total_tokens"] == 24


def test_seeded_text_is_deterministic_and_shaped() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    a = seeded_text(request_rng(0, msgs))
    assert a == seeded_text(request_rng(0, msgs))
    assert a != seeded_text(request_rng(0, [{"role": "user", "content": "hello"}]))
    assert a != seeded_text(request_rng(1, msgs))
    words = a.rstrip(".").replace(",", "").split(" ")
    assert 12 <= len(words) <= 20
    assert all(w.lower() in {v.lower() for v in VOCABULARY} for w in words)
    assert a.endswith(".")


def test_seeded_text_varies_in_length() -> None:
    lengths = {len(seeded_text(random.Random(i)).split()) for i in range(200)}
    assert min(lengths) == 12 and max(lengths) == 20


def test_partial_text_is_a_prefix() -> None:
    text = "one two three four five six"
    assert partial_text(text) == "one two three"
    assert text.startswith(partial_text(text))


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_split_text_concatenates_exactly(text: str, n: int) -> None:
    pieces = split_text(text, n)
    assert "".join(pieces) == text
    assert all(pieces)
    assert len(pieces) <= n
    if text and len(text) >= n and not any(ord(c) > 0x2FF for c in text) and "\r" not in text:
        assert len(pieces) == n
    for piece in pieces:
        piece.encode("utf-8")  # every piece is encodable on its own (no lone surrogates produced)


def test_split_text_keeps_combining_marks_with_their_base() -> None:
    text = "e\u0301" * 10  # é as e + combining acute
    for n in range(1, 25):
        assert all(not p.startswith("\u0301") for p in split_text(text, n))


def test_split_text_edges() -> None:
    assert split_text("", 5) == []
    assert split_text("abc", 10) == ["a", "b", "c"]
    assert split_text("abcdef", 1) == ["abcdef"]


@given(st.text(min_size=1), st.integers(min_value=1, max_value=40))
def test_split_utf8_never_cuts_a_sequence(text: str, n: int) -> None:
    data = text.encode()
    pieces = split_utf8(data, n)
    assert b"".join(pieces) == data
    assert all(pieces)
    for p in pieces:
        p.decode("utf-8")


@pytest.mark.parametrize(
    "alphabet", ["ab", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", "é東"]
)
def test_random_token_draws_every_character_of_its_alphabet(alphabet: str) -> None:
    tokens = [random_token(length, alphabet) for length in (0, 1, 29, 300) for _ in range(50)]
    assert [len(t) for t in tokens[::50]] == [0, 1, 29, 300]
    assert set("".join(tokens)) == set(alphabet)
    assert len(random_token(24)) == 24 and random_token(24).isalnum() and random_token(24).isascii()
