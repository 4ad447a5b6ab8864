"""The held-out corpus (17 key formats x 10 places, fresh random keys each run) through every surface.

What it proves, per issue 9 "Secrets":

* a credential the run knows is redacted everywhere the recorder writes it (100%): headers, query, URL path, JSON
  bodies, each SSE frame and NDJSON line; inside an AWS event-stream body (which cannot be rewritten without
  breaking its CRCs) the recording is refused instead; the written cassette then scans clean;
* the scanner finds every shaped key in every place when nothing was redacted (100%), every shapeless key under a
  secret's name (header, query), and shapeless keys elsewhere by entropy at the rate measured below;
* errors (``str``/``repr``/``to_dict`` of :class:`ProviderError`) and log records carry no known credential, also
  when it is malformed (an inner newline or control character) and a library quotes it escaped or split.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import h11
import pytest
from vcr.request import Request

from adapters import errors
from adapters.errors import ErrorKind, ProviderError, register_secret, scrub
from harness import cassettes as fmt
from harness.recording import ProvcertSerializer, Recorder, SecretLeakError
from harness.secrets import scan_text
from mockserver import secrets_policy


def _load_corpus() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "mockserver" / "secrets_corpus.py"
    spec = importlib.util.spec_from_file_location("provcert_secrets_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus()
KEYS: dict[str, str] = corpus.generate()
WIRE_PLACES = [p for p in corpus.PLACES if p != "error-message"]


def _cassette_text(recorder: Recorder, place: str, key: str) -> str:
    """One interaction with ``key`` in ``place``, through the recorder's vcrpy hooks and serializer."""
    item = corpus.interaction(place, key)
    request = Request("POST", item["uri"], item["request_body"], dict(item["request_headers"]))
    request = recorder.before_record_request(request)
    response: dict[str, Any] = {
        "status": {"code": 200, "message": "OK"},
        "headers": {k: [v] for k, v in item["response_headers"].items()},
        "body": {"string": item["response_body"]},
    }
    response = recorder.before_record_response(response)
    request_dict = {
        "method": request.method,
        "uri": request.uri,
        "headers": dict(request.headers),
        "body": request.body,
    }
    return ProvcertSerializer.serialize({"interactions": [{"request": request_dict, "response": response}]})


def _unredacted_text(place: str, key: str) -> str:
    """The same interaction written with no redaction at all: what a broken recorder would leave on disk."""
    item = corpus.interaction(place, key)
    interaction = fmt.Interaction(
        fmt.RecordedRequest(
            "POST", item["uri"], {k: [v] for k, v in item["request_headers"].items()}, item["request_body"]
        ),
        fmt.RecordedResponse(
            200, {k: [v] for k, v in item["response_headers"].items()}, item["response_body"]
        ),
    )
    return fmt.dumps([interaction])


def _leaks(text: str, key: str) -> list[str]:
    return [form for form in secrets_policy.variants(key) if len(form) >= 8 and form in text]


@pytest.mark.parametrize("place", WIRE_PLACES)
@pytest.mark.parametrize("fmt_name", list(corpus.FORMATS))
def test_a_known_credential_is_redacted_in_every_place(registry, fmt_name: str, place: str) -> None:
    key = KEYS[fmt_name]
    recorder = Recorder(
        registry.get("openai"), Path("unused.cassette.json"), record_mode="once", secrets=(key,)
    )
    try:
        text = _cassette_text(recorder, place, key)
    except SecretLeakError as exc:
        assert place == "aws-event-stream", f"only a binary body may refuse the recording, not {place}"
        assert key not in str(exc)
        return
    assert not _leaks(text, key), f"{fmt_name} key left in {place}"
    assert scan_text(text) == [], f"redacted {place} cassette still scans dirty"
    fmt.parse(json.loads(text))  # still a valid cassette


def test_every_unknown_shaped_key_and_every_named_key_is_found_by_the_scanner() -> None:
    missed = []
    total = 0
    for fmt_name, key in KEYS.items():
        for place in WIRE_PLACES:
            if not (corpus.shaped(fmt_name) or place in corpus.NAMED_PLACES):
                continue
            total += 1
            findings = scan_text(_unredacted_text(place, key), "leak.cassette.json")
            if not findings:
                missed.append(f"{fmt_name} in {place}")
            assert all(key not in str(f) for f in findings), "a finding must not show the secret"
    assert total == 12 * 9 + 5 * 2
    assert not missed, f"scanner missed {len(missed)} of {total}: {missed}"


