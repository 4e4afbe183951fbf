"""Socket system calls: AF_UNIX (sentry.net.unix), AF_INET/AF_INET6 by the sandbox's network mode
(sentry.net.inet's loopback stack for `none`, sentry.net.host's host sockets for `host`); other
families are EAFNOSUPPORT.

Every pointer, length and flag comes from the app: lengths are bounded
before anything is copied, addresses are validated by sentry.net.sockaddr,
each socket decodes its own family's addresses (sentry.net.socket.Socket), and a socket call on
a non-socket fd is ENOTSOCK.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable

from sentry.errors import Errno
from sentry.net import cmsg, sockaddr
from sentry.net.inet.addr import AF_INET, AF_INET6
from sentry.net.inet.socket import IPPROTO_TCP, IPPROTO_UDP, InetSocket
from sentry.net.socket import Socket
from sentry.net.unix.message import Creds, Received
from sentry.net.unix.socket import SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, UnixSocket, socketpair
from sentry.syscalls.args import s32, u32
from sentry.syscalls.fsargs import IO_CHUNK, get_file, install_pair

SOCK_RAW = 3
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK, SOCK_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
PF_UNIX = 1
MSG_OOB, MSG_TRUNC, MSG_ERRQUEUE, MSG_CMSG_CLOEXEC = 0x1, 0x20, 0x2000, 0x40000000
SOCKADDR_STORAGE = 128
UIO_MAXIOV = 1024
MAX_OPTLEN = 4096
_INT = struct.Struct("<i")
_MSGHDR = struct.Struct("<QI4xQQQQi4x")
_MMSGHDR_SIZE = _MSGHDR.size + 8  # struct mmsghdr: the msghdr, unsigned msg_len, padding
_UINT = struct.Struct("<I")
_TIMESPEC = struct.Struct("<qq")
MSG_DONTWAIT, MSG_WAITFORONE = 0x40, 0x10000


# --- argument helpers ---------------------------------------------------------------
def _socket(task, fd: int) -> Socket:
    file = get_file(task, fd)
    if not isinstance(file, Socket):
        raise Errno(errno.ENOTSOCK)
    return file


def _read_addr(task, addr: int, addrlen: int) -> bytes:
    n = s32(addrlen)
    if n < 0 or n > SOCKADDR_STORAGE:
        raise Errno(errno.EINVAL)
    return task.mm.copy_in(addr, n)


def _write_addr(task, addr: int, addrlen_ptr: int, raw: bytes) -> None:
    """Copy out as much of the address as the app's buffer holds, and its real length (no buffer: nothing)."""
    if not addr:
        return
    (room,) = _INT.unpack(task.mm.copy_in(addrlen_ptr, 4))
    if room < 0:
        raise Errno(errno.EINVAL)
    task.mm.copy_out(addr, raw[:room])
    task.mm.copy_out(addrlen_ptr, _INT.pack(len(raw)))


def _kind_and_flags(type_: int) -> tuple[int, int]:
    """(socket type, O_NONBLOCK|O_CLOEXEC) from socket()'s type argument."""
    type_ = s32(type_)
    flags = type_ & ~SOCK_TYPE_MASK
    if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise Errno(errno.EINVAL)
    return type_ & SOCK_TYPE_MASK, flags


def _unix_kind(kind: int, protocol: int) -> int:
    if s32(protocol) not in (0, PF_UNIX):
        raise Errno(errno.EPROTONOSUPPORT)
    if kind == SOCK_RAW:
        kind = SOCK_DGRAM  # Linux treats a raw AF_UNIX socket as a datagram socket
    if kind not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
        raise Errno(errno.ESOCKTNOSUPPORT)
    return kind


def _inet_kind(kind: int, protocol: int) -> int:
    """TCP and UDP only: raw sockets (and ICMP, SCTP ...) are refused in every network mode."""
    protocol = s32(protocol)
    if kind == SOCK_STREAM and protocol in (0, IPPROTO_TCP):
        return kind
    if kind == SOCK_DGRAM and protocol in (0, IPPROTO_UDP):
        return kind
    if kind in (SOCK_STREAM, SOCK_DGRAM, SOCK_RAW):
        raise Errno(errno.EPROTONOSUPPORT)
    raise Errno(errno.ESOCKTNOSUPPORT)


