"""IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP and IPPROTO_UDP options of loopback sockets.

On lo there is no congestion, routing or fragmentation to tune: the options
programs commonly set are accepted, remembered and reported (defaults as
Linux's), and change nothing but IPV6_V6ONLY. SOL_SOCKET options are the
AF_UNIX core's (sentry/net/unix/options.py).
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.net.inet.addr import AF_INET
from sentry.net.unix import options as sol_socket

if TYPE_CHECKING:
    from sentry.net.inet.socket import InetSocket

SOL_IP, SOL_TCP, SOL_UDP, SOL_IPV6 = 0, 6, 17, 41
IPV6_V6ONLY = 26
TCP_INFO = 11
TCP_INFO_SIZE = 232
TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN = 1, 7, 10
# level -> option -> default value. Options not listed are ENOPROTOOPT.
DEFAULTS: dict[int, dict[int, int]] = {
    # IP_TOS, IP_TTL, IP_PKTINFO, IP_MTU_DISCOVER, IP_RECVERR, IP_RECVTTL, IP_RECVTOS, IP_FREEBIND,
    # IP_BIND_ADDRESS_NO_PORT, IP_MULTICAST_TTL, IP_MULTICAST_LOOP
    SOL_IP: {1: 0, 2: 64, 8: 0, 10: 1, 11: 0, 12: 0, 13: 0, 15: 0, 24: 0, 33: 1, 34: 1},
    # IPV6_UNICAST_HOPS, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP, IPV6_MTU_DISCOVER, IPV6_RECVERR,
    # IPV6_V6ONLY, IPV6_RECVPKTINFO, IPV6_RECVTCLASS, IPV6_TCLASS
    SOL_IPV6: {16: 64, 18: 1, 19: 1, 23: 1, 25: 0, 26: 0, 49: 0, 66: 0, 67: 0},
    # TCP_NODELAY, TCP_MAXSEG, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_SYNCNT,
    # TCP_LINGER2, TCP_DEFER_ACCEPT, TCP_WINDOW_CLAMP, TCP_QUICKACK, TCP_USER_TIMEOUT, TCP_FASTOPEN,
    # TCP_NOTSENT_LOWAT
    SOL_TCP: {
        1: 0,
        2: 65483,
        3: 0,
        4: 7200,
        5: 75,
        6: 9,
        7: 6,
        8: 60,
        9: 0,
        10: 0,
        12: 1,
        18: 0,
        23: 0,
        25: 0xFFFFFFFF,
    },  # fmt: skip
    # UDP_CORK, UDP_SEGMENT, UDP_GRO
    SOL_UDP: {1: 0, 103: 0, 104: 0},
}
# struct ucred of a socket without peer credentials: pid 0, uid and gid -1.
NO_PEERCRED = struct.pack("<iII", 0, 0xFFFFFFFF, 0xFFFFFFFF)
_INT = struct.Struct("<i")
_UINT = struct.Struct("<I")


def _level_ok(sock: InetSocket, level: int) -> bool:
    if level == SOL_IPV6:
        return sock.family != AF_INET
    if level == SOL_TCP:
        return sock.kind == 1
    if level == SOL_UDP:
        return sock.kind == 2
    return level == SOL_IP


def _check(sock: InetSocket, level: int, name: int, wrong_level: int) -> None:
    """Linux: a level the socket does not have is ENOPROTOOPT to set and EOPNOTSUPP to get (ip_setsockopt,
    ip_getsockopt); an unknown name at its level ENOPROTOOPT."""
    if not _level_ok(sock, level):
        raise Errno(wrong_level)
    if name not in DEFAULTS[level]:
        raise Errno(errno.ENOPROTOOPT)


def set_option(sock: InetSocket, level: int, name: int, value: bytes) -> None:
    if level == sol_socket.SOL_SOCKET:
        sol_socket.set_option(sock, level, name, value)
        return
    _check(sock, level, name, errno.ENOPROTOOPT)
    # Linux takes a single byte for some IP options; an int for the rest.
    if len(value) < 1 or (len(value) < _INT.size and level != SOL_IP):
        raise Errno(errno.EINVAL)
    number = _INT.unpack_from(value)[0] if len(value) >= _INT.size else value[0]
    if level == SOL_IPV6 and name == IPV6_V6ONLY:
        if sock.name is not None:
            raise Errno(errno.EINVAL)
        sock.v6only = bool(number)
    sock.inet_options[(level, name)] = number


def get_option(sock: InetSocket, level: int, name: int) -> bytes:
    if level == sol_socket.SOL_SOCKET and name == sol_socket.SO_PEERCRED:
        return NO_PEERCRED  # only AF_UNIX peers have credentials
    if level == sol_socket.SOL_SOCKET:
        return sol_socket.get_option(sock, level, name)
    if level == SOL_TCP and name == TCP_INFO and sock.kind == 1:
        return _tcp_info(sock)
    _check(sock, level, name, errno.EOPNOTSUPP)
    if level == SOL_IPV6 and name == IPV6_V6ONLY:
        return _INT.pack(int(sock.v6only))
    value = sock.inet_options.get((level, name), DEFAULTS[level][name])
    return _UINT.pack(value & 0xFFFFFFFF)


def _tcp_info(sock: InetSocket) -> bytes:
    """struct tcp_info with its state byte set (what `ss`-style checks read); counters are 0."""
    if sock.backlog is not None:
        state = TCP_LISTEN
    elif sock.connected and sock.peer is not None and not sock.peer.released:
        state = TCP_ESTABLISHED
    else:
        state = TCP_CLOSE
    return bytes([state]) + bytes(TCP_INFO_SIZE - 1)
