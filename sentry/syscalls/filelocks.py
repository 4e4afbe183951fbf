"""fcntl's lock commands and flock(2), decoded for sentry.vfs.locks (which has the semantics)."""

from __future__ import annotations

import errno
import os
import struct

from sentry.errors import Errno
from sentry.syscalls.args import u32
from sentry.vfs.file import FileDescription
from sentry.vfs.locks import (
    END,
    F_RDLCK,
    F_UNLCK,
    F_WRLCK,
    LOCK_EX,
    LOCK_NB,
    LOCK_SH,
    LOCK_UN,
    LOCKS,
    lock_key,
)

F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
LOCK_COMMANDS = (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
# struct flock: l_type, l_whence, (pad), l_start, l_len, l_pid, (pad): 32 bytes.
_FLOCK = struct.Struct("<hh4xqqi4x")
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2


def _range(file: FileDescription, whence: int, start: int, length: int) -> tuple[int, int]:
    """[first, last] bytes a struct flock names, as Linux's flock_to_posix_lock computes them."""
    if whence == SEEK_CUR:
        start += file.offset
    elif whence == SEEK_END:
        start += file.stat().size
    elif whence != SEEK_SET:
        raise Errno(errno.EINVAL)
    if length > 0:
        end = start + length - 1
    elif length == 0:
        end = END
    else:
        start, end = start + length, start - 1
    if start < 0 or end < start - 1:
        raise Errno(errno.EINVAL)
    return start, min(end, END)


def fcntl_lock(task, file: FileDescription, cmd: int, arg: int) -> int:
    kind, whence, start, length, pid = _FLOCK.unpack(task.mm.copy_in(arg, _FLOCK.size))
    ofd = cmd in (F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
    if kind not in (F_RDLCK, F_WRLCK, F_UNLCK) or ofd and pid != 0:
        raise Errno(errno.EINVAL)
    first, last = _range(file, whence, start, length)
    owner = file if ofd else task.fds
    key = lock_key(file)
    if cmd in (F_GETLK, F_OFD_GETLK):
        if kind == F_UNLCK:
            raise Errno(errno.EINVAL)
        held = LOCKS.test(key, owner, first, last, kind)
        if held is None:
            out = _FLOCK.pack(F_UNLCK, SEEK_SET, start, length, 0)
        else:
            held_len = 0 if held.end == END else held.end - held.start + 1
            pid = -1 if isinstance(held.owner, FileDescription) else held.pid
            out = _FLOCK.pack(held.type, SEEK_SET, held.start, held_len, pid)
        task.mm.copy_out(arg, out)
        return 0
    if kind == F_RDLCK and not file.readable or kind == F_WRLCK and not file.writable:
        raise Errno(errno.EBADF)
    if ofd:
        file.lock_keys = file.lock_keys | {key}
    LOCKS.set_record(task, key, owner, first, last, kind, wait=cmd in (F_SETLKW, F_OFD_SETLKW))
    return 0


def flock(task, file: FileDescription, operation: int) -> int:
    operation = u32(operation)
    if operation & ~(LOCK_SH | LOCK_EX | LOCK_NB | LOCK_UN) or not operation & (LOCK_SH | LOCK_EX | LOCK_UN):
        raise Errno(errno.EINVAL)
    if file.flags & os.O_PATH:
        raise Errno(errno.EBADF)
    key = lock_key(file)
    file.lock_keys = file.lock_keys | {key}
    LOCKS.flock(task, key, file, operation)
    return 0
