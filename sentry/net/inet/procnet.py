"""/proc/net for the loopback stack: lo in dev and if_inet6, and TCP/UDP sockets as netstat and ss read them.

The tables list this sandbox's in-Sentry sockets (with `--network=host` they
are the host's and these tables stay empty): TCP listeners and connections,
bound UDP sockets. Addresses are hex of the in-memory words, as Linux prints
them (127.0.0.1 is 0100007F); queues are the bytes waiting to be read.
"""

from __future__ import annotations

from collections.abc import Callable

from sentry.net.inet import ports
from sentry.net.inet.addr import AF_INET, AF_INET6, ANY6, Name
from sentry.net.inet.options import TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN
from sentry.net.unix.socket import SOCK_DGRAM, SOCK_STREAM

TCP_CLOSE_WAIT = 0x08
_HEAD4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
_HEAD6 = (
    "  sl  local_address                         remote_address                        st tx_queue rx_queue"
    " tr tm->when retrnsmt   uid  timeout inode"
)
DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls"
    " carrier compressed\n"
    "    lo: " + " ".join(["0"] * 16)
)
IF_INET6 = "00000000000000000000000000000001 01 80 10 80       lo"


def _hex(family: int, name: Name | None) -> str:
    ip, port = name if name is not None else (ANY6, 0)
    if family == AF_INET:
        return f"{int.from_bytes(ip[12:], 'little'):08X}:{port:04X}"
    words = "".join(f"{int.from_bytes(ip[i : i + 4], 'little'):08X}" for i in range(0, 16, 4))
    return f"{words}:{port:04X}"


def _state(sock) -> int | None:
    """The TCP state to show, or None for a socket /proc/net does not list."""
    if sock.kind == SOCK_DGRAM:
        if sock.name is None:
            return None
        return TCP_ESTABLISHED if sock.remote is not None else TCP_CLOSE
    if sock.backlog is not None:
        return TCP_LISTEN
    if not sock.connected:
        return None
    peer = sock.peer
    return TCP_ESTABLISHED if peer is not None and not peer.released else TCP_CLOSE_WAIT


def _table(kernel, kind: int, family: int) -> str:
    lines = [_HEAD4 if family == AF_INET else _HEAD6]
    for sock in ports.live(kernel):
        if sock.kind != kind or sock.family != family:
            continue
        state = _state(sock)
        if state is None:
            continue
        if kind == SOCK_DGRAM:
            remote = sock.remote
        else:
            peer = sock.peer
            remote = peer.name if peer is not None and sock.backlog is None else None
        queued = len(sock.backlog) if sock.backlog is not None else sock.queued
        local, peer_hex = _hex(family, sock.name), _hex(family, remote)
        lines.append(
            f"{len(lines) - 1:4d}: {local} {peer_hex} {state:02X} {0:08X}:{queued:08X} 00:00000000 00000000"
            f" {sock.creds.uid:5d} {0:8d} {sock.loc.inode.ino}"
        )
    return "\n".join(lines)


def _tables() -> dict[str, Callable[[object], str]]:
    return {
        "tcp": lambda k: _table(k, SOCK_STREAM, AF_INET),
        "tcp6": lambda k: _table(k, SOCK_STREAM, AF_INET6),
        "udp": lambda k: _table(k, SOCK_DGRAM, AF_INET),
        "udp6": lambda k: _table(k, SOCK_DGRAM, AF_INET6),
    }


# name under /proc/net -> text (given the kernel), in the shape of proc_sys.SYSCTLS.
PROC_NET: dict[str, Callable[[object], str]] = {
    "dev": lambda k: DEV,
    "if_inet6": lambda k: IF_INET6,
    **_tables(),
}
