"""The gofer's request loop: serves one host directory tree, read-only or writable.

Confinement comes from never resolving a path on the host. Every node is
reached one name at a time from the root fd with openat(O_PATH|O_NOFOLLOW)
(directories keep that fd; other files are then used only relative to their
parent directory's fd, under the same name); names with '/' are refused;
'..' is answered from the node's own parent chain, so at the root it stays
at the root; a symlink is returned as a node of its own (the
Sentry reads it with ReadLink and resolves it inside the sandbox), and
walking "through" it, like through any non-directory, is ENOTDIR. Only regular files and directories are
ever opened for I/O, so host devices, FIFOs and sockets stay out of reach.
Writes (gofer.writes) keep the same rules, and a read-only server (the
overlay's lower layer) refuses every one of them with EROFS.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import stat

from gofer import gofer_pb2 as pb
from gofer import wire
from gofer.nodes import Node, stat_message
from gofer.writes import WriteOps

# Entries per ReadDir page: 256 names of at most 255 bytes fit one packet.
READDIR_PAGE = 256

_DT = {
    stat.S_IFIFO: 1,
    stat.S_IFCHR: 2,
    stat.S_IFDIR: 4,
    stat.S_IFBLK: 6,
    stat.S_IFREG: 8,
    stat.S_IFLNK: 10,
    stat.S_IFSOCK: 12,
}


def _check_name(name: bytes) -> None:
    if not name or b"/" in name or b"\0" in name or len(name) > 255:
        raise OSError(errno.EINVAL, "bad name")


class Server(WriteOps):
    """Node table and operations for one connection."""

    def __init__(self, root_fd: int, writable: bool = False) -> None:
        self.writable = writable
        root = Node(root_fd, None, b"/", os.fstat(root_fd))
        if not stat.S_ISDIR(root.st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "gofer root is not a directory")
        self._nodes: dict[int, Node] = {0: root}
        self._ids = itertools.count(1)

    def _node(self, node_id: int) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise OSError(errno.EBADF, "unknown node") from None

    def _add(self, node: Node) -> int:
        node_id = next(self._ids)
        self._nodes[node_id] = node
        return node_id

    def walk(self, req: pb.WalkRequest) -> pb.Response:
        parent = self._node(req.node)
        name = req.name
        _check_name(name)
        if name == b".":
            node = parent
        elif name == b"..":
            node = parent.parent or parent
        else:
            if parent.fd is None or not stat.S_ISDIR(parent.st.st_mode):
                raise OSError(errno.ENOTDIR, "not a directory")
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent.fd)
            st = os.fstat(fd)
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                fd = None
            node = Node(fd, parent, name, st)
        return pb.Response(walk=pb.WalkResponse(node=self._add(node), stat=stat_message(node.st)))

    def stat(self, req: pb.StatRequest) -> pb.Response:
        node = self._node(req.node)
        node.st = node.fresh_stat()
        return pb.Response(stat=pb.StatResponse(stat=stat_message(node.st)))

    def _open_host(self, node: Node, flags: int) -> int:
        """Reopen a node for I/O; refuses anything but regular files and directories.

        Only the access mode, O_TRUNC and O_APPEND of flags are honoured; creating is Create's job.
        """
        accmode = flags & os.O_ACCMODE
        writing = accmode != os.O_RDONLY or flags & (os.O_TRUNC | os.O_CREAT)
        if writing:
            self._writing()
        if accmode == os.O_ACCMODE or flags & os.O_CREAT:
            raise OSError(errno.EINVAL, "bad open flags")
        mode = node.st.st_mode
        if writing and stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, "directory")
        base = accmode | (flags & (os.O_TRUNC | os.O_APPEND))
        base |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
        if stat.S_ISDIR(mode) and node.fd is not None:
            fd = os.open(".", os.O_RDONLY | base | os.O_DIRECTORY, dir_fd=node.fd)
        elif stat.S_ISREG(mode) and node.parent is not None:
            if flags & os.O_DIRECTORY:
                raise OSError(errno.ENOTDIR, "not a directory")
            fd = os.open(node.name, base, dir_fd=node.parent.fd)
        elif stat.S_ISLNK(mode):
            raise OSError(errno.ELOOP, "symlink")
        else:
            raise OSError(errno.EPERM, "not a regular file or directory")
        st = os.fstat(fd)
        if (st.st_ino, st.st_dev) != (node.st.st_ino, node.st.st_dev):
            os.close(fd)
            raise OSError(errno.ESTALE, "file replaced on the host")
        return fd

    def readlink(self, req: pb.ReadLinkRequest) -> pb.Response:
        node = self._node(req.node)
        if node.parent is None or not stat.S_ISLNK(node.st.st_mode):
            raise OSError(errno.EINVAL, "not a symlink")
        target = os.readlink(node.name, dir_fd=node.parent.fd)
        return pb.Response(readlink=pb.ReadLinkResponse(target=target))

    def readdir(self, req: pb.ReadDirRequest) -> pb.Response:
        node = self._node(req.node)
        fd = self._open_host(node, os.O_RDONLY | os.O_DIRECTORY)
        count = min(req.count or READDIR_PAGE, READDIR_PAGE)
        entries = []
        try:
            with os.scandir(fd) as it:
                page = itertools.islice(it, req.offset, req.offset + count + 1)
                for entry in page:
                    st = entry.stat(follow_symlinks=False)
                    name = os.fsencode(entry.name)
                    dtype = _DT.get(stat.S_IFMT(st.st_mode), 0)
                    entries.append(pb.DirEntry(name=name, ino=st.st_ino, type=dtype, stat=stat_message(st)))
        finally:
            os.close(fd)
        eof = len(entries) <= count
        return pb.Response(readdir=pb.ReadDirResponse(entries=entries[:count], eof=eof))

    def close(self, req: pb.CloseRequest) -> pb.Response:
        for node_id in req.nodes:
            if node_id != 0:
                self._nodes.pop(node_id, None)
        return pb.Response(close=pb.CloseResponse())

    def handle(self, req: pb.Request) -> tuple[pb.Response, list[int]]:
        """Serve one request; errors become an errno reply, never an exception."""
        op = req.WhichOneof("op")
        try:
            if op == "open":
                fd = self._open_host(self._node(req.open.node), req.open.flags)
                return pb.Response(open=pb.OpenResponse()), [fd]
            handler = {
                "walk": self.walk,
                "stat": self.stat,
                "readlink": self.readlink,
                "readdir": self.readdir,
                "close": self.close,
                "create": self.create,
                "mkdir": self.mkdir,
                "symlink": self.symlink,
                "link": self.link,
                "unlink": self.unlink,
                "rename": self.rename,
                "setattr": self.setattr,
                "fsync": self.fsync,
                "statfs": self.statfs,
                "xattr": self.xattr,
            }.get(op)
            if handler is None:
                return pb.Response(errno=errno.ENOSYS), []
            return handler(getattr(req, op)), []
        except OSError as e:
            return pb.Response(errno=e.errno or errno.EIO), []


def serve(sock: socket.socket, root_fd: int, writable: bool = False) -> None:
    """Answer requests until the Sentry closes its end."""
    server = Server(root_fd, writable)
    while True:
        try:
            got = wire.recv(sock, pb.Request)
        except wire.ProtocolError:
            wire.send(sock, pb.Response(errno=errno.EINVAL))
            continue
        except ConnectionError:
            return
        if got is None:
            return
        req, fds = got
        for fd in fds:
            os.close(fd)
        resp, out_fds = server.handle(req)
        try:
            wire.send(sock, resp, out_fds)
        finally:
            for fd in out_fds:
                os.close(fd)
