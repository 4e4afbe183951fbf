"""Argument decoding shared by the file syscall handlers: fds, paths, *at() starting points."""

from __future__ import annotations

import errno
import struct

from sentry.errors import Errno
from sentry.syscalls.args import s32
from sentry.vfs.file import MAX_RW, FileDescription
from sentry.vfs.mount import Location
from sentry.vfs.vfs import AT_EMPTY_PATH, AT_FDCWD, PATH_MAX

_FD_PAIR = struct.Struct("<ii")

# One read/write call moves at most this much through the Sentry; larger
# requests return short, which POSIX allows and every caller loops on.
IO_CHUNK = 4 << 20


def install_pair(task, first: FileDescription, second: FileDescription, cloexec: bool, addr: int) -> None:
    """pipe2/socketpair: install both ends (taking over their references) and store the two fds
    at `addr`; on any failure neither fd is left behind."""
    try:
        fd_first = task.fds.install(first, cloexec=cloexec)
    except Errno:
        second.decref()
        raise
    try:
        fd_second = task.fds.install(second, cloexec=cloexec)
    except Errno:
        task.fds.close(fd_first)
        raise
    try:
        task.mm.copy_out(addr, _FD_PAIR.pack(fd_first, fd_second))
    except Errno:
        task.fds.close(fd_first)
        task.fds.close(fd_second)
        raise


def get_file(task, fd: int) -> FileDescription:
    """The description behind a raw fd argument; EBADF for negative or closed fds."""
    n = s32(fd)
    if n < 0:
        raise Errno(errno.EBADF)
    return task.fds.get(n)


def io_count(count: int) -> int:
    """A size_t count as read/write clamp it: negative as ssize_t is EINVAL."""
    if count >= 1 << 63:
        raise Errno(errno.EINVAL)
    return min(count, MAX_RW, IO_CHUNK)


def read_path(task, addr: int) -> bytes:
    return task.mm.read_cstring(addr, PATH_MAX)


def at_location(task, dirfd: int, path: bytes, flags: int = 0) -> Location | None:
    """Where a *at() path starts; None means "the file dirfd itself" (AT_EMPTY_PATH with "")."""
    d = s32(dirfd)
    if not path:
        if flags & AT_EMPTY_PATH:
            return None
        raise Errno(errno.ENOENT)
    if path.startswith(b"/") or d == AT_FDCWD:
        return task.kernel.vfs.start_for(task, AT_FDCWD, path)
    start = get_file(task, d).loc
    if not start.inode.is_dir():
        raise Errno(errno.ENOTDIR)
    return start


def resolve_at(task, dirfd: int, path: bytes, flags: int, *, follow: bool) -> Location:
    """Full resolution for stat-like calls, honouring AT_EMPTY_PATH."""
    start = at_location(task, dirfd, path, flags)
    if start is None:
        return task.fds.get(s32(dirfd)).loc if s32(dirfd) != AT_FDCWD else task.fs.cwd
    return task.kernel.vfs.resolve(task, start, path, follow=follow)


def parent_at(task, dirfd: int, path: bytes) -> tuple[Location, bytes]:
    """The directory and last name for create/remove-like calls."""
    start = at_location(task, dirfd, path)
    if start is None:
        raise Errno(errno.ENOENT)
    return task.kernel.vfs.resolve_parent(task, start, path)
