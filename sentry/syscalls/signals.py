"""Signal syscalls: sigaction, masks, pending, suspend/timedwait, altstack, kill family, sigreturn."""

from __future__ import annotations

import contextlib
import errno
import struct
from typing import TYPE_CHECKING

from sentry.errors import ERESTARTNOHAND, Errno
from sentry.kernel import creds as capdefs
from sentry.kernel import sigframe
from sentry.kernel import signals as sig
from sentry.kernel.signals import SigAction, SigInfo, bit
from sentry.syscalls.args import s32
from sentry.syscalls.time import read_timespec

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2


def _signo(value: int, allow_zero: bool = False) -> int:
    signo = s32(value)
    if allow_zero and signo == 0:
        return 0
    if not sig.valid(signo):
        raise Errno(errno.EINVAL)
    return signo


def sys_rt_sigaction(task: Task, signo: int, act: int, oldact: int, sigsetsize: int) -> int:
    if sigsetsize != 8:
        raise Errno(errno.EINVAL)
    signo = _signo(signo)
    new = SigAction.unpack(task.mm.copy_in(act, 32)) if act else None
    if new is not None and signo in (sig.SIGKILL, sig.SIGSTOP):
        raise Errno(errno.EINVAL)
    kernel = task.kernel
    with kernel.lock:
        handlers = task.tg.handlers
        old = handlers.actions[signo]
        if oldact:
            task.mm.copy_out(oldact, old.pack())
        if new is not None:
            new.mask &= ~sig.UNBLOCKABLE
            handlers.actions[signo] = new
            if handlers.is_ignored(signo):
                task.tg.pending.discard(bit(signo))
                for t in task.tg.threads:
                    t.pending.discard(bit(signo))
    return 0


def sys_rt_sigprocmask(task: Task, how: int, set_addr: int, old_addr: int, sigsetsize: int) -> int:
    if sigsetsize != 8:
        raise Errno(errno.EINVAL)
    how = s32(how)
    new = struct.unpack("<Q", task.mm.copy_in(set_addr, 8))[0] if set_addr else None
    if new is not None and how not in (SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK):
        raise Errno(errno.EINVAL)
    with task.kernel.lock:
        old = task.signal_mask
        if new is not None:
            if how == SIG_BLOCK:
                mask = old | new
            elif how == SIG_UNBLOCK:
                mask = old & ~new
            else:
                mask = new
            task.signal_mask = mask & ~sig.UNBLOCKABLE
    if old_addr:
        task.mm.write_u64(old_addr, old)
    return 0


def sys_rt_sigpending(task: Task, set_addr: int, sigsetsize: int) -> int:
    if sigsetsize > 8:
        raise Errno(errno.EINVAL)
    with task.kernel.lock:
        pending = (task.pending.mask | task.tg.pending.mask) & task.signal_mask
    task.mm.copy_out(set_addr, pending.to_bytes(8, "little")[:sigsetsize])
    return 0


def sys_rt_sigsuspend(task: Task, mask_addr: int, sigsetsize: int) -> int:
    if sigsetsize != 8:
        raise Errno(errno.EINVAL)
    mask = task.mm.read_u64(mask_addr)
    with task.kernel.lock:
        task.saved_mask = task.signal_mask
        task.signal_mask = mask & ~sig.UNBLOCKABLE
    with contextlib.suppress(Errno):
        task.block_on((), lambda: None)
    raise Errno(ERESTARTNOHAND)


def sys_pause(task: Task) -> int:
    with contextlib.suppress(Errno):
        task.block_on((), lambda: None)
    raise Errno(ERESTARTNOHAND)


def sys_rt_sigtimedwait(task: Task, set_addr: int, info_addr: int, timeout_addr: int, sigsetsize: int) -> int:
    if sigsetsize != 8:
        raise Errno(errno.EINVAL)
    wanted = task.mm.read_u64(set_addr) & ~sig.UNBLOCKABLE
    timeout = read_timespec(task, timeout_addr) if timeout_addr else None
    kernel = task.kernel

    def take() -> SigInfo | None:
        with kernel.lock:
            return task.pending.take(wanted) or task.tg.pending.take(wanted)

    info = take()
    if info is None:
        with kernel.lock:
            old_mask = task.signal_mask
            task.signal_mask = old_mask & ~wanted
        try:
            task.block_on((), lambda: None, timeout)
        except Errno as e:
            if e.code == errno.ETIMEDOUT:
                raise Errno(errno.EAGAIN) from None
        finally:
            with kernel.lock:
                task.signal_mask = old_mask
        info = take()
        if info is None:
            raise Errno(errno.EINTR)
    if info_addr:
        task.mm.copy_out(info_addr, info.pack())
    return info.signo


def sys_sigaltstack(task: Task, ss: int, old_ss: int) -> int:
    new = task.mm.copy_in(ss, 24) if ss else None
    old = sigframe._STACK.pack(task.altstack[0], sigframe.altstack_flags(task), task.altstack[2])
    if new is not None:
        sp, flags, size = sigframe._STACK.unpack(new)
        if sigframe.on_altstack(task, task.regs.rsp):
            raise Errno(errno.EPERM)
        mode = flags & ~sig.SS_AUTODISARM
        if mode not in (0, sig.SS_ONSTACK, sig.SS_DISABLE):
            raise Errno(errno.EINVAL)
        if mode == sig.SS_DISABLE:
            task.altstack = (0, sig.SS_DISABLE, 0)
        else:
            if size < sig.MINSIGSTKSZ:
                raise Errno(errno.ENOMEM)
            task.altstack = (sp, flags & sig.SS_AUTODISARM, size)
    if old_ss:
        task.mm.copy_out(old_ss, old)
    return 0


