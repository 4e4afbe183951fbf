"""The writable root: a tmpfs upper layer over the read-only gofer lower layer (--overlay2=root:memory).

Reads go to the lower file until something changes it; the first change
(a writable open, truncate, chmod, chown, utimes, a new or removed child)
copies the file up into the tmpfs (data, attributes, extended attributes),
parents first, and from then on the upper copy is the file. Removing a name that the lower layer has leaves a
whiteout (a name the upper directory hides); a directory made over a
whiteout, or moved over a lower directory, is opaque (its lower namesake is
never consulted). Renaming a directory that still has lower contents copies
its whole subtree up first, so the move is one tmpfs rename. Nothing ever
reaches the host: the gofer under this layer is started read-only.

st_ino is the lower file's inode number for every file that has one (copied
up or not), so `find`, `tar` and `cp -a` see stable numbers; files born in
the upper layer get tmpfs numbers offset out of the host's usual range. The
whole layer has one st_dev.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import threading
import weakref

from sentry.errors import Errno
from sentry.vfs.dirent import DirEntry, dtype_of
from sentry.vfs.file import DirectoryFile, FileDescription, SeekableFile
from sentry.vfs.fs.tmpfs import TmpDir, TmpFifo, TmpFile, TmpFilesystem, TmpInode, TmpSymlink
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Location
from sentry.vfs.stat import Stat

# Upper-only files get inode numbers above this, away from the lower layer's.
UPPER_INO_BASE = 1 << 48
# runsc sizes the memory overlay by the sandbox's memory; this is the tmpfs budget.
DEFAULT_UPPER_BUDGET = 2 << 30


class UpperDir(TmpDir):
    """A directory of the upper layer: a tmpfs directory plus the lower names it hides."""

    def __init__(self, fs: TmpFilesystem, mode: int, uid: int, gid: int, parent: TmpDir | None) -> None:
        super().__init__(fs, mode, uid, gid, parent)
        self.whiteouts: set[bytes] = set()
        self.opaque = False


class OverlayFilesystem(Filesystem):
    name = "overlay"

    def __init__(self, lower_root: Inode, budget: int = DEFAULT_UPPER_BUDGET) -> None:
        super().__init__()
        self.upper = TmpFilesystem(budget)
        # Copy-up and every change to the merged tree hold this (re-entrant: copy-up recurses to parents).
        self.lock = threading.RLock()
        # The lower inode number each copied-up file keeps.
        self._kept_inos: weakref.WeakKeyDictionary[TmpInode, int] = weakref.WeakKeyDictionary()
        st = lower_root.stat()
        upper_root = UpperDir(self.upper, stat.S_IMODE(st.mode), st.uid, st.gid, None)
        self._kept_inos[upper_root] = st.ino
        self.root = OverlayInode(self, upper_root, lower_root, None, b"/")

    def keep_ino(self, upper: TmpInode, ino: int) -> None:
        self._kept_inos[upper] = ino

    def ino_of(self, upper: TmpInode) -> int:
        return self._kept_inos.get(upper, UPPER_INO_BASE + upper.ino)


class OverlayInode(Inode):
    """One merged file: its upper inode once copied up or created there, its lower one if the host has it."""

    def __init__(
        self,
        fs: OverlayFilesystem,
        upper: TmpInode | None,
        lower: Inode | None,
        parent: OverlayInode | None,
        name: bytes,
    ) -> None:
        self.fs = fs
        self.upper = upper
        self.lower = lower
        self.parent = parent
        self.name = name
        # Merged children handed out, so that a dentry and a later lookup share one object.
        self._children: weakref.WeakValueDictionary[bytes, OverlayInode] = weakref.WeakValueDictionary()

    # --- attributes ------------------------------------------------------------------
    def stat(self) -> Stat:
        if self.upper is not None:
            return dataclasses.replace(self.upper.stat(), ino=self.fs.ino_of(self.upper), dev=self.fs.dev)
        return dataclasses.replace(self.lower.stat(), dev=self.fs.dev)

    @property
    def mode(self) -> int:
        return (self.upper or self.lower).mode

    def refresh(self, st: os.stat_result) -> Stat:
        """A lower file open for reading reports its host size and times (see GoferFile.stat)."""
        if self.upper is None:
            self.lower.refresh(st)
        return self.stat()

    # --- the merged directory --------------------------------------------------------
    def _upper_dir(self) -> UpperDir | None:
        return self.upper if isinstance(self.upper, UpperDir) else None

    def _lower_visible(self) -> bool:
        upper = self._upper_dir()
        return self.lower is not None and self.lower.is_dir() and not (upper is not None and upper.opaque)

    def _lower_child(self, name: bytes) -> Inode | None:
        if not self._lower_visible():
            return None
        try:
            return self.lower.lookup(name)
        except Errno as e:
            if e.code == errno.ENOENT:
                return None
            raise

    def lookup(self, name: bytes) -> Inode:
        if not self.is_dir():
            raise Errno(errno.ENOTDIR)
        with self.fs.lock:
            child = self._children.get(name)
            if child is not None:
                return child
            upper = self._upper_dir()
            found_upper = None
            if upper is not None:
                if name in upper.whiteouts:
                    raise Errno(errno.ENOENT)
                found_upper = upper.children.get(name)
            found_lower = None
            if found_upper is None or isinstance(found_upper, UpperDir) and not found_upper.opaque:
                found_lower = self._lower_child(name)
                if found_lower is not None and found_upper is not None and not found_lower.is_dir():
                    found_lower = None
            if found_upper is None and found_lower is None:
                raise Errno(errno.ENOENT)
            child = OverlayInode(self.fs, found_upper, found_lower, self, name)
            self._children[name] = child
            return child

    def listdir(self) -> list[DirEntry]:
        with self.fs.lock:
            merged: dict[bytes, DirEntry] = {}
            if self._lower_visible():
                merged = {e.name: e for e in self.lower.listdir()}
            upper = self._upper_dir()
            if upper is not None:
                for name in upper.whiteouts:
                    merged.pop(name, None)
                for name, child in list(upper.children.items()):
                    merged[name] = DirEntry(name, self.fs.ino_of(child), dtype_of(child.mode))
            return list(merged.values())

    def readlink(self, task) -> bytes:
        return (self.upper or self.lower).readlink(task)

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        if self.is_dir():
            return DirectoryFile(loc, flags)
        if self.upper is not None or flags & os.O_ACCMODE != os.O_RDONLY:
            return self.copy_up().open(task, loc, flags)
        inner = self.lower.open(task, loc, flags)
        if not stat.S_ISREG(self.mode):
            return inner
        return LowerFile(loc, flags, inner)

    # --- copy-up ---------------------------------------------------------------------
    def copy_up(self, with_data: bool = True) -> TmpInode:
        """The upper inode, made from the lower one (parents first) if there is none yet."""
        with self.fs.lock:
            if self.upper is not None:
                return self.upper
            parent = self.parent.copy_up()
            st = self.lower.stat()
            perms, ufs = stat.S_IMODE(st.mode), self.fs.upper
            if stat.S_ISDIR(st.mode):
                node: TmpInode = UpperDir(ufs, perms, st.uid, st.gid, parent)
            elif stat.S_ISREG(st.mode):
                node = TmpFile(ufs, perms, st.uid, st.gid)
                if with_data:
                    node.write_at(self.lower.contents(), 0)
            elif stat.S_ISLNK(st.mode):
                node = TmpSymlink(ufs, self.lower.readlink(None), st.uid, st.gid)
            elif stat.S_ISFIFO(st.mode):
                node = TmpFifo(ufs, perms, st.uid, st.gid)
            else:
                raise Errno(errno.EPERM)
            node.atime_ns, node.mtime_ns, node.ctime_ns = st.atime_ns, st.mtime_ns, st.ctime_ns
            node.xattrs = self._lower_xattrs()
            self.fs.keep_ino(node, st.ino)
            parent.add(self.name, node)
            self.upper = node
            return node

    def _lower_xattrs(self) -> dict[bytes, bytes]:
        """The lower file's extended attributes, as far as the host lets the gofer read them."""
        try:
            return {name: self.lower.getxattr(name) for name in self.lower.listxattr()}
        except Errno as e:
            if e.code in (errno.EOPNOTSUPP, errno.EACCES, errno.EPERM, errno.ENODATA):
                return {}
            raise

    def copy_up_tree(self) -> None:
        """Copy a directory and everything under it up, then stop consulting its lower layer."""
        with self.fs.lock:
            upper = self.copy_up()
            if not isinstance(upper, UpperDir) or not self._lower_visible():
                return
            for entry in self.listdir():
                child = self.lookup(entry.name)
                if child.is_dir():
                    child.copy_up_tree()
                else:
                    child.copy_up()
            upper.opaque = True

    # --- changes to this file --------------------------------------------------------
    def truncate(self, size: int) -> None:
        with self.fs.lock:
            upper = self.copy_up(with_data=size != 0 or self.upper is not None)
        upper.truncate(size)

    def chmod(self, mode: int) -> None:
        self.copy_up().chmod(mode)

    def chown(self, uid: int, gid: int) -> None:
        self.copy_up().chown(uid, gid)

    def set_times(self, atime_ns: int | None, mtime_ns: int | None) -> None:
        self.copy_up().set_times(atime_ns, mtime_ns)

    def getxattr(self, name: bytes) -> bytes:
        return (self.upper or self.lower).getxattr(name)

    def listxattr(self) -> list[bytes]:
        return (self.upper or self.lower).listxattr()

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        self.copy_up().setxattr(name, value, flags)

    def removexattr(self, name: bytes) -> None:
        self.copy_up().removexattr(name)

    # --- changes to this directory ---------------------------------------------------
    def _add(self, name: bytes, node: TmpInode) -> Inode:
        with self.fs.lock:
            upper = self.copy_up()
            hidden = name in upper.whiteouts
            upper.add(name, node)
            upper.whiteouts.discard(name)
            if hidden and isinstance(node, UpperDir):
                node.opaque = True
            self._children.pop(name, None)
            return self.lookup(name)

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self._add(name, TmpFile(self.fs.upper, mode, uid, gid))

    def add_memory_node(self, name: bytes, make) -> None:
        self._add(name, make(self.fs.upper))

    def backing(self) -> Inode:
        return self.upper or self.lower

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        with self.fs.lock:
            return self._add(name, UpperDir(self.fs.upper, mode, uid, gid, self.copy_up()))

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        return self._add(name, TmpSymlink(self.fs.upper, target, uid, gid))

    def mkfifo(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self._add(name, TmpFifo(self.fs.upper, mode, uid, gid))

    def link(self, name: bytes, target: Inode) -> None:
        if not isinstance(target, OverlayInode) or target.fs is not self.fs:
            raise Errno(errno.EXDEV)
        with self.fs.lock:
            source = target.copy_up()
            upper = self.copy_up()
            upper.link(name, source)
            upper.whiteouts.discard(name)
            self._children.pop(name, None)

    def _hide(self, name: bytes) -> None:
        """After name left the upper directory: hide the lower namesake, if any."""
        if self._lower_child(name) is not None:
            self.upper.whiteouts.add(name)
        self._children.pop(name, None)

    def unlink(self, name: bytes) -> None:
        with self.fs.lock:
            child = self.lookup(name)
            if child.is_dir():
                raise Errno(errno.EISDIR)
            upper = self.copy_up()
            if child.upper is not None:
                upper.unlink(name)
            self._hide(name)

    def rmdir(self, name: bytes) -> None:
        with self.fs.lock:
            child = self.lookup(name)
            if not child.is_dir():
                raise Errno(errno.ENOTDIR)
            if child.listdir():
                raise Errno(errno.ENOTEMPTY)
            upper = self.copy_up()
            if child.upper is not None:
                upper.rmdir(name)
            self._hide(name)

    def rename(self, name: bytes, new_dir: Inode, new_name: bytes) -> None:
        if not isinstance(new_dir, OverlayInode) or new_dir.fs is not self.fs:
            raise Errno(errno.EXDEV)
        with self.fs.lock:
            src = self.lookup(name)
            try:
                dst = new_dir.lookup(new_name)
            except Errno as e:
                if e.code != errno.ENOENT:
                    raise
                dst = None
            if dst is src:
                return
            if dst is not None:
                if src.is_dir() and not dst.is_dir():
                    raise Errno(errno.ENOTDIR)
                if dst.is_dir() and not src.is_dir():
                    raise Errno(errno.EISDIR)
                if dst.is_dir() and dst.listdir():
                    raise Errno(errno.ENOTEMPTY)
            if src.is_dir():
                src.copy_up_tree()
            else:
                src.copy_up()
            old_upper, new_upper = self.copy_up(), new_dir.copy_up()
            old_upper.rename(name, new_upper, new_name)
            new_upper.whiteouts.discard(new_name)
            if isinstance(src.upper, UpperDir) and new_dir._lower_child(new_name) is not None:
                src.upper.opaque = True
            self._hide(name)
            new_dir._children.pop(new_name, None)
            src.parent, src.name = new_dir, new_name
            new_dir._children[new_name] = src


class LowerFile(SeekableFile):
    """A read-only open of a file that was still only in the lower layer.

    It reads the lower file until someone copies the file up, then the upper
    copy, so a reader never sees stale data after another process's write (as
    Linux overlayfs since 4.19). `host_fd` is the lower file's, for mappings.
    """

    def __init__(self, loc: Location, flags: int, inner: FileDescription) -> None:
        super().__init__(loc, flags)
        self.inner = inner

    @property
    def host_fd(self):
        return self.inner.host_fd

    def _upper(self) -> TmpFile | None:
        upper = self.loc.inode.upper
        return upper if isinstance(upper, TmpFile) else None

    def pread(self, task, count: int, offset: int) -> bytes:
        upper = self._upper()
        if upper is not None:
            return upper.read_at(count, offset)
        return self.inner.pread(task, count, offset)

    def pwrite(self, task, data: bytes, offset: int) -> int:
        raise Errno(errno.EBADF)

    def stat(self) -> Stat:
        if self._upper() is not None:
            return self.loc.inode.stat()
        return self.inner.stat()

    def release(self) -> None:
        self.inner.decref()
