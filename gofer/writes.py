"""The gofer's mutating operations: create, mkdir, (sym)link, unlink, rename, setattr, statfs, xattrs.

They keep the walk's confinement rule: every host call names a file as
(directory fd, one name) with no symlink followed in that name, or through
the node's own fd; names are single components that are not "." or "..".
Attribute changes on regular files go through an fd re-opened with
O_NOFOLLOW and re-checked by inode number, so swapping a symlink in on the
host between walk and change changes nothing outside the root. Set-user-ID
and set-group-ID bits are never set on host files: with the gofer running as
root they would hand the sandbox a way to make host setuid programs.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from gofer import gofer_pb2 as pb
from gofer.nodes import Node, stat_message

SETATTR_MODE, SETATTR_OWNER, SETATTR_SIZE, SETATTR_ATIME, SETATTR_MTIME = 1, 2, 4, 8, 16
XATTR_GET, XATTR_SET, XATTR_LIST, XATTR_REMOVE = 0, 1, 2, 3
RENAME_NOREPLACE = 1
V9FS_MAGIC = 0x01021997
# Host file modes the sandbox may set: no setuid/setgid (see the module docstring).
HOST_MODE_MASK = 0o1777
_PROC_FD = "/proc/self/fd"


def check_new_name(name: bytes) -> None:
    """A name a write may create or remove: one component, never "." or ".."."""
    if not name or b"/" in name or b"\0" in name or len(name) > 255 or name in (b".", b".."):
        raise OSError(errno.EINVAL, "bad name")


def _dir_fd(node: Node) -> int:
    if node.fd is None or not stat.S_ISDIR(node.st.st_mode):
        raise OSError(errno.ENOTDIR, "not a directory")
    return node.fd


def _where(node: Node) -> tuple[int, bytes]:
    """(dir fd, name) naming the node without following a link: a directory is "." of its own fd."""
    if node.fd is not None:
        return node.fd, b"."
    if node.parent is None or node.parent.fd is None:
        raise OSError(errno.ESTALE, "node has no parent")
    return node.parent.fd, node.name


def _same_file(fd: int, node: Node) -> None:
    st = os.fstat(fd)
    if (st.st_ino, st.st_dev) != (node.st.st_ino, node.st.st_dev):
        os.close(fd)
        raise OSError(errno.ESTALE, "file replaced on the host")


@contextmanager
def file_handle(node: Node) -> Iterator[int | str]:
    """Something os.chmod/os.*xattr accept that names exactly this node (never a symlink).

    A read-only fd when the gofer may open the file; otherwise the /proc/self/fd
    path of an O_PATH fd (which reaches the inode itself, as the kernel does for
    fchmodat on O_PATH fds).
    """
    if stat.S_ISLNK(node.st.st_mode):
        raise OSError(errno.EOPNOTSUPP, "symlink")
    dir_fd, name = _where(node)
    base = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
    try:
        fd = os.open(name, os.O_RDONLY | base, dir_fd=dir_fd)
        as_path = False
    except PermissionError:
        if not os.path.isdir(_PROC_FD):
            raise
        fd = os.open(name, os.O_PATH | base, dir_fd=dir_fd)
        as_path = True
    _same_file(fd, node)
    try:
        yield f"{_PROC_FD}/{fd}" if as_path else fd
    finally:
        os.close(fd)


def _own(dir_fd: int, name: bytes, uid: int, gid: int) -> None:
    """Give a new file the sandbox's ids; only a gofer with CAP_CHOWN can (in a user namespace,
    for ids its map names), otherwise it stays the gofer's."""
    try:
        os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EINVAL):
            raise


