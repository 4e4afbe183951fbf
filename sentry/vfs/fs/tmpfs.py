"""tmpfs: a writable in-memory filesystem (/tmp, /dev/shm, and devfs's tree).

File data is a bytearray per file; the whole filesystem is held to a size
budget so a sparse pwrite far past the end fails with ENOSPC instead of
exhausting the Sentry's memory.
"""

from __future__ import annotations

import errno
import stat
import threading
import weakref

from sentry.errors import Errno
from sentry.vfs.dirent import DirEntry, dtype_of
from sentry.vfs.file import DirectoryFile, FileDescription, SeekableFile
from sentry.vfs.fs.pipe import Pipe, open_fifo
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Location
from sentry.vfs.stat import Stat, now_ns
from sentry.vfs.xattr import set_in

DEFAULT_BUDGET = 256 << 20


class TmpFilesystem(Filesystem):
    name = "tmpfs"

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        super().__init__()
        self.budget = budget
        self.used = 0
        self._lock = threading.Lock()
        # Held across a rename so that two directories change together.
        self.rename_lock = threading.Lock()

    def charge(self, delta: int) -> None:
        with self._lock:
            if delta > 0 and self.used + delta > self.budget:
                raise Errno(errno.ENOSPC)
            self.used += delta

    def new_root(self, mode: int = 0o1777) -> TmpDir:
        return TmpDir(self, mode, 0, 0, None)


class TmpInode(Inode):
    def __init__(self, fs: TmpFilesystem, mode: int, uid: int, gid: int) -> None:
        self.fs = fs
        self.ino = fs.next_ino()
        self._mode = mode
        self.uid = uid
        self.gid = gid
        self.nlink = 1
        self.rdev = 0
        self.atime_ns = self.mtime_ns = self.ctime_ns = now_ns()
        self.xattrs: dict[bytes, bytes] = {}

    def size(self) -> int:
        return 0

    def stat(self) -> Stat:
        size = self.size()
        return Stat(
            mode=self._mode, ino=self.ino, dev=self.fs.dev, nlink=self.nlink, uid=self.uid, gid=self.gid,
            rdev=self.rdev, size=size, blocks=(size + 511) // 512,
            atime_ns=self.atime_ns, mtime_ns=self.mtime_ns, ctime_ns=self.ctime_ns,
        )  # fmt: skip

    @property
    def mode(self) -> int:
        return self._mode

    def chmod(self, mode: int) -> None:
        self._mode = stat.S_IFMT(self._mode) | (mode & 0o7777)
        self.ctime_ns = now_ns()

    def chown(self, uid: int, gid: int) -> None:
        if uid != -1:
            self.uid = uid
        if gid != -1:
            self.gid = gid
        self.ctime_ns = now_ns()

    def set_times(self, atime_ns: int | None, mtime_ns: int | None) -> None:
        if atime_ns is not None:
            self.atime_ns = atime_ns
        if mtime_ns is not None:
            self.mtime_ns = mtime_ns
        self.ctime_ns = now_ns()

    def touch(self) -> None:
        self.mtime_ns = self.ctime_ns = now_ns()

    def getxattr(self, name: bytes) -> bytes:
        try:
            return self.xattrs[name]
        except KeyError:
            raise Errno(errno.ENODATA) from None

    def listxattr(self) -> list[bytes]:
        return list(self.xattrs)

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        set_in(self.xattrs, name, value, flags)
        self.ctime_ns = now_ns()

    def removexattr(self, name: bytes) -> None:
        if self.xattrs.pop(name, None) is None:
            raise Errno(errno.ENODATA)
        self.ctime_ns = now_ns()


