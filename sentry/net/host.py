"""`--network=host`: AF_INET/AF_INET6 TCP and UDP sockets that are host sockets of the Sentry process.

As runsc's hostinet. Each call is the host call on the socket, made with
values the Sentry decoded and copied itself (addresses become Python
address tuples, option values bytes of at most 256): no app pointer
reaches the host. The host socket is always non-blocking: an app's
blocking call waits with a host poll() the task's signals interrupt
(Waiter.watch_host_fd), so it never pins the Sentry; O_NONBLOCK, MSG_DONTWAIT
and SO_RCVTIMEO/SO_SNDTIMEO live here. Every send carries MSG_NOSIGNAL:
SIGPIPE goes to the task, never to the Sentry.

Host calls made (docs/net.md lists them as strace saw them): socket
(AF_INET/AF_INET6 x SOCK_STREAM/SOCK_DGRAM), bind, listen, connect (also
AF_UNSPEC), accept4, sendto, recvmsg (hostcalls.py), shutdown, getsockname,
getpeername, setsockopt/getsockopt at the levels and names listed below,
ioctl (FIONBIO, FIONREAD, SIOCOUTQ and the SIOCGIF* queries below), poll and
close.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from sentry.errors import RESTART_CODES, Errno
from sentry.net import hostcalls
from sentry.net.inet import addr, ifaces, ports
from sentry.net.inet import options as inet_options
from sentry.net.inet.addr import AF_INET
from sentry.net.inet.socket import MAX_UDP4, MAX_UDP6
from sentry.net.socket import Socket, refuse_ancillary
from sentry.net.sockfs import socket_location
from sentry.net.unix import options as sol
from sentry.net.unix.message import Creds, Received
from sentry.net.wait import block_until, deadline_after
from sentry.vfs.file import FileDescription
from sentry.vfs.hostfd import HostFd
from sentry.vfs.waiter import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, Waiter

T = TypeVar("T")
SOCK_STREAM, SOCK_DGRAM = 1, 2
MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT, MSG_WAITALL, MSG_NOSIGNAL = 0x2, 0x20, 0x40, 0x100, 0x4000
MSG_MORE, MSG_CONFIRM = 0x8000, 0x800
SEND_FLAGS = MSG_MORE | MSG_CONFIRM
RECV_FLAGS = MSG_PEEK | MSG_TRUNC
FIONREAD, SIOCOUTQ = 0x541B, 0x5411
# SOL_SOCKET options passed to the host as they are; the timeouts stay in the Sentry.
SOCKET_SET = (
    sol.SO_REUSEADDR, sol.SO_REUSEPORT, sol.SO_KEEPALIVE, sol.SO_BROADCAST, sol.SO_LINGER,
    sol.SO_SNDBUF, sol.SO_RCVBUF, sol.SO_RCVLOWAT, sol.SO_OOBINLINE, sol.SO_DONTROUTE,
)  # fmt: skip
SOCKET_GET = (*SOCKET_SET, sol.SO_TYPE, sol.SO_ERROR, sol.SO_ACCEPTCONN, sol.SO_PROTOCOL, sol.SO_DOMAIN)
IP_MTU = 14
# level -> names at that level the host sees: set, the int options the loopback stack knows too;
# get, those and two read-only ones.
PROTOCOL_SET = inet_options.DEFAULTS
PROTOCOL_GET = {level: {*names} for level, names in PROTOCOL_SET.items()}
PROTOCOL_GET[inet_options.SOL_IP].add(IP_MTU)
PROTOCOL_GET[inet_options.SOL_TCP].add(inet_options.TCP_INFO)
MAX_OPTION = 256
# Interface queries (struct ifreq in and out); SIOCGIFCONF is translated separately.
IFREQ_IOCTLS = (
    ifaces.SIOCGIFNAME, ifaces.SIOCGIFFLAGS, ifaces.SIOCGIFADDR, ifaces.SIOCGIFNETMASK,
    ifaces.SIOCGIFMTU, ifaces.SIOCGIFHWADDR, ifaces.SIOCGIFINDEX,
)  # fmt: skip
MAX_IFCONF = 64 * ifaces.IFREQ_SIZE
SOMAXCONN = 4096
POLLRDHUP = 0x2000
PASSED_EVENTS = POLLIN | POLLPRI | POLLOUT | POLLRDHUP


class HostSocket(Socket):
    waitq = None  # readiness is the host fd's: poll and epoll watch it (watch())

    def __init__(self, family: int, kind: int, fd: int, flags: int) -> None:
        super().__init__(socket_location(), os.O_RDWR | flags)
        self.family = family
        self.kind = kind
        self.protocol = socket.IPPROTO_TCP if kind == SOCK_STREAM else socket.IPPROTO_UDP
        self.max_record = MAX_UDP4 if family == AF_INET else MAX_UDP6
        self.host_fd = HostFd(fd)
        self._poll_fd = fd  # only for host poll() registrations (a stale one just wakes early)
        self.rcvtimeo: float | None = None
        self.sndtimeo: float | None = None
        self._accepted_from = b""  # the peer's sockaddr, for accept's answer

    @classmethod
    def create(cls, family: int, kind: int, flags: int) -> HostSocket:
        try:
            sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        except OSError as e:
            raise Errno(e.errno or errno.ENOBUFS) from None
        return cls(family, kind, sock.detach(), flags)

    @contextmanager
    def _sock(self) -> Iterator[socket.socket]:
        """A Python socket over the host fd for one call; it never owns (closes) the fd."""
        with self.host_fd.use() as fd:
            sock = socket.socket(self.family, self.kind, self.protocol, fileno=fd)
            try:
                yield sock
            except OSError as e:
                raise Errno(e.errno or errno.EIO) from None
            finally:
                sock.detach()

    # --- waiting ---------------------------------------------------------------------
    def _ready(self, events: int) -> int:
        poller = select.poll()
        poller.register(self._poll_fd, events)
        got = poller.poll(0)
        return got[0][1] if got else 0

    def _blocking(
        self, task, events: int, call: Callable[[], T], nonblocking: bool, timeout: float | None
    ) -> T:
        """call() (a non-blocking host call) until it does not say EAGAIN, sleeping on the host fd."""
        deadline = deadline_after(timeout)
        waiter = None
        try:
            while True:
                try:
                    return call()
                except Errno as e:
                    if e.code != errno.EAGAIN or nonblocking:
                        raise
                if waiter is None:
                    waiter = Waiter()
                    waiter.watch_host_fd(self._poll_fd, events)
                while not self._ready(events | POLLERR | POLLHUP):
                    block_until(task, waiter, deadline)
                    waiter.clear()
        finally:
            if waiter is not None:
                waiter.close()

    def watch(self, waiter: Waiter, mask: int) -> None:
        waiter.watch_host_fd(self._poll_fd, mask & PASSED_EVENTS)

    def unwatch(self, waiter: Waiter) -> None:
        """Host fds are only watched for the waiter's own lifetime."""

    def readiness(self, mask: int) -> int:
        try:
            with self.host_fd.use():
                return self._ready(mask & PASSED_EVENTS) & (mask | POLLHUP | POLLERR)
        except Errno:
            return POLLNVAL

    # --- names -----------------------------------------------------------------------
    def decode_addr(self, raw: bytes) -> tuple:
        return self._to_python(addr.decode(self.family, raw), raw)

    def decode_bind_addr(self, raw: bytes) -> tuple:
        return self._to_python(addr.decode(self.family, raw, binding=True), raw)

    def _to_python(self, name: addr.Name, raw: bytes) -> tuple:
        ip, port = name
        if self.family == AF_INET:
            return socket.inet_ntop(socket.AF_INET, ip[12:]), port
        flowinfo, scope = struct.unpack_from("<I", raw, 4)[0], 0
        if len(raw) >= addr.SOCKADDR_IN6_SIZE:
            (scope,) = struct.unpack_from("<I", raw, 24)
        return socket.inet_ntop(socket.AF_INET6, ip), port, flowinfo, scope

    def encode_addr(self, name: tuple) -> bytes:
        if self.family == AF_INET:
            return addr.encode(AF_INET, (addr.MAPPED + socket.inet_pton(socket.AF_INET, name[0]), name[1]))
        host, port, flowinfo, scope = name
        ip = socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
        return (
            struct.pack("<H", addr.AF_INET6)
            + struct.pack("!H", port)
            + struct.pack("<I", flowinfo)
            + (ip + struct.pack("<I", scope))
        )

    def local_address(self) -> bytes:
        with self._sock() as s:
            return self.encode_addr(s.getsockname())

    def remote_address(self) -> bytes:
        with self._sock() as s:
            return self.encode_addr(s.getpeername())

    def accept_address(self) -> bytes:
        return self._accepted_from

    def bind(self, task, name: tuple) -> None:
        ports.check_privileged(task, name[1])
        with self._sock() as s:
            s.bind(name)

    def listen(self, backlog: int) -> None:
        with self._sock() as s:
            s.listen(min(max(backlog, 0), SOMAXCONN))

    def connect(self, task, name: tuple) -> None:
        code = self._host_connect(name)
        if code == 0:
            return
        # EALREADY: a blocking connect a signal interrupted, restarted; it waits on, as Linux's does.
        if code not in (errno.EINPROGRESS, errno.EALREADY) or self.nonblocking:
            raise Errno(code)
        self._blocking(task, POLLOUT, self._connect_outcome, False, self.sndtimeo)
        # The host reports a finished non-blocking connect once more, with 0; a blocking
        # connect already said so, so take that report here (the app's next one is EISCONN).
        self._host_connect(name)

    def _host_connect(self, name: tuple) -> int:
        with self.host_fd.use() as fd:
            return hostcalls.connect(fd, self.encode_addr(name))

    def _connect_outcome(self) -> bool:
        with self._sock() as s:
            if not self._ready(POLLOUT | POLLERR | POLLHUP):
                raise Errno(errno.EAGAIN)
            error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise Errno(error)
        return True

    def disconnect(self) -> None:
        with self.host_fd.use() as fd:
            hostcalls.disconnect(fd)

    def accept(self, task, flags: int) -> HostSocket:
        def attempt() -> tuple[int, tuple]:
            with self._sock() as s:
                fd, name = s._accept()
            return fd, name

        fd, name = self._blocking(task, POLLIN, attempt, self.nonblocking, self.rcvtimeo)
        os.set_blocking(fd, False)
        server = HostSocket(self.family, self.kind, fd, flags)
        server._accepted_from = self.encode_addr(name)
        return server

    def shutdown(self, how: int) -> None:
        if how not in (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR):
            raise Errno(errno.EINVAL)
        with self._sock() as s:
            s.shutdown(how)

    # --- data ------------------------------------------------------------------------
    def send(
        self,
        task,
        data: bytes,
        flags: int,
        *,
        to: tuple | None = None,
        rights: list[FileDescription] | None = None,
        creds: Creds | None = None,
    ) -> int:
        refuse_ancillary(rights, creds)
        host_flags = (flags & SEND_FLAGS) | MSG_DONTWAIT | MSG_NOSIGNAL
        nonblocking = bool(self.nonblocking or flags & MSG_DONTWAIT)
        done = 0

        def attempt() -> int:
            with self._sock() as s:
                rest = data[done:]
                return s.sendto(rest, host_flags, to) if to is not None else s.send(rest, host_flags)

        try:
            while True:
                done += self._blocking(task, POLLOUT, attempt, nonblocking, self.sndtimeo)
                if done >= len(data) or self.kind != SOCK_STREAM:
                    return done
        except Errno as e:
            if done and e.code in (errno.EAGAIN, errno.EINTR, *RESTART_CODES):
                return done
            if e.code == errno.EPIPE and not flags & MSG_NOSIGNAL:
                task.send_signal(signal.SIGPIPE)
            raise

    def recv(self, task, count: int, flags: int) -> Received:
        host_flags = (flags & RECV_FLAGS) | MSG_DONTWAIT
        if self.kind == SOCK_STREAM:
            host_flags &= ~MSG_TRUNC  # on TCP it would discard the data instead of copying it
        nonblocking = bool(self.nonblocking or flags & MSG_DONTWAIT)

        def attempt() -> Received:
            with self.host_fd.use() as fd:
                data, size, raw, out_flags = hostcalls.recvmsg(fd, count - len(got), host_flags)
            sender = self.decode_addr(raw) if len(raw) > 2 else b""
            return Received(data, size, sender, truncated=bool(out_flags & MSG_TRUNC))

        # MSG_WAITALL on a stream: keep receiving until count, EOF, an error or a signal (as Linux).
        waitall = flags & MSG_WAITALL and self.kind == SOCK_STREAM and not flags & MSG_PEEK
        got = bytearray()
        while True:
            try:
                part = self._blocking(task, POLLIN, attempt, nonblocking, self.rcvtimeo)
            except Errno:
                if got:
                    return Received(bytes(got), len(got))
                raise
            if not waitall or not part.data or len(got) + len(part.data) >= count:
                if not got:
                    return part
                got += part.data
                return Received(bytes(got), len(got))
            got += part.data

    def read(self, task, count: int) -> bytes:
        return b"" if count == 0 else self.recv(task, count, 0).data

    def write(self, task, data: bytes) -> int:
        return 0 if not data and self.kind == SOCK_STREAM else self.send(task, data, 0)

    # --- options and ioctls ----------------------------------------------------------
    def set_option(self, task, level: int, name: int, value: bytes) -> None:
        if level == sol.SOL_SOCKET and name in (sol.SO_RCVTIMEO, sol.SO_SNDTIMEO):
            seconds = sol.parse_timeout(value)
            if name == sol.SO_RCVTIMEO:
                self.rcvtimeo = seconds
            else:
                self.sndtimeo = seconds
            return
        if not self._allowed(level, name, SOCKET_SET, PROTOCOL_SET, errno.ENOPROTOOPT):
            raise Errno(errno.ENOPROTOOPT)
        with self._sock() as s:
            s.setsockopt(level, name, value[:MAX_OPTION])

    def get_option(self, task, level: int, name: int) -> bytes:
        if level == sol.SOL_SOCKET and name in (sol.SO_RCVTIMEO, sol.SO_SNDTIMEO):
            return sol.timeval(self.rcvtimeo if name == sol.SO_RCVTIMEO else self.sndtimeo)
        if level == sol.SOL_SOCKET and name == sol.SO_PEERCRED:
            return inet_options.NO_PEERCRED
        if not self._allowed(level, name, SOCKET_GET, PROTOCOL_GET, errno.EOPNOTSUPP):
            raise Errno(errno.ENOPROTOOPT)
        with self._sock() as s:
            return s.getsockopt(level, name, MAX_OPTION)

    def _allowed(
        self, level: int, name: int, socket_names: tuple[int, ...], protocol_names: Mapping, wrong_level: int
    ) -> bool:
        """Whether the host sees this option; a level no TCP/UDP socket has is Linux's wrong_level."""
        if level == sol.SOL_SOCKET:
            return name in socket_names
        if level not in protocol_names:
            raise Errno(wrong_level)
        return name in protocol_names[level]

    def ioctl(self, task, cmd: int, arg: int) -> int:
        if cmd in (FIONREAD, SIOCOUTQ):
            with self.host_fd.use() as fd:
                task.mm.copy_out(arg, hostcalls.ioctl(fd, cmd, bytes(4)))
            return 0
        if cmd in IFREQ_IOCTLS:
            request = task.mm.copy_in(arg, ifaces.IFREQ_SIZE)
            with self.host_fd.use() as fd:
                task.mm.copy_out(arg, hostcalls.ioctl(fd, cmd, request))
            return 0
        if cmd == ifaces.SIOCGIFCONF:
            return self._ifconf(task, arg)
        raise Errno(errno.ENOTTY)

    def _ifconf(self, task, arg: int) -> int:
        length, buf = ifaces.IFCONF.unpack(task.mm.copy_in(arg, ifaces.IFCONF.size))
        if length < 0:
            raise Errno(errno.EINVAL)
        with self.host_fd.use() as fd:
            written, entries = hostcalls.ifconf(fd, min(length, MAX_IFCONF) if buf else None)
        if buf:
            task.mm.copy_out(buf, entries)
        task.mm.copy_out(arg, struct.pack("<i", written))
        return 0

    def release(self) -> None:
        self.host_fd.close()