def _new_socket(task, domain: int, kind: int, protocol: int, nonblock: int) -> Socket:
    if domain == sockaddr.AF_UNIX:
        return UnixSocket(_unix_kind(kind, protocol), nonblock, Creds.of(task))
    if domain not in (AF_INET, AF_INET6):
        raise Errno(errno.EAFNOSUPPORT)
    kind = _inet_kind(kind, protocol)
    if task.kernel.network == "host":
        from sentry.net.host import HostSocket

        return HostSocket.create(domain, kind, nonblock)
    return InetSocket(task.kernel, domain, kind, nonblock, Creds.of(task))


# --- creating and naming ------------------------------------------------------------
def sys_socket(task, domain, type_, protocol) -> int:
    kind, flags = _kind_and_flags(type_)
    sock = _new_socket(task, s32(domain), kind, protocol, flags & SOCK_NONBLOCK)
    return task.fds.install(sock, cloexec=bool(flags & SOCK_CLOEXEC))


def sys_socketpair(task, domain, type_, protocol, sv) -> int:
    domain = s32(domain)
    if domain in (AF_INET, AF_INET6):
        raise Errno(errno.EOPNOTSUPP)
    if domain != sockaddr.AF_UNIX:
        raise Errno(errno.EAFNOSUPPORT)
    kind, flags = _kind_and_flags(type_)
    kind = _unix_kind(kind, protocol)
    a, b = socketpair(kind, flags & SOCK_NONBLOCK, Creds.of(task))
    install_pair(task, a, b, bool(flags & SOCK_CLOEXEC), sv)
    return 0


def sys_bind(task, fd, addr, addrlen) -> int:
    sock = _socket(task, fd)
    sock.bind(task, sock.decode_bind_addr(_read_addr(task, addr, addrlen)))
    return 0


def sys_listen(task, fd, backlog) -> int:
    _socket(task, fd).listen(s32(backlog))
    return 0


def sys_connect(task, fd, addr, addrlen) -> int:
    sock = _socket(task, fd)
    raw = _read_addr(task, addr, addrlen)
    if sockaddr.family_of(raw) == sockaddr.AF_UNSPEC and sock.kind == SOCK_DGRAM:
        sock.disconnect()
        return 0
    name = sock.decode_addr(raw)
    if name == b"":  # an unnamed AF_UNIX address
        raise Errno(errno.EINVAL)
    sock.connect(task, name)
    return 0


def sys_accept4(task, fd, addr, addrlen_ptr, flags) -> int:
    flags = s32(flags)
    if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise Errno(errno.EINVAL)
    sock = _socket(task, fd)
    if sock.kind == SOCK_DGRAM:
        raise Errno(errno.EOPNOTSUPP)
    server = sock.accept(task, flags & SOCK_NONBLOCK)
    try:
        # As Linux: a fault writing the address loses the connection rather than leaking an fd.
        _write_addr(task, addr, addrlen_ptr, server.accept_address())
    except Errno:
        server.decref()
        raise
    return task.fds.install(server, cloexec=bool(flags & SOCK_CLOEXEC))


def sys_accept(task, fd, addr, addrlen_ptr) -> int:
    return sys_accept4(task, fd, addr, addrlen_ptr, 0)


def sys_getsockname(task, fd, addr, addrlen_ptr) -> int:
    sock = _socket(task, fd)
    _write_addr(task, addr, addrlen_ptr, sock.local_address())
    return 0


def sys_getpeername(task, fd, addr, addrlen_ptr) -> int:
    sock = _socket(task, fd)
    _write_addr(task, addr, addrlen_ptr, sock.remote_address())
    return 0


def sys_shutdown(task, fd, how) -> int:
    _socket(task, fd).shutdown(s32(how))
    return 0