class TmpDir(TmpInode):
    def __init__(self, fs: TmpFilesystem, mode: int, uid: int, gid: int, parent: TmpDir | None) -> None:
        super().__init__(fs, stat.S_IFDIR | mode, uid, gid)
        self.parent = parent
        self.children: dict[bytes, TmpInode] = {}
        self.nlink = 2
        self.lock = threading.Lock()

    def lookup(self, name: bytes) -> Inode:
        with self.lock:
            child = self.children.get(name)
        if child is None:
            raise Errno(errno.ENOENT)
        return child

    def listdir(self) -> list[DirEntry]:
        with self.lock:
            return [DirEntry(name, c.ino, dtype_of(c.mode)) for name, c in self.children.items()]

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return DirectoryFile(loc, flags)

    def add(self, name: bytes, child: TmpInode) -> TmpInode:
        with self.lock:
            if self.nlink == 0:
                raise Errno(errno.ENOENT)
            if name in self.children:
                raise Errno(errno.EEXIST)
            self.children[name] = child
            if isinstance(child, TmpDir):
                self.nlink += 1
        self.touch()
        return child

    def add_memory_node(self, name: bytes, make) -> None:
        self.add(name, make(self.fs))

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self.add(name, TmpFile(self.fs, mode, uid, gid))

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self.add(name, TmpDir(self.fs, mode, uid, gid, self))

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        return self.add(name, TmpSymlink(self.fs, target, uid, gid))

    def link(self, name: bytes, target: Inode) -> None:
        if isinstance(target, TmpDir):
            raise Errno(errno.EPERM)
        if not isinstance(target, TmpInode) or target.fs is not self.fs:
            raise Errno(errno.EXDEV)
        if target.nlink == 0:
            raise Errno(errno.ENOENT)
        self.add(name, target)
        target.nlink += 1
        target.ctime_ns = now_ns()

    def mkfifo(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self.add(name, TmpFifo(self.fs, mode, uid, gid))

    def unlink(self, name: bytes) -> None:
        with self.lock:
            child = self.children.get(name)
            if child is None:
                raise Errno(errno.ENOENT)
            if isinstance(child, TmpDir):
                raise Errno(errno.EISDIR)
            del self.children[name]
            child.nlink -= 1
        self.touch()

    def rmdir(self, name: bytes) -> None:
        with self.lock:
            child = self.children.get(name)
            if child is None:
                raise Errno(errno.ENOENT)
            if not isinstance(child, TmpDir):
                raise Errno(errno.ENOTDIR)
            if child.children:
                raise Errno(errno.ENOTEMPTY)
            del self.children[name]
            child.nlink = 0
            self.nlink -= 1
        self.touch()

    def rename(self, name: bytes, new_dir: Inode, new_name: bytes) -> None:
        if not isinstance(new_dir, TmpDir) or new_dir.fs is not self.fs:
            raise Errno(errno.EXDEV)
        with self.fs.rename_lock:
            child = self.children.get(name)
            if child is None:
                raise Errno(errno.ENOENT)
            if isinstance(child, TmpDir):
                ancestor: TmpDir | None = new_dir
                while ancestor is not None:
                    if ancestor is child:
                        raise Errno(errno.EINVAL)
                    ancestor = ancestor.parent
            victim = new_dir.children.get(new_name)
            if victim is child:
                return
            if victim is not None:
                if isinstance(victim, TmpDir):
                    if not isinstance(child, TmpDir):
                        raise Errno(errno.EISDIR)
                    if victim.children:
                        raise Errno(errno.ENOTEMPTY)
                    new_dir.nlink -= 1
                elif isinstance(child, TmpDir):
                    raise Errno(errno.ENOTDIR)
                victim.nlink -= 1
            del self.children[name]
            new_dir.children[new_name] = child
            if isinstance(child, TmpDir):
                self.nlink -= 1
                new_dir.nlink += 1
                child.parent = new_dir
        self.touch()
        new_dir.touch()


class TmpFile(TmpInode):
    def __init__(self, fs: TmpFilesystem, mode: int, uid: int, gid: int) -> None:
        super().__init__(fs, stat.S_IFREG | mode, uid, gid)
        self.data = bytearray()
        self.lock = threading.Lock()
        # Once unlinked and closed, the file's bytes go back to the budget.
        weakref.finalize(self, _uncharge, fs, self.data)

    def size(self) -> int:
        return len(self.data)

    def truncate(self, size: int) -> None:
        if size < 0:
            raise Errno(errno.EINVAL)
        with self.lock:
            self._resize(size)
        self.touch()

    def _resize(self, size: int) -> None:
        """Caller holds self.lock."""
        delta = size - len(self.data)
        self.fs.charge(delta)
        if delta > 0:
            self.data.extend(bytes(delta))
        else:
            del self.data[size:]

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return TmpFileDescription(loc, flags, self)

    def read_at(self, count: int, offset: int) -> bytes:
        with self.lock:
            return bytes(self.data[offset : offset + count])

    def write_at(self, data: bytes, offset: int) -> int:
        with self.lock:
            end = offset + len(data)
            if end > len(self.data):
                self._resize(end)
            self.data[offset:end] = data
        self.touch()
        return len(data)


def _uncharge(fs: TmpFilesystem, data: bytearray) -> None:
    fs.charge(-len(data))


class TmpFileDescription(SeekableFile):
    def __init__(self, loc: Location, flags: int, inode: TmpFile) -> None:
        super().__init__(loc, flags)
        self.inode = inode

    def pread(self, task, count: int, offset: int) -> bytes:
        return self.inode.read_at(count, offset)

    def pwrite(self, task, data: bytes, offset: int) -> int:
        return self.inode.write_at(data, offset)


class TmpSymlink(TmpInode):
    def __init__(self, fs: TmpFilesystem, target: bytes, uid: int, gid: int) -> None:
        super().__init__(fs, stat.S_IFLNK | 0o777, uid, gid)
        self.target = target

    def size(self) -> int:
        return len(self.target)

    def readlink(self, task) -> bytes:
        return self.target


class TmpFifo(TmpInode):
    """A named pipe: every open joins the same Pipe."""

    def __init__(self, fs: TmpFilesystem, mode: int, uid: int, gid: int) -> None:
        super().__init__(fs, stat.S_IFIFO | mode, uid, gid)
        self.pipe = Pipe()

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return open_fifo(task, loc, flags, self.pipe)
