"""What the mock server knows is true: deterministic content and the mock tokenizer.

The certification suite compares adapters against the journal, so the server must be able to say exactly how
many tokens a request and its answer "cost". That is only possible with a tokenizer that is fully specified
here.

Mock tokenizer (this is the contract; adapters' estimators and the suite rely on it):

* every maximal run of letters/digits (characters for which ``str.isalnum()`` is true, so ``café`` and
  ``東京`` are runs too) counts ``ceil(len(run) / 4)`` tokens;
* every other non-whitespace character (punctuation, ``_``, emoji, ...) counts 1 token;
* whitespace (``str.isspace()``) is free.

Chat accounting:

* input tokens = sum over messages of ``(tokens(content) + 4)`` + 3 (the reply priming), plus
  ``tokens(json.dumps(tool))`` for each declared tool definition, as the provider received it. A message's
  content is a string, or a list of parts whose ``text`` strings are counted one by one; any other non-null
  content counts as ``tokens(json.dumps(content))``; null content counts 0.
* output tokens = ``tokens(completion text)`` + (when a tool call is answered) ``tokens(name)`` +
  ``tokens(arguments JSON)`` + ``reasoning_tokens``.
* total = input + output; cached tokens = ``min(scenario.cached_tokens, input)``.

Content: seeded by a hash of the request's messages and the server seed, so the same request always gets the
same text; 12-20 words from a fixed vocabulary that deliberately contains multi-byte UTF-8 (``café``,
``東京``, an emoji) so adapters that split bytes carelessly are caught. ``scenario.text`` overrides it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: The fixed vocabulary the seeded content is drawn from. Changing it changes every golden expectation: don't.
VOCABULARY: tuple[str, ...] = (
    "amber", "harbor", "lantern", "quietly", "maps", "seven", "orbits", "river", "stone", "garden",
    "signal", "forward", "gentle", "copper", "meadow", "thunder", "silver", "window", "falcon", "paper",
    "bridge", "echo", "velvet", "crystal", "north", "market", "lattice", "puzzle", "candle", "orchard",
    "café", "naïve", "jalapeño", "smörgåsbord", "façade", "東京", "🚀", "42", "v2", "well-known",
)  # fmt: skip


#: A maximal run of ``str.isalnum()`` characters (``\w`` is exactly isalnum plus ``_``), else one non-space
#: character (``\s`` is exactly ``str.isspace()``): each match costs ceil(len / 4), so 1 for a single character.
_TOKEN_MATCH = re.compile(r"[^\W_]+|\S")


def count_tokens(text: str) -> int:
    """Count tokens of ``text`` with the mock tokenizer described in the module docstring."""
    return sum((len(match) + 3) // 4 for match in _TOKEN_MATCH.findall(text))


def content_tokens(content: Any) -> int:
    """Tokens of one message's content, whatever shape the provider used (string, list of parts, null)."""
    if content is None:
        return 0
    if isinstance(content, str):
        return count_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                total += count_tokens(part["text"])
            elif isinstance(part, str):
                total += count_tokens(part)
            else:
                total += count_tokens(json.dumps(part))
        return total
    return count_tokens(json.dumps(content))


def input_tokens(contents: Sequence[Any], tools: Sequence[Any] = ()) -> int:
    """Input tokens of a chat request: per-message overhead 4, reply priming 3, tool definitions as JSON."""
    total = sum(content_tokens(c) + 4 for c in contents) + 3
    total += sum(count_tokens(json.dumps(t)) for t in tools)
    return total


@dataclass(frozen=True)
class UsageTruth:
    """The usage the server knows is true for an answer, whatever it chose to put on the wire."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


def usage_truth(
    input_count: int, output_text: str, *, tool_tokens: int = 0, cached: int = 0, reasoning: int = 0
) -> UsageTruth:
    """Combine the counts into the truth: output includes tool-call tokens and hidden reasoning tokens."""
    output = count_tokens(output_text) + tool_tokens + reasoning
    return UsageTruth(
        input_tokens=input_count,
        output_tokens=output,
        total_tokens=input_count + output,
        cached_tokens=min(cached, input_count),
        reasoning_tokens=reasoning,
    )


def request_rng(seed: int, messages: Any) -> random.Random:
    """A PRNG seeded by the server seed and a stable hash of the messages (same request → same content)."""
    canonical = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{seed}\x00{canonical}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def seeded_text(rng: random.Random) -> str:
    """12-20 vocabulary words as a sentence: capitalised, one comma, ending with a full stop."""
    count = rng.randint(12, 20)
    words = [rng.choice(VOCABULARY) for _ in range(count)]
    words[0] = words[0][:1].upper() + words[0][1:]
    comma_at = rng.randint(3, count - 3)
    words[comma_at] += ","
    return " ".join(words) + "."


def partial_text(text: str) -> str:
    """The first half of the words of ``text`` (what a model emitted before a content filter stopped it)."""
    words = text.split(" ")
    return " ".join(words[: max(1, len(words) // 2)])


def seeded_arguments(rng: random.Random, parameters: Any) -> dict[str, Any]:
    """Plausible arguments for a JSON-schema ``parameters`` object, deterministic for a given PRNG."""
    if not isinstance(parameters, dict):
        return {}
    props = parameters.get("properties")
    if not isinstance(props, dict):
        return {}
    required = parameters.get("required")
    names = [n for n in props if not isinstance(required, list) or n in required] or list(props)
    return {name: _value_for(rng, props[name]) for name in names}


def _value_for(rng: random.Random, schema: Any) -> Any:
    if not isinstance(schema, dict):
        return rng.choice(VOCABULARY[:30])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return round(rng.uniform(0, 100), 2)
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value_for(rng, schema.get("items"))]
    if kind == "object":
        return seeded_arguments(rng, schema)
    return rng.choice(VOCABULARY[:30])


def split_text(text: str, n: int) -> list[str]:
    """Split ``text`` into at most ``n`` non-empty pieces that concatenate exactly to ``text``.

    Boundaries are code points (so every piece encodes to complete UTF-8), and never fall before a combining
    mark or between CR and LF, so no piece starts with half a grapheme. Fewer pieces come back when the text
    is too short; an empty text gives no pieces.
    """
    if not text or n <= 0:
        return []
    cuts: list[int] = []
    last = 0
    length = len(text)
    for i in range(1, n):
        cut = round(i * length / n)
        while 0 < cut < length and not _can_cut(text, cut):
            cut += 1
        if last < cut < length:
            cuts.append(cut)
            last = cut
    bounds = [0, *cuts, length]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _can_cut(text: str, i: int) -> bool:
    if unicodedata.combining(text[i]) or unicodedata.category(text[i]) in ("Mn", "Me"):
        return False
    if text[i] == "\u200d" or text[i - 1] == "\u200d":  # zero-width joiner sequences
        return False
    return not (text[i - 1] == "\r" and text[i] == "\n")


def split_utf8(data: bytes, n: int) -> list[bytes]:
    """Split UTF-8 bytes into at most ``n`` non-empty pieces without cutting inside a multi-byte sequence.

    For personalities that write one frame across several TCP writes, to exercise clients' incremental
    decoders.
    """
    if not data or n <= 0:
        return []
    cuts: list[int] = []
    last = 0
    for i in range(1, n):
        cut = round(i * len(data) / n)
        while 0 < cut < len(data) and data[cut] & 0xC0 == 0x80:
            cut += 1
        if last < cut < len(data):
            cuts.append(cut)
            last = cut
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
