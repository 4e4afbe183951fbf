"""Anonymous files (pipes, the host's stdio): inodes with no place in the tree.

Each still gets a Location, so fstat, /proc/*/fd links ("pipe:[7]") and
reopening through /proc/self/fd/N treat them like any other file.
"""

from __future__ import annotations

from sentry.vfs.dentry import Dentry
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Location, Mount
from sentry.vfs.stat import Stat


class AnonFilesystem(Filesystem):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.mount = Mount(self, Dentry(b"/", Inode()), source=name)

    def location(self, inode: Inode, name: bytes) -> Location:
        """A parentless dentry: its path (path_of) is just name."""
        return Location(self.mount, Dentry(name, inode))


PIPEFS = AnonFilesystem("pipefs")
HOSTFS = AnonFilesystem("host")
# eventfd, epoll: Linux's anon_inode filesystem.
ANON_INODES = AnonFilesystem("anon_inodefs")


class AnonInode(Inode):
    def __init__(self, fs: AnonFilesystem, mode: int) -> None:
        self.fs = fs
        self.ino = fs.next_ino()
        self._mode = mode

    def stat(self) -> Stat:
        return Stat(mode=self._mode, ino=self.ino, dev=self.fs.dev, blksize=4096)
