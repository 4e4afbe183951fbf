"""Inodes and filesystems: what every fs implementation provides to the VFS.

An Inode is one file of one filesystem. The read-side operations are what
this issue's filesystems implement; the mutating ones (create, mkdir,
unlink, rename, symlink) default to EROFS so that a read-only filesystem
needs nothing, tmpfs overrides them, and the overlay/gofer write path of
issue 5 plugs in the same way.
"""

from __future__ import annotations

import errno
import itertools
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.vfs.dirent import DirEntry
from sentry.vfs.stat import Stat

if TYPE_CHECKING:
    from sentry.vfs.file import FileDescription
    from sentry.vfs.mount import Location

_anon_devs = itertools.count(1)


class Filesystem:
    """One mounted filesystem instance; `dev` is its st_dev."""

    name = "none"
    # Whether a dentry may remember a child between lookups. Only filesystems whose
    # every change goes through this VFS can (procfs cannot: processes come and go).
    cache_dentries = True

    def __init__(self) -> None:
        self.dev = next(_anon_devs)
        self._inos = itertools.count(1)

    def next_ino(self) -> int:
        return next(self._inos)


class Inode:
    fs: Filesystem

    def stat(self) -> Stat:
        raise NotImplementedError

    @property
    def mode(self) -> int:
        return self.stat().mode

    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    # --- directories -----------------------------------------------------------------
    def lookup(self, name: bytes) -> Inode:
        """The child called name (never '.' or '..'); ENOENT if none."""
        raise Errno(errno.ENOTDIR)

    def listdir(self) -> list[DirEntry]:
        """Children, without '.' and '..'."""
        raise Errno(errno.ENOTDIR)

    # --- symlinks --------------------------------------------------------------------
    def readlink(self, task) -> bytes:
        raise Errno(errno.EINVAL)

    def follow_link(self, task) -> Location | None:
        """For procfs "magic" links (/proc/self/fd/N): the file itself rather than a path."""
        return None

    # --- opening ---------------------------------------------------------------------
    def open(self, task, loc: Location, flags: int) -> FileDescription:
        raise Errno(errno.ENXIO)

    # --- changes (tmpfs now; the overlay's upper layer later) ------------------------
    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        raise Errno(errno.EROFS)

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        raise Errno(errno.EROFS)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        raise Errno(errno.EROFS)

    def link(self, name: bytes, target: Inode) -> None:
        raise Errno(errno.EROFS)

    def mkfifo(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        raise Errno(errno.EROFS)

    def unlink(self, name: bytes) -> None:
        raise Errno(errno.EROFS)

    def rmdir(self, name: bytes) -> None:
        raise Errno(errno.EROFS)

    def rename(self, name: bytes, new_dir: Inode, new_name: bytes) -> None:
        raise Errno(errno.EROFS)

    def truncate(self, size: int) -> None:
        raise Errno(errno.EROFS)

    def chmod(self, mode: int) -> None:
        raise Errno(errno.EROFS)

    def chown(self, uid: int, gid: int) -> None:
        """-1 leaves that id alone."""
        raise Errno(errno.EROFS)

    def set_times(self, atime_ns: int | None, mtime_ns: int | None) -> None:
        """utimensat: None leaves that time alone."""
        raise Errno(errno.EROFS)

    # --- in-memory nodes other subsystems place in the tree (bound unix sockets) ------
    def add_memory_node(self, name: bytes, make: Callable[[Filesystem], Inode]) -> None:
        """Put make(tmpfs) under name in this directory: tmpfs and the overlay root can; others EROFS."""
        raise Errno(errno.EROFS)

    def backing(self) -> Inode:
        """The inode that really holds the file (the overlay's upper or lower one); itself elsewhere."""
        return self

    # --- extended attributes (who may: sentry/vfs/xattr.py) --------------------------
    def getxattr(self, name: bytes) -> bytes:
        raise Errno(errno.ENODATA)

    def listxattr(self) -> list[bytes]:
        return []

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        """flags: XATTR_CREATE / XATTR_REPLACE."""
        raise Errno(errno.EOPNOTSUPP)

    def removexattr(self, name: bytes) -> None:
        raise Errno(errno.EOPNOTSUPP)
