"""The Sentry's side of the gofer connection.

Task threads share one connection, so each request/response pair holds a
lock. Errors come back as OSError(errno) for the VFS to translate.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

from gofer import gofer_pb2 as pb
from gofer import wire

ROOT_NODE = 0


@dataclass(frozen=True)
class DirEntry:
    name: bytes
    ino: int
    type: int
    stat: pb.Stat


class GoferClient:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def _call(self, req: pb.Request) -> tuple[pb.Response, list[int]]:
        with self._lock:
            wire.send(self._sock, req)
            got = wire.recv(self._sock, pb.Response)
        if got is None:
            raise ConnectionError("gofer closed the connection")
        resp, fds = got
        if resp.errno:
            for fd in fds:
                os.close(fd)
            raise OSError(resp.errno, os.strerror(resp.errno))
        return resp, fds

    def walk(self, node: int, name: bytes) -> tuple[int, pb.Stat]:
        resp, _ = self._call(pb.Request(walk=pb.WalkRequest(node=node, name=name)))
        return resp.walk.node, resp.walk.stat

    def stat(self, node: int) -> pb.Stat:
        resp, _ = self._call(pb.Request(stat=pb.StatRequest(node=node)))
        return resp.stat.stat

    def open(self, node: int, flags: int) -> int:
        """Returns a host fd the caller owns."""
        resp, fds = self._call(pb.Request(open=pb.OpenRequest(node=node, flags=flags)))
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise wire.ProtocolError("open reply without exactly one fd")
        return fds[0]

    def readlink(self, node: int) -> bytes:
        resp, _ = self._call(pb.Request(readlink=pb.ReadLinkRequest(node=node)))
        return resp.readlink.target

    def readdir(self, node: int) -> list[DirEntry]:
        """The whole listing, fetched page by page."""
        entries: list[DirEntry] = []
        while True:
            req = pb.ReadDirRequest(node=node, offset=len(entries))
            resp, _ = self._call(pb.Request(readdir=req))
            entries.extend(DirEntry(e.name, e.ino, e.type, e.stat) for e in resp.readdir.entries)
            if resp.readdir.eof or not resp.readdir.entries:
                return entries

    # --- writes (a read-only gofer answers EROFS) ---------------------------------------
    def create(self, node: int, name: bytes, mode: int, uid: int, gid: int) -> tuple[int, pb.Stat]:
        req = pb.CreateRequest(node=node, name=name, mode=mode, uid=uid, gid=gid)
        resp, _ = self._call(pb.Request(create=req))
        return resp.new_node.node, resp.new_node.stat

    def mkdir(self, node: int, name: bytes, mode: int, uid: int, gid: int) -> tuple[int, pb.Stat]:
        req = pb.MkdirRequest(node=node, name=name, mode=mode, uid=uid, gid=gid)
        resp, _ = self._call(pb.Request(mkdir=req))
        return resp.new_node.node, resp.new_node.stat

    def symlink(self, node: int, name: bytes, target: bytes, uid: int, gid: int) -> tuple[int, pb.Stat]:
        req = pb.SymlinkRequest(node=node, name=name, target=target, uid=uid, gid=gid)
        resp, _ = self._call(pb.Request(symlink=req))
        return resp.new_node.node, resp.new_node.stat

    def link(self, node: int, name: bytes, target: int) -> tuple[int, pb.Stat]:
        resp, _ = self._call(pb.Request(link=pb.LinkRequest(node=node, name=name, target=target)))
        return resp.new_node.node, resp.new_node.stat

    def unlink(self, node: int, name: bytes, directory: bool = False) -> None:
        self._call(pb.Request(unlink=pb.UnlinkRequest(node=node, name=name, directory=directory)))

    def rename(self, node: int, name: bytes, new_node: int, new_name: bytes, flags: int = 0) -> None:
        req = pb.RenameRequest(node=node, name=name, new_node=new_node, new_name=new_name, flags=flags)
        self._call(pb.Request(rename=req))

    def setattr(self, node: int, **fields) -> pb.Stat:
        """fields: mode, uid+gid, size, atime_ns, mtime_ns; the node's stat after the change."""
        mask = 0
        for bit, names in (
            (1, ("mode",)),
            (2, ("uid", "gid")),
            (4, ("size",)),
            (8, ("atime_ns",)),
            (16, ("mtime_ns",)),
        ):
            if any(n in fields for n in names):
                mask |= bit
        owner = {"uid": fields.pop("uid", -1), "gid": fields.pop("gid", -1)}
        req = pb.SetAttrRequest(node=node, mask=mask, **owner, **fields)
        resp, _ = self._call(pb.Request(setattr=req))
        return resp.stat.stat

    def fsync(self, node: int) -> None:
        self._call(pb.Request(fsync=pb.FSyncRequest(node=node)))

    def statfs(self, node: int) -> pb.StatFSResponse:
        resp, _ = self._call(pb.Request(statfs=pb.StatFSRequest(node=node)))
        return resp.statfs

    def xattr(
        self, node: int, op: int, name: bytes = b"", value: bytes = b"", flags: int = 0
    ) -> pb.XattrResponse:
        """op: gofer.writes.XATTR_GET/SET/LIST/REMOVE."""
        req = pb.XattrRequest(node=node, op=op, name=name, value=value, flags=flags)
        resp, _ = self._call(pb.Request(xattr=req))
        return resp.xattr

    def close(self, nodes: list[int]) -> None:
        self._call(pb.Request(close=pb.CloseRequest(nodes=nodes)))

    def shutdown(self) -> None:
        self._sock.close()
