"""struct sockaddr_in / sockaddr_in6, and the loopback stack's addresses.

A name is (ip, port): ip is 16 bytes, IPv4 addresses as IPv4-mapped IPv6
(::ffff:a.b.c.d), so AF_INET and dual-stack AF_INET6 sockets compare names
directly; each socket encodes names in its own family.
"""

from __future__ import annotations

import errno
import struct

from sentry.errors import Errno

AF_UNSPEC, AF_INET, AF_INET6 = 0, 2, 10
SOCKADDR_IN_SIZE, SOCKADDR_IN6_SIZE = 16, 28
SIN6_LEN_RFC2133 = 24  # the shortest sockaddr_in6 Linux takes (no sin6_scope_id)
MAPPED = bytes(10) + b"\xff\xff"
ANY4 = MAPPED + bytes(4)
LOOPBACK4 = MAPPED + bytes([127, 0, 0, 1])
ANY6 = bytes(16)
LOOPBACK6 = bytes(15) + b"\x01"
_FAMILY = struct.Struct("<H")
_PORT = struct.Struct("!H")

Name = tuple[bytes, int]


def is_v4(ip: bytes) -> bool:
    return ip[:12] == MAPPED


def is_any(ip: bytes) -> bool:
    return ip in (ANY4, ANY6)


def is_loopback(ip: bytes) -> bool:
    return (is_v4(ip) and ip[12] == 127) or ip == LOOPBACK6


def decode(family: int, raw: bytes, *, binding: bool = False) -> Name:
    """The (ip, port) of an app's sockaddr for a socket of `family`."""
    if len(raw) < 2:
        raise Errno(errno.EINVAL)
    (got,) = _FAMILY.unpack_from(raw)
    if family == AF_INET:
        if len(raw) < SOCKADDR_IN_SIZE:
            raise Errno(errno.EINVAL)
        (port,) = _PORT.unpack_from(raw, 2)
        ip = MAPPED + raw[4:8]
        # Linux's bind takes AF_UNSPEC with INADDR_ANY, for old programs.
        if got != AF_INET and not (binding and got == AF_UNSPEC and ip == ANY4):
            raise Errno(errno.EAFNOSUPPORT)
        return ip, port
    if len(raw) < SIN6_LEN_RFC2133:
        raise Errno(errno.EINVAL)
    if got != AF_INET6:
        raise Errno(errno.EAFNOSUPPORT)
    (port,) = _PORT.unpack_from(raw, 2)
    return raw[8:24], port


def encode(family: int, name: Name | None) -> bytes:
    """The sockaddr a socket of `family` reports; None (unbound) is the wildcard address, port 0."""
    ip, port = name if name is not None else (ANY4 if family == AF_INET else ANY6, 0)
    if family == AF_INET:
        return _FAMILY.pack(AF_INET) + _PORT.pack(port) + ip[12:] + bytes(8)
    return _FAMILY.pack(AF_INET6) + _PORT.pack(port) + bytes(4) + ip + bytes(4)


def source_for(destination: bytes) -> bytes:
    """The local address a connection to `destination` gets: lo's own address of that family."""
    return LOOPBACK4 if is_v4(destination) else LOOPBACK6
