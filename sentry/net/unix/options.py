"""SOL_SOCKET options of in-Sentry sockets (AF_UNIX, loopback AF_INET/6): what setsockopt keeps.

SO_PASSCRED and the timeouts change behaviour; buffer sizes and the like are
remembered and reported (Linux doubles SO_SNDBUF/SO_RCVBUF values) but do
not change the Sentry's fixed queue limits.
"""

from __future__ import annotations

import dataclasses
import errno
import struct
from typing import TYPE_CHECKING

from sentry.errors import Errno

if TYPE_CHECKING:
    from sentry.net.unix.socket import UnixSocket

SOL_SOCKET = 1
SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_DONTROUTE, SO_BROADCAST = 2, 3, 4, 5, 6
SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_OOBINLINE, SO_LINGER = 7, 8, 9, 10, 13
SO_REUSEPORT, SO_PASSCRED, SO_PEERCRED, SO_RCVLOWAT, SO_SNDLOWAT = 15, 16, 17, 18, 19
SO_RCVTIMEO, SO_SNDTIMEO, SO_ACCEPTCONN, SO_PASSSEC, SO_PROTOCOL, SO_DOMAIN = 20, 21, 30, 34, 38, 39
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
DEFAULT_BUFFER = 212992
MIN_SNDBUF, MIN_RCVBUF, MAX_BUFFER = 4608, 2304, 212992
# Options that hold one int and change nothing here.
_PLAIN = (SO_REUSEADDR, SO_DONTROUTE, SO_BROADCAST, SO_KEEPALIVE, SO_OOBINLINE, SO_REUSEPORT, SO_PASSSEC)
_INT = struct.Struct("<i")
_TIMEVAL = struct.Struct("<qq")
_LINGER = struct.Struct("<ii")
_UCRED = struct.Struct("<iII")


@dataclasses.dataclass
class Options:
    passcred: bool = False
    rcvtimeo: float | None = None
    sndtimeo: float | None = None
    sndbuf: int = DEFAULT_BUFFER
    rcvbuf: int = DEFAULT_BUFFER
    rcvlowat: int = 1
    linger: tuple[int, int] = (0, 0)
    plain: dict[int, int] = dataclasses.field(default_factory=dict)


def _int(value: bytes) -> int:
    if len(value) < _INT.size:
        raise Errno(errno.EINVAL)
    return _INT.unpack_from(value)[0]


def parse_timeout(value: bytes) -> float | None:
    if len(value) < _TIMEVAL.size:
        raise Errno(errno.EINVAL)
    sec, usec = _TIMEVAL.unpack_from(value)
    if not 0 <= usec < 1_000_000:
        raise Errno(errno.EDOM)
    if sec < 0 or (sec == 0 and usec == 0):
        return None
    return sec + usec / 1e6


def timeval(seconds: float | None) -> bytes:
    if seconds is None:
        return _TIMEVAL.pack(0, 0)
    sec = int(seconds)
    return _TIMEVAL.pack(sec, round((seconds - sec) * 1e6))


def set_option(sock: UnixSocket, level: int, name: int, value: bytes) -> None:
    if level != SOL_SOCKET:
        raise Errno(errno.EOPNOTSUPP)  # AF_UNIX has no protocol-level options
    opts = sock.options
    if name == SO_PASSCRED:
        opts.passcred = bool(_int(value))
    elif name in (SO_SNDBUF, SO_SNDBUFFORCE):
        opts.sndbuf = max(MIN_SNDBUF, min(max(_int(value), 0), MAX_BUFFER) * 2)
    elif name in (SO_RCVBUF, SO_RCVBUFFORCE):
        opts.rcvbuf = max(MIN_RCVBUF, min(max(_int(value), 0), MAX_BUFFER) * 2)
    elif name == SO_RCVTIMEO:
        opts.rcvtimeo = parse_timeout(value)
    elif name == SO_SNDTIMEO:
        opts.sndtimeo = parse_timeout(value)
    elif name == SO_RCVLOWAT:
        opts.rcvlowat = max(1, _int(value))
    elif name == SO_LINGER:
        if len(value) < _LINGER.size:
            raise Errno(errno.EINVAL)
        onoff, seconds = _LINGER.unpack_from(value)
        opts.linger = (int(bool(onoff)), seconds)
    elif name in _PLAIN:
        opts.plain[name] = int(bool(_int(value)))
    else:
        raise Errno(errno.ENOPROTOOPT)


def get_option(sock: UnixSocket, level: int, name: int) -> bytes:
    if level != SOL_SOCKET:
        raise Errno(errno.EOPNOTSUPP)  # AF_UNIX has no protocol-level options
    opts = sock.options
    simple = {
        SO_TYPE: sock.kind,
        SO_DOMAIN: sock.family,
        SO_PROTOCOL: sock.protocol,
        SO_PASSCRED: int(opts.passcred),
        SO_SNDBUF: opts.sndbuf,
        SO_RCVBUF: opts.rcvbuf,
        SO_RCVLOWAT: opts.rcvlowat,
        SO_SNDLOWAT: 1,
        SO_ACCEPTCONN: int(sock.backlog is not None),
    }
    if name in simple:
        return _INT.pack(simple[name])
    if name == SO_ERROR:
        err, sock.error = sock.error, 0
        return _INT.pack(err)
    if name == SO_PEERCRED:
        cred = sock.peercred
        return _UCRED.pack(cred.pid, cred.uid, cred.gid)
    if name == SO_RCVTIMEO:
        return timeval(opts.rcvtimeo)
    if name == SO_SNDTIMEO:
        return timeval(opts.sndtimeo)
    if name == SO_LINGER:
        return _LINGER.pack(*opts.linger)
    if name in _PLAIN:
        return _INT.pack(opts.plain.get(name, 0))
    raise Errno(errno.ENOPROTOOPT)
