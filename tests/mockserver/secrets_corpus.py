"""A held-out corpus of credentials: 17 key formats, generated at test time from random bytes.

No key-shaped literal is committed: each format is a prefix (what the provider publishes) and an alphabet and a
length, filled from the operating system's randomness on every run. ``SHAPED`` formats have a distinctive shape
the scanner must find anywhere; the others (AWS secret key and session token, Azure, Mistral, Together) are
shapeless and found by their position (a secret header, query parameter or field) or by their entropy.

Shared by tests/cassettes/test_secrets_corpus.py (recorder, scanner, errors, logs) and
tests/mockserver/test_mock_secrets.py (journal, access log), loaded there by path.
"""

from __future__ import annotations

import base64
import json
import random
import string
import struct
import zlib
from collections.abc import Callable

_RNG = random.SystemRandom()
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"


def _draw(alphabet: str, n: int) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


def _b64url(n: int) -> str:
    return base64.urlsafe_b64encode(_RNG.randbytes(n)).decode().rstrip("=")


#: format -> (generator, shaped?)
FORMATS: dict[str, tuple[Callable[[], str], bool]] = {
    "openai": (lambda: "sk-" + _draw(ALNUM, 48), True),
    "openai-project": (lambda: "sk-" + "proj-" + _draw(URLSAFE, 100), True),
    "anthropic": (lambda: "sk-" + "ant-api03-" + _draw(URLSAFE, 93) + "AA", True),
    "google-gemini": (lambda: "AI" + "za" + _draw(URLSAFE, 35), True),
    "aws-access-key-id": (lambda: "AK" + "IA" + _draw(string.ascii_uppercase + "234567", 16), True),
    "aws-secret-access-key": (lambda: _draw(B64, 40), False),
    "aws-session-token": (lambda: "IQoJ" + base64.b64encode(_RNG.randbytes(240)).decode(), False),
    "azure-openai": (lambda: _draw(HEX, 32), False),
    "mistral": (lambda: _draw(ALNUM, 32), False),
    "together": (lambda: _draw(HEX, 64), False),
    "fireworks": (lambda: "fw" + "_" + _draw(ALNUM, 24), True),
    "groq": (lambda: "gs" + "k_" + _draw(ALNUM, 52), True),
    "huggingface": (lambda: "hf" + "_" + _draw(string.ascii_letters, 34), True),
    "deepseek": (lambda: "sk-" + _draw(HEX, 32), True),
    "openrouter": (lambda: "sk-" + "or-v1-" + _draw(HEX, 64), True),
    "github": (lambda: "gh" + "p_" + _draw(ALNUM, 36), True),
    "jwt": (
        lambda: "eyJ" + _b64url(24) + "." + "eyJ" + _b64url(48) + "." + _b64url(32),
        True,
    ),
}
assert len(FORMATS) == 17


def generate() -> dict[str, str]:
    """One fresh key per format."""
    return {name: make() for name, (make, _shaped) in FORMATS.items()}


def shaped(name: str) -> bool:
    return FORMATS[name][1]


def event_stream_message(payload: bytes, event_type: str = "contentBlockDelta") -> bytes:
    """One AWS event-stream message (prelude, string headers, payload, both CRCs), as Bedrock sends them."""
    headers = b""
    for name, value in (
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ):
        raw = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


#: The ten places a credential can be written. Each builds one recorded interaction (vcrpy's dict shapes:
#: request uri, headers, body; response headers, body) that carries ``key`` in that place only.
PLACES = (
    "request-header",
    "response-header",
    "query-string",
    "url-path",
    "json-request-body",
    "json-response-body",
    "sse-frame",
    "ndjson-line",
    "aws-event-stream",
    "error-message",
)

#: the places where the scanner reads the value under a secret's name (header, parameter): found for any format
NAMED_PLACES = frozenset({"request-header", "query-string"})


def interaction(place: str, key: str) -> dict[str, object]:
    """``{"uri", "request_headers", "request_body", "response_headers", "response_body"}`` with ``key`` in ``place``
    (``error-message`` has no interaction: the tests build errors and log records from the key instead)."""
    uri = "https://api.example.test/v1/chat/completions"
    req_headers = {"content-type": "application/json", "user-agent": "provcert-corpus/1"}
    req_body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).encode()
    resp_headers = {"content-type": "application/json", "x-request-id": "req_" + _draw(HEX, 24)}
    resp_body = json.dumps({"id": "chatcmpl-1", "choices": [{"message": {"content": "hi"}}]}).encode()
    if place == "request-header":
        req_headers["authorization"] = f"Bearer {key}"
    elif place == "response-header":
        resp_headers["x-upstream-echo"] = key
    elif place == "query-string":
        uri += f"?api-version=2024-10-21&key={key}"
    elif place == "url-path":
        uri = f"https://api.example.test/v1/keys/{key}/usage"
    elif place == "json-request-body":
        req_body = json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": f"my key is {key} ok"}]}
        ).encode()
    elif place == "json-response-body":
        resp_body = json.dumps(
            {"error": {"message": f"Incorrect API key provided: {key}.", "type": "auth"}}
        ).encode()
    elif place == "sse-frame":
        resp_headers["content-type"] = "text/event-stream"
        frame = {"choices": [{"delta": {"content": f"the key {key} works"}}]}
        resp_body = f"data: {json.dumps(frame)}\n\ndata: [DONE]\n\n".encode()
    elif place == "ndjson-line":
        resp_headers["content-type"] = "application/x-ndjson"
        resp_body = (json.dumps({"message": {"content": f"key {key} seen"}, "done": False}) + "\n").encode()
        resp_body += b'{"done": true}\n'
    elif place == "aws-event-stream":
        resp_headers["content-type"] = "application/vnd.amazon.eventstream"
        payload = json.dumps({"contentBlockIndex": 0, "delta": {"text": f"key {key} here"}}).encode()
        resp_body = event_stream_message(payload) + event_stream_message(
            b'{"stopReason":"end_turn"}', "messageStop"
        )
    else:
        raise ValueError(place)
    return {
        "uri": uri,
        "request_headers": req_headers,
        "request_body": req_body,
        "response_headers": resp_headers,
        "response_body": resp_body,
    }