def test_shapeless_keys_outside_their_header_are_found_by_entropy() -> None:
    """AWS secret and session token, Azure, Mistral and Together keys in a body, a path or a frame: no shape to
    match, so only their entropy gives them away. Several fresh draws per format, so the rate is measured, not
    lucky; the bound is what detect-secrets' Shannon measure achieves on 32+-character random keys."""
    found = total = 0
    missed: list[str] = []
    for _ in range(4):
        keys = corpus.generate()
        for fmt_name, key in keys.items():
            if corpus.shaped(fmt_name):
                continue
            for place in WIRE_PLACES:
                if place in corpus.NAMED_PLACES:
                    continue
                total += 1
                if scan_text(_unredacted_text(place, key), "leak.cassette.json"):
                    found += 1
                else:
                    missed.append(f"{fmt_name} in {place}")
    assert total == 4 * 5 * 7
    assert found / total >= 0.95, f"entropy found {found} of {total}; missed {missed[:10]}"


def test_a_header_value_on_its_own_line_is_read_under_its_name() -> None:
    """Cassettes are indented JSON: a header's value list sits on the line after its name. The scanner reads the
    structure, so a shapeless key in ``api-key`` is found (line scanning found 0 of 5)."""
    for _ in range(5):
        key = corpus.generate()["azure-openai"]
        text = json.dumps(
            {
                "provcert_cassette": 1,
                "interactions": [
                    {
                        "request": {
                            "method": "POST",
                            "uri": "https://x.test/",
                            "headers": {"api-key": [key]},
                        },
                        "response": {"status": 200},
                    }
                ],
            },
            indent=1,
        )
        assert [f.kind for f in scan_text(text)] == ["header: api-key"]


@pytest.mark.parametrize("fmt_name", list(corpus.FORMATS))
def test_errors_never_show_a_registered_credential(fmt_name: str) -> None:
    key = KEYS[fmt_name]
    register_secret(key)
    error = ProviderError(
        ErrorKind.AUTH,
        f"Incorrect API key provided: {key}.",
        provider_id="azure-openai",
        status=401,
        request_id="req_1",
    )
    for shown in (str(error), repr(error), json.dumps(error.to_dict())):
        assert not _leaks(shown, key), f"{fmt_name} key in an error"


@pytest.mark.parametrize("fmt_name", list(corpus.FORMATS))
def test_a_malformed_credential_is_scrubbed_in_every_form_a_library_shows_it(fmt_name: str) -> None:
    """A key pasted with an inner newline or control character: httpx refuses the header and quotes the value
    (escaped) in its exception; a log or repr shows it escaped, split, or URL-encoded. All are scrubbed."""
    key = corpus.FORMATS[fmt_name][0]()  # fresh: the well-formed key must not be registered already
    half = len(key) // 2
    for bad in (key[:half] + "\n" + key[half:], key[:half] + "\x01" + key[half:], key + "\r\n"):
        register_secret(bad)
        connection = h11.Connection(h11.CLIENT)  # what httpx sends with: it refuses a newline, quoting it
        try:
            connection.send(h11.Request(method="GET", target="/", headers=[("host", "x"), ("api-key", bad)]))
            refused = ""
        except h11.LocalProtocolError as exc:
            refused = str(exc)
        assert refused or "\n" not in bad.strip(), "h11 accepted an inner newline"
        shown = [
            scrub(refused),
            # a log that turned the control bytes to spaces: the two halves stand alone
            scrub(f"header {' '.join(bad.split())} rejected"),
            scrub(repr(bad)),
            scrub(f"value={bad}"),
            scrub(json.dumps({"header": bad})),
            str(ProviderError(ErrorKind.AUTH, f"bad key {bad!r} / {bad}", provider_id="p")),
        ]
        for text in shown:
            pieces = [p for p in (key, key[:half], key[half:]) if p in text]
            assert not pieces, f"{fmt_name}: a piece of a malformed credential survived: {text[:40]!r}"


@pytest.mark.parametrize("fmt_name", list(corpus.FORMATS))
def test_log_records_are_redacted_with_the_same_policy(fmt_name: str) -> None:
    """A record naming a credential by its header or query name, or holding a shaped key, is redacted by the
    filter the mock installs on aiohttp's loggers; a registered one is redacted wherever it is."""
    key = KEYS[fmt_name]
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(f"provcert.test.corpus.{fmt_name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(Keep())
    # the mock's filter knows no credential: the name next to the value is what gives every format away
    unknowing = secrets_policy.RedactingFilter()
    logger.addFilter(unknowing)
    logger.info('127.0.0.1 "GET /v1beta/models/m:generateContent?key=%s HTTP/1.1" 200', key)
    logger.info("Authorization: Bearer %s", key)
    logger.info("api-key: %s", key)
    try:
        raise ValueError(f"Invalid header value b'x-api-key: {key}'")
    except ValueError:
        logger.exception("Error handling request")
    # a process that resolved the credential (the harness) redacts it by value, with no name next to it
    logger.removeFilter(unknowing)
    register_secret(key)
    logger.addFilter(secrets_policy.RedactingFilter(known=errors.known_secrets))
    logger.warning("upstream echoed %s back", key)
    assert len(records) == 5
    for record in records:
        shown = logging.Formatter().format(record)
        assert not _leaks(shown, key), f"{fmt_name} key in a log line: {shown[:60]!r}"
