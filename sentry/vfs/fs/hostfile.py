"""A bind mount of one host file (Docker's /etc/hosts, /etc/resolv.conf, /etc/hostname).

The sandbox process opens the file while it boots, before it is confined, and
keeps that one fd for the sandbox's life: the app reads and (unless the mount
is read-only) writes the host file through it, as with runc's bind mount, and
no other host path becomes reachable. Reads and writes are the gofer's file
descriptions over a dup of the fd; attributes come fresh from fstat.
"""

from __future__ import annotations

import errno
import os

from sentry.errors import Errno
from sentry.vfs.file import FileDescription
from sentry.vfs.fs.gofer import GoferFile
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Location
from sentry.vfs.stat import Stat


class HostFileFilesystem(Filesystem):
    # Shown as the gofer's bind mounts are: host files served to the sandbox.
    name = "9p"


class HostFileInode(Inode):
    """The one host file, open as host_fd (O_RDWR when writable, else O_RDONLY)."""

    def __init__(self, fs: HostFileFilesystem, host_fd: int, *, writable: bool) -> None:
        self.fs = fs
        self.host_fd = host_fd
        self.writable = writable

    def stat(self) -> Stat:
        return self.refresh(os.fstat(self.host_fd))

    def refresh(self, st: os.stat_result) -> Stat:
        return Stat(
            mode=st.st_mode, ino=st.st_ino, dev=self.fs.dev, nlink=st.st_nlink, uid=st.st_uid, gid=st.st_gid,
            size=st.st_size, blksize=st.st_blksize, blocks=st.st_blocks,
            atime_ns=st.st_atime_ns, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns,
        )  # fmt: skip

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        if flags & os.O_ACCMODE != os.O_RDONLY and not self.writable:
            raise Errno(errno.EROFS)
        return GoferFile(loc, flags, os.dup(self.host_fd))

    def truncate(self, size: int) -> None:
        if not self.writable:
            raise Errno(errno.EROFS)
        os.ftruncate(self.host_fd, size)
