"""Unix permission checks (owner/group/other bits, root bypass)."""

from __future__ import annotations

import errno
import stat

from sentry.errors import Errno
from sentry.vfs.stat import Stat

R_OK, W_OK, X_OK = 4, 2, 1


def may_access(st: Stat, uid: int, gid: int, groups: tuple[int, ...], want: int) -> bool:
    """Whether a caller with these ids may do `want` (R_OK|W_OK|X_OK bits) to the file."""
    if uid == 0:
        # Root may do anything except execute a file nobody can execute.
        return not (want & X_OK) or stat.S_ISDIR(st.mode) or bool(st.mode & 0o111)
    if st.uid == uid:
        bits = st.mode >> 6
    elif st.gid == gid or st.gid in groups:
        bits = st.mode >> 3
    else:
        bits = st.mode
    return (bits & 7 & want) == want


def check_access(task, st: Stat, want: int, *, real: bool = False) -> None:
    """Raise EACCES unless the task may access the file: filesystem ids, or real ids for access(2)."""
    creds = task.creds
    uid, gid = (creds.ruid, creds.rgid) if real else (creds.fsuid, creds.fsgid)
    if not may_access(st, uid, gid, tuple(creds.groups), want):
        raise Errno(errno.EACCES)
