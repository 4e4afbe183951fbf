"""Unix sockets with long paths and fd passing.

State directories can be deep (`/var/run/docker/runtime-runc/moby/<64-hex-id>/`)
while sun_path holds 107 bytes, so sockets are bound and connected through
`/proc/self/fd/<dirfd>/<name>`, which is short whatever the directory.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
from collections.abc import Iterator

MAX_FDS = 16


@contextlib.contextmanager
def _short_path(path: str) -> Iterator[str]:
    dirfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{dirfd}/{os.path.basename(path)}"
    finally:
        os.close(dirfd)


def bind(path: str, kind: int = socket.SOCK_SEQPACKET) -> socket.socket:
    """A listening socket at `path` (replacing a stale one)."""
    sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    with _short_path(path) as short:
        sock.bind(short)
    os.chmod(path, 0o600)
    sock.listen(16)
    return sock


def connect(path: str, kind: int = socket.SOCK_SEQPACKET) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    try:
        with _short_path(path) as short:
            sock.connect(short)
    except OSError:
        sock.close()
        raise
    return sock


def send(sock: socket.socket, data: bytes, fds: list[int] | tuple[int, ...] = ()) -> None:
    """One message, with `fds` as SCM_RIGHTS."""
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([data], ancillary)


def recv(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    """One message and the fds that came with it (b"" at end of stream)."""
    data, ancillary, _flags, _addr = sock.recvmsg(
        size, socket.CMSG_SPACE(MAX_FDS * 4), socket.MSG_CMSG_CLOEXEC
    )
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds.extend(array.array("i", payload[:usable]))
    return data, fds
