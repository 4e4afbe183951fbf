"""Credential syscalls: uids, gids, supplementary groups, capabilities."""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.kernel.creds import ALL_CAPS, CAP_LAST_CAP, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, Credentials

if TYPE_CHECKING:
    from sentry.kernel.task import Task

NO_ID = 0xFFFFFFFF
NGROUPS_MAX = 65536
CAP_V1, CAP_V2, CAP_V3 = 0x19980330, 0x20071026, 0x20080522


def sys_getuid(task: Task) -> int:
    return task.creds.ruid


def sys_geteuid(task: Task) -> int:
    return task.creds.euid


def sys_getgid(task: Task) -> int:
    return task.creds.rgid


def sys_getegid(task: Task) -> int:
    return task.creds.egid


def sys_getresuid(task: Task, r: int, e: int, s: int) -> int:
    c = task.creds
    for addr, value in ((r, c.ruid), (e, c.euid), (s, c.suid)):
        task.mm.write_u32(addr, value)
    return 0


def sys_getresgid(task: Task, r: int, e: int, s: int) -> int:
    c = task.creds
    for addr, value in ((r, c.rgid), (e, c.egid), (s, c.sgid)):
        task.mm.write_u32(addr, value)
    return 0


def _setres(task: Task, kind: str, r: int, e: int, s: int, cap: int) -> int:
    c = task.creds
    cur = (getattr(c, "r" + kind), getattr(c, "e" + kind), getattr(c, "s" + kind))
    new = []
    for value, old in zip((r & NO_ID, e & NO_ID, s & NO_ID), cur, strict=True):
        if value == NO_ID:
            new.append(old)
            continue
        if not c.has_cap(cap) and value not in cur:
            raise Errno(errno.EPERM)
        new.append(value)
    changes = {"r" + kind: new[0], "e" + kind: new[1], "s" + kind: new[2], "fs" + kind: new[1]}
    creds = c.replace(**changes)
    if kind == "uid":
        creds = _setuid_caps(c, creds)
    task.creds = creds
    return 0


def _setuid_caps(old: Credentials, new: Credentials) -> Credentials:
    """Linux's capability rules for a uid change (cap_emulate_setxuid): losing every root uid drops
    the ambient set, and the permitted and effective ones unless keep_caps; euid leaving 0 drops the
    effective set, euid becoming 0 restores it from the permitted set."""
    if 0 in (old.ruid, old.euid, old.suid) and 0 not in (new.ruid, new.euid, new.suid):
        new = new.replace(cap_ambient=0)
        if not new.keep_caps:
            new = new.replace(cap_permitted=0, cap_effective=0)
    if old.euid == 0 and new.euid != 0:
        new = new.replace(cap_effective=0)
    elif old.euid != 0 and new.euid == 0:
        new = new.replace(cap_effective=new.cap_permitted)
    return new


def sys_setresuid(task: Task, r: int, e: int, s: int) -> int:
    return _setres(task, "uid", r, e, s, CAP_SETUID)


def sys_setresgid(task: Task, r: int, e: int, s: int) -> int:
    return _setres(task, "gid", r, e, s, CAP_SETGID)


def _set_one(task: Task, kind: str, value: int, cap: int) -> int:
    """setuid/setgid: with cap all three ids become value, without it only the effective one."""
    value &= NO_ID
    if value == NO_ID:
        raise Errno(errno.EINVAL)
    if task.creds.has_cap(cap):
        return _setres(task, kind, value, value, value, cap)
    return _setres(task, kind, NO_ID, value, NO_ID, cap)


def sys_setuid(task: Task, uid: int) -> int:
    return _set_one(task, "uid", uid, CAP_SETUID)


def sys_setgid(task: Task, gid: int) -> int:
    return _set_one(task, "gid", gid, CAP_SETGID)


def sys_setreuid(task: Task, r: int, e: int) -> int:
    return _setres(task, "uid", r, e, NO_ID, CAP_SETUID)


def sys_setregid(task: Task, r: int, e: int) -> int:
    return _setres(task, "gid", r, e, NO_ID, CAP_SETGID)


def sys_setfsuid(task: Task, uid: int) -> int:
    c = task.creds
    old = c.fsuid
    uid &= NO_ID
    if uid != NO_ID and (c.has_cap(CAP_SETUID) or uid in (c.ruid, c.euid, c.suid, c.fsuid)):
        task.creds = c.replace(fsuid=uid)
    return old


def sys_setfsgid(task: Task, gid: int) -> int:
    c = task.creds
    old = c.fsgid
    gid &= NO_ID
    if gid != NO_ID and (c.has_cap(CAP_SETGID) or gid in (c.rgid, c.egid, c.sgid, c.fsgid)):
        task.creds = c.replace(fsgid=gid)
    return old


