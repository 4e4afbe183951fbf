"""Where bound AF_UNIX sockets are found: abstract names per sandbox, path names as socket inodes.

An abstract name lives as long as its socket. A path name is an S_IFSOCK
inode (a memory node: tmpfs directories and the overlay root take them) that
refers to the socket until the socket closes
(then connecting to it is ECONNREFUSED, like a stale socket file on Linux);
unlinking the inode makes the socket unreachable without closing it.
"""

from __future__ import annotations

import errno
import stat
import threading
import weakref
from typing import TYPE_CHECKING, Any

from sentry.errors import Errno
from sentry.vfs.fs.tmpfs import TmpFilesystem, TmpInode
from sentry.vfs.mount import Location
from sentry.vfs.permissions import W_OK, X_OK, check_access
from sentry.vfs.vfs import AT_FDCWD

if TYPE_CHECKING:
    from sentry.vfs.file import FileDescription

_LOCK = threading.Lock()
# kernel -> abstract name -> socket. One namespace per sandbox.
_ABSTRACT: weakref.WeakKeyDictionary[Any, dict[bytes, FileDescription]] = weakref.WeakKeyDictionary()


class SocketNode(TmpInode):
    """The inode bind() leaves at a path; `socket` is None once that socket closed."""

    def __init__(self, fs: TmpFilesystem, mode: int, uid: int, gid: int, socket: FileDescription) -> None:
        super().__init__(fs, stat.S_IFSOCK | mode, uid, gid)
        self.socket: FileDescription | None = socket


class Binding:
    """What unbind() undoes when the socket closes."""

    def __init__(self, kernel: Any, name: bytes, node: SocketNode | None) -> None:
        self.kernel = kernel
        self.name = name
        self.node = node

    def unbind(self) -> None:
        if self.node is not None:
            self.node.socket = None
            return
        with _LOCK:
            names = _ABSTRACT.get(self.kernel, {})
            names.pop(self.name, None)


def bind_abstract(kernel: Any, name: bytes, socket: FileDescription) -> Binding:
    with _LOCK:
        names = _ABSTRACT.setdefault(kernel, {})
        if name in names:
            raise Errno(errno.EADDRINUSE)
        names[name] = socket
    return Binding(kernel, name, None)


def autobind_name(kernel: Any) -> bytes:
    """A free abstract name of five hex digits, as Linux's autobind picks."""
    with _LOCK:
        names = _ABSTRACT.get(kernel, {})
        for n in range(1 << 20):
            name = b"\0%05x" % n
            if name not in names:
                return name
    raise Errno(errno.EADDRINUSE)


def _parent(task, path: bytes) -> tuple[Location, bytes]:
    vfs = task.kernel.vfs
    return vfs.resolve_parent(task, vfs.start_for(task, AT_FDCWD, path), path)


def _exists(task, parent: Location, name: bytes) -> bool:
    try:
        task.kernel.vfs.step(parent, name)
    except Errno as e:
        if e.code != errno.ENOENT:
            raise
        return False
    return True


def path_in_use(task, path: bytes) -> bool:
    """Whether something exists at path (bind would be EADDRINUSE)."""
    parent, name = _parent(task, path)
    return name in (b".", b"..") or _exists(task, parent, name)


def bind_path(task, path: bytes, socket: FileDescription) -> Binding:
    """Create the socket inode at path (mode 0777 less the umask); EADDRINUSE if path exists."""
    parent, name = _parent(task, path)
    if path.endswith(b"/") or name in (b".", b".."):
        raise Errno(errno.EADDRINUSE if name in (b".", b"..") else errno.EINVAL)
    if _exists(task, parent, name):
        raise Errno(errno.EADDRINUSE)
    if parent.mount.readonly:
        raise Errno(errno.EROFS)
    check_access(task, parent.inode.stat(), W_OK | X_OK)
    creds = task.creds
    made: list[SocketNode] = []

    def make(fs: TmpFilesystem) -> SocketNode:
        made.append(SocketNode(fs, 0o777 & ~task.fs.umask, creds.fsuid, creds.fsgid, socket))
        return made[0]

    try:
        # tmpfs and the overlay root hold memory nodes; other directories answer EROFS.
        parent.inode.add_memory_node(name, make)
    except Errno as e:
        raise Errno(errno.EADDRINUSE) if e.code == errno.EEXIST else e from None
    parent.dentry.forget(name)
    return Binding(task.kernel, path, made[0])


def lookup(task, name: bytes) -> FileDescription:
    """The live socket bound to name; ECONNREFUSED if none (ENOENT etc. for a missing path)."""
    if name[:1] == b"\0":
        with _LOCK:
            found = _ABSTRACT.get(task.kernel, {}).get(name)
        if found is None:
            raise Errno(errno.ECONNREFUSED)
        return found
    vfs = task.kernel.vfs
    loc = vfs.resolve(task, vfs.start_for(task, AT_FDCWD, name), name, follow=True)
    inode = loc.inode.backing()  # the overlay's upper inode, where bind put it
    if not isinstance(inode, SocketNode):
        raise Errno(errno.ECONNREFUSED)
    check_access(task, inode.stat(), W_OK)
    if inode.socket is None:
        raise Errno(errno.ECONNREFUSED)
    return inode.socket
