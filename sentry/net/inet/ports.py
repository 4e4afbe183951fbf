"""Which loopback socket holds which port: bind conflicts, ephemeral ports, and finding a receiver.

One table per sandbox kernel and protocol. A bound socket accepts the
addresses its name covers: its own, or all of a family for a wildcard
(0.0.0.0 all IPv4; :: all IPv6, and IPv4 too unless IPV6_V6ONLY). Two
sockets conflict when one covers the other's address, unless both set
SO_REUSEPORT, or both set SO_REUSEADDR and the holder is not listening
(Linux's rules, less TIME_WAIT, which this stack never has).
All of it runs under the sockets' LOCK.
"""

from __future__ import annotations

import errno
import random
import threading
import weakref
from typing import TYPE_CHECKING, Any

from sentry.errors import Errno
from sentry.net.inet.addr import ANY4, ANY6, is_v4
from sentry.net.unix.options import SO_REUSEADDR, SO_REUSEPORT

if TYPE_CHECKING:
    from sentry.net.inet.socket import InetSocket

# net.ipv4.ip_local_port_range's default.
EPHEMERAL_LOW, EPHEMERAL_HIGH = 32768, 60999
# net.ipv4.ip_unprivileged_port_start's default, and the capability that binds below it.
UNPRIVILEGED_PORT_START = 1024
CAP_NET_BIND_SERVICE = 10
_TABLES: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], list[InetSocket]]] = weakref.WeakKeyDictionary()
# kernel -> every open loopback socket, bound or not (for /proc/net), under its own lock: /proc
# readers must not wait for socket state.
_LIVE: weakref.WeakKeyDictionary[Any, weakref.WeakSet[InetSocket]] = weakref.WeakKeyDictionary()
_LIVE_LOCK = threading.Lock()


def register(sock: InetSocket) -> None:
    with _LIVE_LOCK:
        _LIVE.setdefault(sock.kernel, weakref.WeakSet()).add(sock)


def live(kernel) -> list[InetSocket]:
    """The kernel's open loopback sockets, oldest first."""
    with _LIVE_LOCK:
        socks = list(_LIVE.get(kernel, ()))
    return sorted((s for s in socks if not s.released), key=lambda s: s.loc.inode.ino)


def _table(kernel) -> dict[tuple[int, int], list[InetSocket]]:
    return _TABLES.setdefault(kernel, {})


def covers(bound: bytes, v6only: bool, ip: bytes) -> bool:
    """Does a socket bound to address `bound` take traffic for `ip`?"""
    if bound == ip:
        return True
    if bound == ANY4:
        return is_v4(ip)
    if bound == ANY6:
        return not is_v4(ip) or not v6only
    return False


def _may_share(new: InetSocket, old: InetSocket) -> bool:
    if new.options.plain.get(SO_REUSEPORT) and old.options.plain.get(SO_REUSEPORT):
        return True
    if new.options.plain.get(SO_REUSEADDR) and old.options.plain.get(SO_REUSEADDR):
        return old.backlog is None
    return False


class Binding:
    """A socket's place in its table; unbind() when it closes."""

    def __init__(self, holders: list[InetSocket], sock: InetSocket) -> None:
        self._holders = holders
        self._sock = sock

    def unbind(self) -> None:
        if self._sock in self._holders:
            self._holders.remove(self._sock)


def check_privileged(task, port: int) -> None:
    """Ports below 1024 need CAP_NET_BIND_SERVICE (host mode too: the sandbox process has it)."""
    if 0 < port < UNPRIVILEGED_PORT_START and not task.creds.has_cap(CAP_NET_BIND_SERVICE):
        raise Errno(errno.EACCES)


def bind(sock: InetSocket, ip: bytes, port: int) -> None:
    """Give sock the name (ip, port); port 0 picks a free ephemeral port."""
    table = _table(sock.kernel)
    if port == 0:
        port = _ephemeral(table, sock.kind)
    holders = table.setdefault((sock.kind, port), [])
    for old in holders:
        old_ip = old.name[0]
        clash = covers(old_ip, old.v6only, ip) or covers(ip, sock.v6only, old_ip)
        if clash and not _may_share(sock, old):
            raise Errno(errno.EADDRINUSE)
    holders.append(sock)
    sock.name = (ip, port)
    sock.binding = Binding(holders, sock)


def _ephemeral(table: dict[tuple[int, int], list[InetSocket]], kind: int) -> int:
    start = random.randint(EPHEMERAL_LOW, EPHEMERAL_HIGH)
    span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
    for i in range(span):
        port = EPHEMERAL_LOW + (start - EPHEMERAL_LOW + i) % span
        if not table.get((kind, port)):
            return port
    raise Errno(errno.EADDRNOTAVAIL)


def lookup(kernel, kind: int, ip: bytes, port: int, *, listening: bool) -> InetSocket | None:
    """The socket that receives at (ip, port): an exact address before a wildcard, the newest first."""
    found = None
    for sock in reversed(_table(kernel).get((kind, port), ())):
        if listening and sock.backlog is None:
            continue
        if not covers(sock.name[0], sock.v6only, ip):
            continue
        if sock.name[0] == ip:
            return sock
        found = found or sock
    return found
