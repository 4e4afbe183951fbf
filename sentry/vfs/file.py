"""Open file descriptions (Linux's struct file): what an fd points to.

dup() and fork() share one description (offset, status flags); the last fd to
close it releases it. Subclasses implement what their kind of file supports;
the base answers each operation the way Linux does for files that lack it.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.vfs.dirent import DT_DIR, DirEntry, dtype_of
from sentry.vfs.mount import path_of
from sentry.vfs.stat import Stat
from sentry.vfs.waiter import POLLIN, POLLOUT, Waiter, WaitQueue

if TYPE_CHECKING:
    from sentry.vfs.mount import Location

# Status flags fcntl(F_SETFL) may change.
SETFL_MASK = os.O_APPEND | os.O_NONBLOCK | os.O_ASYNC | os.O_DIRECT | os.O_NOATIME
SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4
# Linux's cap on one read/write: INT_MAX rounded down to a page.
MAX_RW = 0x7FFFF000
MAX_OFFSET = (1 << 63) - 1

Packer = Callable[[DirEntry, int], bytes]


class FileDescription:
    # Readiness changes are announced here; None for files that are always ready.
    waitq: WaitQueue | None = None
    # Whether epoll accepts it: not for regular files and directories (EPERM), as in Linux.
    epollable = True
    # Files (sentry.vfs.locks keys) this description holds flock or OFD locks on; released with it.
    lock_keys: frozenset = frozenset()

    def __init__(self, loc: Location, flags: int) -> None:
        self.loc = loc
        self.flags = flags
        self.offset = 0
        self.lock = threading.Lock()
        self._refs = 1
        self._refs_lock = threading.Lock()

    # --- reference counting (fd table entries) ---------------------------------------
    def incref(self) -> None:
        with self._refs_lock:
            self._refs += 1

    def decref(self) -> None:
        with self._refs_lock:
            self._refs -= 1
            last = self._refs == 0
        if last:
            if self.lock_keys:
                from sentry.vfs.locks import LOCKS

                LOCKS.released(self)
            self.release()

    def release(self) -> None:
        """The last reference went away."""

    @property
    def released(self) -> bool:
        return self._refs == 0

    # --- access mode -----------------------------------------------------------------
    @property
    def readable(self) -> bool:
        return not self.flags & os.O_PATH and self.flags & os.O_ACCMODE != os.O_WRONLY

    @property
    def writable(self) -> bool:
        return not self.flags & os.O_PATH and self.flags & os.O_ACCMODE != os.O_RDONLY

    @property
    def nonblocking(self) -> bool:
        return bool(self.flags & os.O_NONBLOCK)

    # --- I/O -------------------------------------------------------------------------
    def read(self, task, count: int) -> bytes:
        raise Errno(errno.EINVAL)

    def write(self, task, data: bytes) -> int:
        raise Errno(errno.EINVAL)

    def pread(self, task, count: int, offset: int) -> bytes:
        raise Errno(errno.ESPIPE)

    def pwrite(self, task, data: bytes, offset: int) -> int:
        raise Errno(errno.ESPIPE)

    def seek(self, offset: int, whence: int) -> int:
        raise Errno(errno.ESPIPE)

    def fsync(self) -> None:
        """Flush to stable storage: only host files have any (in-memory files are as synced as they get)."""

    def getdents(self, task, size: int, pack: Packer) -> bytes:
        """Directory records (each from pack) filling at most size bytes."""
        raise Errno(errno.ENOTDIR)

    def ioctl(self, task, cmd: int, arg: int) -> int:
        raise Errno(errno.ENOTTY)

    def watch(self, waiter: Waiter, mask: int) -> None:
        """Have waiter woken when any of mask becomes ready (poll, select)."""
        if self.waitq is not None:
            self.waitq.register(waiter, mask)

    def unwatch(self, waiter: Waiter) -> None:
        if self.waitq is not None:
            self.waitq.unregister(waiter)

    def readiness(self, mask: int) -> int:
        """The poll events (within mask, plus errors) the file has right now."""
        return mask & (POLLIN | POLLOUT)

    def stat(self) -> Stat:
        return self.loc.inode.stat()

    @property
    def path(self) -> str:
        """Where the file is, from the sandbox root ("pipe:[3]" for anonymous ones)."""
        return os.fsdecode(path_of(self.loc))


class PathFile(FileDescription):
    """O_PATH: names a file for *at() calls and fstat; every I/O fails with EBADF."""


class SeekableFile(FileDescription):
    """A file with an offset and a size: read/write go through pread/pwrite."""

    epollable = False

    def size(self) -> int:
        return self.stat().size

    def read(self, task, count: int) -> bytes:
        with self.lock:
            data = self.pread(task, count, self.offset)
            self.offset += len(data)
        return data

    def write(self, task, data: bytes) -> int:
        with self.lock:
            if self.flags & os.O_APPEND:
                self.offset = self.size()
            n = self.pwrite(task, data, self.offset)
            self.offset += n
        return n

    def seek(self, offset: int, whence: int) -> int:
        with self.lock:
            if whence == SEEK_SET:
                new = offset
            elif whence == SEEK_CUR:
                new = self.offset + offset
            elif whence == SEEK_END:
                new = self.size() + offset
            elif whence in (SEEK_DATA, SEEK_HOLE):
                size = self.size()
                if offset < 0 or offset >= size:
                    raise Errno(errno.ENXIO)
                new = offset if whence == SEEK_DATA else size
            else:
                raise Errno(errno.EINVAL)
            if new < 0 or new > MAX_OFFSET:
                raise Errno(errno.EINVAL)
            self.offset = new
            return new


class DirectoryFile(FileDescription):
    """getdents64 over inode.listdir(), with '.' and '..' first; the offset counts entries."""

    epollable = False

    def __init__(self, loc: Location, flags: int) -> None:
        super().__init__(loc, flags)
        self._entries: list[DirEntry] | None = None

    def _snapshot(self) -> list[DirEntry]:
        if self._entries is None:
            ino = self.stat().ino
            parent = self.loc.dentry.parent
            listed = self.loc.inode.listdir()
            names = {e.name for e in listed}
            pinned = [
                DirEntry(d.name, d.inode.stat().ino, dtype_of(d.inode.mode)) for d in self.loc.dentry.pinned()
            ]
            self._entries = [
                DirEntry(b".", ino, DT_DIR),
                DirEntry(b"..", parent.inode.stat().ino if parent else ino, DT_DIR),
                *listed,
                *(e for e in pinned if e.name not in names),
            ]
        return self._entries

    def fsync(self) -> None:
        """Flush to stable storage: only host files have any (in-memory files are as synced as they get)."""

    def getdents(self, task, size: int, pack: Packer) -> bytes:
        with self.lock:
            entries = self._snapshot()
            out = bytearray()
            while self.offset < len(entries):
                record = pack(entries[self.offset], self.offset + 1)
                if len(out) + len(record) > size:
                    if not out:
                        raise Errno(errno.EINVAL)
                    break
                out += record
                self.offset += 1
            return bytes(out)

    def seek(self, offset: int, whence: int) -> int:
        with self.lock:
            if whence == SEEK_SET and offset >= 0:
                new = offset
            elif whence == SEEK_CUR and self.offset + offset >= 0:
                new = self.offset + offset
            else:
                raise Errno(errno.EINVAL)
            if new == 0:
                self._entries = None
            self.offset = new
            return new

    def read(self, task, count: int) -> bytes:
        raise Errno(errno.EISDIR)
