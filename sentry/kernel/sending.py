"""Sending signals: queueing on a thread or process, job control side effects, waking a target.

Everything here runs under kernel.lock. Delivery (what a pending signal
does to the task that takes it) is in delivery.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentry.kernel import signals as sig
from sentry.kernel.signals import SigInfo, bit
from sentry.vfs.events.signalfd import signal_queued

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

STOP_MASK = bit(sig.SIGSTOP) | bit(sig.SIGTSTP) | bit(sig.SIGTTIN) | bit(sig.SIGTTOU)


class SignalSender:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def send_to_task(self, task: Task, info: SigInfo) -> None:
        with self.kernel.lock:
            self._send(task.tg, task, info)

    def send_to_group(self, tg: ThreadGroup, info: SigInfo) -> None:
        with self.kernel.lock:
            self._send(tg, None, info)

    def force(self, task: Task, info: SigInfo) -> None:
        """A synchronous fault signal: it cannot be blocked or ignored (Linux force_sig_info)."""
        with self.kernel.lock:
            signo = info.signo
            action = task.tg.handlers.actions[signo]
            blocked = task.signal_mask & bit(signo)
            if blocked or action.handler == sig.SIG_IGN:
                action.handler = sig.SIG_DFL
                task.signal_mask &= ~bit(signo)
            task.pending.discard(bit(signo))
            task.pending.add(info)
            task.wake()

    def _send(self, tg: ThreadGroup, task: Task | None, info: SigInfo) -> None:
        from sentry.kernel.exit import group_exit, signal_status

        signo = info.signo
        if tg.zombie or tg.exiting:
            return
        if signo == sig.SIGKILL:
            group_exit(tg, signal_status(sig.SIGKILL))
            return
        if signo == sig.SIGCONT:
            self._continue(tg)
        elif bit(signo) & STOP_MASK:
            tg.pending.discard(bit(sig.SIGCONT))
            for t in tg.threads:
                t.pending.discard(bit(sig.SIGCONT))
        if tg.handlers.is_ignored(signo) and not getattr(task or tg.leader, "signal_mask", 0) & bit(signo):
            return
        pending = task.pending if task is not None else tg.pending
        if not pending.add(info):
            return
        signal_queued(tg)
        if task is None:
            candidates = [t for t in tg.threads if not t.signal_mask & bit(signo)]
            if not candidates:
                return
            task = tg._leader if tg._leader in candidates else candidates[0]
        elif task.signal_mask & bit(signo):
            return
        task.wake()

    def _continue(self, tg: ThreadGroup) -> None:
        tg.pending.discard(STOP_MASK)
        for t in tg.threads:
            t.pending.discard(STOP_MASK)
        if tg.stopping:
            tg.stopping = False
            tg.stopped_report = False
            tg.continued_report = True
            tg.stop_queue.notify()
            for t in tg.threads:
                t.wake()
            notify_parent(tg, sig.CLD_CONTINUED, sig.SIGCONT)


def notify_parent(tg: ThreadGroup, code: int, status: int) -> None:
    """Tell the parent about a stop/continue (SIGCHLD unless SA_NOCLDSTOP) and wake its waits."""
    parent = tg.parent
    if parent is None:
        return
    action = parent.handlers.actions[sig.SIGCHLD]
    if not action.flags & sig.SA_NOCLDSTOP:
        uid = tg.leader.creds.ruid if tg.leader else 0
        parent.kernel.signals.send_to_group(parent, SigInfo.chld(code, tg.pid, uid, status))
    parent.child_wait.notify()
