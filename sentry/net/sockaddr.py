"""struct sockaddr_un: decoding what the app passes and encoding what it gets back.

An address is kept as the raw sun_path bytes Linux compares: a filesystem
path (no NUL), an abstract name (leading NUL, every byte significant), or
b"" for an unnamed socket.
"""

from __future__ import annotations

import errno
import struct

from sentry.errors import Errno

AF_UNSPEC, AF_UNIX, AF_INET = 0, 1, 2
SUN_PATH_MAX = 108
SOCKADDR_UN_MAX = 2 + SUN_PATH_MAX
_FAMILY = struct.Struct("<H")


def family_of(raw: bytes) -> int:
    if len(raw) < 2:
        raise Errno(errno.EINVAL)
    return _FAMILY.unpack_from(raw)[0]


def decode(raw: bytes) -> bytes:
    """sun_path of a sockaddr_un of len(raw) bytes: b"" means autobind (family only)."""
    if len(raw) < 2 or len(raw) > SOCKADDR_UN_MAX:
        raise Errno(errno.EINVAL)
    if family_of(raw) != AF_UNIX:
        raise Errno(errno.EINVAL)
    path = raw[2:]
    if path[:1] == b"\0":
        return path
    # A path ends at its first NUL; the length may or may not count it.
    path = path.split(b"\0", 1)[0]
    if not path and len(raw) > 2:
        raise Errno(errno.EINVAL)
    return path


def encode(name: bytes) -> bytes:
    """The sockaddr_un getsockname/accept/recvfrom report: path names gain their NUL."""
    if name and name[:1] != b"\0":
        name += b"\0"
    return _FAMILY.pack(AF_UNIX) + name


def is_abstract(name: bytes) -> bool:
    return name[:1] == b"\0"
