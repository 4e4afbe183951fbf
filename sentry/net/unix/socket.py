"""An AF_UNIX socket: a file description whose data goes straight into its peer's receive queue.

Everything happens inside the Sentry: a connection is two UnixSocket objects
pointing at each other, a send appends a Message to the receiver's queue and
notifies it, a receive takes from its own queue and notifies whoever waits
for room. All socket state is guarded by one lock (`LOCK`): operations are
short and never block while holding it, and it rules out lock-order
deadlocks between the two ends of a connection. Readiness follows Linux's
unix_poll/unix_dgram_poll, so poll, select and epoll work on sockets as on
pipes.
"""

from __future__ import annotations

import collections
import errno
import os
import signal
import struct
import threading

from sentry.errors import Errno
from sentry.net import sockaddr
from sentry.net.inet import ifaces
from sentry.net.sockaddr import is_abstract
from sentry.net.socket import Socket
from sentry.net.sockfs import socket_location
from sentry.net.unix import names
from sentry.net.unix.message import NO_CREDS, Creds, Message, Received
from sentry.net.unix.options import Options, get_option, set_option
from sentry.net.wait import wait_on
from sentry.vfs.file import FileDescription
from sentry.vfs.waiter import POLLERR, POLLHUP, POLLIN, POLLOUT, WaitQueue

SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5
CONNECTION_ORIENTED = (SOCK_STREAM, SOCK_SEQPACKET)
POLLRDHUP = 0x2000
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2
RCV_SHUTDOWN, SEND_SHUTDOWN = 1, 2
MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_NOSIGNAL = 0x2, 0x40, 0x100, 0x4000
# Linux's default socket buffer (net.core.rmem_default) and datagram queue length.
BUFFER = 212992
MAX_DGRAM_QLEN = 512
SOMAXCONN = 4096
FIONREAD = 0x541B

# Guards every in-Sentry socket's state (the loopback inet sockets share it: they are UnixSockets too).
LOCK = threading.RLock()