def sys_rt_sigreturn(task: Task) -> int:
    try:
        return sigframe.restore(task)
    except Errno:
        task.kernel.signals.force(task, SigInfo.kill(sig.SIGSEGV, sig.SI_KERNEL, 0, 0))
        return task.regs.rax


# ---- sending -------------------------------------------------------------------


def _may_signal(task: Task, target: ThreadGroup, signo: int) -> bool:
    creds = task.creds
    if creds.has_cap(capdefs.CAP_KILL):
        return True
    main = target.main_task()
    if main is None:
        return True
    other = main.creds
    if creds.euid in (other.ruid, other.suid) or creds.ruid in (other.ruid, other.suid):
        return True
    return signo == sig.SIGCONT and target.sid() == task.tg.sid()


def _user_info(task: Task, signo: int, code: int = sig.SI_USER) -> SigInfo:
    return SigInfo.kill(signo, code, task.tg.pid, task.creds.ruid)


def _init_ignores(task: Task, tg: ThreadGroup, signo: int, target: Task | None = None) -> bool:
    """The sandbox's init only gets signals it handles (pid namespace init, pid_namespaces(7)).

    As Linux's sig_ignored(), a signal the target blocks is queued anyway (a handler may
    be installed, or signalfd/sigwait may take it, before it is unblocked).
    """
    if tg is not task.kernel.init_tg or tg.handlers.actions[signo].handler != sig.SIG_DFL:
        return False
    target = target or tg.leader
    return target is None or not target.signal_mask & bit(signo)


def _send_group(task: Task, tg: ThreadGroup, signo: int, info: SigInfo | None = None) -> None:
    if not _may_signal(task, tg, signo):
        raise Errno(errno.EPERM)
    if signo and not _init_ignores(task, tg, signo):
        task.kernel.signals.send_to_group(tg, info or _user_info(task, signo))


def sys_kill(task: Task, pid: int, signo: int) -> int:
    pid = s32(pid)
    signo = _signo(signo, allow_zero=True)
    kernel = task.kernel
    if pid > 0:
        tg = kernel.thread_group(pid)
        if tg is None or tg.zombie:
            raise Errno(errno.ESRCH)
        _send_group(task, tg, signo)
        return 0
    if pid == -(1 << 31):
        raise Errno(errno.ESRCH)
    with kernel.lock:
        if pid == -1:
            targets = [tg for tg in kernel.tgs.values() if tg is not task.tg and tg is not kernel.init_tg]
        else:
            pgrp = kernel.process_group(-pid if pid else task.tg.pgid())
            targets = list(pgrp.members) if pgrp else []
        targets = [tg for tg in targets if not tg.zombie]
    if not targets:
        raise Errno(errno.ESRCH)
    sent = 0
    for tg in targets:
        try:
            _send_group(task, tg, signo)
            sent += 1
        except Errno:
            pass
    if not sent:
        raise Errno(errno.EPERM)
    return 0


def _thread(task: Task, tgid: int, tid: int) -> Task:
    tid = s32(tid)
    if tid <= 0 or (tgid is not None and tgid <= 0):
        raise Errno(errno.EINVAL)
    target = task.kernel.task_by_tid(tid)
    if target is None or target.exited or (tgid is not None and target.tg.pid != tgid):
        raise Errno(errno.ESRCH)
    return target


def _send_thread(task: Task, target: Task, signo: int, info: SigInfo | None = None) -> int:
    if not _may_signal(task, target.tg, signo):
        raise Errno(errno.EPERM)
    if signo and not _init_ignores(task, target.tg, signo, target):
        task.kernel.signals.send_to_task(target, info or _user_info(task, signo, sig.SI_TKILL))
    return 0


def sys_tkill(task: Task, tid: int, signo: int) -> int:
    signo = _signo(signo, allow_zero=True)
    return _send_thread(task, _thread(task, None, tid), signo)


def sys_tgkill(task: Task, tgid: int, tid: int, signo: int) -> int:
    signo = _signo(signo, allow_zero=True)
    return _send_thread(task, _thread(task, s32(tgid), tid), signo)


def _queue_info(task: Task, target_pid: int, signo: int, info_addr: int) -> SigInfo:
    info = SigInfo.unpack(task.mm.copy_in(info_addr, 128))
    if target_pid != task.tg.pid and (info.code >= 0 or info.code == sig.SI_TKILL):
        raise Errno(errno.EPERM)
    info.signo = signo
    return info


def sys_rt_sigqueueinfo(task: Task, pid: int, signo: int, info_addr: int) -> int:
    signo = _signo(signo, allow_zero=True)
    pid = s32(pid)
    tg = task.kernel.thread_group(pid) if pid > 0 else None
    if tg is None or tg.zombie:
        raise Errno(errno.ESRCH)
    _send_group(task, tg, signo, _queue_info(task, pid, signo, info_addr))
    return 0


def sys_rt_tgsigqueueinfo(task: Task, tgid: int, tid: int, signo: int, info_addr: int) -> int:
    signo = _signo(signo, allow_zero=True)
    target = _thread(task, s32(tgid), tid)
    return _send_thread(task, target, signo, _queue_info(task, target.tg.pid, signo, info_addr))
