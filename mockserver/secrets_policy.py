"""The one redaction policy: WHAT counts as a secret, for every surface provcert writes.

Errors (:func:`adapters.errors.scrub`), the mock's journal and logs (:mod:`mockserver.journal`, the CLI's access log),
the recorder (:class:`harness.recording.Redactor`), the scanner (:mod:`harness.secrets`) and reports all read the
header names, query keys, body keys and key shapes below, and redact free text with :func:`redact_text`. Before this
module each surface kept its own list and they drifted (the journal missed ``sig=``, APIM keys and body ``api_key``
that the recorder redacted).

Why it lives in ``mockserver/``: DESIGN.md puts the secrets policy in "a small shared core below both" the mock and
the runtime, and the layer rule forbids the mock (the oracle) to import ``adapters/`` or ``harness/``. A new top-level
package would change the packaging that issue 10 is about to restructure, so the core is this one module, which
imports nothing but the standard library: the mock may import it (it is its own package), and ``adapters/`` and
``harness/`` may import it without pulling in anything of the mock (``mockserver/__init__.py`` is empty, no aiohttp is
loaded). Issue 10 should move it into the shared core package unchanged.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"

#: Request headers that carry credentials, and response headers that identify the account (compared lower-case).
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "anthropic-api-key",
        "x-goog-api-key",
        "ocp-apim-subscription-key",  # Azure API Management
        "x-amz-security-token",
        "x-amz-content-sha256-signature",
        "x-functions-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
        "x-goog-user-project",
    }
)
#: Headers whose value keeps its scheme word when redacted (``Bearer [REDACTED]``): GLD-REQUEST checks the scheme.
SCHEME_HEADERS = frozenset({"authorization", "proxy-authorization"})

#: Query parameters that carry credentials (Gemini ``key=``, presigned AWS URLs, Azure SAS ``sig=``, OAuth tokens).
SECRET_QUERY = frozenset(
    {
        "key",
        "api_key",
        "api-key",
        "apikey",
        "access_token",
        "token",
        "sig",
        "signature",
        "subscription-key",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "code",  # Azure Functions keys
    }
)

#: JSON fields, anywhere in a body, whose value is a secret (``token`` is not one: OpenAI logprobs use it for text).
SECRET_FIELDS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "password",
        "secret_key",
        "secret_access_key",
        "aws_secret_access_key",
        "session_token",
        "aws_session_token",
        "private_key",
        "authorization",
    }
)

_B = r"(?<![A-Za-z0-9_-])"  # a key starts at a token boundary, not inside a word ("risk-assessment-...")
_E = r"(?![A-Za-z0-9_-])"

#: Provider key formats with a distinctive shape: found anywhere, in any text, by these patterns alone.
KEY_SHAPES: dict[str, re.Pattern[str]] = {
    "anthropic": re.compile(_B + r"sk-ant-(?:api|admin|oat)\d{2}-[A-Za-z0-9_-]{20,}"),
    "openrouter": re.compile(_B + r"sk-or-v1-[0-9a-f]{64}"),
    "openai": re.compile(_B + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    "google": re.compile(_B + r"AIza[0-9A-Za-z_-]{35}"),
    "aws-access-key": re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
    "groq": re.compile(_B + r"gsk_[A-Za-z0-9]{40,}"),
    "huggingface": re.compile(_B + r"hf_[A-Za-z0-9]{30,}"),
    "fireworks": re.compile(_B + r"fw_[A-Za-z0-9]{20,}"),
    "github": re.compile(_B + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})"),
    "slack": re.compile(_B + r"xox[abposr]-[A-Za-z0-9-]{10,}"),
    "jwt": re.compile(_B + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "aws-sigv4-signature": re.compile(r"(?i)(?<=Signature=)[0-9a-f]{64}(?![0-9a-f])"),
    "private-key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}

_NAMES = sorted(SECRET_HEADERS | SECRET_QUERY | SECRET_FIELDS | {"secret", "bearer"}, key=len, reverse=True)
#: ``name: value`` / ``name=value`` / ``"name": "value"`` in free text (a log line, an error message, a repr, a URL).
_NAMED_VALUE = re.compile(
    r"(?i)(?<![A-Za-z0-9_-])((?:"
    + "|".join(
        re.escape(n) for n in _NAMES if n not in ("bearer", "code", "token", "key", "signature", "sig")
    )
    + r"|key|token|sig|signature)[\"'\\]*\s*[:=]\s*[\"'\\]*(?:(?:Bearer|Basic|Token|AWS4-HMAC-SHA256)\s+)?)"
    r"(?!\[?REDACTED)([^\s\"'\\&,;}<>\])]{6,})"
)
_BEARER = re.compile(r"(?i)((?:bearer|basic)\s+)(?!\[REDACTED\])([A-Za-z0-9._~+/=-]{8,})")


def is_secret_header(name: str) -> bool:
    return name.strip().lower() in SECRET_HEADERS


def is_secret_query(name: str) -> bool:
    return name.strip().lower() in SECRET_QUERY


def is_secret_field(name: str) -> bool:
    return name.strip().lower() in SECRET_FIELDS


def redact_header_value(name: str, value: str) -> str:
    """A secret header's value as it may be shown: the scheme word kept for ``Authorization``, the rest hidden."""
    if name.strip().lower() in SCHEME_HEADERS:
        scheme, sep, _rest = value.strip().partition(" ")
        if sep and scheme.isascii() and (scheme.isalnum() or scheme.startswith("AWS4-")):
            return f"{scheme} {REDACTED}"
    return REDACTED


