"""The fields of each schematized syscall point, decoded from the syscall's registers and app memory.

A builder fills one message from `(task, args, ret, optional)`: `args` are
the six raw registers, `ret` is None at enter and the return value at exit
(output structures such as pipe fds are read only then), `optional` the
optional fields the session enabled. App memory is read through `task.mm`;
a bad pointer leaves the field empty rather than failing the point.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from sentry.errors import Errno
from sentry.syscalls.args import s32, s64, u32

AT_FDCWD = -100
PATH_MAX = 4096
MAX_ARGS = 4096  # argv/envv entries read for a point; Linux's own limit is far higher
MAX_SOCKADDR = 128  # sizeof(struct sockaddr_storage)
O_CREAT_WRONLY_TRUNC = 0o1101  # what creat() means as open flags

Builder = Callable[[Message, Any, tuple[int, ...], int | None, frozenset[str]], None]


def fd_path(task: Any, fd: int) -> str:
    """The path of the file behind `fd` ("" for a closed fd)."""
    try:
        return task.fds.get(fd).path
    except Errno:
        return ""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _cstring(task: Any, addr: int) -> str:
    if not addr:
        return ""
    try:
        return _text(task.mm.read_cstring(addr, PATH_MAX))
    except Errno:
        return ""


def _strings(task: Any, addr: int) -> list[str]:
    """A NULL-terminated array of string pointers (argv, envp)."""
    out: list[str] = []
    try:
        while addr and len(out) < MAX_ARGS:
            (ptr,) = struct.unpack("<Q", task.mm.copy_in(addr, 8))
            if not ptr:
                break
            out.append(_text(task.mm.read_cstring(ptr, PATH_MAX)))
            addr += 8
    except Errno:
        pass
    return out


def _copy(task: Any, addr: int, length: int) -> bytes | None:
    if not addr or length <= 0:
        return None
    try:
        return task.mm.copy_in(addr, length)
    except Errno:
        return None


def _set_fd(m: Message, task: Any, fd: int, optional: frozenset[str], field: str = "fd") -> None:
    setattr(m, field, fd)
    if fd >= 0 and "fd_path" in optional:
        m.fd_path = fd_path(task, fd)


def _ok(ret: int | None) -> bool:
    return ret is not None and ret >= 0


def _rw(
    m: Message, task: Any, a: tuple[int, ...], ret: int | None, opt: frozenset[str], *, off: bool, flags: bool
):
    """read/write and their positioned and vectored forms (count is the iovec count for the v forms)."""
    _set_fd(m, task, s32(a[0]), opt)
    m.count = a[2]
    if off:
        m.has_offset = True
        m.offset = s64(a[3])
    if flags:
        m.flags = u32(a[5])


def _open(m, task, a, ret, opt, *, dirfd: bool, creat: bool = False):
    args = a[1:] if dirfd else a
    _set_fd(m, task, s32(a[0]) if dirfd else AT_FDCWD, opt)
    m.pathname = _cstring(task, args[0])
    if creat:
        m.flags, m.mode = O_CREAT_WRONLY_TRUNC, u32(args[1])
    else:
        m.flags, m.mode = u32(args[1]), u32(args[2])


def _fd_only(m, task, a, ret, opt):
    _set_fd(m, task, s32(a[0]), opt)


def _sockaddr(m, task, a, ret, opt):
    """connect/bind: fd and the raw sockaddr."""
    _set_fd(m, task, s32(a[0]), opt)
    address = _copy(task, a[1], min(u32(a[2]), MAX_SOCKADDR))
    if address is not None:
        m.address = address


def _accept(m, task, a, ret, opt, *, flags: bool):
    _set_fd(m, task, s32(a[0]), opt)
    if flags:
        m.flags = s32(a[3])
    length = _copy(task, a[2], 4) if _ok(ret) else None
    if length is not None:
        address = _copy(task, a[1], min(struct.unpack("<I", length)[0], MAX_SOCKADDR))
        if address is not None:
            m.address = address


def _listen(m, task, a, ret, opt):
    _set_fd(m, task, s32(a[0]), opt)
    m.backlog = s32(a[1])


def _execve(m, task, a, ret, opt, *, at: bool):
    args = a[1:] if at else a
    if at:
        _set_fd(m, task, s32(a[0]), opt)
        m.flags = u32(a[4])
    m.pathname = _cstring(task, args[0])
    m.argv.extend(_strings(task, args[1]))
    if "envv" in opt:
        m.envv.extend(_strings(task, args[2]))


def _triple(m, task, a, ret, opt):
    """socket: domain, type, protocol."""
    m.domain, m.type, m.protocol = s32(a[0]), s32(a[1]), s32(a[2])


def _socketpair(m, task, a, ret, opt):
    _triple(m, task, a, ret, opt)
    fds = _copy(task, a[3], 8) if _ok(ret) else None
    if fds is not None:
        m.socket1, m.socket2 = struct.unpack("<ii", fds)


def _pathname_only(m, task, a, ret, opt):
    m.pathname = _cstring(task, a[0])


def _setid(m, task, a, ret, opt, *, has_id: bool):
    if has_id:
        m.id = u32(a[0])


def _setresid(m, task, a, ret, opt):
    m.rid, m.eid, m.sid = u32(a[0]), u32(a[1]), u32(a[2])


def _rlimit(out: Message, task: Any, addr: int) -> None:
    raw = _copy(task, addr, 16)
    if raw is not None:
        out.cur, out.max = struct.unpack("<QQ", raw)


def _prlimit(m, task, a, ret, opt):
    m.pid, m.resource = s32(a[0]), s64(a[1])
    if a[2]:
        _rlimit(m.new_limit, task, a[2])
    if a[3] and _ok(ret):
        _rlimit(m.old_limit, task, a[3])


def _pipe(m, task, a, ret, opt, *, flags: bool):
    if flags:
        m.flags = u32(a[1])
    fds = _copy(task, a[0], 8) if _ok(ret) else None
    if fds is not None:
        m.reader, m.writer = struct.unpack("<ii", fds)


def _fcntl(m, task, a, ret, opt):
    _set_fd(m, task, s32(a[0]), opt)
    m.cmd, m.args = s32(a[1]), s64(a[2])


def _dup(m, task, a, ret, opt, *, new: bool, flags: bool):
    _set_fd(m, task, s32(a[0]), opt, "old_fd")
    if new:
        m.new_fd = s32(a[1])
    elif _ok(ret):
        m.new_fd = ret
    if flags:
        m.flags = u32(a[2])


def _signalfd(m, task, a, ret, opt, *, flags: bool):
    _set_fd(m, task, s32(a[0]), opt)
    mask = _copy(task, a[1], 8)
    if mask is not None:
        (m.sigset,) = struct.unpack("<Q", mask)
    if flags:
        m.flags = s32(a[3])


def _eventfd(m, task, a, ret, opt, *, flags: bool):
    m.val = s32(a[0])
    if flags:
        m.flags = u32(a[1])


def _clone(m, task, a, ret, opt):
    m.flags, m.stack, m.tls = a[0], a[1], a[4]
    if _ok(ret):
        m.new_tid = ret


def _timerfd_create(m, task, a, ret, opt):
    m.clock_id, m.flags = s32(a[0]), s32(a[1])


def _itimerspec(out: Message, task: Any, addr: int) -> None:
    raw = _copy(task, addr, 32)
    if raw is not None:
        isec, insec, vsec, vnsec = struct.unpack("<qqqq", raw)
        out.interval.sec, out.interval.nsec, out.value.sec, out.value.nsec = isec, insec, vsec, vnsec


def _timerfd_settime(m, task, a, ret, opt):
    _set_fd(m, task, s32(a[0]), opt)
    m.flags = s32(a[1])
    _itimerspec(m.new_value, task, a[2])
    if a[3] and _ok(ret):
        _itimerspec(m.old_value, task, a[3])


def _timerfd_gettime(m, task, a, ret, opt):
    _set_fd(m, task, s32(a[0]), opt)
    if _ok(ret):
        _itimerspec(m.cur_value, task, a[1])


def _nothing(m, task, a, ret, opt):
    """fork, vfork, inotify_init: the number says it all."""


def _inotify_init1(m, task, a, ret, opt):
    m.flags = s32(a[0])


def _inotify_add_watch(m, task, a, ret, opt):
    _set_fd(m, task, s32(a[0]), opt)
    m.pathname = _cstring(task, a[1])
    m.mask = u32(a[2])


def _inotify_rm_watch(m, task, a, ret, opt):
    _set_fd(m, task, s32(a[0]), opt)
    m.wd = s32(a[1])


def _mmap(m, task, a, ret, opt):
    m.addr, m.length, m.prot, m.flags = a[0], a[1], u32(a[2]), u32(a[3])
    _set_fd(m, task, s32(a[4]), opt)
    m.offset = s64(a[5])


def _ptrace(m, task, a, ret, opt):
    m.request, m.pid = s64(a[0]), s32(a[1])


_p = functools.partial
BUILDERS: dict[str, Builder] = {
    "read": _p(_rw, off=False, flags=False),
    "write": _p(_rw, off=False, flags=False),
    "pread64": _p(_rw, off=True, flags=False),
    "pwrite64": _p(_rw, off=True, flags=False),
    "readv": _p(_rw, off=False, flags=False),
    "writev": _p(_rw, off=False, flags=False),
    "preadv": _p(_rw, off=True, flags=False),
    "pwritev": _p(_rw, off=True, flags=False),
    "preadv2": _p(_rw, off=True, flags=True),
    "pwritev2": _p(_rw, off=True, flags=True),
    "open": _p(_open, dirfd=False),
    "openat": _p(_open, dirfd=True),
    "creat": _p(_open, dirfd=False, creat=True),
    "close": _fd_only,
    "mmap": _mmap,
    "pipe": _p(_pipe, flags=False),
    "pipe2": _p(_pipe, flags=True),
    "dup": _p(_dup, new=False, flags=False),
    "dup2": _p(_dup, new=True, flags=False),
    "dup3": _p(_dup, new=True, flags=True),
    "socket": _triple,
    "socketpair": _socketpair,
    "connect": _sockaddr,
    "bind": _sockaddr,
    "accept": _p(_accept, flags=False),
    "accept4": _p(_accept, flags=True),
    "listen": _listen,
    "clone": _clone,
    "fork": _nothing,
    "vfork": _nothing,
    "execve": _p(_execve, at=False),
    "execveat": _p(_execve, at=True),
    "fcntl": _fcntl,
    "chdir": _pathname_only,
    "fchdir": _fd_only,
    "chroot": _pathname_only,
    "ptrace": _ptrace,
    "setuid": _p(_setid, has_id=True),
    "setgid": _p(_setid, has_id=True),
    "setsid": _p(_setid, has_id=False),
    "setresuid": _setresid,
    "setresgid": _setresid,
    "inotify_init": _nothing,
    "inotify_init1": _inotify_init1,
    "inotify_add_watch": _inotify_add_watch,
    "inotify_rm_watch": _inotify_rm_watch,
    "signalfd": _p(_signalfd, flags=False),
    "signalfd4": _p(_signalfd, flags=True),
    "eventfd": _p(_eventfd, flags=False),
    "eventfd2": _p(_eventfd, flags=True),
    "timerfd_create": _timerfd_create,
    "timerfd_settime": _timerfd_settime,
    "timerfd_gettime": _timerfd_gettime,
    "prlimit64": _prlimit,
}
