"""clone/fork/vfork: new threads and processes."""

from __future__ import annotations

import contextlib
import errno

from sentry.errors import Errno
from sentry.kernel import exit as exit_mod
from sentry.kernel import signals as sig
from sentry.kernel.task import Task
from sentry.kernel.threadgroup import ThreadGroup
from sentry.seccheck import hooks

CLONE_VM = 0x100
CLONE_FS = 0x200
CLONE_FILES = 0x400
CLONE_SIGHAND = 0x800
CLONE_PIDFD = 0x1000
CLONE_PTRACE = 0x2000
CLONE_VFORK = 0x4000
CLONE_PARENT = 0x8000
CLONE_THREAD = 0x10000
CLONE_NEWNS = 0x20000
CLONE_SYSVSEM = 0x40000
CLONE_SETTLS = 0x80000
CLONE_PARENT_SETTID = 0x100000
CLONE_CHILD_CLEARTID = 0x200000
CLONE_DETACHED = 0x400000
CLONE_UNTRACED = 0x800000
CLONE_CHILD_SETTID = 0x1000000
CLONE_NEWCGROUP = 0x2000000
CLONE_NEWUTS = 0x4000000
CLONE_NEWIPC = 0x8000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_IO = 0x80000000
MAX_TASKS = 4096  # threads in one sandbox: each is a host thread
NAMESPACES = (
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
)
KNOWN = (
    0xFF
    | CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_PTRACE
    | CLONE_VFORK
    | CLONE_PARENT
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_UNTRACED
    | CLONE_CHILD_SETTID
    | CLONE_IO
)


def clone(task: Task, flags: int, stack: int, parent_tid: int, child_tid: int, tls: int) -> int:
    flags &= 0xFFFFFFFF
    if flags & NAMESPACES:
        raise Errno(errno.EPERM if not task.creds.has_cap(21) else errno.EINVAL)
    if flags & ~KNOWN or flags & CLONE_PIDFD:
        raise Errno(errno.EINVAL)
    if flags & CLONE_THREAD and not flags & CLONE_SIGHAND or flags & CLONE_SIGHAND and not flags & CLONE_VM:
        raise Errno(errno.EINVAL)
    exit_signal = flags & 0xFF
    if exit_signal > sig.NSIG:
        raise Errno(errno.EINVAL)
    if flags & CLONE_THREAD and exit_signal:
        exit_signal = 0
    if flags & CLONE_PARENT and task.tg is task.kernel.init_tg:
        raise Errno(errno.EINVAL)
    if tls and flags & CLONE_SETTLS and not tls < 1 << 47:
        raise Errno(errno.EPERM)
    kernel = task.kernel
    if len(kernel.tasks) >= MAX_TASKS:
        raise Errno(errno.EAGAIN)
    if flags & CLONE_VM:
        mm = task.mm
        with kernel.lock:
            mm.users += 1
    else:
        try:
            mm = task.mm.fork(kernel.platform.new_address_space())
        except BlockingIOError:
            raise Errno(errno.EAGAIN) from None  # the host's fork refused (systrap's stub): pids limit
    fds = task.fds if flags & CLONE_FILES else task.fds.fork()
    fs = task.fs if flags & CLONE_FS else task.fs.fork()
    regs = task.regs.copy()
    if regs.fpu is None and task.ctx is not None:
        regs.fpu = task.ctx.pull_fpu()  # the child's context starts with a copy of ours
    regs.rax = 0
    if stack:
        regs.rsp = stack
    if flags & CLONE_SETTLS:
        regs.fs_base = tls
    with kernel.lock:
        tid = kernel.alloc_pid()
        if flags & CLONE_THREAD:
            tg = task.tg
        else:
            parent = task.tg.parent if flags & CLONE_PARENT else task.tg
            handlers = task.tg.handlers if flags & CLONE_SIGHAND else task.tg.handlers.copy()
            tg = ThreadGroup(kernel, tid, parent, handlers)
            tg.exit_signal = exit_signal
            tg.rlimits = list(task.tg.rlimits)
            tg.exe_path = task.tg.exe_path
            tg.dumpable = task.tg.dumpable
            tg.no_new_privs = task.tg.no_new_privs
            tg.oom_score_adj, tg.oom_score_adj_min = task.tg.oom_score_adj, task.tg.oom_score_adj_min
            tg.set_pgrp(task.tg.pgrp)
            parent.children.append(tg)
            kernel.tgs[tid] = tg
        child = Task(kernel, tg, tid, mm, fds, fs, task.creds, regs)
        child.comm = task.comm
        child.signal_mask = task.signal_mask
        if not flags & CLONE_VM or flags & CLONE_VFORK:
            child.altstack = task.altstack
        if flags & CLONE_CHILD_CLEARTID:
            child.clear_child_tid = child_tid
        if not flags & CLONE_THREAD:
            tg.leader = child
        tg.threads.append(child)
        kernel.tasks[tid] = child
        kernel.fd_users[id(fds)] = kernel.fd_users.get(id(fds), 0) + 1
    if flags & CLONE_PARENT_SETTID:
        with contextlib.suppress(Errno):
            task.mm.write_u32(parent_tid, tid)
    if flags & CLONE_CHILD_SETTID:
        # Written by the child itself when it first runs (Linux's schedule_tail), so the
        # child's address space is only ever changed from its own threads before it runs.
        child.set_child_tid = child_tid
    if flags & CLONE_VFORK:
        child.vfork_parent = task
    hooks.clone(task, child, flags)
    try:
        child.start()
    except RuntimeError:
        # The host refused a thread: the container's pids cgroup limit (bootstrap/cgroups.py) counts
        # the Sentry's threads. Linux's fork fails with EAGAIN at its pids limit; so does ours.
        _unregister(child, flags)
        raise Errno(errno.EAGAIN) from None
    if flags & CLONE_VFORK:
        with contextlib.suppress(Errno):
            task.block_on(child.exit_queue, lambda: True if child.vfork_done else None, interruptible=False)
    return tid


def _unregister(child: Task, flags: int) -> None:
    """Undo clone's bookkeeping for a child that never ran, releasing its mm and files as exit would."""
    kernel, tg = child.kernel, child.tg
    with kernel.lock:
        kernel.tasks.pop(child.tid, None)
        tg.threads.remove(child)
        if not flags & CLONE_THREAD:
            exit_mod.reap(tg)
    exit_mod.drop_mm_and_files(child)
