"""The interface ioctls of a loopback-only stack: there is one interface, lo (index 1, 127.0.0.1/8).

Enough for programs that list interfaces (SIOCGIFCONF) or ask about one by
name or index; any other name is ENODEV.
"""

from __future__ import annotations

import errno
import struct

from sentry.errors import Errno

SIOCGIFNAME, SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR = 0x8910, 0x8912, 0x8913, 0x8915
SIOCGIFNETMASK, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX = 0x891B, 0x8921, 0x8927, 0x8933
IFNAMSIZ = 16
IFREQ_SIZE = 40
LO_NAME, LO_INDEX, LO_MTU = b"lo", 1, 65536
IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x1, 0x8, 0x40
ARPHRD_LOOPBACK = 772
IFCONF = struct.Struct("<i4xQ")  # struct ifconf: length, then the buffer pointer


def _sockaddr_in(a: int, b: int, c: int, d: int) -> bytes:
    return struct.pack("<H", 2) + bytes(2) + bytes([a, b, c, d]) + bytes(8)


# The answer (the ifreq union part) to each per-interface request about lo.
_LO = {
    SIOCGIFFLAGS: struct.pack("<H", IFF_UP | IFF_LOOPBACK | IFF_RUNNING),
    SIOCGIFADDR: _sockaddr_in(127, 0, 0, 1),
    SIOCGIFNETMASK: _sockaddr_in(255, 0, 0, 0),
    SIOCGIFMTU: struct.pack("<i", LO_MTU),
    SIOCGIFHWADDR: struct.pack("<H", ARPHRD_LOOPBACK) + bytes(14),
    SIOCGIFINDEX: struct.pack("<i", LO_INDEX),
}


def handles(cmd: int) -> bool:
    return cmd in _LO or cmd in (SIOCGIFCONF, SIOCGIFNAME)


def ioctl(task, cmd: int, arg: int) -> int:
    if cmd == SIOCGIFCONF:
        return _ifconf(task, arg)
    request = task.mm.copy_in(arg, IFREQ_SIZE)
    if cmd == SIOCGIFNAME:
        (index,) = struct.unpack_from("<i", request, IFNAMSIZ)
        if index != LO_INDEX:
            raise Errno(errno.ENODEV)
        task.mm.copy_out(arg, LO_NAME.ljust(IFNAMSIZ, b"\0"))
        return 0
    if request[:IFNAMSIZ].split(b"\0", 1)[0] != LO_NAME:
        raise Errno(errno.ENODEV)
    task.mm.copy_out(arg + IFNAMSIZ, _LO[cmd])
    return 0


def _ifconf(task, arg: int) -> int:
    """struct ifconf: with a NULL buffer, the length needed; else lo's ifreq if it fits."""
    length, buf = IFCONF.unpack(task.mm.copy_in(arg, IFCONF.size))
    if not buf:
        task.mm.copy_out(arg, struct.pack("<i", IFREQ_SIZE))
        return 0
    if length < 0:
        raise Errno(errno.EINVAL)
    written = 0
    if length >= IFREQ_SIZE:
        entry = LO_NAME.ljust(IFNAMSIZ, b"\0") + _LO[SIOCGIFADDR]
        task.mm.copy_out(buf, entry.ljust(IFREQ_SIZE, b"\0"))
        written = IFREQ_SIZE
    task.mm.copy_out(arg, struct.pack("<i", written))
    return 0