class UnixSocket(Socket):
    family = sockaddr.AF_UNIX
    protocol = 0
    max_record = BUFFER - 32
    # What recv and send say on a connection-oriented socket that never connected.
    UNCONNECTED_RECV = errno.EINVAL
    UNCONNECTED_SEND = errno.ENOTCONN

    def __init__(self, kind: int, flags: int, creds: Creds) -> None:
        super().__init__(socket_location(), os.O_RDWR | flags)
        self.kind = kind
        self.creds = creds  # the creator's, as a listener passes them to connecting peers
        self.options = Options()
        self.waitq = WaitQueue()  # this socket's readiness
        self.room = WaitQueue()  # senders (and connectors) waiting for space in this socket
        self.queue: collections.deque[Message] = collections.deque()
        self.queued = 0
        self.name = b""
        self.binding: names.Binding | None = None
        self.peer: UnixSocket | None = None
        self.peercred = NO_CREDS
        self.connected = False  # connection-oriented: a peer was attached (it may be gone since)
        self.backlog: collections.deque[UnixSocket] | None = None  # listening
        self.backlog_max = 0
        self.shut = 0
        self.error = 0  # pending socket error (SO_ERROR): ECONNRESET when the peer went away unread
        self.embryo = False  # a connection waiting in a listener's backlog

    # --- names -----------------------------------------------------------------------
    def decode_addr(self, raw: bytes) -> bytes:
        return sockaddr.decode(raw)

    def encode_addr(self, name: bytes) -> bytes:
        return sockaddr.encode(name)

    def local_address(self) -> bytes:
        return sockaddr.encode(self.name)

    def remote_address(self) -> bytes:
        return sockaddr.encode(self.peer_name())

    def accept_address(self) -> bytes:
        peer = self.peer
        return sockaddr.encode(peer.name if peer is not None else b"")

    def set_option(self, task, level: int, name: int, value: bytes) -> None:
        set_option(self, level, name, value)

    def get_option(self, task, level: int, name: int) -> bytes:
        return get_option(self, level, name)

    def bind(self, task, name: bytes) -> None:
        with LOCK:
            bound = bool(self.name)
        if bound:
            # Linux makes a path's inode before looking at the socket: an existing path wins.
            if name and not is_abstract(name) and names.path_in_use(task, name):
                raise Errno(errno.EADDRINUSE)
            raise Errno(errno.EINVAL)
        if not name:
            name = names.autobind_name(task.kernel)
        if is_abstract(name):
            binding = names.bind_abstract(task.kernel, name, self)
        else:
            binding = names.bind_path(task, name, self)
        with LOCK:
            if self.name or self.released:
                binding.unbind()
                raise Errno(errno.EINVAL)
            self.name, self.binding = name, binding

    def _autobind(self, task) -> None:
        """Senders and connectors with SO_PASSCRED get a name so peers can answer (Linux's autobind)."""
        if not self.name and self.options.passcred:
            self.bind(task, b"")

    def peer_name(self) -> bytes:
        with LOCK:
            peer = self.peer
            if peer is None or (
                self.kind in CONNECTION_ORIENTED and self.shut == RCV_SHUTDOWN | SEND_SHUTDOWN
            ):
                raise Errno(errno.ENOTCONN)
            return peer.name

    # --- connections -----------------------------------------------------------------
    def listen(self, backlog: int) -> None:
        with LOCK:
            if self.kind not in CONNECTION_ORIENTED:
                raise Errno(errno.EOPNOTSUPP)
            if self.connected or not self.name:
                raise Errno(errno.EINVAL)
            self.backlog_max = min(max(backlog, 0), SOMAXCONN)
            if self.backlog is None:
                self.backlog = collections.deque()
        self.room.notify(POLLOUT)

    def connect(self, task, name: bytes) -> None:
        target = names.lookup(task, name)
        if not isinstance(target, UnixSocket):
            raise Errno(errno.ECONNREFUSED)
        if target.kind != self.kind:
            raise Errno(_mismatch(name))
        if self.kind == SOCK_DGRAM:
            self._connect_dgram(target)
        else:
            self._connect_stream(task, target, target.name)

    def _connect_dgram(self, target: UnixSocket) -> None:
        with LOCK:
            if target.released:
                raise Errno(errno.ECONNREFUSED)
            self.peer = target
            self.peercred = target.creds
        self.waitq.notify(POLLOUT)

    def disconnect(self) -> None:
        """connect(AF_UNSPEC): a datagram socket forgets its default peer."""
        with LOCK:
            if self.kind == SOCK_DGRAM:
                self.peer = None

    def _spawn(self) -> UnixSocket:
        """A listener's new server-side socket for one connection."""
        return UnixSocket(self.kind, 0, self.creds)

    def _connect_stream(self, task, target: UnixSocket, server_name) -> None:
        """Queue a connection at the listening target; its server end is named server_name."""
        creds = Creds.of(task)
        self._autobind(task)

        def attempt() -> bool | None:
            with LOCK:
                if self.connected:
                    raise Errno(errno.EISCONN)
                if self.backlog is not None:
                    raise Errno(errno.EINVAL)
                if target.backlog is None or target.released:
                    raise Errno(errno.ECONNREFUSED)
                if len(target.backlog) > target.backlog_max:
                    if self.nonblocking:
                        raise Errno(errno.EAGAIN)
                    return None
                server = target._spawn()
                server.name = server_name
                server.options.passcred = target.options.passcred
                server.peer, self.peer = self, server
                server.peercred, self.peercred = creds, target.creds
                server.connected = self.connected = True
                server.embryo = True
                target.backlog.append(server)
            target.waitq.notify(POLLIN)
            self.waitq.notify(POLLOUT)
            return True

        wait_on(task, [(target.room, POLLOUT), (self.waitq, POLLERR)], attempt, self.options.sndtimeo)

    def accept(self, task, flags: int) -> UnixSocket:
        def attempt() -> UnixSocket | None:
            with LOCK:
                if self.backlog is None:
                    raise Errno(errno.EINVAL)
                if self.backlog:
                    server = self.backlog.popleft()
                    server.embryo = False
                    server.flags |= flags
                    return server
                if self.nonblocking:
                    raise Errno(errno.EAGAIN)
                return None

        server = wait_on(task, [(self.waitq, POLLIN)], attempt, self.options.rcvtimeo)
        self.room.notify(POLLOUT)
        return server

    def shutdown(self, how: int) -> None:
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise Errno(errno.EINVAL)
        mine = {SHUT_RD: RCV_SHUTDOWN, SHUT_WR: SEND_SHUTDOWN, SHUT_RDWR: RCV_SHUTDOWN | SEND_SHUTDOWN}[how]
        with LOCK:
            peer = self.peer
            self.shut |= mine
            if peer is not None and self.kind in CONNECTION_ORIENTED:
                # What this end stops sending, the peer stops receiving, and vice versa.
                peer.shut |= (RCV_SHUTDOWN if mine & SEND_SHUTDOWN else 0) | (
                    SEND_SHUTDOWN if mine & RCV_SHUTDOWN else 0
                )
        self._wake_all()
        if peer is not None:
            peer._wake_all()

    def _wake_all(self) -> None:
        self.waitq.notify(POLLIN | POLLOUT | POLLHUP | POLLRDHUP | POLLERR)
        self.room.notify(POLLOUT | POLLERR)

    # --- sending ---------------------------------------------------------------------
    def send(
        self,
        task,
        data: bytes,
        flags: int,
        *,
        to: bytes | None = None,
        rights: list[FileDescription] | None = None,
        creds: Creds | None = None,
    ) -> int:
        """Queue data at the receiver; the caller's references in `rights` pass to the message."""
        rights = rights or []
        try:
            if self.kind == SOCK_DGRAM:
                return self._send_dgram(task, data, flags, to, rights, creds)
            if to is not None:
                raise Errno(errno.EISCONN if self.connected else errno.EOPNOTSUPP)
            return self._send_connected(task, data, flags, rights, creds)
        except Errno as e:
            if e.code == errno.EPIPE and not flags & MSG_NOSIGNAL:
                task.send_signal(signal.SIGPIPE)
            raise
        finally:
            # A queued message empties the list; files left in it were not sent.
            for file in rights:
                file.decref()

    def _send_connected(
        self, task, data: bytes, flags: int, rights: list[FileDescription], creds: Creds | None
    ) -> int:
        stream = self.kind == SOCK_STREAM
        if not stream and len(data) > BUFFER - 32:
            raise Errno(errno.EMSGSIZE)
        if stream and not data:
            return 0
        creds = creds or Creds.of(task)
        nonblocking = self.nonblocking or flags & MSG_DONTWAIT
        done = 0

        def attempt() -> int | None:
            nonlocal done
            with LOCK:
                peer = self.peer
                if peer is None or not self.connected:
                    raise Errno(self.UNCONNECTED_SEND)
                if self.shut & SEND_SHUTDOWN:
                    raise Errno(errno.EPIPE)
                space = BUFFER - peer.queued
                remaining = len(data) - done
                # A stream takes what fits; a record goes whole or waits.
                n = min(space, remaining) if stream else (remaining if space >= remaining else -1)
                if n > 0 or (n == 0 and not stream):
                    peer.queue.append(Message(data[done : done + n], creds, self.name, list(rights)))
                    peer.queued += n
                    rights.clear()
                    done += n
                    sent = True
                else:
                    sent = False
            if sent:
                peer.waitq.notify(POLLIN)
                if done == len(data):
                    return done
            if nonblocking:
                if done:
                    return done
                raise Errno(errno.EAGAIN)
            return None

        peer = self.peer
        queues = [(self.waitq, POLLERR | POLLHUP)]
        if peer is not None:
            queues.append((peer.room, POLLOUT))
        try:
            return wait_on(task, queues, attempt, self.options.sndtimeo)
        except Errno:
            if done:
                return done
            raise

    def _send_dgram(
        self, task, data: bytes, flags: int, to: bytes | None, rights: list[FileDescription], creds
    ) -> int:
        if len(data) > BUFFER - 32:
            raise Errno(errno.EMSGSIZE)
        with LOCK:
            if self.shut & SEND_SHUTDOWN:
                raise Errno(errno.EPIPE)
            target = self.peer
        if to is not None:
            found = names.lookup(task, to)
            if not isinstance(found, UnixSocket):
                raise Errno(errno.ECONNREFUSED)
            if found.kind != SOCK_DGRAM:
                raise Errno(_mismatch(to))
            target = found
        elif target is None:
            raise Errno(errno.ENOTCONN)
        self._autobind(task)
        creds = creds or Creds.of(task)
        nonblocking = self.nonblocking or flags & MSG_DONTWAIT

        def attempt() -> int | None:
            with LOCK:
                if target.released:
                    if self.peer is target:
                        self.peer = None
                    raise Errno(errno.ECONNREFUSED)
                if target.peer is not None and target.peer is not self:
                    raise Errno(errno.EPERM)
                if target.shut & RCV_SHUTDOWN:
                    raise Errno(errno.EPIPE)
                if len(target.queue) >= MAX_DGRAM_QLEN or target.queued + len(data) > BUFFER:
                    if nonblocking:
                        raise Errno(errno.EAGAIN)
                    return None
                target.queue.append(Message(data, creds, self.name, list(rights)))
                target.queued += len(data)
                rights.clear()
            target.waitq.notify(POLLIN)
            return len(data)

        return wait_on(task, [(target.room, POLLOUT)], attempt, self.options.sndtimeo)

    # --- receiving -------------------------------------------------------------------
    def recv(self, task, count: int, flags: int) -> Received:
        nonblocking = self.nonblocking or flags & MSG_DONTWAIT
        waitall = flags & MSG_WAITALL and self.kind == SOCK_STREAM and not flags & MSG_PEEK
        got: list[Received] = []

        def attempt() -> Received | None:
            with LOCK:
                if self.backlog is not None:
                    raise Errno(errno.EINVAL)
                # A pending error comes after queued bytes on a stream, before queued records (Linux).
                if self.error and (not self.queue or self.kind != SOCK_STREAM):
                    error, self.error = self.error, 0
                    raise Errno(error)
                if self.queue:
                    if self.kind == SOCK_STREAM:
                        part = self._take_stream(count - sum(len(r.data) for r in got), flags)
                    else:
                        part = self._take_record(count, flags)
                else:
                    part = None
                eof = not self.queue and self.shut & RCV_SHUTDOWN
                if self.kind in CONNECTION_ORIENTED and not self.connected:
                    # Linux: a stream socket that never connected is EINVAL, a seqpacket one ENOTCONN.
                    raise Errno(self.UNCONNECTED_RECV if self.kind == SOCK_STREAM else errno.ENOTCONN)
            if part is not None:
                self._after_take(part)
                got.append(part)
                if waitall and sum(len(r.data) for r in got) < count and not part.rights and not eof:
                    return None
                return self._merge(got)
            if got:
                return self._merge(got)
            if eof:
                return Received(b"", 0)
            if nonblocking:
                raise Errno(errno.EAGAIN)
            return None

        try:
            return wait_on(task, [(self.waitq, POLLIN | POLLHUP | POLLRDHUP)], attempt, self.options.rcvtimeo)
        except Errno:
            if got:
                return self._merge(got)
            raise

    @staticmethod
    def _merge(parts: list[Received]) -> Received:
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        data = b"".join(p.data for p in parts)
        rights = [f for p in parts for f in p.rights]
        return Received(data, len(data), first.sender, rights, first.creds)

    def _take_stream(self, count: int, flags: int) -> Received | None:
        """Bytes from the front of the queue, not crossing a message that carries files."""
        out = bytearray()
        rights: list[FileDescription] = []
        creds = self.queue[0].creds
        peek = flags & MSG_PEEK
        index = 0
        while index < len(self.queue) and len(out) < count:
            message = self.queue[index]
            if message.rights and out:
                break
            n = min(count - len(out), len(message.data))
            out += message.data[:n]
            if peek:
                rights = _duplicates(message.rights)
                index += 1
            else:
                rights, message.rights = rights + message.rights, []
                if n == len(message.data):
                    self.queue.popleft()
                else:
                    message.data = message.data[n:]
                self.queued -= n
            if rights:
                break
        if not out and count > 0:
            return None
        return Received(bytes(out), len(out), b"", rights, creds)

    def _take_record(self, count: int, flags: int) -> Received:
        """One whole datagram/record; the part beyond count is lost (MSG_TRUNC)."""
        message = self.queue[0]
        if not flags & MSG_PEEK:
            self.queue.popleft()
            self.queued -= len(message.data)
            rights, message.rights = message.rights, []
        else:
            rights = _duplicates(message.rights)
        data = message.data[:count]
        return Received(
            data, len(message.data), message.sender, rights, message.creds, len(data) < len(message.data)
        )

    def _after_take(self, part: Received) -> None:
        if not self.options.passcred:
            part.creds = None
        self.room.notify(POLLOUT)
        peer = self.peer
        if peer is not None:
            peer.waitq.notify(POLLOUT)

    # --- FileDescription -------------------------------------------------------------
    def read(self, task, count: int) -> bytes:
        if count == 0:
            return b""
        return self.recv(task, count, 0).data

    def write(self, task, data: bytes) -> int:
        if self.kind == SOCK_STREAM and not data:
            return 0
        return self.send(task, data, 0)

    def readiness(self, mask: int) -> int:
        with LOCK:
            ready = 0
            if self.error:
                ready |= POLLERR
            if self.shut & RCV_SHUTDOWN:
                ready |= POLLRDHUP | POLLIN
            if self.shut == RCV_SHUTDOWN | SEND_SHUTDOWN:
                ready |= POLLHUP
            if self.queue or (self.backlog is not None and self.backlog):
                ready |= POLLIN
            peer = self.peer
            if self.kind in CONNECTION_ORIENTED:
                if self.backlog is None and not self.connected:
                    ready |= POLLHUP
                if self.backlog is None and (peer is None or peer.queued < BUFFER):
                    ready |= POLLOUT
            else:
                if (
                    peer is None
                    or peer.released
                    or (peer.queued < BUFFER and len(peer.queue) < MAX_DGRAM_QLEN)
                ):
                    ready |= POLLOUT
        return ready & (mask | POLLHUP | POLLERR)

    def ioctl(self, task, cmd: int, arg: int) -> int:
        if ifaces.handles(cmd):
            return ifaces.ioctl(task, cmd, arg)  # Linux answers interface queries on any socket
        if cmd != FIONREAD:
            raise Errno(errno.ENOTTY)
        with LOCK:
            n = self.queued if self.kind == SOCK_STREAM else len(self.queue[0].data) if self.queue else 0
        task.mm.copy_out(arg, struct.pack("<i", min(n, 0x7FFFFFFF)))
        return 0

    def release(self) -> None:
        with LOCK:
            peer, self.peer = self.peer, None
            pending = list(self.backlog or ())
            self.backlog = None
            messages = list(self.queue)
            self.queue.clear()
            self.queued = 0
            binding, self.binding = self.binding, None
            if peer is not None and self.kind in CONNECTION_ORIENTED:
                peer.shut = RCV_SHUTDOWN | SEND_SHUTDOWN
                # Closing with data unread (or never accepted) resets the peer, as Linux does.
                if messages or self.embryo:
                    peer.error = errno.ECONNRESET
        if binding is not None:
            binding.unbind()
        for message in messages:
            message.drop_rights()
        for server in pending:
            server.decref()
        self._wake_all()
        if peer is not None:
            peer._wake_all()


def _duplicates(files: list[FileDescription]) -> list[FileDescription]:
    """MSG_PEEK of passed files: the receiver gets new references; the message keeps its own."""
    for file in files:
        file.incref()
    return list(files)


def _mismatch(name: bytes) -> int:
    """A socket of another type at name: Linux finds abstract names by type, paths by inode."""
    return errno.ECONNREFUSED if is_abstract(name) else errno.EPROTOTYPE


def socketpair(kind: int, flags: int, creds: Creds) -> tuple[UnixSocket, UnixSocket]:
    """Two sockets connected to each other (any type, datagram included)."""
    a, b = UnixSocket(kind, flags, creds), UnixSocket(kind, flags, creds)
    a.peer, b.peer = b, a
    a.peercred = b.peercred = creds
    a.connected = b.connected = kind in CONNECTION_ORIENTED
    return a, b