def sys_setsockopt(task, fd, level, optname, optval, optlen) -> int:
    sock = _socket(task, fd)
    n = s32(optlen)
    if n < 0 or n > MAX_OPTLEN:
        raise Errno(errno.EINVAL)
    sock.set_option(task, s32(level), s32(optname), task.mm.copy_in(optval, n))
    return 0


def sys_getsockopt(task, fd, level, optname, optval, optlen_ptr) -> int:
    sock = _socket(task, fd)
    (room,) = _INT.unpack(task.mm.copy_in(optlen_ptr, 4))
    if room < 0:
        raise Errno(errno.EINVAL)
    value = sock.get_option(task, s32(level), s32(optname))
    task.mm.copy_out(optval, value[:room])
    task.mm.copy_out(optlen_ptr, _INT.pack(min(room, len(value))))
    return 0


# --- data ---------------------------------------------------------------------------
def _send_flags(flags: int) -> int:
    flags = u32(flags)
    if flags & MSG_OOB:
        raise Errno(errno.EOPNOTSUPP)
    return flags


def _recv_flags(flags: int) -> int:
    flags = u32(flags)
    if flags & MSG_OOB:
        raise Errno(errno.EOPNOTSUPP)
    if flags & MSG_ERRQUEUE:
        raise Errno(errno.EAGAIN)
    return flags


def _payload_limit(sock: Socket, length: int) -> int:
    """How many bytes to copy in: a record larger than any queue is EMSGSIZE before copying."""
    if length >= 1 << 63:
        raise Errno(errno.EINVAL)
    if sock.kind != SOCK_STREAM and length > sock.max_record:
        raise Errno(errno.EMSGSIZE)
    return min(length, IO_CHUNK)


def sys_sendto(task, fd, buf, length, flags, addr, addrlen) -> int:
    sock = _socket(task, fd)
    flags = _send_flags(flags)
    data = task.mm.copy_in(buf, _payload_limit(sock, length))
    to = sock.decode_addr(_read_addr(task, addr, addrlen)) if addr and s32(addrlen) else None
    if to == b"":
        raise Errno(errno.EINVAL)
    return sock.send(task, data, flags, to=to)


def sys_recvfrom(task, fd, buf, length, flags, addr, addrlen_ptr) -> int:
    sock = _socket(task, fd)
    flags = _recv_flags(flags)
    if length >= 1 << 63:
        raise Errno(errno.EINVAL)
    got = sock.recv(task, min(length, IO_CHUNK), flags)
    _release(got)
    task.mm.copy_out(buf, got.data)
    if sock.kind != SOCK_STREAM:
        _write_addr(task, addr, addrlen_ptr, _sender_addr(sock, got))
    return got.size if flags & MSG_TRUNC and sock.kind != SOCK_STREAM else len(got.data)


def _sender_addr(sock: Socket, got: Received) -> bytes:
    """recvfrom/recvmsg report an unnamed sender with address length 0 (accept and getsockname use 2)."""
    return sock.encode_addr(got.sender) if got.sender else b""


def _release(got: Received) -> None:
    """recv/read without a control buffer: passed files are closed, as Linux does."""
    for file in got.rights:
        file.decref()
    got.rights = []


def _iovecs(task, iov: int, count: int) -> list[tuple[int, int]]:
    if count > UIO_MAXIOV:
        raise Errno(errno.EMSGSIZE)
    return task.mm.read_iovec(iov, count)


def sys_sendmsg(task, fd, msg, flags) -> int:
    return _sendmsg(task, _socket(task, fd), msg, _send_flags(flags))


def _sendmsg(task, sock: Socket, msg: int, flags: int) -> int:
    name, namelen, iov, iovlen, control, controllen, _ = _MSGHDR.unpack(task.mm.copy_in(msg, _MSGHDR.size))
    vecs = _iovecs(task, iov, iovlen)
    total = _payload_limit(sock, sum(length for _, length in vecs))
    parts = []
    for base, length in vecs:
        take = min(length, total)
        if take:
            parts.append(task.mm.copy_in(base, take))
            total -= take
    to = sock.decode_addr(_read_addr(task, name, namelen)) if name and namelen else None
    if to == b"":
        raise Errno(errno.EINVAL)
    if controllen > cmsg.OPTMEM_MAX:
        raise Errno(errno.ENOBUFS)
    rights, creds = cmsg.decode(task, task.mm.copy_in(control, controllen)) if controllen else ([], None)
    return sock.send(task, b"".join(parts), flags, to=to, rights=rights, creds=creds)


