"""The VFS: the mount tree and path resolution, as the syscall handlers use them.

Paths are bytes, resolved one component at a time through dentries: mounts are
crossed downwards when a component lands on a mount point and upwards on '..'
at a mount's root; '..' at the task's root stays there; symlinks are expanded
here (at most 40 per lookup) against the task's root, so a link's target can
never name anything outside the sandbox's own tree.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.vfs.dentry import Dentry
from sentry.vfs.file import FileDescription, PathFile
from sentry.vfs.fs.dev import DeviceInode, not_permitted
from sentry.vfs.fs.tmpfs import TmpFile, TmpFilesystem
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Location, Mount, path_of
from sentry.vfs.permissions import R_OK, W_OK, X_OK, check_access, check_sticky

if TYPE_CHECKING:
    from sentry.vfs.fs.proc import ProcFilesystem

PATH_MAX = 4096
NAME_MAX = 255
MAX_SYMLINKS = 40
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000

# Flags that only matter while opening; the rest stay on the file description.
OPEN_ONLY_FLAGS = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_CLOEXEC


def split_path(path: bytes) -> list[bytes]:
    return [c for c in path.split(b"/") if c]


class VFS:
    def __init__(self, root_fs: Filesystem, root_inode: Inode, source: str = "none") -> None:
        mnt = Mount(root_fs, Dentry(b"/", root_inode), source=source)
        self.root = Location(mnt, mnt.root)
        self._mounts: dict[Location, Mount] = {}
        self._lock = threading.Lock()
        # Host fds the sandbox was started with (stdio), by host fd number.
        self.host_stdio: dict[int, Location] = {}
        self.procfs: ProcFilesystem | None = None
        # The character devices the Sentry emulates, by number: what a node of that number opens
        # (boot fills it from its devfs; linux.devices and mknod(2) nodes use it).
        self.devices: dict[int, Callable] = {}
        self._memfd_fs = TmpFilesystem()

    # --- mounts ----------------------------------------------------------------------
    def mount(
        self, at: Location, fs: Filesystem, root: Inode, *, readonly: bool = False, source: str = "none"
    ) -> Mount:
        mnt = Mount(fs, Dentry(b"/", root), at.mount, at.dentry, readonly, source)
        with self._lock:
            self._mounts[at] = mnt
        return mnt

    def mount_path(self, path: bytes, fs: Filesystem, root: Inode, **kw) -> Mount:
        """Mount at an absolute path during boot, pinning the directory if the root lacks it."""
        head, _, name = path.rstrip(b"/").rpartition(b"/")
        parent = self.pin_path(head, create=True)
        try:
            at = self._cross(Location(parent.mount, parent.dentry.hold(name)))
        except Errno as e:
            if e.code != errno.ENOENT:
                raise
            at = Location(parent.mount, parent.dentry.pin(name, root))
        return self.mount(at, fs, root, **kw)

    def bind(self, at: Location, src: Location, *, readonly: bool = False) -> Mount:
        """A bind mount of src (a directory or a file) on at: the same files through a new mount."""
        parts: list[bytes] = []
        dentry = src.dentry
        while dentry is not src.mount.root and dentry.parent is not None:
            parts.append(dentry.name)
            dentry = dentry.parent
        inner = os.fsdecode(b"/".join(reversed(parts)))
        root_path = src.mount.root_path.rstrip("/") + "/" + inner if inner else src.mount.root_path
        mnt = Mount(
            src.mount.fs, src.dentry, at.mount, at.dentry, readonly, src.mount.source,
            src.mount.flags, src.mount.data, root_path,
        )  # fmt: skip
        with self._lock:
            self._mounts[at] = mnt
        return mnt

    def pin_path(self, path: bytes, *, create: bool = False) -> Location:
        """An absolute path, its last component not followed, each dentry on the way held so that a mount on
        it stays there (procfs otherwise makes new dentries at every lookup). create: missing components are
        made as root's 0755 directories first, as runc makes mount points."""
        loc = self.root
        names = split_path(path)
        for i, name in enumerate(names):
            if name in (b".", b".."):
                loc = loc if name == b"." else self.parent_of(loc, self.root)
                continue
            if create and not self._exists(loc, name):
                loc.inode.mkdir(name, 0o755, 0, 0)
                loc.dentry.forget(name)
            child = self._cross(Location(loc.mount, loc.dentry.hold(name)))
            if child.inode.is_symlink() and i + 1 < len(names):
                child = self.resolve(None, loc, name)
            loc = child
        return loc

    def _exists(self, loc: Location, name: bytes) -> bool:
        try:
            loc.dentry.lookup(name)
        except Errno as e:
            if e.code != errno.ENOENT:
                raise
            return False
        return True

    def restack(self, mnt: Mount) -> None:
        """Move mnt to the end of the mount table, as if mounted now: the order mountinfo lists."""
        with self._lock:
            at = next(at for at, m in self._mounts.items() if m is mnt)
            self._mounts[at] = self._mounts.pop(at)

    def detach(self, mnt: Mount) -> None:
        """Take mnt out of the tree (its open files keep working, as after a lazy umount)."""
        with self._lock:
            at = Location(mnt.parent, mnt.mountpoint)
            if self._mounts.get(at) is mnt:
                del self._mounts[at]

    def mounts(self) -> list[Mount]:
        with self._lock:
            return [self.root.mount, *self._mounts.values()]

    def mounted_at(self, loc: Location) -> Mount | None:
        with self._lock:
            return self._mounts.get(loc)

    # --- walking ---------------------------------------------------------------------
    def step(self, loc: Location, name: bytes) -> Location:
        """The child named name of directory loc, entering any mount on it."""
        if len(name) > NAME_MAX:
            raise Errno(errno.ENAMETOOLONG)
        return self._cross(Location(loc.mount, loc.dentry.lookup(name)))

    def _cross(self, loc: Location) -> Location:
        """loc, or the root of the topmost mount stacked on it."""
        while (mnt := self.mounted_at(loc)) is not None:
            loc = Location(mnt, mnt.root)
        return loc

    def parent_of(self, loc: Location, root: Location) -> Location:
        while loc != root and loc.dentry is loc.mount.root and loc.mount.parent is not None:
            loc = Location(loc.mount.parent, loc.mount.mountpoint)
        if loc == root or loc.dentry.parent is None:
            return loc
        return Location(loc.mount, loc.dentry.parent)

    def _root_of(self, task) -> Location:
        return self.root if task is None else task.fs.root

    def resolve(self, task, start: Location, path: bytes, *, follow: bool = True) -> Location:
        """Resolve path (relative to start unless absolute) to an existing file.

        follow: whether a symlink in the last component is followed. A trailing
        slash requires a directory and always follows.
        """
        if not path:
            raise Errno(errno.ENOENT)
        if len(path) >= PATH_MAX:
            raise Errno(errno.ENAMETOOLONG)
        root = self._root_of(task)
        loc = root if path.startswith(b"/") else start
        follow = follow or path.endswith(b"/")
        pending = deque(split_path(path))
        links = 0
        while pending:
            name = pending.popleft()
            if not loc.inode.is_dir():
                raise Errno(errno.ENOTDIR)
            if task is not None:
                check_access(task, loc.inode.stat(), X_OK)
            if name == b".":
                continue
            if name == b"..":
                loc = self.parent_of(loc, root)
                continue
            child = self.step(loc, name)
            if child.inode.is_symlink() and (pending or follow):
                links += 1
                if links > MAX_SYMLINKS:
                    raise Errno(errno.ELOOP)
                magic = child.inode.follow_link(task)
                if magic is not None:
                    loc = magic
                    continue
                target = child.inode.readlink(task)
                if not target:
                    raise Errno(errno.ENOENT)
                if target.startswith(b"/"):
                    loc = root
                pending.extendleft(reversed(split_path(target)))
                continue
            loc = child
        if path.endswith(b"/") and not loc.inode.is_dir():
            raise Errno(errno.ENOTDIR)
        return loc

    def resolve_parent(self, task, start: Location, path: bytes) -> tuple[Location, bytes]:
        """The directory that would hold path's last component, and that component."""
        if not path:
            raise Errno(errno.ENOENT)
        if len(path) >= PATH_MAX:
            raise Errno(errno.ENAMETOOLONG)
        stripped = path.rstrip(b"/")
        if not stripped:
            return self._root_of(task), b"."
        head, _, name = stripped.rpartition(b"/")
        if not head:
            parent = self._root_of(task) if stripped.startswith(b"/") else start
        else:
            parent = self.resolve(task, start, head + b"/")
        if not parent.inode.is_dir():
            raise Errno(errno.ENOTDIR)
        return parent, name

    def start_for(self, task, dirfd: int, path: bytes) -> Location:
        """Where a *at() call's relative path starts: the cwd, or the directory dirfd names."""
        if path.startswith(b"/"):
            return task.fs.root
        if dirfd == AT_FDCWD:
            return task.fs.cwd
        return task.fds.get(dirfd).loc

    def open_executable(
        self, task, path: bytes, dirfd: int = AT_FDCWD, flags: int = 0
    ) -> tuple[FileDescription, str]:
        """execve/execveat's open: an X-permitted regular file, and its absolute path (for /proc/self/exe)."""
        if not path and flags & AT_EMPTY_PATH:
            loc = task.fds.get(dirfd).loc
        else:
            start = self.start_for(task, dirfd, path)
            loc = self.resolve(task, start, path, follow=not flags & AT_SYMLINK_NOFOLLOW)
        st = loc.inode.stat()
        if stat.S_ISLNK(st.mode):
            raise Errno(errno.ELOOP)
        if not stat.S_ISREG(st.mode) or "noexec" in loc.mount.flags:
            raise Errno(errno.EACCES)
        check_access(task, st, X_OK)
        file = loc.inode.open(task, loc, os.O_RDONLY)
        return file, os.fsdecode(path_of(loc, task.fs.root))

    def memfd(self, task, label: bytes) -> FileDescription:
        """memfd_create: a tmpfs file in no directory, named like Linux's ("/memfd:x (deleted)")."""
        inode = TmpFile(self._memfd_fs, 0o777, task.creds.fsuid, task.creds.fsgid)
        inode.nlink = 0
        mnt = Mount(self._memfd_fs, Dentry(b"/", inode), source="memfd")
        loc = Location(mnt, Dentry(b"/memfd:" + label + b" (deleted)", inode))
        return inode.open(task, loc, os.O_RDWR)

    # --- opening ---------------------------------------------------------------------
    def open(self, task, start: Location, path: bytes, flags: int, mode: int) -> FileDescription:
        """openat(2) minus the fd: resolution, O_CREAT/O_EXCL/O_TRUNC, permission checks."""
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise Errno(errno.EOPNOTSUPP)
        if flags & os.O_DIRECT:
            # As tmpfs: no filesystem here can bypass a page cache it does not have.
            raise Errno(errno.EINVAL)
        follow = not flags & (os.O_NOFOLLOW | os.O_EXCL)
        if flags & os.O_CREAT:
            if flags & os.O_DIRECTORY:
                raise Errno(errno.EINVAL)
            loc = self._open_create(task, start, path, flags, mode)
        else:
            loc = self.resolve(task, start, path, follow=follow)
        inode = loc.inode
        st = inode.stat()
        if flags & os.O_PATH:
            return PathFile(loc, flags & (os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW))
        if stat.S_ISLNK(st.mode):
            raise Errno(errno.ELOOP)
        if flags & os.O_DIRECTORY and not stat.S_ISDIR(st.mode):
            raise Errno(errno.ENOTDIR)
        accmode = flags & os.O_ACCMODE
        if accmode == os.O_ACCMODE:
            raise Errno(errno.EINVAL)
        writing = accmode != os.O_RDONLY or flags & os.O_TRUNC
        if stat.S_ISDIR(st.mode) and writing:
            raise Errno(errno.EISDIR)
        want = (R_OK if accmode != os.O_WRONLY else 0) | (W_OK if writing else 0)
        check_access(task, st, want)
        if writing and loc.mount.readonly and stat.S_ISREG(st.mode):
            raise Errno(errno.EROFS)
        if flags & os.O_TRUNC and stat.S_ISREG(st.mode):
            inode.truncate(0)
        return inode.open(task, loc, flags & ~OPEN_ONLY_FLAGS)

    def _open_create(self, task, start: Location, path: bytes, flags: int, mode: int) -> Location:
        if path.endswith(b"/"):
            raise Errno(errno.EISDIR)
        try:
            loc = self.resolve(task, start, path, follow=not flags & (os.O_NOFOLLOW | os.O_EXCL))
        except Errno as e:
            if e.code != errno.ENOENT:
                raise
        else:
            if flags & os.O_EXCL:
                raise Errno(errno.EEXIST)
            return loc
        parent, name = self.resolve_parent(task, start, path)
        return self.create(task, parent, name, stat.S_IFREG | (mode & 0o7777 & ~task.fs.umask))

    # --- changing the tree -----------------------------------------------------------
    def occupant(self, parent: Location, name: bytes) -> Location | None:
        """What name in parent is, about to be replaced (None when missing); EBUSY when a mount sits on it."""
        try:
            loc = self.step(parent, name)
        except Errno as e:
            if e.code != errno.ENOENT:
                raise
            return None
        if loc.dentry is loc.mount.root:
            raise Errno(errno.EBUSY)
        return loc

    def _writable_dir(self, task, parent: Location) -> None:
        if parent.mount.readonly:
            raise Errno(errno.EROFS)
        check_access(task, parent.inode.stat(), W_OK | X_OK)

    def _must_not_exist(self, parent: Location, name: bytes) -> None:
        """EEXIST comes before EROFS/EACCES, as in Linux."""
        if name in (b".", b".."):
            raise Errno(errno.EEXIST)
        try:
            self.step(parent, name)
        except Errno as e:
            if e.code == errno.ENOENT:
                return
            raise
        raise Errno(errno.EEXIST)

    def create(self, task, parent: Location, name: bytes, mode: int) -> Location:
        """A new file (S_IFREG) or directory (S_IFDIR) called name in parent."""
        if len(name) > NAME_MAX:
            raise Errno(errno.ENAMETOOLONG)
        self._must_not_exist(parent, name)
        self._writable_dir(task, parent)
        creds = task.creds
        if stat.S_ISDIR(mode):
            parent.inode.mkdir(name, mode & 0o7777, creds.fsuid, creds.fsgid)
        else:
            parent.inode.create(name, mode & 0o7777, creds.fsuid, creds.fsgid)
        parent.dentry.forget(name)
        return self.step(parent, name)

    def symlink(self, task, parent: Location, name: bytes, target: bytes) -> None:
        if len(name) > NAME_MAX:
            raise Errno(errno.ENAMETOOLONG)
        self._must_not_exist(parent, name)
        self._writable_dir(task, parent)
        parent.inode.symlink(name, target, task.creds.fsuid, task.creds.fsgid)
        parent.dentry.forget(name)

    def link(self, task, target: Location, parent: Location, name: bytes) -> None:
        """A hard link to target called name in parent."""
        if len(name) > NAME_MAX:
            raise Errno(errno.ENAMETOOLONG)
        if target.mount is not parent.mount:
            raise Errno(errno.EXDEV)
        self._must_not_exist(parent, name)
        self._writable_dir(task, parent)
        parent.inode.link(name, target.inode)
        parent.dentry.forget(name)

    def mkfifo(self, task, parent: Location, name: bytes, mode: int) -> None:
        if len(name) > NAME_MAX:
            raise Errno(errno.ENAMETOOLONG)
        self._must_not_exist(parent, name)
        self._writable_dir(task, parent)
        parent.inode.mkfifo(name, mode & 0o7777, task.creds.fsuid, task.creds.fsgid)
        parent.dentry.forget(name)

    def mknod(self, task, parent: Location, name: bytes, mode: int, rdev: int) -> None:
        """A character or block node: a Sentry device where it emulates that number, else one that opens
        with EPERM. Only in-memory directories hold them: a host device node is never made."""
        if len(name) > NAME_MAX:
            raise Errno(errno.ENAMETOOLONG)
        self._must_not_exist(parent, name)
        self._writable_dir(task, parent)
        kind = stat.S_IFMT(mode)
        opener = self.devices.get(rdev, not_permitted) if kind == stat.S_IFCHR else not_permitted
        uid, gid = task.creds.fsuid, task.creds.fsgid

        def make(fs: TmpFilesystem) -> DeviceInode:
            major, minor = os.major(rdev), os.minor(rdev)
            return DeviceInode(fs, major, minor, opener, kind=kind, mode=mode & 0o7777, uid=uid, gid=gid)

        try:
            parent.inode.add_memory_node(name, make)
        except Errno as e:
            raise Errno(errno.EPERM if e.code == errno.EROFS else e.code) from None
        parent.dentry.forget(name)

    def remove(self, task, parent: Location, name: bytes, *, directory: bool) -> None:
        """unlink(2) or rmdir(2) of name in parent."""
        if name == b".":
            raise Errno(errno.EINVAL if directory else errno.EISDIR)
        if name == b"..":
            raise Errno(errno.ENOTEMPTY if directory else errno.EISDIR)
        victim = self.step(parent, name)
        if victim.dentry is victim.mount.root:
            raise Errno(errno.EBUSY)
        self._writable_dir(task, parent)
        check_sticky(task, parent.inode.stat(), victim.inode.stat())
        if directory:
            parent.inode.rmdir(name)
        else:
            parent.inode.unlink(name)
        parent.dentry.forget(name)

    def rename(self, task, old: Location, old_name: bytes, new: Location, new_name: bytes) -> None:
        if old.mount is not new.mount:
            raise Errno(errno.EXDEV)
        if {old_name, new_name} & {b".", b".."}:
            raise Errno(errno.EBUSY)
        moving = self.step(old, old_name)
        if moving.dentry is moving.mount.root:
            raise Errno(errno.EBUSY)
        self._writable_dir(task, old)
        self._writable_dir(task, new)
        check_sticky(task, old.inode.stat(), moving.inode.stat())
        replaced = self.occupant(new, new_name)
        if replaced is not None:
            check_sticky(task, new.inode.stat(), replaced.inode.stat())
        old.inode.rename(old_name, new.inode, new_name)
        old.dentry.move(old_name, new.dentry, new_name)
