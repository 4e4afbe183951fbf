"""The gofer-backed filesystem: the container root, served by the gofer process.

Inodes name gofer nodes; attributes are cached from the walk (nothing else
changes the tree while the sandbox runs) and replaced by the gofer's answer
to every change. Opening a regular file asks the gofer for a host fd once,
then every read and write is a plain os.pread/os.pwrite on it in the Sentry,
with no gofer round trip. Under the default overlay this filesystem is only
the read-only lower layer (its gofer refuses writes); with --overlay2=none it
is the root itself and its changes reach the host directory.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from gofer.client import ROOT_NODE, GoferClient
from gofer.gofer_pb2 import Stat as WireStat
from gofer.wire import ProtocolError
from gofer.writes import XATTR_GET, XATTR_LIST, XATTR_REMOVE, XATTR_SET
from sentry.errors import Errno
from sentry.vfs.dirent import DirEntry
from sentry.vfs.file import MAX_RW, DirectoryFile, FileDescription, SeekableFile
from sentry.vfs.hostfd import HostFd
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Location
from sentry.vfs.stat import Stat


@contextmanager
def gofer_errors() -> Iterator[None]:
    """The gofer's errnos become the app's; a gofer that went away is EIO."""
    try:
        yield
    except (ConnectionError, ProtocolError):
        raise Errno(errno.EIO) from None
    except OSError as e:
        raise Errno(e.errno or errno.EIO) from None


class GoferFilesystem(Filesystem):
    name = "9p"

    def __init__(self, client: GoferClient) -> None:
        super().__init__()
        self.client = client

    def root_inode(self) -> GoferInode:
        with gofer_errors():
            return GoferInode(self, ROOT_NODE, self.client.stat(ROOT_NODE))


def _from_wire(st: WireStat, dev: int) -> Stat:
    return Stat(
        mode=st.mode, ino=st.ino, dev=dev, nlink=st.nlink, uid=st.uid, gid=st.gid,
        rdev=st.rdev, size=st.size, blksize=st.blksize, blocks=st.blocks,
        atime_ns=st.atime_ns, mtime_ns=st.mtime_ns, ctime_ns=st.ctime_ns,
    )  # fmt: skip


class GoferInode(Inode):
    """A gofer node. Inodes learnt from a directory listing start without one: their
    attributes came with the listing, and the Walk that names them on the gofer side
    happens only if they are walked through, opened or read as a link."""

    def __init__(
        self,
        fs: GoferFilesystem,
        node: int | None,
        st: WireStat,
        parent: GoferInode | None = None,
        name: bytes = b"",
    ) -> None:
        self.fs = fs
        self._node = node
        self._parent = parent
        self._name = name
        self._stat = _from_wire(st, fs.dev)
        self._target: bytes | None = None
        # Attributes of children from the last listing, not yet looked up.
        self._listed: dict[bytes, WireStat] = {}

    @property
    def node(self) -> int:
        if self._node is None:
            with gofer_errors():
                node, st = self.fs.client.walk(self._parent.node, self._name)
            if st.ino != self._stat.ino:
                raise Errno(errno.ESTALE)
            self._node, self._parent = node, None
        return self._node

    def stat(self) -> Stat:
        return self._stat

    def refresh(self, st: os.stat_result) -> Stat:
        """Take the size and times of the host file (it may change under a read-only mount)."""
        self._stat = dataclasses.replace(
            self._stat, size=st.st_size, blocks=st.st_blocks, nlink=st.st_nlink,
            atime_ns=st.st_atime_ns, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns,
        )  # fmt: skip
        return self._stat

    def lookup(self, name: bytes) -> Inode:
        if not self.is_dir():
            raise Errno(errno.ENOTDIR)
        listed = self._listed.pop(name, None)
        if listed is not None:
            return GoferInode(self.fs, None, listed, self, name)
        with gofer_errors():
            node, st = self.fs.client.walk(self.node, name)
        return GoferInode(self.fs, node, st)

    def listdir(self) -> list[DirEntry]:
        with gofer_errors():
            entries = self.fs.client.readdir(self.node)
        self._listed = {e.name: e.stat for e in entries if e.name not in (b".", b"..")}
        return [DirEntry(e.name, e.ino, e.type) for e in entries]

    def readlink(self, task) -> bytes:
        if not self.is_symlink():
            raise Errno(errno.EINVAL)
        if self._target is None:
            with gofer_errors():
                self._target = self.fs.client.readlink(self.node)
        return self._target

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        if self.is_dir():
            return GoferDirectoryFile(loc, flags, self)
        with gofer_errors():
            host_fd = self.fs.client.open(self.node, flags & os.O_ACCMODE)
        return GoferFile(loc, flags, host_fd)

    def contents(self) -> bytes:
        """The whole file, read through a fresh host fd (the overlay's copy-up)."""
        with gofer_errors():
            fd = self.fs.client.open(self.node, os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.pread(fd, 1 << 20, sum(map(len, chunks))):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    # --- changes (--overlay2=none; a read-only gofer answers EROFS) -------------------
    def _changed(self) -> None:
        """After a change to this directory: forget the listing, take its new times and link count."""
        self._listed.clear()
        with gofer_errors():
            self._stat = _from_wire(self.fs.client.stat(self.node), self.fs.dev)

    def _child(self, made: tuple[int, WireStat]) -> GoferInode:
        self._changed()
        return GoferInode(self.fs, made[0], made[1])

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        with gofer_errors():
            return self._child(self.fs.client.create(self.node, name, mode, uid, gid))

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        with gofer_errors():
            return self._child(self.fs.client.mkdir(self.node, name, mode, uid, gid))

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        with gofer_errors():
            return self._child(self.fs.client.symlink(self.node, name, target, uid, gid))

    def link(self, name: bytes, target: Inode) -> None:
        if not isinstance(target, GoferInode) or target.fs is not self.fs:
            raise Errno(errno.EXDEV)
        with gofer_errors():
            self._child(self.fs.client.link(self.node, name, target.node))

    def mkfifo(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        # The gofer opens only regular files and directories: a host FIFO could never be used.
        raise Errno(errno.EPERM)

    def unlink(self, name: bytes) -> None:
        with gofer_errors():
            self.fs.client.unlink(self.node, name)
        self._changed()

    def rmdir(self, name: bytes) -> None:
        with gofer_errors():
            self.fs.client.unlink(self.node, name, directory=True)
        self._changed()

    def rename(self, name: bytes, new_dir: Inode, new_name: bytes) -> None:
        if not isinstance(new_dir, GoferInode) or new_dir.fs is not self.fs:
            raise Errno(errno.EXDEV)
        with gofer_errors():
            self.fs.client.rename(self.node, name, new_dir.node, new_name)
        self._changed()
        new_dir._changed()

    def _setattr(self, **fields) -> None:
        with gofer_errors():
            self._stat = _from_wire(self.fs.client.setattr(self.node, **fields), self.fs.dev)

    def truncate(self, size: int) -> None:
        if size < 0:
            raise Errno(errno.EINVAL)
        self._setattr(size=size)

    def chmod(self, mode: int) -> None:
        self._setattr(mode=mode & 0o7777)

    def chown(self, uid: int, gid: int) -> None:
        self._setattr(uid=uid, gid=gid)

    def set_times(self, atime_ns: int | None, mtime_ns: int | None) -> None:
        times = {"atime_ns": atime_ns, "mtime_ns": mtime_ns}
        self._setattr(**{k: v for k, v in times.items() if v is not None})

    def getxattr(self, name: bytes) -> bytes:
        with gofer_errors():
            return self.fs.client.xattr(self.node, XATTR_GET, name).value

    def listxattr(self) -> list[bytes]:
        if not (self.is_dir() or stat.S_ISREG(self.mode)):
            return []
        with gofer_errors():
            return list(self.fs.client.xattr(self.node, XATTR_LIST).names)

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        with gofer_errors():
            self.fs.client.xattr(self.node, XATTR_SET, name, value, flags)

    def removexattr(self, name: bytes) -> None:
        with gofer_errors():
            self.fs.client.xattr(self.node, XATTR_REMOVE, name)

    def statfs(self):
        """The host filesystem's numbers (gofer.gofer_pb2.StatFSResponse)."""
        with gofer_errors():
            return self.fs.client.statfs(self.node)


class GoferDirectoryFile(DirectoryFile):
    """A directory of the gofer root: fsync (after creating or renaming in it) reaches the host directory."""

    def __init__(self, loc: Location, flags: int, inode: GoferInode) -> None:
        super().__init__(loc, flags)
        self.inode = inode

    def fsync(self) -> None:
        with gofer_errors():
            self.inode.fs.client.fsync(self.inode.node)


class GoferFile(SeekableFile):
    """A regular file read straight from the host fd the gofer donated."""

    def __init__(self, loc: Location, flags: int, host_fd: int) -> None:
        super().__init__(loc, flags)
        self.host_fd = HostFd(host_fd)

    def pread(self, task, count: int, offset: int) -> bytes:
        with gofer_errors(), self.host_fd.use() as fd:
            return os.pread(fd, min(count, MAX_RW), offset)

    def pwrite(self, task, data: bytes, offset: int) -> int:
        if not self.writable:
            raise Errno(errno.EBADF)
        with gofer_errors(), self.host_fd.use() as fd:
            n = os.pwrite(fd, data[:MAX_RW], offset)
            # Later stat()s by path see the new size without asking the gofer.
            self.loc.inode.refresh(os.fstat(fd))
        return n

    def fsync(self) -> None:
        with gofer_errors(), self.host_fd.use() as fd:
            os.fsync(fd)

    def size(self) -> int:
        return self.stat().size

    def stat(self) -> Stat:
        """An open file's size and times come fresh from its host fd (a cheap fstat, no round trip)."""
        with self.host_fd.use() as fd:
            return self.loc.inode.refresh(os.fstat(fd))

    def release(self) -> None:
        self.host_fd.close()
