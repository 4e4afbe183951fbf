"""Thread and process exit: group exit, zombies, reparenting, SIGCHLD, reaping."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from sentry.errors import Errno
from sentry.kernel import signals as sig
from sentry.kernel.signals import SigInfo
from sentry.seccheck import hooks

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

log = logging.getLogger(__name__)

FUTEX_WAITERS = 0x80000000
FUTEX_OWNER_DIED = 0x40000000
FUTEX_TID_MASK = 0x3FFFFFFF
ROBUST_LIST_LIMIT = 2048


def exit_status(code: int) -> int:
    return (code & 0xFF) << 8


def signal_status(signo: int) -> int:
    core = sig.default_action(signo) is sig.Action.CORE
    return signo | (0x80 if core else 0)


def group_exit(tg: ThreadGroup, status: int) -> None:
    """Start exiting the whole process with wait status `status` (see exit_status/signal_status)."""
    kernel = tg.kernel
    with kernel.lock:
        if tg.exiting or tg.zombie:
            return
        tg.exiting = True
        tg.exit_status = status
        tg.stopping = False
        tg.stop_queue.notify()
        for task in tg.threads:
            task.killed = True
            task.wake()


def exit_task(task: Task) -> None:
    """The task's thread is done: release what it holds; the last thread turns the process into a zombie."""
    kernel = task.kernel
    tg = task.tg
    hooks.task_exit(task, tg.exit_status if tg.exiting else task.exit_code)
    with kernel.lock:
        task.killed = True
    _mm_release(task)
    if task.ctx is not None:
        try:
            task.ctx.release()
        except Exception:
            log.exception("task %d: releasing its context", task.tid)
        task.ctx = None
    drop_mm_and_files(task)
    with kernel.lock:
        if task in tg.threads:
            tg.threads.remove(task)
        if task.tid != tg.pid:
            kernel.tasks.pop(task.tid, None)
        if not tg.threads:
            if not tg.exiting:
                tg.exit_status = task.exit_code
            _process_exit(tg, task)
        task.exited = True
    task.exit_queue.notify()


def drop_mm_and_files(task: Task) -> None:
    """Give up the task's share of its address space and fd table, releasing each with its last user."""
    kernel = task.kernel
    with kernel.lock:
        task.mm.users -= 1
        last_mm_user = task.mm.users == 0
        fds = task.fds
        fd_users = kernel.fd_users.get(id(fds), 1) - 1
        kernel.fd_users[id(fds)] = fd_users
        if not fd_users:
            kernel.fd_users.pop(id(fds), None)
    if last_mm_user:
        task.mm.release()
    if not fd_users and fds is not None:
        try:
            fds.close_all()
        except Exception:
            log.exception("task %d: closing files", task.tid)


def _mm_release(task: Task) -> None:
    """clear_child_tid and the robust list, as Linux's mm_release/exit_robust_list."""
    _release_vfork(task)
    if task.robust_list[0]:
        with contextlib.suppress(Errno):
            _exit_robust_list(task)
    if task.clear_child_tid and task.mm.users > 1:
        addr = task.clear_child_tid
        task.clear_child_tid = 0
        try:
            task.mm.write_u32(addr, 0)
            task.kernel.futexes.wake(task, addr, 1, private=False)
        except Errno:
            pass


def _release_vfork(task: Task) -> None:
    parent = task.vfork_parent
    if parent is not None:
        task.vfork_parent = None
        task.vfork_done = True
        task.exit_queue.notify()


def _exit_robust_list(task: Task) -> None:
    mm = task.mm
    head, _len = task.robust_list
    entry = mm.read_u64(head)
    offset = int.from_bytes(mm.copy_in(head + 8, 8), "little", signed=True)
    pending = mm.read_u64(head + 16)
    seen = 0
    while entry != head and seen < ROBUST_LIST_LIMIT:
        nxt = mm.read_u64(entry)
        if entry != pending:
            _futex_death(task, entry + offset)
        entry = nxt
        seen += 1
    if pending:
        _futex_death(task, pending + offset)


def _futex_death(task: Task, addr: int) -> None:
    mm = task.mm
    if addr & 3:
        return
    value = mm.read_u32(addr)
    if value & FUTEX_TID_MASK != task.tid:
        return
    mm.write_u32(addr, (value & FUTEX_WAITERS) | FUTEX_OWNER_DIED)
    if value & FUTEX_WAITERS:
        task.kernel.futexes.wake(task, addr, 1, private=False)


def _process_exit(tg: ThreadGroup, last: Task) -> None:
    """The last thread, `last`, exited (kernel.lock held)."""
    kernel = tg.kernel
    tg.zombie = True
    tg.exiting = True
    kernel.timers.cancel_group(tg)
    init = kernel.init_tg
    if tg is init:
        for other in list(kernel.tgs.values()):
            if other is not tg:
                group_exit(other, signal_status(sig.SIGKILL))
    reaper = _reaper(tg)
    for child in list(tg.children):
        tg.children.remove(child)
        if reaper is not None:
            child.parent = reaper
            reaper.children.append(child)
            if child.zombie:
                reaper.child_wait.notify()
        else:
            child.parent = None
            if child.zombie:
                reap(child)
        if child.pdeath_signal and not child.zombie:
            kernel.signals.send_to_group(child, SigInfo.kill(child.pdeath_signal, sig.SI_USER, 0, 0))
    parent = tg.parent
    if parent is None or parent.zombie:
        if tg is not init and not tg.keep_zombie:
            reap(tg)
    else:
        hooks.exit_notify_parent(last, tg.exit_status)
        action = parent.handlers.actions[sig.SIGCHLD]
        auto_reap = tg.exit_signal == sig.SIGCHLD and (
            action.handler == sig.SIG_IGN or action.flags & sig.SA_NOCLDWAIT
        )
        if tg.exit_signal and not auto_reap:
            code, status = wait_code(tg.exit_status)
            uid = tg.leader.creds.ruid if tg.leader else 0
            kernel.signals.send_to_group(parent, SigInfo.chld(code, tg.pid, uid, status))
        if auto_reap:
            reap(tg)
        parent.child_wait.notify()
    kernel.exited.notify()


def _reaper(tg: ThreadGroup) -> ThreadGroup | None:
    """Who adopts tg's children: the nearest living PR_SET_CHILD_SUBREAPER ancestor, else init."""
    ancestor = tg.parent
    while ancestor is not None:
        if ancestor.subreaper and not ancestor.zombie:
            return ancestor
        ancestor = ancestor.parent
    init = tg.kernel.init_tg
    return init if init is not None and init is not tg and not init.zombie else None


def wait_code(status: int) -> tuple[int, int]:
    """(si_code, si_status) for a wait status."""
    if status & 0x7F:
        return (sig.CLD_DUMPED if status & 0x80 else sig.CLD_KILLED), status & 0x7F
    return sig.CLD_EXITED, status >> 8 & 0xFF


def reap(tg: ThreadGroup) -> None:
    """Forget a zombie (kernel.lock held)."""
    kernel = tg.kernel
    if tg.reaped:
        return
    tg.reaped = True
    if tg.parent is not None and tg in tg.parent.children:
        tg.parent.children.remove(tg)
    kernel.tgs.pop(tg.pid, None)
    kernel.tasks.pop(tg.pid, None)
    if tg.pgrp is not None:
        tg.pgrp.members.discard(tg)
        if not tg.pgrp.members:
            kernel.pgroups.pop(tg.pgrp.pgid, None)