def sys_recvmsg(task, fd, msg, flags) -> int:
    return _recvmsg(task, _socket(task, fd), msg, _recv_flags(flags))


def _recvmsg(task, sock: Socket, msg: int, flags: int) -> int:
    name, namelen, iov, iovlen, control, controllen, _ = _MSGHDR.unpack(task.mm.copy_in(msg, _MSGHDR.size))
    vecs = _iovecs(task, iov, iovlen)
    if s32(namelen) < 0:
        raise Errno(errno.EINVAL)
    capacity = min(sum(length for _, length in vecs), IO_CHUNK)
    # Check the header is writable before taking anything off the queue.
    task.mm.copy_out(msg, task.mm.copy_in(msg, _MSGHDR.size))
    got = sock.recv(task, capacity, flags)
    pos = 0
    try:
        for base, length in vecs:
            if pos >= len(got.data):
                break
            task.mm.copy_out(base, got.data[pos : pos + length])
            pos += length
    except Errno:
        _release(got)  # the passed files must not outlive a failed receive
        raise
    out_flags = MSG_TRUNC if got.truncated else 0
    control_out = b""
    if got.rights or got.creds is not None:
        if control:
            control_out, ctrunc = cmsg.encode(
                task, min(controllen, cmsg.OPTMEM_MAX), got.rights, got.creds, bool(flags & MSG_CMSG_CLOEXEC)
            )
            out_flags |= ctrunc
        else:
            _release(got)
            out_flags |= cmsg.MSG_CTRUNC
    if control_out:
        task.mm.copy_out(control, control_out)
    sender = _sender_addr(sock, got) if sock.kind != SOCK_STREAM else b""
    written_name = min(s32(namelen), len(sender)) if name else 0
    if written_name:
        task.mm.copy_out(name, sender[:written_name])
    header = _MSGHDR.pack(name, len(sender) if name else 0, iov, iovlen, control, len(control_out), out_flags)
    task.mm.copy_out(msg, header)
    return got.size if flags & MSG_TRUNC and sock.kind != SOCK_STREAM else len(got.data)


def _each_mmsghdr(task, msgvec: int, vlen: int, flags: int, one: Callable[[int, int], int]) -> int:
    """sendmmsg/recvmmsg: one(msghdr address, flags) per entry, msg_len written back; the count done,
    or the first error when nothing was done (a later error stops the batch, as Linux)."""
    count = min(u32(vlen), UIO_MAXIOV)
    done = 0
    for i in range(count):
        entry = msgvec + i * _MMSGHDR_SIZE
        try:
            n = one(entry, flags if done == 0 or not flags & MSG_WAITFORONE else flags | MSG_DONTWAIT)
        except Errno:
            if done == 0:
                raise
            break
        task.mm.copy_out(entry + _MSGHDR.size, _UINT.pack(n))
        done += 1
    return done


def sys_sendmmsg(task, fd, msgvec, vlen, flags) -> int:
    sock = _socket(task, fd)
    return _each_mmsghdr(task, msgvec, vlen, _send_flags(flags), lambda m, f: _sendmsg(task, sock, m, f))


def sys_recvmmsg(task, fd, msgvec, vlen, flags, timeout) -> int:
    sock = _socket(task, fd)
    flags = _recv_flags(flags)
    if timeout:
        sec, nsec = _TIMESPEC.unpack(task.mm.copy_in(timeout, _TIMESPEC.size))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise Errno(errno.EINVAL)
    return _each_mmsghdr(task, msgvec, vlen, flags, lambda m, f: _recvmsg(task, sock, m, f))