class WriteOps:
    """Mixed into gofer.server.Server; `_node`, `_add`, `_nodes` and `writable` come from there."""

    writable: bool

    def _writing(self) -> None:
        if not self.writable:
            raise OSError(errno.EROFS, "read-only")

    def _new_node(self, parent: Node, name: bytes) -> pb.Response:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=_dir_fd(parent))
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            os.close(fd)
            fd = None
        node = Node(fd, parent, name, st)
        return pb.Response(new_node=pb.NewNodeResponse(node=self._add(node), stat=stat_message(st)))

    def create(self, req: pb.CreateRequest) -> pb.Response:
        self._writing()
        parent = self._node(req.node)
        check_new_name(req.name)
        dir_fd = _dir_fd(parent)
        flags = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK
        os.close(os.open(req.name, flags, req.mode & HOST_MODE_MASK, dir_fd=dir_fd))
        _own(dir_fd, req.name, req.uid, req.gid)
        return self._new_node(parent, req.name)

    def mkdir(self, req: pb.MkdirRequest) -> pb.Response:
        self._writing()
        parent = self._node(req.node)
        check_new_name(req.name)
        dir_fd = _dir_fd(parent)
        os.mkdir(req.name, req.mode & HOST_MODE_MASK, dir_fd=dir_fd)
        _own(dir_fd, req.name, req.uid, req.gid)
        return self._new_node(parent, req.name)

    def symlink(self, req: pb.SymlinkRequest) -> pb.Response:
        self._writing()
        parent = self._node(req.node)
        check_new_name(req.name)
        if not req.target or b"\0" in req.target or len(req.target) >= 4096:
            raise OSError(errno.EINVAL, "bad symlink target")
        dir_fd = _dir_fd(parent)
        os.symlink(req.target, req.name, dir_fd=dir_fd)
        _own(dir_fd, req.name, req.uid, req.gid)
        return self._new_node(parent, req.name)

    def link(self, req: pb.LinkRequest) -> pb.Response:
        self._writing()
        parent = self._node(req.node)
        target = self._node(req.target)
        check_new_name(req.name)
        if stat.S_ISDIR(target.st.st_mode) or target.parent is None:
            raise OSError(errno.EPERM, "hard link to a directory")
        os.link(
            target.name,
            req.name,
            src_dir_fd=_dir_fd(target.parent),
            dst_dir_fd=_dir_fd(parent),
            follow_symlinks=False,
        )
        return self._new_node(parent, req.name)

    def unlink(self, req: pb.UnlinkRequest) -> pb.Response:
        self._writing()
        parent = self._node(req.node)
        check_new_name(req.name)
        if req.directory:
            os.rmdir(req.name, dir_fd=_dir_fd(parent))
        else:
            os.unlink(req.name, dir_fd=_dir_fd(parent))
        self._orphan(parent, req.name)
        return pb.Response(empty=pb.EmptyResponse())

    def _orphan(self, parent: Node, name: bytes) -> None:
        """Nodes named (parent, name) no longer have that name: later operations on them are ESTALE."""
        for node in list(self._nodes.values()):
            if node.parent is parent and node.name == name and node.fd is None:
                node.parent = None

    def rename(self, req: pb.RenameRequest) -> pb.Response:
        self._writing()
        old, new = self._node(req.node), self._node(req.new_node)
        check_new_name(req.name)
        check_new_name(req.new_name)
        if req.flags & ~RENAME_NOREPLACE:
            raise OSError(errno.EINVAL, "unsupported rename flags")
        old_fd, new_fd = _dir_fd(old), _dir_fd(new)
        if req.flags & RENAME_NOREPLACE:
            try:
                os.stat(req.new_name, dir_fd=new_fd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                raise OSError(errno.EEXIST, "target exists")
        os.rename(req.name, req.new_name, src_dir_fd=old_fd, dst_dir_fd=new_fd)
        self._orphan(new, req.new_name)
        # Nodes named through the old place now live at the new one.
        for node in list(self._nodes.values()):
            if node.parent is old and node.name == req.name:
                node.parent, node.name = new, req.new_name
        return pb.Response(empty=pb.EmptyResponse())

    def setattr(self, req: pb.SetAttrRequest) -> pb.Response:
        self._writing()
        node = self._node(req.node)
        dir_fd, name = _where(node)
        if req.mask & SETATTR_SIZE:
            if not stat.S_ISREG(node.st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
            try:
                _same_file(fd, node)
                os.ftruncate(fd, req.size)
            finally:
                os.close(fd)
        if req.mask & SETATTR_OWNER:
            os.chown(name, req.uid, req.gid, dir_fd=dir_fd, follow_symlinks=False)
        if req.mask & SETATTR_MODE:
            with file_handle(node) as handle:
                os.chmod(handle, req.mode & HOST_MODE_MASK)
        if req.mask & (SETATTR_ATIME | SETATTR_MTIME):
            cur = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            atime = req.atime_ns if req.mask & SETATTR_ATIME else cur.st_atime_ns
            mtime = req.mtime_ns if req.mask & SETATTR_MTIME else cur.st_mtime_ns
            os.utime(name, ns=(atime, mtime), dir_fd=dir_fd, follow_symlinks=False)
        node.st = node.fresh_stat()
        return pb.Response(stat=pb.StatResponse(stat=stat_message(node.st)))

    def fsync(self, req: pb.FSyncRequest) -> pb.Response:
        node = self._node(req.node)
        if stat.S_ISREG(node.st.st_mode) or stat.S_ISDIR(node.st.st_mode):
            with file_handle(node) as handle:
                if isinstance(handle, int):
                    os.fsync(handle)
        return pb.Response(empty=pb.EmptyResponse())

    def statfs(self, req: pb.StatFSRequest) -> pb.Response:
        st = os.fstatvfs(_where(self._node(req.node))[0])
        return pb.Response(
            statfs=pb.StatFSResponse(
                type=V9FS_MAGIC,
                bsize=st.f_bsize,
                blocks=st.f_blocks,
                bfree=st.f_bfree,
                bavail=st.f_bavail,
                files=st.f_files,
                ffree=st.f_ffree,
                namelen=st.f_namemax,
            )  # fmt: skip
        )

    def xattr(self, req: pb.XattrRequest) -> pb.Response:
        node = self._node(req.node)
        if req.op != XATTR_LIST and (not req.name or b"\0" in req.name or len(req.name) > 255):
            raise OSError(errno.ERANGE, "bad attribute name")
        with file_handle(node) as handle:
            if req.op == XATTR_GET:
                return pb.Response(xattr=pb.XattrResponse(value=os.getxattr(handle, req.name)))
            if req.op == XATTR_LIST:
                names = [os.fsencode(n) for n in os.listxattr(handle)]
                return pb.Response(xattr=pb.XattrResponse(names=names))
            self._writing()
            if req.op == XATTR_SET:
                os.setxattr(handle, req.name, req.value, req.flags & 3)
            elif req.op == XATTR_REMOVE:
                os.removexattr(handle, req.name)
            else:
                raise OSError(errno.EINVAL, "unknown xattr op")
        return pb.Response(xattr=pb.XattrResponse())
