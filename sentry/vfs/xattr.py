"""Extended attribute rules shared by every filesystem (Linux's xattr_permission()).

Filesystems store the values (tmpfs in memory, the gofer on the host file,
the overlay in its upper layer after a copy-up); this module decides who may
see or change which namespace:
- user.*: regular files and directories only; read needs read permission,
  write needs write permission;
- trusted.*: CAP_SYS_ADMIN only (others do not even see them listed);
- security.*: readable by all, writable with CAP_SYS_ADMIN;
- system.* (POSIX ACLs) and anything else: not supported.
"""

from __future__ import annotations

import errno
import stat

from sentry.errors import Errno
from sentry.vfs.mount import Location
from sentry.vfs.permissions import R_OK, W_OK, check_access

CAP_SYS_ADMIN = 21
XATTR_CREATE, XATTR_REPLACE = 1, 2
XATTR_SIZE_MAX = 65536
NAMESPACES = (b"user.", b"trusted.", b"security.")


def _namespace(name: bytes) -> bytes:
    for ns in NAMESPACES:
        if name.startswith(ns) and len(name) > len(ns):
            return ns
    raise Errno(errno.EOPNOTSUPP)


def _user_ok(loc: Location) -> bool:
    mode = loc.inode.mode
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def check(task, loc: Location, name: bytes, *, write: bool) -> None:
    """Raise unless the task may read (write=False) or set/remove (write=True) attribute name."""
    ns = _namespace(name)
    if write and loc.mount.readonly:
        raise Errno(errno.EROFS)
    if ns == b"trusted.":
        if not task.creds.has_cap(CAP_SYS_ADMIN):
            raise Errno(errno.EPERM if write else errno.ENODATA)
    elif ns == b"security.":
        if write and not task.creds.has_cap(CAP_SYS_ADMIN):
            raise Errno(errno.EPERM)
    else:
        if not _user_ok(loc):
            raise Errno(errno.EPERM if write else errno.ENODATA)
        check_access(task, loc.inode.stat(), W_OK if write else R_OK)


def visible(task, names: list[bytes]) -> list[bytes]:
    """What listxattr shows this task."""
    admin = task.creds.has_cap(CAP_SYS_ADMIN)
    return [n for n in names if admin or not n.startswith(b"trusted.")]


def set_in(store: dict[bytes, bytes], name: bytes, value: bytes, flags: int) -> None:
    """setxattr's XATTR_CREATE/XATTR_REPLACE on an in-memory store (tmpfs)."""
    if flags & XATTR_CREATE and name in store:
        raise Errno(errno.EEXIST)
    if flags & XATTR_REPLACE and name not in store:
        raise Errno(errno.ENODATA)
    if sum(len(k) + len(v) for k, v in store.items() if k != name) + len(name) + len(value) > XATTR_SIZE_MAX:
        raise Errno(errno.ENOSPC)
    store[name] = value
