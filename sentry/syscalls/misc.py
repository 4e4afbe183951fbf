"""System information and resources: uname, hostname, sysinfo, getrandom, sched_*, rlimits, priority."""

from __future__ import annotations

import errno
import os
import struct
import time
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.kernel import creds as capdefs
from sentry.kernel.kernel import UTS_RELEASE, UTS_VERSION
from sentry.kernel.threadgroup import NR_OPEN, RLIMIT_NOFILE
from sentry.syscalls.args import s32

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE = 1, 2, 4


def sys_uname(task: Task, buf: int) -> int:
    fields = ("Linux", task.kernel.hostname, UTS_RELEASE, UTS_VERSION, "x86_64", task.kernel.domainname)
    task.mm.copy_out(buf, b"".join(f.encode()[:64].ljust(65, b"\0") for f in fields))
    return 0


def _set_name(task: Task, addr: int, length: int) -> str:
    if not task.creds.has_cap(capdefs.CAP_SYS_ADMIN):
        raise Errno(errno.EPERM)
    if length > 64:
        raise Errno(errno.EINVAL)
    return task.mm.copy_in(addr, length).decode("utf-8", "replace")


def sys_sethostname(task: Task, addr: int, length: int) -> int:
    task.kernel.hostname = _set_name(task, addr, length)
    return 0


def sys_setdomainname(task: Task, addr: int, length: int) -> int:
    task.kernel.domainname = _set_name(task, addr, length)
    return 0


def sys_sysinfo(task: Task, addr: int) -> int:
    kernel = task.kernel
    uptime = int(time.monotonic() - kernel.boot_monotonic)
    total = kernel.platform.memory_file.size
    used = kernel.platform.memory_file.allocated_bytes
    # struct sysinfo: uptime, loads[3], totalram, freeram, sharedram, bufferram, totalswap, freeswap,
    # procs (u16), pad, totalhigh, freehigh, mem_unit (u32).
    data = struct.pack(
        "<q3Q6QH6xQQI", uptime, 0, 0, 0, total, total - used, 0, 0, 0, 0, len(kernel.tgs), 0, 0, 1
    )
    task.mm.copy_out(addr, data.ljust(112, b"\0"))
    return 0


def sys_getrandom(task: Task, buf: int, length: int, flags: int) -> int:
    if (
        flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)
        or flags & GRND_RANDOM
        and flags & GRND_INSECURE
    ):
        raise Errno(errno.EINVAL)
    length = min(length, 1 << 25)
    if length > 0x7FFFFFFF:
        length = 0x7FFFFFFF
    task.mm.copy_out(buf, os.urandom(length))
    return length


def sys_getcpu(task: Task, cpu: int, node: int, cache: int) -> int:
    if cpu:
        task.mm.write_u32(cpu, 0)
    if node:
        task.mm.write_u32(node, 0)
    return 0


def sys_sched_yield(task: Task) -> int:
    time.sleep(0)
    return 0


def _sched_target(task: Task, pid: int) -> object:
    pid = s32(pid)
    if pid < 0:
        raise Errno(errno.EINVAL)
    target = task if pid == 0 else task.kernel.task_by_tid(pid)
    if target is None:
        raise Errno(errno.ESRCH)
    return target


def sys_sched_getaffinity(task: Task, pid: int, size: int, mask: int) -> int:
    _sched_target(task, pid)
    if size < 8 or size & 7:
        raise Errno(errno.EINVAL)
    ncpu = os.cpu_count() or 1
    bits = (1 << ncpu) - 1
    task.mm.copy_out(mask, bits.to_bytes(8, "little"))
    return 8


def sys_sched_setaffinity(task: Task, pid: int, size: int, mask: int) -> int:
    _sched_target(task, pid)
    data = task.mm.copy_in(mask, min(size, 128))
    if not any(data[:8]):
        raise Errno(errno.EINVAL)
    return 0


def sys_sched_getparam(task: Task, pid: int, param: int) -> int:
    _sched_target(task, pid)
    task.mm.write_u32(param, 0)
    return 0


def sys_sched_setparam(task: Task, pid: int, param: int) -> int:
    _sched_target(task, pid)
    if s32(task.mm.read_u32(param)) != 0:
        raise Errno(errno.EINVAL)
    return 0


def sys_sched_getscheduler(task: Task, pid: int) -> int:
    _sched_target(task, pid)
    return 0


def sys_sched_setscheduler(task: Task, pid: int, policy: int, param: int) -> int:
    _sched_target(task, pid)
    if s32(policy) not in (0, 3, 5):
        raise Errno(errno.EINVAL if s32(policy) not in (1, 2) else errno.EPERM)
    if s32(task.mm.read_u32(param)) != 0:
        raise Errno(errno.EINVAL)
    return 0


def sys_sched_get_priority_max(task: Task, policy: int) -> int:
    policy = s32(policy)
    if policy in (1, 2):
        return 99
    if policy in (0, 3, 5):
        return 0
    raise Errno(errno.EINVAL)


def sys_sched_get_priority_min(task: Task, policy: int) -> int:
    policy = s32(policy)
    if policy in (1, 2):
        return 1
    if policy in (0, 3, 5):
        return 0
    raise Errno(errno.EINVAL)


