"""Ancillary data (struct cmsghdr sequences) of sendmsg/recvmsg: SCM_RIGHTS and SCM_CREDENTIALS.

Decoding takes a reference on every passed file (the message then owns
them); encoding installs received files in the receiver's fd table, and
whatever does not fit the receiver's buffer is closed and flagged MSG_CTRUNC,
as Linux does.
"""

from __future__ import annotations

import errno
import struct

from sentry.errors import Errno
from sentry.net.unix.message import Creds
from sentry.vfs.file import FileDescription

SOL_SOCKET = 1
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2
SCM_MAX_FD = 253
# net.core.optmem_max: the most control data one sendmsg may carry.
OPTMEM_MAX = 20480
MSG_CTRUNC = 0x8
_HDR = struct.Struct("<Qii")
_UCRED = struct.Struct("<iII")


def _align(n: int) -> int:
    return (n + 7) & ~7


def decode(task, control: bytes) -> tuple[list[FileDescription], Creds | None]:
    """The files (referenced) and credentials a sendmsg's control data passes."""
    rights: list[FileDescription] = []
    creds = None
    offset = 0
    try:
        while offset + _HDR.size <= len(control):
            length, level, kind = _HDR.unpack_from(control, offset)
            if length < _HDR.size or offset + length > len(control):
                raise Errno(errno.EINVAL)
            body = control[offset + _HDR.size : offset + length]
            if level != SOL_SOCKET:
                raise Errno(errno.EINVAL)
            if kind == SCM_RIGHTS:
                count = len(body) // 4
                if count + len(rights) > SCM_MAX_FD:
                    raise Errno(errno.EINVAL)
                for (fd,) in struct.iter_unpack("<i", body[: 4 * count]):
                    if fd < 0:
                        raise Errno(errno.EBADF)
                    file = task.fds.get(fd)
                    file.incref()
                    rights.append(file)
            elif kind == SCM_CREDENTIALS:
                if len(body) < _UCRED.size:
                    raise Errno(errno.EINVAL)
                creds = _checked_creds(task, Creds(*_UCRED.unpack_from(body)))
            else:
                raise Errno(errno.EINVAL)
            offset += _align(length)
    except Errno:
        for file in rights:
            file.decref()
        raise
    return rights, creds


def _checked_creds(task, creds: Creds) -> Creds:
    """Only root may claim to be someone else (Linux's scm_check_creds)."""
    c = task.creds
    if c.euid == 0:
        return creds
    if creds.pid != task.tg.pid or creds.uid not in (c.ruid, c.euid, c.suid):
        raise Errno(errno.EPERM)
    if creds.gid not in (c.rgid, c.egid, c.sgid):
        raise Errno(errno.EPERM)
    return creds


def encode(
    task, capacity: int, rights: list[FileDescription], creds: Creds | None, cloexec: bool
) -> tuple[bytes, int]:
    """(control bytes, MSG_CTRUNC or 0); takes over the references in rights."""
    out = bytearray()
    truncated = 0
    if creds is not None:
        length = _HDR.size + _UCRED.size
        if capacity - len(out) >= length:
            out += _HDR.pack(length, SOL_SOCKET, SCM_CREDENTIALS)
            out += _UCRED.pack(creds.pid, creds.uid, creds.gid)
            out += bytes(_align(length) - length)
        else:
            truncated = MSG_CTRUNC
    if rights:
        room = max(0, (capacity - len(out) - _HDR.size) // 4)
        keep, lose = rights[:room], rights[room:]
        for file in lose:
            file.decref()
        if lose:
            truncated = MSG_CTRUNC
        fds = []
        for i, file in enumerate(keep):
            try:
                fds.append(task.fds.install(file, cloexec=cloexec))
            except Errno:
                for rest in keep[i + 1 :]:
                    rest.decref()
                truncated = MSG_CTRUNC
                break
        if fds:
            length = _HDR.size + 4 * len(fds)
            out += _HDR.pack(length, SOL_SOCKET, SCM_RIGHTS) + struct.pack(f"<{len(fds)}i", *fds)
            out += bytes(_align(length) - length)
    return bytes(out[:capacity]), truncated
