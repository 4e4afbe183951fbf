"""The libc calls host sockets need where Python's socket module falls short, on the Sentry's own buffers.

recvmsg: Python's wrappers lose the real length MSG_TRUNC asks for.
connect: Python turns a second connect's EISCONN into success, and cannot
spell an AF_UNSPEC disconnect. SIOCGIFCONF: struct ifconf holds a pointer,
which must be to the Sentry's buffer. Errors come back as Errno.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import struct

from sentry.errors import Errno
from sentry.net.inet.ifaces import IFCONF, SIOCGIFCONF

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.recvmsg.restype = ctypes.c_ssize_t
MAX_NAME = 28  # sizeof(struct sockaddr_in6)


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_IoVec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


def recvmsg(fd: int, count: int, flags: int) -> tuple[bytes, int, bytes, int]:
    """(data, the length the host reported, sender sockaddr, msg_flags); no control data."""
    buf = ctypes.create_string_buffer(max(count, 1))
    name = ctypes.create_string_buffer(MAX_NAME)
    iov = _IoVec(ctypes.addressof(buf), count)
    msg = _MsgHdr(ctypes.addressof(name), len(name), ctypes.pointer(iov), 1, None, 0, 0)
    n = _LIBC.recvmsg(fd, ctypes.byref(msg), flags)
    if n < 0:
        raise Errno(ctypes.get_errno() or errno.EIO)
    return buf.raw[: min(n, count)], n, name.raw[: msg.namelen], msg.flags


def connect(fd: int, sockaddr: bytes) -> int:
    """0, or the errno (EINPROGRESS included) of connecting to sockaddr."""
    raw = ctypes.create_string_buffer(sockaddr, len(sockaddr))
    return 0 if _LIBC.connect(fd, raw, len(sockaddr)) == 0 else ctypes.get_errno()


def disconnect(fd: int) -> None:
    """connect(AF_UNSPEC): a UDP socket forgets its peer."""
    code = connect(fd, bytes(16))
    if code:
        raise Errno(code)


def ioctl(fd: int, cmd: int, buf: bytes) -> bytes:
    try:
        return fcntl.ioctl(fd, cmd, buf)
    except OSError as e:
        raise Errno(e.errno or errno.EIO) from None


def ifconf(fd: int, room: int | None) -> tuple[int, bytes]:
    """SIOCGIFCONF: (length, the ifreq array) for a buffer of `room` bytes; None asks only the length."""
    host_buf = ctypes.create_string_buffer(max(room or 0, 1))
    pointer = ctypes.addressof(host_buf) if room is not None else 0
    (written,) = struct.unpack_from("<i", ioctl(fd, SIOCGIFCONF, IFCONF.pack(room or 0, pointer)))
    return written, host_buf.raw[:written] if room is not None else b""
