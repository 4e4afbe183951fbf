"""Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise, msync, mincore, mlock*."""

from __future__ import annotations

import errno
import logging
import threading
from typing import TYPE_CHECKING, Any

from sentry.errors import Errno
from sentry.mm.mm import PAGE_MASK, page_up
from sentry.mm.vma import PROT_EXEC, PROT_READ, PROT_WRITE
from sentry.syscalls.args import s32

if TYPE_CHECKING:
    from sentry.kernel.task import Task

log = logging.getLogger(__name__)

MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE = 1, 2, 3
MAP_FIXED, MAP_ANONYMOUS, MAP_32BIT, MAP_GROWSDOWN = 0x10, 0x20, 0x40, 0x100
MAP_DENYWRITE, MAP_EXECUTABLE, MAP_LOCKED, MAP_NORESERVE = 0x800, 0x1000, 0x2000, 0x4000
MAP_POPULATE, MAP_NONBLOCK, MAP_STACK, MAP_HUGETLB, MAP_SYNC = 0x8000, 0x10000, 0x20000, 0x40000, 0x80000
MAP_FIXED_NOREPLACE = 0x100000
MAP_KNOWN = (
    MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_32BIT
    | MAP_GROWSDOWN
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_FIXED_NOREPLACE
)
PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC
PROT_GROWSDOWN, PROT_GROWSUP = 0x01000000, 0x02000000
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
MADV_DONTNEED, MADV_FREE, MADV_REMOVE = 4, 8, 9
MADV_KNOWN = {0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 100, 101}


