"""Redaction of every provider's credentials before anything is written, and the scanner that proves it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vcr.request import Request

from harness import cassettes as fmt
from harness.recording import Recorder, Redactor
from harness.secrets import scan_all

#: one planted key per provider format (fake, but shaped like the real thing)
PLANTED = {
    "openai": "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2,
    "anthropic": "sk-ant-api03-" + "Xy9_Zw8-Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe" * 2,
    "google (Gemini)": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "aws access key (Bedrock)": "AKIA" + "IOSFODNN7EXAMPLQ",
    "openrouter": "sk-or-v1-" + "0123456789abcdef" * 4,
    "groq": "gsk_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0",
    "azure api-key header": '"api-key": ["' + "d41d8cd98f00b204e9800998ecf8427e" + '"]',
    "gemini key= query": "https://generativelanguage.googleapis.com/v1beta/models/x:generateContent?key="
    + "ZZq1w2e3r4t5y6u7i8o9p0",
    "sigv4 signature": "Signature=" + "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
    "bearer token": "Authorization: Bearer " + "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9abcdef",
}


@pytest.mark.parametrize("kind", list(PLANTED))
def test_scanner_catches_a_planted_key_of_each_format(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "leak.cassette.json"
    path.write_text(json.dumps({"interactions": [{"note": "x", "value": PLANTED[kind]}]}, indent=1))
    findings = scan_all([path])
    assert findings, f"the scanner missed a planted {kind} key"
    assert all(PLANTED[kind] not in str(f) for f in findings), "a finding must not show the secret"


def test_detect_secrets_runs_too(tmp_path: Path) -> None:
    path = tmp_path / "k.txt"
    path.write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n")
    assert any("detect-secrets" in f.kind for f in scan_all([path]))


def test_the_golden_cassettes_are_clean() -> None:
    files = [p for p in fmt.DEFAULT_ROOT.rglob("*") if p.is_file()]
    assert len(files) > 20
    findings = scan_all(files)
    assert not findings, "; ".join(str(f) for f in findings[:5])


def _recorder(registry, secrets=()) -> Recorder:
    return Recorder(registry.get("openai"), Path("unused.cassette.json"), record_mode="once", secrets=secrets)


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("Authorization", "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz012345", "Bearer [REDACTED]"),
        ("x-api-key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "[REDACTED]"),
        ("api-key", "d41d8cd98f00b204e9800998ecf8427e", "[REDACTED]"),
        ("x-goog-api-key", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "[REDACTED]"),
        ("X-Amz-Security-Token", "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ", "[REDACTED]"),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/bedrock/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "f" * 64,
            "AWS4-HMAC-SHA256 [REDACTED]",
        ),
        ("Cookie", "session=abc123", "[REDACTED]"),
        ("x-request-id", "req_0123456789abcdef", "req_0123456789abcdef"),
        ("request-id", "req_011CPxyz", "req_011CPxyz"),
        ("x-amzn-requestid", "a1b2c3d4-0000-1111-2222-333344445555", "a1b2c3d4-0000-1111-2222-333344445555"),
    ],
)
def test_request_headers(registry, header: str, value: str, expected: str) -> None:
    request = Request("POST", "https://api.openai.com/v1/chat/completions", b"{}", {header: value})
    assert _recorder(registry).before_record_request(request).headers[header] == expected


def test_query_keys_and_body_secrets(registry) -> None:
    secret = "my-resolved-credential-value-123"
    recorder = _recorder(registry, secrets=(secret,))
    body = json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"my key is {secret} and AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"}
            ],
            "api_key": "plain-secret-in-a-field",
            "nested": {"client_secret": "xyz"},
        }
    ).encode()
    request = Request(
        "POST",
        "https://api.openai.com/v1/chat/completions?key=AIzaQUERYKEY&alt=sse&X-Amz-Signature=abc",
        body,
        {},
    )
    out = recorder.before_record_request(request)
    assert "key=REDACTED" in out.uri and "alt=sse" in out.uri and "X-Amz-Signature=REDACTED" in out.uri
    text = out.body.decode()
    assert secret not in text and "AIzaSy" not in text and "plain-secret" not in text and '"xyz"' not in text
    assert json.loads(text)["messages"][0]["content"].startswith("my key is [REDACTED]")


def test_response_headers_and_bodies(registry) -> None:
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {
            "set-cookie": ["__cf_bm=abc; path=/"],
            "openai-organization": ["user-abc"],
            "x-request-id": ["req_1"],
            "content-type": ["application/json"],
        },
        "body": {"string": b'{"echo": "sk-proj-abcdefghijklmnopqrstuvwxyz012345"}'},
    }
    out = _recorder(registry).before_record_response(response)
    assert out["headers"]["set-cookie"] == ["[REDACTED]"] and out["headers"]["openai-organization"] == [
        "[REDACTED]"
    ]
    assert out["headers"]["x-request-id"] == ["req_1"]
    assert b"sk-proj" not in out["body"]["string"]


def test_binary_body_with_a_credential_is_refused() -> None:
    from harness.recording import SecretLeakError

    with pytest.raises(SecretLeakError):
        Redactor(("credential-value",)).body(b"\xff\x00credential-value\x00")
