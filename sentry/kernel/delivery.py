"""Signal delivery: between app runs, take pending signals and act on them.

Default actions (ignore, stop, continue, terminate, core), user handlers
(frame setup via sigframe), group stop, and the restart decision for a
syscall interrupted by the signal (EINTR versus restart, as Linux).
"""

from __future__ import annotations

import contextlib
import errno
import logging
from typing import TYPE_CHECKING

from sentry.errors import ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, Errno
from sentry.kernel import sigframe
from sentry.kernel import signals as sig
from sentry.kernel.exit import group_exit, signal_status
from sentry.kernel.sending import notify_parent
from sentry.kernel.signals import Action, SigInfo, bit

if TYPE_CHECKING:
    from sentry.kernel.signals import SigAction
    from sentry.kernel.task import Task

log = logging.getLogger(__name__)


def handle_signals(task: Task) -> None:
    """Act on pending signals; at most one handler frame is set up (more come at the next entry)."""
    kernel = task.kernel
    tg = task.tg
    while not task.killed:
        with kernel.lock:
            if tg.stopping:
                info = None
            else:
                allowed = ~task.signal_mask
                info = task.pending.take(allowed) or tg.pending.take(allowed)
        if tg.stopping:
            _stop(task)
            continue
        if info is None:
            _finish_restart(task, None)
            if task.saved_mask is not None:
                task.signal_mask, task.saved_mask = task.saved_mask, None
            return
        signo = info.signo
        action = tg.handlers.actions[signo]
        if action.handler == sig.SIG_IGN:
            continue
        if action.handler == sig.SIG_DFL:
            what = sig.default_action(signo)
            if what in (Action.IGNORE, Action.CONT):
                continue
            if what is Action.STOP:
                with kernel.lock:
                    if not tg.exiting:
                        tg.stopping = True
                        tg.stop_signal = signo
                        tg.stopped_report = False
                        for t in tg.threads:
                            t.wake()
                continue
            group_exit(tg, signal_status(signo))
            return
        _run_handler(task, info, action)
        return


def _run_handler(task: Task, info: SigInfo, action: SigAction) -> None:
    kernel = task.kernel
    _finish_restart(task, action)
    with kernel.lock:
        old_mask = task.saved_mask if task.saved_mask is not None else task.signal_mask
        task.saved_mask = None
        try:
            sigframe.setup(task, info, action, old_mask)
        except Errno:
            # No room for the frame: the app dies of SIGSEGV, as on Linux.
            task.tg.handlers.actions[sig.SIGSEGV].handler = sig.SIG_DFL
            group_exit(task.tg, signal_status(sig.SIGSEGV))
            return
        mask = task.signal_mask | action.mask
        if not action.flags & sig.SA_NODEFER:
            mask |= bit(info.signo)
        task.signal_mask = mask & ~sig.UNBLOCKABLE
        if action.flags & sig.SA_RESETHAND:
            action.handler, action.flags = sig.SIG_DFL, action.flags & ~sig.SA_SIGINFO


def _finish_restart(task: Task, action: SigAction | None) -> None:
    """Rewrite an interrupted syscall's result: restart it or make it EINTR."""
    if task.restart is None:
        return
    code, nr = task.restart
    task.restart = None
    regs = task.regs
    if action is None or code == ERESTARTNOINTR:
        restart = True
    elif code == ERESTARTSYS:
        restart = bool(action.flags & sig.SA_RESTART)
    else:
        restart = code not in (ERESTARTNOHAND, ERESTART_RESTARTBLOCK)
    if restart:
        regs.rax = nr
        regs.rip -= 2
    else:
        regs.rax = -errno.EINTR & ((1 << 64) - 1)


def _stop(task: Task) -> None:
    """Take part in a group stop until SIGCONT or SIGKILL."""
    kernel = task.kernel
    tg = task.tg
    with kernel.lock:
        task.stopped = True
        if all(t.stopped for t in tg.threads) and not tg.stopped_report:
            tg.stopped_report = True
            notify_parent(tg, sig.CLD_STOPPED, tg.stop_signal)
    with contextlib.suppress(Errno):
        task.block_on(
            tg.stop_queue, lambda: True if not tg.stopping or task.killed else None, interruptible=False
        )
    with kernel.lock:
        task.stopped = False
