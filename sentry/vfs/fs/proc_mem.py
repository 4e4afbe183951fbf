"""/proc/<pid>/mem, and the ptrace access rule that guards it (and environ).

Linux checks PTRACE_MODE_ATTACH_FSCREDS when mem is opened. With Debian's
default Yama setting (kernel.yama.ptrace_scope = 1) that means: a process
may attach to itself and to its own descendants, if their ids match its
filesystem uid/gid and they are dumpable; CAP_SYS_PTRACE overrides all of
it. We apply exactly that, so a process can never read a sibling's, its
parent's or an unrelated process's memory. Reads and writes then go
through the target's mm at the file offset (the address), as ptrace peeks
and pokes do: writes ignore page protections; an unmapped address is EIO.
"""

from __future__ import annotations

import errno

from sentry.errors import Errno
from sentry.vfs.file import MAX_RW, SeekableFile
from sentry.vfs.mount import Location

CAP_SYS_PTRACE = 19
MAX_OFFSET = (1 << 63) - 1


def _ids_match(reader, target) -> bool:
    """The target's real, effective and saved ids are all the reader's fs ids (__ptrace_may_access)."""
    r, t = reader.creds, target.creds
    uids_ok = r.fsuid == t.ruid == t.euid == t.suid
    gids_ok = r.fsgid == t.rgid == t.egid == t.sgid
    return uids_ok and gids_ok


def may_attach(reader, target_tg, *, descendants_only: bool = True) -> bool:
    """Whether task `reader` may ptrace-attach to (read the memory of) thread group `target_tg`.

    descendants_only: Yama scope 1 (mem); False is PTRACE_MODE_READ without Yama (environ).
    """
    if target_tg is reader.tg:
        return True
    if reader.creds.has_cap(CAP_SYS_PTRACE):
        return True
    target = target_tg.main_task()
    if target is None or not _ids_match(reader, target) or not getattr(target_tg, "dumpable", 1):
        return False
    if not descendants_only:
        return True
    ancestor = getattr(target_tg, "parent", None)
    while ancestor is not None:
        if ancestor is reader.tg:
            return True
        ancestor = getattr(ancestor, "parent", None)
    return False


def check_attach(reader, target_tg, *, descendants_only: bool = True) -> None:
    if not may_attach(reader, target_tg, descendants_only=descendants_only):
        raise Errno(errno.EACCES)


class MemFile(SeekableFile):
    """An open /proc/<pid>/mem: the offset is an address in the target's memory."""

    def __init__(self, loc: Location, flags: int, target_tg) -> None:
        super().__init__(loc, flags)
        self.target_tg = target_tg

    def _mm(self):
        task = self.target_tg.main_task()
        if task is None or task.mm is None:
            raise Errno(errno.EIO)
        return task.mm

    def size(self) -> int:
        return 0

    def pread(self, task, count: int, offset: int) -> bytes:
        count = min(count, MAX_RW, MAX_OFFSET - offset)
        try:
            return self._mm().copy_in(offset, count)
        except Errno:
            raise Errno(errno.EIO) from None

    def pwrite(self, task, data: bytes, offset: int) -> int:
        if not self.writable:
            raise Errno(errno.EBADF)
        try:
            self._mm().copy_out(offset, data[:MAX_RW], force=True)
        except Errno:
            raise Errno(errno.EIO) from None
        return len(data[:MAX_RW])
