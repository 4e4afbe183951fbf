"""A loopback TCP or UDP socket: an AF_UNIX core socket with IP names (`--network=none`).

Queues, blocking, readiness, accept and shutdown are UnixSocket's; this
class swaps the naming (ports.py instead of abstract/path names) and the
places TCP/UDP differ from AF_UNIX: connecting always binds an ephemeral
port, a non-blocking connect says EINPROGRESS, UDP never blocks a sender
(a datagram nobody takes, or that does not fit, is dropped; a connected
socket then reports ECONNREFUSED) and a connected UDP socket only takes
datagrams from its peer. Only lo exists: any other destination is
ENETUNREACH, any other local address EADDRNOTAVAIL.
"""

from __future__ import annotations

import errno

from sentry.errors import Errno
from sentry.net.inet import addr, ports
from sentry.net.inet import options as inet_options
from sentry.net.inet.addr import AF_INET, AF_INET6, Name
from sentry.net.socket import refuse_ancillary
from sentry.net.unix.message import Creds, Message, Received
from sentry.net.unix.socket import (
    BUFFER,
    LOCK,
    MAX_DGRAM_QLEN,
    RCV_SHUTDOWN,
    SEND_SHUTDOWN,
    SHUT_RD,
    SHUT_RDWR,
    SHUT_WR,
    SOCK_DGRAM,
    SOCK_STREAM,
    UnixSocket,
)
from sentry.vfs.file import FileDescription
from sentry.vfs.waiter import POLLIN, POLLOUT

IPPROTO_TCP, IPPROTO_UDP = 6, 17
# The largest UDP payload over IPv4 / IPv6 (65535 less the headers).
MAX_UDP4, MAX_UDP6 = 65507, 65527


