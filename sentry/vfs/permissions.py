"""Unix permission checks with the task's credentials, as Linux's generic_permission() makes them.

Owner, group or other bits decide, then capabilities may override:
CAP_DAC_OVERRIDE grants read and write to anything and execute to anything
that some execute bit (or being a directory) allows; CAP_DAC_READ_SEARCH
grants reading files and reading/searching directories. Root is only as
powerful as its capabilities, so a root process that dropped them obeys
the mode bits like anyone else. The sticky bit and ownership rules for
chmod/chown/utimes live here too, so every filesystem shares them.
"""

from __future__ import annotations

import errno
import stat

from sentry.errors import Errno
from sentry.vfs.stat import Stat

R_OK, W_OK, X_OK = 4, 2, 1
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3


def _mode_allows(st: Stat, uid: int, gid: int, groups: tuple[int, ...], want: int) -> bool:
    if st.uid == uid:
        bits = st.mode >> 6
    elif st.gid == gid or st.gid in groups:
        bits = st.mode >> 3
    else:
        bits = st.mode
    return (bits & 7 & want) == want


def may_access(st: Stat, creds, want: int, *, real: bool = False) -> bool:
    """Whether creds (fs ids, or real ids for access(2)) may do `want` (R_OK|W_OK|X_OK bits) to the file."""
    uid, gid = (creds.ruid, creds.rgid) if real else (creds.fsuid, creds.fsgid)
    if _mode_allows(st, uid, gid, tuple(creds.groups), want):
        return True

    def has(cap: int) -> bool:
        # access(2) runs with the permitted set if the real uid is root, with none otherwise.
        return bool(creds.cap_permitted >> cap & 1) and creds.ruid == 0 if real else creds.has_cap(cap)

    is_dir = stat.S_ISDIR(st.mode)
    if has(CAP_DAC_OVERRIDE) and (not want & X_OK or is_dir or st.mode & 0o111):
        return True
    readish = R_OK | X_OK if is_dir else R_OK
    return has(CAP_DAC_READ_SEARCH) and not want & ~readish


def check_access(task, st: Stat, want: int, *, real: bool = False) -> None:
    """Raise EACCES unless the task may access the file: filesystem ids, or real ids for access(2)."""
    if not may_access(st, task.creds, want, real=real):
        raise Errno(errno.EACCES)


def is_owner(task, st: Stat) -> bool:
    """Owner of the file, or CAP_FOWNER (chmod, utimes to explicit times, sticky deletion)."""
    return task.creds.fsuid == st.uid or task.creds.has_cap(CAP_FOWNER)


def check_sticky(task, directory: Stat, victim: Stat) -> None:
    """In a sticky directory only the file's owner, the directory's owner or CAP_FOWNER may (re)move it."""
    if directory.mode & stat.S_ISVTX and task.creds.fsuid != directory.uid and not is_owner(task, victim):
        raise Errno(errno.EPERM)
