"""Per-process fd tables: small ints -> (file description, close-on-exec)."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.vfs.file import FileDescription
from sentry.vfs.locks import LOCKS

if TYPE_CHECKING:
    from sentry.vfs.vfs import VFS

# RLIMIT_NOFILE's default soft limit; fds are below it.
DEFAULT_MAX_FDS = 1024


class FDTable:
    def __init__(self, max_fds: int = DEFAULT_MAX_FDS) -> None:
        self.max_fds = max_fds
        self._files: dict[int, tuple[FileDescription, bool]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_host_stdio(cls, vfs: VFS, host_fds: tuple[int, ...] = (0, 1, 2)) -> FDTable:
        """The first process's table: app fd i wraps host_fds[i] (left closed if the Sentry lacks it)."""
        table = cls()
        for fd, host_fd in enumerate(host_fds):
            loc = vfs.host_stdio.get(host_fd)
            if loc is None:
                continue
            flags = fcntl.fcntl(host_fd, fcntl.F_GETFL) & os.O_ACCMODE
            table.install_at(fd, loc.inode.open(None, loc, flags))
        return table

    def get(self, fd: int) -> FileDescription:
        """The description fd names; EBADF if none."""
        entry = self._files.get(fd)
        if entry is None:
            raise Errno(errno.EBADF)
        return entry[0]

    def get_cloexec(self, fd: int) -> bool:
        entry = self._files.get(fd)
        if entry is None:
            raise Errno(errno.EBADF)
        return entry[1]

    def set_cloexec(self, fd: int, cloexec: bool) -> None:
        with self._lock:
            entry = self._files.get(fd)
            if entry is None:
                raise Errno(errno.EBADF)
            self._files[fd] = (entry[0], cloexec)

    def install(self, file: FileDescription, *, cloexec: bool = False, lowest: int = 0) -> int:
        """Add file at the lowest free fd >= lowest; takes over the caller's reference, also on failure."""
        with self._lock:
            fd = lowest
            while fd in self._files:
                fd += 1
            if fd < self.max_fds:
                self._files[fd] = (file, cloexec)
                return fd
        file.decref()
        raise Errno(errno.EMFILE if lowest == 0 else errno.EINVAL)

    def install_at(self, fd: int, file: FileDescription, *, cloexec: bool = False) -> None:
        """dup2 semantics: replaces (and releases) whatever fd held; takes over the caller's reference."""
        if not 0 <= fd < self.max_fds:
            file.decref()
            raise Errno(errno.EBADF)
        with self._lock:
            old = self._files.get(fd)
            self._files[fd] = (file, cloexec)
        if old is not None:
            LOCKS.closed_by(self, old[0])
            old[0].decref()

    def dup(self, fd: int, *, lowest: int = 0, cloexec: bool = False) -> int:
        file = self.get(fd)
        file.incref()
        return self.install(file, cloexec=cloexec, lowest=lowest)

    def close(self, fd: int) -> None:
        with self._lock:
            entry = self._files.pop(fd, None)
        if entry is None:
            raise Errno(errno.EBADF)
        LOCKS.closed_by(self, entry[0])
        entry[0].decref()

    def fds(self) -> list[int]:
        with self._lock:
            return sorted(self._files)

    def fork(self) -> FDTable:
        """A copy for a child process: same descriptions, each with one more reference."""
        child = FDTable(self.max_fds)
        with self._lock:
            child._files = dict(self._files)
        for file, _ in child._files.values():
            file.incref()
        return child

    def on_exec(self) -> None:
        """execve closes the O_CLOEXEC fds."""
        with self._lock:
            doomed = [fd for fd, (_, cloexec) in self._files.items() if cloexec]
            files = [self._files.pop(fd)[0] for fd in doomed]
        for file in files:
            LOCKS.closed_by(self, file)
            file.decref()

    def close_all(self) -> None:
        """Process exit."""
        with self._lock:
            files = [f for f, _ in self._files.values()]
            self._files.clear()
        for file in files:
            LOCKS.closed_by(self, file)
            file.decref()
