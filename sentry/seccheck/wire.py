"""The remote sink's wire format, as runsc speaks it.

After connecting, each side sends one packet holding a serialized
`Handshake{version}` with no header. Every later packet is an 8-byte header
in host byte order (uint16 header size, uint16 message type, uint32
cumulative dropped count) followed by the point's protobuf payload, which may
be empty. Readers must start the payload at the header size they read.
"""

from __future__ import annotations

import struct

from sentry.seccheck.proto import common_pb2

VERSION = 1
HEADER = struct.Struct("<HHI")
HEADER_SIZE = HEADER.size
# The sandbox reads the monitor's handshake into a buffer this big; a packet that fills it is refused.
HANDSHAKE_BUFFER = 10240


class HandshakeError(Exception):
    """The peer's handshake is malformed or too old."""


def handshake() -> bytes:
    """Our handshake packet (`08 01` for version 1)."""
    return common_pb2.Handshake(version=VERSION).SerializeToString()


def peer_version(packet: bytes) -> int:
    """The version in the peer's handshake packet; HandshakeError unless it is at least ours."""
    if len(packet) >= HANDSHAKE_BUFFER:
        raise HandshakeError(f"handshake too big ({len(packet)} bytes)")
    message = common_pb2.Handshake()
    try:
        message.ParseFromString(packet)
    except Exception as e:  # protobuf raises DecodeError or, with the upb backend, its own type
        raise HandshakeError(f"handshake is not a Handshake message: {e}") from e
    if message.version < VERSION:
        raise HandshakeError(f"peer speaks version {message.version}, need at least {VERSION}")
    return message.version


def header(message_type: int, dropped: int) -> bytes:
    """The 8-byte header; the dropped count wraps at 32 bits as runsc's does."""
    return HEADER.pack(HEADER_SIZE, message_type, dropped & 0xFFFFFFFF)
