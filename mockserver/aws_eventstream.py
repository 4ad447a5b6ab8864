"""The AWS binary event-stream encoder (``application/vnd.amazon.eventstream``), written out by hand.

The mock must *produce* the framing that botocore's ``EventStreamBuffer`` and every other AWS SDK decode, so it is
spelled out here once, small enough to check against the format (botocore/eventstream.py, the AWS "Event stream
encoding" docs). One message is::

    total length    uint32 big-endian   (the whole message, both CRCs included)
    headers length  uint32 big-endian
    prelude CRC32   uint32 big-endian   (CRC32 of the 8 bytes above)
    headers         repeated: name length u8, name (UTF-8), type u8 (7 = string), value length u16, value
    payload         bytes (Bedrock: a JSON object)
    message CRC32   uint32 big-endian   (CRC32 of every preceding byte, prelude included)

Only string headers (type 7) are written: they are all Bedrock sends. Adapters never decode with this module; they
use botocore's decoder, so an encoder bug shows up as a decode failure instead of being hidden by a matching bug.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

STRING_HEADER = 7
PRELUDE_LENGTH = 12
CONTENT_TYPE = "application/vnd.amazon.eventstream"


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """Headers in order, each as name length, name, type 7 (string), value length, value."""
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
            raise ValueError(f"event-stream header {name!r} is too long")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", STRING_HEADER, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One complete, checksummed event-stream message."""
    raw_headers = encode_headers(headers)
    total = PRELUDE_LENGTH + len(raw_headers) + len(payload) + 4
    head = struct.pack(">II", total, len(raw_headers))
    prelude = head + struct.pack(">I", zlib.crc32(head))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(event_type: str, payload: bytes) -> bytes:
    """A Bedrock event message: ``:event-type`` names the union member (``contentBlockDelta``, ``metadata``...)."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, payload)


def exception(exception_type: str, payload: bytes) -> bytes:
    """An in-band exception message; ``exception_type`` is the lowerCamel member (``throttlingException``)."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, payload)


def corrupt(message: bytes) -> bytes:
    """The same message with its trailing CRC flipped: decoders must raise a checksum error, never guess."""
    crc = struct.unpack(">I", message[-4:])[0] ^ 0xFFFFFFFF
    return message[:-4] + struct.pack(">I", crc)