def sys_getgroups(task: Task, size: int, addr: int) -> int:
    groups = task.creds.groups
    size = size & 0xFFFFFFFF
    if size >= 1 << 31:
        raise Errno(errno.EINVAL)
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise Errno(errno.EINVAL)
    task.mm.copy_out(addr, struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


def sys_setgroups(task: Task, size: int, addr: int) -> int:
    size &= 0xFFFFFFFF
    if size > NGROUPS_MAX:
        raise Errno(errno.EINVAL)
    if not task.creds.has_cap(CAP_SETGID):
        raise Errno(errno.EPERM)
    groups = struct.unpack(f"<{size}I", task.mm.copy_in(addr, 4 * size)) if size else ()
    task.creds = task.creds.replace(groups=tuple(sorted(set(groups))))
    return 0


def _cap_header(task: Task, hdr: int) -> tuple[int, int]:
    version, pid = struct.unpack("<Ii", task.mm.copy_in(hdr, 8))
    if version not in (CAP_V1, CAP_V2, CAP_V3):
        task.mm.write_u32(hdr, CAP_V3)
        raise Errno(errno.EINVAL)
    return version, pid


def sys_capget(task: Task, hdr: int, data: int) -> int:
    version, pid = _cap_header(task, hdr)
    target = task if pid == 0 else task.kernel.task_by_tid(pid)
    if target is None or pid < 0:
        raise Errno(errno.ESRCH)
    if not data:
        return 0
    c = target.creds
    words = 1 if version == CAP_V1 else 2
    out = b""
    for i in range(words):
        out += struct.pack(
            "<III",
            c.cap_effective >> 32 * i & NO_ID,
            c.cap_permitted >> 32 * i & NO_ID,
            c.cap_inheritable >> 32 * i & NO_ID,
        )
    task.mm.copy_out(data, out)
    return 0


def sys_capset(task: Task, hdr: int, data: int) -> int:
    version, pid = _cap_header(task, hdr)
    if pid not in (0, task.tid):
        raise Errno(errno.EPERM)
    words = 1 if version == CAP_V1 else 2
    raw = task.mm.copy_in(data, 12 * words)
    eff = perm = inh = 0
    for i in range(words):
        e, p, h = struct.unpack_from("<III", raw, 12 * i)
        eff |= e << 32 * i
        perm |= p << 32 * i
        inh |= h << 32 * i
    c = task.creds
    if perm & ~c.cap_permitted or eff & ~perm:
        raise Errno(errno.EPERM)
    if inh & ~(c.cap_inheritable | c.cap_permitted) and not c.has_cap(CAP_SETPCAP):
        raise Errno(errno.EPERM)
    if inh & ~(c.cap_inheritable | c.cap_bounding):  # even CAP_SETPCAP adds none outside the bounding set
        raise Errno(errno.EPERM)
    task.creds = c.replace(
        cap_effective=eff & ALL_CAPS, cap_permitted=perm & ALL_CAPS, cap_inheritable=inh & ALL_CAPS
    ).with_ambient(c.cap_ambient)
    return 0


PR_GET_KEEPCAPS, PR_SET_KEEPCAPS, PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_CAP_AMBIENT = 7, 8, 23, 24, 47
CAP_PRCTL_OPTIONS = (PR_GET_KEEPCAPS, PR_SET_KEEPCAPS, PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_CAP_AMBIENT)
PR_CAP_AMBIENT_IS_SET, PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_LOWER, PR_CAP_AMBIENT_CLEAR_ALL = 1, 2, 3, 4


def prctl_caps(task: Task, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    """prctl's keep-caps, bounding-set and ambient-set options, with Linux's checks (kernel/sys.c,
    commoncap.c)."""
    c = task.creds
    if option == PR_GET_KEEPCAPS:
        return int(c.keep_caps)
    if option == PR_SET_KEEPCAPS:
        if arg2 not in (0, 1):
            raise Errno(errno.EINVAL)
        task.creds = c.replace(keep_caps=bool(arg2))
        return 0
    if option == PR_CAPBSET_READ:
        if not 0 <= arg2 <= CAP_LAST_CAP:
            raise Errno(errno.EINVAL)
        return c.cap_bounding >> arg2 & 1
    if option == PR_CAPBSET_DROP:
        if not 0 <= arg2 <= CAP_LAST_CAP:
            raise Errno(errno.EINVAL)
        if not c.has_cap(CAP_SETPCAP):
            raise Errno(errno.EPERM)
        task.creds = c.replace(cap_bounding=c.cap_bounding & ~(1 << arg2))
        return 0
    if arg2 == PR_CAP_AMBIENT_CLEAR_ALL:
        if arg3 or arg4 or arg5:
            raise Errno(errno.EINVAL)
        task.creds = c.replace(cap_ambient=0)
        return 0
    if not 0 <= arg3 <= CAP_LAST_CAP or arg4 or arg5:
        raise Errno(errno.EINVAL)
    bit = 1 << arg3
    if arg2 == PR_CAP_AMBIENT_IS_SET:
        return int(bool(c.cap_ambient & bit))
    if arg2 == PR_CAP_AMBIENT_RAISE:
        if not c.cap_permitted & c.cap_inheritable & bit:
            raise Errno(errno.EPERM)
        task.creds = c.replace(cap_ambient=c.cap_ambient | bit)
        return 0
    if arg2 == PR_CAP_AMBIENT_LOWER:
        task.creds = c.replace(cap_ambient=c.cap_ambient & ~bit)
        return 0
    raise Errno(errno.EINVAL)
