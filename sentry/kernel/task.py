"""A task is one app thread: its registers, platform context, memory, files, creds and signals.

Each task runs on its own host thread: `_run` loops over
`Context.switch(asp, regs)`, dispatches syscalls, resolves page faults and
delivers signals between switches. Blocking syscalls wait in `block_on`,
which a signal interrupts by setting the task's wake event (and
`Context.interrupt()` stops app code that is running).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from kvmsandbox.platform import Fault, PlatformError, Regs, Syscall
from sentry.errors import ERESTARTSYS, Errno
from sentry.kernel import signals as sig
from sentry.kernel.creds import Credentials
from sentry.kernel.signals import Pending, SigInfo
from sentry.kernel.waiter import WaitQueue

if TYPE_CHECKING:
    from kvmsandbox.platform import Context
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.mm.mm import MM

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE_FAULT_VECTOR = 14


class Task:
    """One app thread."""

    def __init__(
        self,
        kernel: Kernel,
        tg: ThreadGroup,
        tid: int,
        mm: MM,
        fds: Any,
        fs: Any,
        creds: Credentials,
        regs: Regs,
    ) -> None:
        self.kernel = kernel
        self.tg = tg
        self.tid = tid
        self.mm = mm
        self.fds = fds
        self.fs = fs
        self.creds = creds
        self.regs = regs
        self.comm = "task"
        self.start_time_ns = time.time_ns()  # trace points' thread_start_time (seccheck)
        self.ctx: Context | None = None
        # Signals (guarded by kernel.lock).
        self.signal_mask = 0
        self.pending = Pending()
        self.saved_mask: int | None = None  # set by sigsuspend/ppoll: restored after delivery
        self.altstack = (0, sig.SS_DISABLE, 0)  # (sp, flags, size)
        self.restart: tuple[int, int] | None = None  # (restart code, syscall nr) of an interrupted syscall
        self.killed = False  # the task must exit at its next chance (group exit, exec of a sibling)
        self.waker = threading.Event()
        self.doorbell: Any = None
        self.in_app = False
        self.stopped = False
        # Thread bookkeeping.
        self.clear_child_tid = 0
        self.set_child_tid = 0
        self.robust_list = (0, 0)
        self.vfork_parent: Task | None = None
        self.exit_queue = WaitQueue()
        self.exited = False
        self.exit_code = 0  # wait status if this is the last thread and no group exit happened
        self.vfork_done = False
        self.fault_info = (0, 0, 0)  # (trapno, error code, cr2) of the last fault, for the signal frame
        self.thread = threading.Thread(target=self._run, name=f"task-{tid}", daemon=True)

    # ---- the contract handlers use ----------------------------------------

    def block_on(
        self,
        queues: WaitQueue | Iterable[WaitQueue],
        ready: Callable[[], T | None],
        timeout: float | None = None,
        *,
        interruptible: bool = True,
    ) -> T:
        """Wait until `ready()` returns non-None; EINTR-family on signals, ETIMEDOUT on timeout."""
        qs = (queues,) if isinstance(queues, WaitQueue) else tuple(queues)
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        for q in qs:
            q.add(self.waker)
        try:
            while True:
                self.waker.clear()
                result = ready()
                if result is not None:
                    return result
                if self.killed or (interruptible and self.signal_pending()):
                    raise Errno(ERESTARTSYS)
                if deadline is None:
                    self.waker.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise Errno(errno.ETIMEDOUT)
                    self.waker.wait(remaining)
        finally:
            for q in qs:
                q.remove(self.waker)

    def block(self, waiter: Any, timeout: float | None) -> bool:
        """Sleep on a files-side Waiter (sentry/vfs/waiter.py): False on timeout, ERESTARTSYS on a signal.

        The waiter is this task's doorbell while it sleeps, so `wake()` (signal
        delivery) rings it as well.
        """
        self.doorbell = waiter
        try:
            if self.killed or self.signal_pending():
                raise Errno(ERESTARTSYS)
            woke = waiter.wait(timeout)
            if self.killed or self.signal_pending():
                raise Errno(ERESTARTSYS)
            return bool(woke)
        finally:
            self.doorbell = None

    def sleep(self, seconds: float) -> None:
        """Interruptible sleep; returns on timeout, raises ERESTARTSYS on a signal."""
        try:
            self.block_on((), lambda: None, seconds)
        except Errno as e:
            if e.code != errno.ETIMEDOUT:
                raise

    def send_signal(self, signo: int, info: SigInfo | None = None) -> None:
        """Send a thread-directed signal (tkill semantics; kernel-originated if `info` is None)."""
        self.kernel.signals.send_to_task(self, info or SigInfo.kill(signo, sig.SI_KERNEL, 0, 0))

    def signal_pending(self) -> bool:
        """Whether a wait must be interrupted: a deliverable signal, a kill, or a group stop."""
        allowed = ~self.signal_mask
        return bool(self.killed or self.tg.stopping or (self.pending.mask | self.tg.pending.mask) & allowed)

    def wake(self) -> None:
        """Make the task look at its signals: wake a wait, stop running app code."""
        self.waker.set()
        doorbell = self.doorbell
        if doorbell is not None:
            doorbell.wake()
        ctx = self.ctx
        if ctx is not None and self.in_app:
            ctx.interrupt()

    # ---- lifecycle --------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        from sentry.kernel import delivery, exit
        from sentry.syscalls.dispatch import dispatch

        try:
            self.ctx = self.kernel.platform.new_context()
            if self.set_child_tid:
                with contextlib.suppress(Errno):
                    self.mm.write_u32(self.set_child_tid, self.tid)
            while not self.killed:
                if self.pending.mask or self.tg.pending.mask or self.restart or self.tg.stopping:
                    delivery.handle_signals(self)
                    if self.killed:
                        break
                if self.kernel.frozen:
                    self._stay_frozen()
                    continue
                self.in_app = True
                if self.killed or self.signal_pending():
                    self.in_app = False
                    continue
                try:
                    event = self.ctx.switch(self.mm.asp, self.regs)
                except PlatformError:
                    raise
                except Exception as e:
                    # Whatever a platform raises from switch is its failure, not the Sentry's.
                    raise PlatformError(f"switch raised {e!r}") from e
                self.in_app = False
                if type(event) is Syscall:
                    dispatch(self, event.nr, event.args)
                elif type(event) is Fault:
                    self.handle_fault(event)
        except PlatformError:
            log.exception("task %d: platform failure", self.tid)
            exit.group_exit(self.tg, exit.signal_status(sig.SIGKILL))
        except Exception:
            log.exception("task %d: Sentry bug", self.tid)
            exit.group_exit(self.tg, exit.signal_status(sig.SIGKILL))
        finally:
            self.in_app = False
            exit.exit_task(self)

    def _stay_frozen(self) -> None:
        """Wait out a kernel freeze (OCI pause); only a kill ends it early."""
        kernel = self.kernel
        with contextlib.suppress(Errno):
            self.block_on(
                kernel.freeze_queue, lambda: True if not kernel.frozen else None, interruptible=False
            )

    def handle_fault(self, event: Fault) -> None:
        """Demand paging and COW first; anything else becomes a synchronous signal."""
        page_fault = event.signo == sig.SIGSEGV and (
            event.vector == PAGE_FAULT_VECTOR or event.si_code in (sig.SEGV_MAPERR, sig.SEGV_ACCERR)
        )
        if page_fault and self.mm.handle_fault(event.addr, event.access):
            return
        self.fault_info = (max(event.vector, 0), event.error_code, event.addr)
        code = event.si_code
        if page_fault and code not in (sig.SEGV_MAPERR, sig.SEGV_ACCERR):
            code = sig.SEGV_ACCERR if self.mm.find_vma(event.addr) else sig.SEGV_MAPERR
        # Any other SIGSEGV (#GP) gets SI_KERNEL and no address, as on Linux.
        addr = event.addr if page_fault or event.signo != sig.SIGSEGV else 0
        self.kernel.signals.force(self, SigInfo.fault(event.signo, code, addr))

    def __repr__(self) -> str:
        return f"<Task {self.tid} of {self.tg.pid} {self.comm!r}>"
