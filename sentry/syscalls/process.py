"""Process lifecycle syscalls: clone/fork/vfork, execve, exit, wait, ids, process groups, sessions."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.kernel import clone as clone_mod
from sentry.kernel import exec as exec_mod
from sentry.kernel import exit as exit_mod
from sentry.kernel import signals as sig
from sentry.kernel.threadgroup import ProcessGroup, Session
from sentry.syscalls.args import s32
from sentry.syscalls.creds import CAP_PRCTL_OPTIONS, prctl_caps

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
ARCH_GET_CPUID, ARCH_SET_CPUID = 0x1011, 0x1012
WNOHANG, WUNTRACED, WSTOPPED, WEXITED, WCONTINUED, WNOWAIT = 1, 2, 2, 4, 8, 0x01000000
WNOTHREAD, WALL, WCLONE = 0x20000000, 0x40000000, 0x80000000
P_ALL, P_PID, P_PGID, P_PIDFD = 0, 1, 2, 3


def sys_clone(task: Task, flags: int, stack: int, parent_tid: int, child_tid: int, tls: int) -> int:
    return clone_mod.clone(task, flags, stack, parent_tid, child_tid, tls)


def sys_fork(task: Task) -> int:
    return clone_mod.clone(task, sig.SIGCHLD, 0, 0, 0, 0)


def sys_vfork(task: Task) -> int:
    return clone_mod.clone(task, clone_mod.CLONE_VM | clone_mod.CLONE_VFORK | sig.SIGCHLD, 0, 0, 0, 0)


def _string_array(task: Task, addr: int) -> list[bytes]:
    out: list[bytes] = []
    if not addr:
        return out
    total = 0
    while True:
        ptr = task.mm.read_u64(addr + 8 * len(out))
        if not ptr:
            return out
        s = task.mm.read_cstring(ptr, 32 * 4096)
        total += len(s) + 9
        if total > 2 << 20:
            raise Errno(errno.E2BIG)
        out.append(s)


def sys_execve(task: Task, path: int, argv: int, envp: int) -> int:
    filename = task.mm.read_cstring(path)
    if not filename:
        raise Errno(errno.ENOENT)
    return exec_mod.execve(task, filename, _string_array(task, argv), _string_array(task, envp))


def sys_execveat(task: Task, dirfd: int, path: int, argv: int, envp: int, flags: int) -> int:
    if flags & ~(0x1000 | 0x100):
        raise Errno(errno.EINVAL)
    filename = task.mm.read_cstring(path)
    if not filename and not flags & 0x1000:
        raise Errno(errno.ENOENT)
    return exec_mod.execve(
        task, filename, _string_array(task, argv), _string_array(task, envp), s32(dirfd), flags
    )


def sys_exit(task: Task, code: int) -> int:
    task.exit_code = exit_mod.exit_status(code)
    task.killed = True
    return 0


def sys_exit_group(task: Task, code: int) -> int:
    exit_mod.group_exit(task.tg, exit_mod.exit_status(code))
    return 0


# ---- wait ------------------------------------------------------------------


def _matches(task: Task, child: ThreadGroup, idtype: int, ident: int, options: int) -> bool:
    if idtype == P_PID and child.pid != ident:
        return False
    if idtype == P_PGID and child.pgid() != ident:
        return False
    if options & WALL:
        return True
    is_clone = child.exit_signal != sig.SIGCHLD
    return is_clone == bool(options & WCLONE)


def _waitable(task: Task, idtype: int, ident: int, options: int) -> tuple[ThreadGroup, str] | None | bool:
    """A child with something to report (child, what), None if some child may later, False if none can."""
    kernel = task.kernel
    with kernel.lock:
        any_child = False
        for child in task.tg.children:
            if not _matches(task, child, idtype, ident, options):
                continue
            any_child = True
            if child.zombie and not child.reaped and options & WEXITED and not child.threads:
                return child, "exit"
            if options & WSTOPPED and child.stopped_report and child.stopping:
                return child, "stop"
            if options & WCONTINUED and child.continued_report:
                return child, "cont"
        return None if any_child else False


def _wait(task: Task, idtype: int, ident: int, options: int) -> tuple[ThreadGroup, str] | None:
    found = _waitable(task, idtype, ident, options)
    if found is False:
        raise Errno(errno.ECHILD)
    if found is None and options & WNOHANG:
        return None

    def ready() -> tuple[ThreadGroup, str] | bool | None:
        result = _waitable(task, idtype, ident, options)
        return result if result is not None else None

    found = task.block_on(task.tg.child_wait, ready) if found is None else found
    if found is False:
        raise Errno(errno.ECHILD)
    return found


def _consume(task: Task, child: ThreadGroup, what: str, options: int) -> int:
    """Take the reported event; returns its wait status."""
    kernel = task.kernel
    with kernel.lock:
        if what == "exit":
            status = child.exit_status
            if not options & WNOWAIT:
                exit_mod.reap(child)
        elif what == "stop":
            status = (child.stop_signal << 8) | 0x7F
            if not options & WNOWAIT:
                child.stopped_report = False
        else:
            status = 0xFFFF
            if not options & WNOWAIT:
                child.continued_report = False
    return status


def sys_wait4(task: Task, pid: int, status_addr: int, options: int, rusage: int) -> int:
    pid = s32(pid)
    options &= 0xFFFFFFFF
    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE):
        raise Errno(errno.EINVAL)
    if pid == -(1 << 31):
        raise Errno(errno.ESRCH)
    if pid < -1:
        idtype, ident = P_PGID, -pid
    elif pid == -1:
        idtype, ident = P_ALL, 0
    elif pid == 0:
        idtype, ident = P_PGID, task.tg.pgid()
    else:
        idtype, ident = P_PID, pid
    found = _wait(task, idtype, ident, options | WEXITED)
    if found is None:
        return 0
    child, what = found
    if rusage:
        task.mm.copy_out(rusage, bytes(144))
    status = _consume(task, child, what, 0)
    if status_addr:
        task.mm.write_u32(status_addr, status)
    return child.pid


def sys_waitid(task: Task, idtype: int, ident: int, infop: int, options: int, rusage: int) -> int:
    idtype, ident = idtype & 0xFFFFFFFF, s32(ident)
    options &= 0xFFFFFFFF
    if options & ~(WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE):
        raise Errno(errno.EINVAL)
    if not options & (WEXITED | WSTOPPED | WCONTINUED):
        raise Errno(errno.EINVAL)
    if idtype not in (P_ALL, P_PID, P_PGID) or (idtype != P_ALL and ident < 0):
        raise Errno(errno.EINVAL)
    if idtype == P_PGID and ident == 0:
        ident = task.tg.pgid()
    found = _wait(task, idtype, ident, options)
    if found is None:
        if infop:
            task.mm.copy_out(infop, bytes(128))
        return 0
    child, what = found
    uid = child.leader.creds.ruid if child.leader else 0
    status = _consume(task, child, what, options)
    if what == "exit":
        code, value = exit_mod.wait_code(status)
    elif what == "stop":
        code, value = sig.CLD_STOPPED, status >> 8 & 0xFF
    else:
        code, value = sig.CLD_CONTINUED, sig.SIGCONT
    if infop:
        task.mm.copy_out(infop, sig.SigInfo.chld(code, child.pid, uid, value).pack())
    if rusage:
        task.mm.copy_out(rusage, bytes(144))
    return 0


# ---- ids ---------------------------------------------------------------------


def sys_getpid(task: Task) -> int:
    return task.tg.pid


def sys_gettid(task: Task) -> int:
    return task.tid


def sys_getppid(task: Task) -> int:
    return task.tg.parent_pid()


def _tg_of(task: Task, pid: int) -> ThreadGroup:
    pid = s32(pid)
    if pid < 0:
        raise Errno(errno.EINVAL)
    if pid == 0:
        return task.tg
    tg = task.kernel.thread_group(pid)
    if tg is None or tg.reaped:
        raise Errno(errno.ESRCH)
    return tg


def sys_getpgid(task: Task, pid: int) -> int:
    return _tg_of(task, pid).pgid()


def sys_getpgrp(task: Task) -> int:
    return task.tg.pgid()


def sys_getsid(task: Task, pid: int) -> int:
    return _tg_of(task, pid).sid()


def sys_setpgid(task: Task, pid: int, pgid: int) -> int:
    kernel = task.kernel
    target = _tg_of(task, pid)
    pgid = s32(pgid)
    if pgid < 0:
        raise Errno(errno.EINVAL)
    with kernel.lock:
        if target is not task.tg and target.parent is not task.tg:
            raise Errno(errno.ESRCH)
        if target.sid() == target.pid:
            raise Errno(errno.EPERM)
        if target.sid() != task.tg.sid():
            raise Errno(errno.EPERM)
        pgid = pgid or target.pid
        pgrp = kernel.pgroups.get(pgid)
        if pgrp is None:
            if pgid != target.pid:
                raise Errno(errno.EPERM)
            pgrp = ProcessGroup(pgid, target.pgrp.session)
        elif pgrp.session is not target.pgrp.session:
            raise Errno(errno.EPERM)
        target.set_pgrp(pgrp)
    return 0


def sys_setsid(task: Task) -> int:
    kernel = task.kernel
    tg = task.tg
    with kernel.lock:
        if tg.pid in kernel.pgroups:
            raise Errno(errno.EPERM)
        tg.set_pgrp(ProcessGroup(tg.pid, Session(tg.pid)))
    return tg.pid


# ---- thread setup --------------------------------------------------------------


def sys_set_tid_address(task: Task, addr: int) -> int:
    task.clear_child_tid = addr
    return task.tid


def sys_set_robust_list(task: Task, head: int, length: int) -> int:
    if length != 24:
        raise Errno(errno.EINVAL)
    task.robust_list = (head, length)
    return 0


def sys_get_robust_list(task: Task, pid: int, head_addr: int, len_addr: int) -> int:
    tid = s32(pid)
    target = task if tid == 0 else task.kernel.task_by_tid(tid)
    if target is None:
        raise Errno(errno.ESRCH)
    task.mm.write_u64(head_addr, target.robust_list[0])
    task.mm.write_u64(len_addr, 24)
    return 0


def sys_arch_prctl(task: Task, code: int, addr: int) -> int:
    code &= 0xFFFFFFFF
    if code == ARCH_SET_FS:
        if addr >= 1 << 47:
            raise Errno(errno.EPERM)
        task.regs.fs_base = addr
        return 0
    if code == ARCH_SET_GS:
        if addr >= 1 << 47:
            raise Errno(errno.EPERM)
        task.regs.gs_base = addr
        return 0
    if code == ARCH_GET_FS:
        task.mm.write_u64(addr, task.regs.fs_base)
        return 0
    if code == ARCH_GET_GS:
        task.mm.write_u64(addr, task.regs.gs_base)
        return 0
    if code == ARCH_GET_CPUID:
        return 1
    if code == ARCH_SET_CPUID:
        raise Errno(errno.ENODEV)
    raise Errno(errno.EINVAL)


PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE = 1, 2, 3, 4
PR_SET_NAME, PR_GET_NAME, PR_GET_SECCOMP = 15, 16, 21
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39


def sys_prctl(task: Task, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    option &= 0xFFFFFFFF
    tg = task.tg
    if option == PR_SET_NAME:
        name = task.mm.copy_in(arg2, 16) if arg2 else b""
        task.comm = name.split(b"\0", 1)[0][:15].decode("utf-8", "replace")
        return 0
    if option == PR_GET_NAME:
        task.mm.copy_out(arg2, task.comm.encode()[:15].ljust(16, b"\0"))
        return 0
    if option == PR_SET_PDEATHSIG:
        if not 0 <= arg2 <= sig.NSIG:
            raise Errno(errno.EINVAL)
        tg.pdeath_signal = arg2
        return 0
    if option == PR_GET_PDEATHSIG:
        task.mm.write_u32(arg2, tg.pdeath_signal)
        return 0
    if option == PR_GET_DUMPABLE:
        return tg.dumpable
    if option == PR_SET_DUMPABLE:
        if arg2 not in (0, 1):
            raise Errno(errno.EINVAL)
        tg.dumpable = arg2
        return 0
    if option in CAP_PRCTL_OPTIONS:
        return prctl_caps(task, option, arg2, arg3, arg4, arg5)
    if option == PR_GET_SECCOMP:
        return 0
    if option == PR_SET_CHILD_SUBREAPER:
        tg.subreaper = bool(arg2)
        return 0
    if option == PR_GET_CHILD_SUBREAPER:
        task.mm.write_u32(arg2, int(tg.subreaper))
        return 0
    if option == PR_SET_NO_NEW_PRIVS:
        if arg2 != 1 or arg3 or arg4 or arg5:
            raise Errno(errno.EINVAL)
        tg.no_new_privs = 1
        return 0
    if option == PR_GET_NO_NEW_PRIVS:
        return tg.no_new_privs
    raise Errno(errno.EINVAL)


def sys_restart_syscall(task: Task) -> int:
    raise Errno(errno.EINTR)