class FileBacking:
    """A file description's contents for a private mapping, read at fault time.

    Holds a reference on the description while any VMA maps it (the app may
    close its fd right after mmap, as ld.so does).
    """

    def __init__(self, task: Task, file: Any) -> None:
        self.task = task
        self.file = file
        st = file.stat()
        self.dev, self.ino = st.dev, st.ino
        self.name = file.path
        self._users = 0
        self._lock = threading.Lock()

    def read(self, offset: int, size: int) -> bytes:
        try:
            return self.file.pread(self.task, size, offset)
        except Errno:
            return b""

    def write(self, offset: int, data: bytes) -> None:
        """Write back, never growing the file (the mapping's last page may reach past its end)."""
        try:
            size = self.file.stat().size
            if offset < size:
                self.file.pwrite(self.task, data[: size - offset], offset)
        except Errno:
            log.warning("write-back of %s at %#x failed", self.name, offset)

    def attach(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1:
                self.file.incref()

    def detach(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users:
                return
        self.file.decref()


def sys_brk(task: Task, addr: int) -> int:
    return task.mm.set_brk(addr)


def sys_mmap(task: Task, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    prot &= 0xFFFFFFFF
    flags &= 0xFFFFFFFF
    mm = task.mm
    if not length or length > mm.max_addr:
        raise Errno(errno.EINVAL)
    if offset & PAGE_MASK or prot & ~PROT_ALL:
        raise Errno(errno.EINVAL)
    kind = flags & 3
    if kind == MAP_SHARED_VALIDATE:
        if flags & ~(MAP_KNOWN | 3 | MAP_SYNC):
            raise Errno(errno.EOPNOTSUPP)
        if flags & MAP_SYNC:
            raise Errno(errno.EOPNOTSUPP)
        kind = MAP_SHARED
    elif kind == 0:
        raise Errno(errno.EINVAL)
    if flags & MAP_HUGETLB:
        raise Errno(errno.EINVAL)
    fixed = bool(flags & MAP_FIXED)
    noreplace = bool(flags & MAP_FIXED_NOREPLACE) and not fixed
    if (fixed or noreplace) and addr & PAGE_MASK:
        raise Errno(errno.EINVAL)
    length = page_up(length)
    if offset + length >= 1 << 63:
        raise Errno(errno.EOVERFLOW)
    shared = kind == MAP_SHARED
    writeback = False
    backing = None
    max_prot = PROT_ALL
    name = ""
    if not flags & MAP_ANONYMOUS:
        file = task.fds.get(s32(fd))
        if not file.readable:
            raise Errno(errno.EACCES)
        if shared and prot & PROT_WRITE and not file.writable:
            raise Errno(errno.EACCES)
        if shared and not file.writable:
            max_prot = PROT_READ | PROT_EXEC
        stat = file.stat()
        if (stat.mode & 0o170000) not in (0o100000, 0o020000):
            raise Errno(errno.ENODEV)
        backing = FileBacking(task, file)
        # Shared file mappings are private copies written back to the file (see MM._write_back).
        writeback = shared and file.writable
        shared = False
    elif shared:
        offset = 0
    return mm.map(
        addr,
        length,
        prot,
        fixed=fixed,
        noreplace=noreplace,
        shared=shared,
        backing=backing,
        offset=offset,
        name=name,
        growsdown=bool(flags & MAP_GROWSDOWN),
        max_prot=max_prot,
        writeback=writeback,
    )


def _range(task: Task, addr: int, length: int) -> tuple[int, int]:
    if addr & PAGE_MASK:
        raise Errno(errno.EINVAL)
    length = page_up(length)
    if addr + length > task.mm.max_addr or length >= 1 << 63:
        raise Errno(errno.EINVAL if addr + length >= 1 << 64 else errno.ENOMEM)
    return addr, length


def sys_munmap(task: Task, addr: int, length: int) -> int:
    if not length:
        raise Errno(errno.EINVAL)
    addr, length = _range(task, addr, length)
    task.mm.unmap(addr, length)
    return 0


def sys_mprotect(task: Task, addr: int, length: int, prot: int) -> int:
    prot &= 0xFFFFFFFF
    if prot & ~(PROT_ALL | PROT_GROWSDOWN | PROT_GROWSUP) or prot & PROT_GROWSDOWN and prot & PROT_GROWSUP:
        raise Errno(errno.EINVAL)
    addr, length = _range(task, addr, length)
    if not length:
        return 0
    task.mm.protect(addr, length, prot & PROT_ALL)
    return 0


def sys_mremap(task: Task, old: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
    flags &= 0xFFFFFFFF
    if flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) or old & PAGE_MASK:
        raise Errno(errno.EINVAL)
    if flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE or flags & MREMAP_DONTUNMAP:
        raise Errno(errno.EINVAL)
    if not new_len or page_up(new_len) >= task.mm.max_addr or page_up(old_len) >= task.mm.max_addr:
        raise Errno(errno.EINVAL)
    fixed = new_addr if flags & MREMAP_FIXED else None
    return task.mm.remap(old, old_len, new_len, bool(flags & MREMAP_MAYMOVE), fixed)


def sys_madvise(task: Task, addr: int, length: int, advice: int) -> int:
    advice = s32(advice)
    if advice not in MADV_KNOWN or addr & PAGE_MASK:
        raise Errno(errno.EINVAL)
    if not length:
        return 0
    addr, length = _range(task, addr, length)
    if advice in (MADV_DONTNEED, MADV_FREE, MADV_REMOVE):
        task.mm.discard(addr, length)
    elif not task.mm.range_mapped(addr, addr + length):
        raise Errno(errno.ENOMEM)
    return 0


def sys_msync(task: Task, addr: int, length: int, flags: int) -> int:
    if flags & ~7 or flags & 5 == 5 or addr & PAGE_MASK:
        raise Errno(errno.EINVAL)
    addr, length = _range(task, addr, length)
    if not task.mm.range_mapped(addr, addr + length):
        raise Errno(errno.ENOMEM)
    task.mm.sync(addr, addr + length)
    return 0


def sys_mincore(task: Task, addr: int, length: int, vec: int) -> int:
    if addr & PAGE_MASK:
        raise Errno(errno.EINVAL)
    addr, length = _range(task, addr, length)
    task.mm.copy_out(vec, task.mm.resident(addr, length))
    return 0


def _lock_range(task: Task, addr: int, length: int) -> int:
    start = addr & ~PAGE_MASK
    end = page_up(addr + length)
    if end > task.mm.max_addr:
        raise Errno(errno.ENOMEM)
    if not task.mm.range_mapped(start, end):
        raise Errno(errno.ENOMEM)
    return 0


def sys_mlock(task: Task, addr: int, length: int) -> int:
    return _lock_range(task, addr, length)


def sys_munlock(task: Task, addr: int, length: int) -> int:
    return _lock_range(task, addr, length)


def sys_mlock2(task: Task, addr: int, length: int, flags: int) -> int:
    if flags & ~1:
        raise Errno(errno.EINVAL)
    return _lock_range(task, addr, length)


def sys_mlockall(task: Task, flags: int) -> int:
    if not flags or flags & ~7 or flags == 4:
        raise Errno(errno.EINVAL)
    return 0


def sys_munlockall(task: Task) -> int:
    return 0
