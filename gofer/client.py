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

    def close(self, nodes: list[int]) -> None:
        self._call(pb.Request(close=pb.CloseRequest(nodes=nodes)))

    def shutdown(self) -> None:
        self._sock.close()