def variants(secret: str) -> set[str]:
    """Every form a credential takes on the surfaces provcert writes: as is, JSON-escaped, ``repr``-escaped,
    URL-encoded, and, for a malformed credential (an inner newline or control character), each printable piece
    long enough to identify it, since an HTTP library or a log splits or escapes the value at those characters."""
    out = {secret}
    out.add(json.dumps(secret)[1:-1])
    out.add(repr(secret)[1:-1])
    out.add(secret.encode("unicode_escape").decode("ascii"))
    out.add(repr(secret.encode("utf-8", "backslashreplace"))[2:-1])
    out.add(quote(secret, safe=""))
    out.add(quote_plus(secret, safe=""))
    for piece in re.split(r"[\x00-\x20\x7f]+", secret):
        if len(piece) >= 6:
            out.add(piece)
    return {v for v in out if len(v) >= 4}


def redact_text(text: str, known: Iterable[str] = (), *, named: bool = True) -> str:
    """``text`` with every known credential (in every :func:`variants` form), every shaped key and, with ``named``,
    every value written next to a secret's name (``api-key: ...``, ``?key=...``, ``"api_key": "..."``,
    ``Bearer ...``) hidden. ``named=False`` is for recorded bodies, where a field named ``token`` is text (logprobs)
    and secret fields are redacted by structure instead (:func:`redact_json`)."""
    forms: set[str] = set()
    for secret in known:
        if secret:
            forms |= variants(secret)
    for form in sorted(forms, key=len, reverse=True):
        if form in text:
            text = text.replace(form, REDACTED)
    for pattern in KEY_SHAPES.values():
        text = pattern.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    if not named:
        return text
    return _NAMED_VALUE.sub(lambda m: m.group(1) + REDACTED, text)


def redact_json(value: Any) -> Any:
    """A decoded JSON value with every :data:`SECRET_FIELDS` value, at any depth, replaced by ``[REDACTED]``."""
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_field(str(k)) else redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    return value


def has_secret_field(value: Any) -> bool:
    """Whether a decoded JSON value holds a :data:`SECRET_FIELDS` key anywhere (not yet redacted)."""
    if isinstance(value, dict):
        return any(
            (is_secret_field(str(k)) and v != REDACTED) or has_secret_field(v) for k, v in value.items()
        )
    if isinstance(value, list):
        return any(has_secret_field(v) for v in value)
    return False


def has_secret_value(value: Any, known: Iterable[str]) -> bool:
    """Whether any string in a decoded JSON value (keys included) contains one of the ``known`` credentials."""
    forms = tuple(known)
    if isinstance(value, str):
        return any(f in value for f in forms)
    if isinstance(value, dict):
        return any(has_secret_value(k, forms) or has_secret_value(v, forms) for k, v in value.items())
    if isinstance(value, list):
        return any(has_secret_value(v, forms) for v in value)
    return False


class RedactingFilter(logging.Filter):
    """A logging filter that applies :func:`redact_text` to a record's message, arguments and traceback.

    Why: aiohttp's access log writes the request line with its query string (``?key=...``) and its server logger
    attaches the parser's exception for a malformed request, whose text quotes the raw header line
    (``Authorization: Bearer ...``). The record is rewritten in place, so every handler downstream sees the
    redacted text only.
    """

    def __init__(self, known: Iterable[str] | Callable[[], Iterable[str]] = ()) -> None:
        super().__init__()
        #: the credentials to hide by value; a callable is asked on every record (a process that resolves keys as
        #: it runs, such as the harness with ``adapters.errors.known_secrets``, hides the ones resolved later too)
        self._known = known if callable(known) else tuple(known)

    @property
    def known(self) -> tuple[str, ...]:
        return tuple(self._known()) if callable(self._known) else self._known

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format: show the template, never fail the log call
            message = str(record.msg)
        record.msg = redact_text(message, self.known)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = "".join(traceback.format_exception(record.exc_info[1]))
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, self.known)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, self.known)
        return True


#: The loggers of the HTTP stack that can quote a request: filtered where they log, not only at one handler.
HTTP_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.internal", "aiohttp.client")


def install_log_redaction(
    loggers: Iterable[str] = HTTP_LOGGERS, *, handlers: Iterable[logging.Handler] = ()
) -> None:
    """Put one :class:`RedactingFilter` on each named logger and each given handler (idempotent)."""
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in loggers]
    targets.extend(handlers)
    for target in targets:
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())


def named_secrets(text: str) -> list[str]:
    """The secret names in ``text`` that are followed by a value that is not redacted (``api-key: 0f3...``)."""
    return [m.group(1).strip("\"'\\:= ").split()[0].lower() for m in _NAMED_VALUE.finditer(text)]


def is_redacted(value: str) -> bool:
    """Whether a value stands for a redacted secret (``[REDACTED]``, ``Bearer [REDACTED]``, ...) or is empty."""
    shown = value.strip()
    if shown in ("", REDACTED, "REDACTED", "%5BREDACTED%5D"):
        return True
    scheme, sep, rest = shown.partition(" ")
    return bool(sep) and " " not in scheme and rest.strip() == REDACTED