def sys_sched_rr_get_interval(task: Task, pid: int, ts: int) -> int:
    _sched_target(task, pid)
    task.mm.copy_out(ts, struct.pack("<qq", 0, 100_000_000))
    return 0


def sys_getpriority(task: Task, which: int, who: int) -> int:
    if which & 0xFFFFFFFF > 2:
        raise Errno(errno.EINVAL)
    return 20


def sys_setpriority(task: Task, which: int, who: int, prio: int) -> int:
    if which & 0xFFFFFFFF > 2:
        raise Errno(errno.EINVAL)
    if s32(prio) < 0 and not task.creds.has_cap(capdefs.CAP_SYS_NICE):
        raise Errno(errno.EACCES)
    return 0


def sys_personality(task: Task, persona: int) -> int:
    persona &= 0xFFFFFFFF
    if persona not in (0, 0xFFFFFFFF):
        raise Errno(errno.EINVAL)
    return 0


# ---- rlimits -----------------------------------------------------------------


def _rlimit_target(task: Task, pid: int) -> ThreadGroup:
    pid = s32(pid)
    if pid < 0:
        raise Errno(errno.EINVAL)
    if pid == 0:
        return task.tg
    target = task.kernel.task_by_tid(pid)
    if target is None:
        raise Errno(errno.ESRCH)
    # Another process's limits: only with all its uids and gids being ours, or CAP_SYS_RESOURCE.
    c, t = task.creds, target.creds
    same = {t.ruid, t.euid, t.suid} == {c.ruid} and {t.rgid, t.egid, t.sgid} == {c.rgid}
    if target.tg is not task.tg and not same and not c.has_cap(capdefs.CAP_SYS_RESOURCE):
        raise Errno(errno.EPERM)
    return target.tg


def _apply(task: Task, tg: ThreadGroup, resource: int, soft: int, hard: int) -> None:
    if soft > hard:
        raise Errno(errno.EINVAL)
    if resource == RLIMIT_NOFILE and hard > NR_OPEN:  # RLIM_INFINITY too, as in Linux
        raise Errno(errno.EPERM)
    if hard > tg.rlimits[resource][1] and not task.creds.has_cap(capdefs.CAP_SYS_RESOURCE):
        raise Errno(errno.EPERM)
    tg.set_rlimit(resource, soft, hard)


def sys_prlimit64(task: Task, pid: int, resource: int, new: int, old: int) -> int:
    resource &= 0xFFFFFFFF
    if resource >= len(task.tg.rlimits):
        raise Errno(errno.EINVAL)
    tg = _rlimit_target(task, pid)
    current = tg.rlimits[resource]
    if new:
        soft, hard = struct.unpack("<QQ", task.mm.copy_in(new, 16))
        _apply(task, tg, resource, soft, hard)
    if old:
        task.mm.copy_out(old, struct.pack("<QQ", *current))
    return 0


def sys_getrlimit(task: Task, resource: int, addr: int) -> int:
    resource &= 0xFFFFFFFF
    if resource >= len(task.tg.rlimits):
        raise Errno(errno.EINVAL)
    task.mm.copy_out(addr, struct.pack("<QQ", *task.tg.rlimits[resource]))
    return 0


def sys_setrlimit(task: Task, resource: int, addr: int) -> int:
    resource &= 0xFFFFFFFF
    if resource >= len(task.tg.rlimits):
        raise Errno(errno.EINVAL)
    soft, hard = struct.unpack("<QQ", task.mm.copy_in(addr, 16))
    _apply(task, task.tg, resource, soft, hard)
    return 0


SYSLOG_ACTION_CLOSE, SYSLOG_ACTION_OPEN, SYSLOG_ACTION_READ, SYSLOG_ACTION_READ_ALL = 0, 1, 2, 3
SYSLOG_ACTION_READ_CLEAR, SYSLOG_ACTION_CLEAR, SYSLOG_ACTION_SIZE_UNREAD, SYSLOG_ACTION_SIZE_BUFFER = (
    4,
    5,
    9,
    10,
)
LOG_BUF_LEN = 1 << 17


def sys_syslog(task: Task, action: int, buf: int, length: int) -> int:
    action = s32(action)
    text = task.kernel.log.text.encode()
    if action in (SYSLOG_ACTION_CLOSE, SYSLOG_ACTION_OPEN):
        return 0
    if action in (SYSLOG_ACTION_READ, SYSLOG_ACTION_READ_ALL, SYSLOG_ACTION_READ_CLEAR):
        length = s32(length)
        if length < 0 or (length and not buf):
            raise Errno(errno.EINVAL)
        data = text[-length:] if length else b""
        task.mm.copy_out(buf, data)
        return len(data)
    if action in (SYSLOG_ACTION_CLEAR, 6, 7, 8):
        if not task.creds.has_cap(capdefs.CAP_SYS_ADMIN) and not task.creds.has_cap(capdefs.CAP_SYSLOG):
            raise Errno(errno.EPERM)
        return 0
    if action == SYSLOG_ACTION_SIZE_UNREAD:
        return len(text)
    if action == SYSLOG_ACTION_SIZE_BUFFER:
        return LOG_BUF_LEN
    raise Errno(errno.EINVAL)