class InetSocket(UnixSocket):
    UNCONNECTED_RECV = errno.ENOTCONN
    UNCONNECTED_SEND = errno.EPIPE

    def __init__(self, kernel, family: int, kind: int, flags: int, creds: Creds) -> None:
        super().__init__(kind, flags, creds)
        self.kernel = kernel
        self.family = family
        self.protocol = IPPROTO_TCP if kind == SOCK_STREAM else IPPROTO_UDP
        self.max_record = BUFFER if kind == SOCK_STREAM else MAX_UDP4 if family == AF_INET else MAX_UDP6
        self.name: Name | None = None
        self.v6only = False
        self.inet_options: dict[tuple[int, int], int] = {}
        self.remote: Name | None = None  # a UDP socket's connected peer
        self.connecting = False  # a non-blocking connect said EINPROGRESS; the next says 0
        ports.register(self)

    # --- names -----------------------------------------------------------------------
    def decode_addr(self, raw: bytes) -> Name:
        return addr.decode(self.family, raw)

    def encode_addr(self, name: Name | None) -> bytes:
        return addr.encode(self.family, name)

    def local_address(self) -> bytes:
        return addr.encode(self.family, self.name)

    def remote_address(self) -> bytes:
        if self.kind == SOCK_DGRAM:
            with LOCK:
                if self.remote is None:
                    raise Errno(errno.ENOTCONN)
                return addr.encode(self.family, self.remote)
        return addr.encode(self.family, self.peer_name())

    def accept_address(self) -> bytes:
        peer = self.peer
        return addr.encode(self.family, peer.name if peer is not None else None)

    def set_option(self, task, level: int, name: int, value: bytes) -> None:
        with LOCK:
            inet_options.set_option(self, level, name, value)

    def get_option(self, task, level: int, name: int) -> bytes:
        with LOCK:
            return inet_options.get_option(self, level, name)

    def _check_local(self, ip: bytes) -> None:
        """Only lo's addresses (and the wildcards) can be bound."""
        if self.family == AF_INET or addr.is_v4(ip):
            if self.v6only and self.family != AF_INET:
                raise Errno(errno.EINVAL)
            if ip != addr.ANY4 and not addr.is_loopback(ip):
                raise Errno(errno.EADDRNOTAVAIL)
        elif ip not in (addr.ANY6, addr.LOOPBACK6):
            raise Errno(errno.EADDRNOTAVAIL)

    def bind(self, task, name: Name) -> None:
        ip, port = name
        self._check_local(ip)
        ports.check_privileged(task, port)
        with LOCK:
            if self.name is not None or self.released:
                raise Errno(errno.EINVAL)
            ports.bind(self, ip, port)

    def decode_bind_addr(self, raw: bytes) -> Name:
        """bind's address: AF_UNSPEC with INADDR_ANY is taken on AF_INET sockets, as Linux does."""
        return addr.decode(self.family, raw, binding=True)

    def _bind_for(self, destination: bytes) -> Name:
        """Before sending or connecting: an unbound socket gets lo's address and an ephemeral port;
        one bound to a wildcard speaks from lo's address. Returns the name the peer sees."""
        source = addr.source_for(destination)
        with LOCK:
            if self.name is None:
                ports.bind(self, source, 0)
            ip, port = self.name
            return (source if addr.is_any(ip) else ip), port

    def _destination(self, name: Name) -> Name:
        ip, port = name
        if self.family == AF_INET6 and addr.is_v4(ip) and self.v6only:
            raise Errno(errno.ENETUNREACH)
        if addr.is_any(ip):
            ip = addr.LOOPBACK4 if ip == addr.ANY4 else addr.LOOPBACK6
        if not addr.is_loopback(ip):
            raise Errno(errno.ENETUNREACH)
        return ip, port

    # --- connections -----------------------------------------------------------------
    def listen(self, backlog: int) -> None:
        if self.kind != SOCK_STREAM:
            raise Errno(errno.EOPNOTSUPP)
        with LOCK:
            if self.connected:
                raise Errno(errno.EINVAL)
            if self.name is None:
                ports.bind(self, addr.ANY4 if self.family == AF_INET else addr.ANY6, 0)
        super().listen(backlog)

    def connect(self, task, name: Name) -> None:
        ip, port = self._destination(name)
        if self.kind == SOCK_DGRAM:
            self._bind_for(ip)
            with LOCK:
                self.remote = (ip, port)
                self.error = 0
            self.waitq.notify(POLLOUT)
            return
        with LOCK:
            if self.connecting:
                self.connecting = False
                if self.error:
                    error, self.error = self.error, 0
                    raise Errno(error)
                if self.connected:
                    return
                raise Errno(errno.ECONNABORTED)  # refused, and SO_ERROR already said so
            if self.connected:
                raise Errno(errno.EISCONN)
        local = self._bind_for(ip)
        with LOCK:
            self.name = local  # a wildcard-bound socket now speaks from lo's address
            target = ports.lookup(self.kernel, SOCK_STREAM, ip, port, listening=True)
        try:
            if target is None:
                raise Errno(errno.ECONNREFUSED)
            self._connect_stream(task, target, (ip, port))
        except Errno as e:
            if self.nonblocking and e.code in (errno.ECONNREFUSED, errno.EAGAIN):
                self._in_progress(e.code)
            raise
        if self.nonblocking:
            self._in_progress(0)

    def _in_progress(self, error: int) -> None:
        """Linux's TCP connect never finishes within a non-blocking call; the outcome shows in SO_ERROR."""
        with LOCK:
            self.connecting = True
            if error == errno.ECONNREFUSED:
                self.error = error
        self.waitq.notify(POLLOUT)
        raise Errno(errno.EINPROGRESS)

    def disconnect(self) -> None:
        with LOCK:
            self.remote = None

    def shutdown(self, how: int) -> None:
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise Errno(errno.EINVAL)
        with LOCK:
            listening = self.backlog is not None
            unconnected = self.remote is None if self.kind == SOCK_DGRAM else not self.connected
        if listening:
            if how != SHUT_WR:
                self._stop_listening()
            return
        if unconnected:
            raise Errno(errno.ENOTCONN)
        super().shutdown(how)

    def _stop_listening(self) -> None:
        """Linux's shutdown(SHUT_RD) of a listener: it closes; queued connections are reset."""
        with LOCK:
            pending = list(self.backlog or ())
            self.backlog = None
        for server in pending:
            server.decref()
        self._wake_all()

    def _spawn(self) -> InetSocket:
        server = InetSocket(self.kernel, self.family, self.kind, 0, self.creds)
        server.v6only = self.v6only
        server.inet_options = dict(self.inet_options)
        server.options.plain = dict(self.options.plain)
        return server

    def peer_name(self) -> Name:
        """A TCP peer that closed normally is still the peer (CLOSE_WAIT) until this end closes."""
        with LOCK:
            peer = self.peer
            if peer is None or peer.name is None or not self.connected:
                raise Errno(errno.ENOTCONN)
            return peer.name

    # --- data ------------------------------------------------------------------------
    def send(
        self,
        task,
        data: bytes,
        flags: int,
        *,
        to: Name | None = None,
        rights: list[FileDescription] | None = None,
        creds: Creds | None = None,
    ) -> int:
        refuse_ancillary(rights, creds)
        if self.kind == SOCK_STREAM:
            to = None  # TCP ignores a destination, as Linux's tcp_sendmsg does
        return super().send(task, data, flags, to=to)

    def _send_dgram(self, task, data: bytes, flags: int, to: Name | None, rights, creds) -> int:
        if len(data) > self.max_record:
            raise Errno(errno.EMSGSIZE)
        with LOCK:
            if self.shut & SEND_SHUTDOWN:
                raise Errno(errno.EPIPE)
            if self.remote is not None and self.error:
                error, self.error = self.error, 0
                raise Errno(error)
            remote = self.remote
        if to is not None:
            ip, port = self._destination(to)
            if port == 0:
                raise Errno(errno.EINVAL)
        elif remote is not None:
            ip, port = remote
        else:
            raise Errno(errno.EDESTADDRREQ)
        sender = self._bind_for(ip)
        with LOCK:
            target = ports.lookup(self.kernel, SOCK_DGRAM, ip, port, listening=False)
            if target is None:
                if remote is not None and to is None:
                    self.error = errno.ECONNREFUSED  # the ICMP port unreachable a connected socket hears
                return len(data)
            if target.remote is not None and target.remote != sender:
                return len(data)
            if target.shut & RCV_SHUTDOWN:
                return len(data)
            if len(target.queue) >= MAX_DGRAM_QLEN or target.queued + len(data) > BUFFER:
                return len(data)  # UDP drops what the receiver has no room for
            target.queue.append(Message(data, Creds.of(task), sender))
            target.queued += len(data)
        target.waitq.notify(POLLIN)
        return len(data)

    def _after_take(self, part: Received) -> None:
        super()._after_take(part)
        part.creds = None  # SO_PASSCRED is AF_UNIX's

    def recv(self, task, count: int, flags: int) -> Received:
        if self.kind == SOCK_STREAM and not self.connected:
            raise Errno(errno.ENOTCONN)
        return super().recv(task, count, flags)

    def release(self) -> None:
        super().release()
        with LOCK:
            self.remote = None
