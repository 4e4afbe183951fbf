"""Thread groups (processes), process groups and sessions."""

from __future__ import annotations

import resource
import time
from typing import TYPE_CHECKING

from sentry.kernel import signals as sig
from sentry.kernel.signals import Handlers, Pending
from sentry.kernel.waiter import WaitQueue

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.task import Task

RLIM_INFINITY = (1 << 64) - 1
RLIMIT_NAMES = (
    "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
    "MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
)  # fmt: skip
RLIMIT_STACK, RLIMIT_NOFILE, RLIMIT_AS = 3, 7, 9
NR_OPEN = 1 << 20  # /proc/sys/fs/nr_open: the most fds a process may have


def default_rlimits() -> list[tuple[int, int]]:
    """Linux's defaults for a fresh init process (NOFILE 1024 as runsc's spec sets it)."""
    limits = [(RLIM_INFINITY, RLIM_INFINITY)] * len(RLIMIT_NAMES)
    limits[RLIMIT_STACK] = (8 << 20, RLIM_INFINITY)
    limits[4] = (0, RLIM_INFINITY)  # CORE
    limits[6] = (resource.getrlimit(resource.RLIMIT_NPROC)[0] & RLIM_INFINITY, RLIM_INFINITY)
    limits[RLIMIT_NOFILE] = (1024, 1024)
    limits[8] = (8 << 20, 8 << 20)  # MEMLOCK
    limits[11] = (63704, 63704)  # SIGPENDING
    limits[12] = (819200, 819200)  # MSGQUEUE
    limits[13] = (0, 0)
    limits[14] = (0, 0)
    return limits


class Session:
    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.foreground_pgid = sid


class ProcessGroup:
    def __init__(self, pgid: int, session: Session) -> None:
        self.pgid = pgid
        self.session = session
        self.members: set[ThreadGroup] = set()


class ThreadGroup:
    """A process: the threads sharing a pid, signal handlers, children and exit status."""

    def __init__(self, kernel: Kernel, pid: int, parent: ThreadGroup | None, handlers: Handlers) -> None:
        self.kernel = kernel
        self.pid = pid
        self.parent = parent
        self.children: list[ThreadGroup] = []
        self.threads: list[Task] = []  # live threads
        self._leader: Task | None = None
        self.handlers = handlers
        self.pending = Pending()
        self.pgrp: ProcessGroup | None = None
        self.exit_signal = sig.SIGCHLD
        self.rlimits = default_rlimits()
        self.exe_path = ""
        self.start_time_ns = time.time_ns()  # trace points' thread_group_start_time (seccheck)
        # Exit state (guarded by kernel.lock).
        self.exiting = False  # a group exit is in progress
        self.exit_status = 0  # wait status once exiting/zombie
        self.zombie = False
        self.reaped = False
        self.keep_zombie = False  # no parent, but the Sentry collects the status (kernel.wait_process)
        # Job control.
        self.stopping = False  # a group stop is in progress or in effect
        self.stop_signal = 0
        self.stopped_report = False  # a stop not yet reported to wait(WUNTRACED)
        self.continued_report = False  # a continue not yet reported to wait(WCONTINUED)
        self.stop_queue = WaitQueue()
        self.child_wait = WaitQueue()  # children changed state
        self.itimer_real = None
        self.posix_timers: dict = {}
        self.subreaper = False
        self.pdeath_signal = 0
        self.dumpable = 1
        self.no_new_privs = 0
        # /proc/<pid>/oom_score_adj, and the floor an unprivileged writer may not go below.
        self.oom_score_adj = 0
        self.oom_score_adj_min = 0

    # ---- ids for handlers and /proc -------------------------------------

    def pgid(self) -> int:
        return self.pgrp.pgid if self.pgrp else 0

    def sid(self) -> int:
        return self.pgrp.session.sid if self.pgrp else 0

    @property
    def session(self) -> Session | None:
        return self.pgrp.session if self.pgrp else None

    def parent_pid(self) -> int:
        return self.parent.pid if self.parent else 0

    def set_pgrp(self, pgrp: ProcessGroup) -> None:
        """Move to `pgrp` (kernel.lock held); empty groups are forgotten."""
        old = self.pgrp
        if old is pgrp:
            return
        if old is not None:
            old.members.discard(self)
            if not old.members:
                self.kernel.pgroups.pop(old.pgid, None)
        self.pgrp = pgrp
        pgrp.members.add(self)
        self.kernel.pgroups[pgrp.pgid] = pgrp

    @property
    def leader(self) -> Task | None:
        """The leader thread; once it exited, any live thread (what /proc shows)."""
        leader = self._leader
        if leader is not None and leader in self.threads or not self.threads:
            return leader
        return self.threads[0]

    @leader.setter
    def leader(self, task: Task) -> None:
        self._leader = task

    def tasks(self) -> list[Task]:
        """Live threads (for /proc)."""
        return list(self.threads)

    def handlers_shared(self) -> bool:
        """Whether another process shares our signal handlers (clone CLONE_SIGHAND without CLONE_THREAD)."""
        return any(o.handlers is self.handlers for o in self.kernel.tgs.values() if o is not self)

    def set_rlimit(self, resource: int, soft: int, hard: int) -> None:
        """Store a (checked) limit and apply the ones the Sentry enforces to the live process."""
        self.rlimits[resource] = (soft, hard)
        main = self.main_task()
        if resource == RLIMIT_AS and main is not None:
            main.mm.as_limit = soft
        elif resource == RLIMIT_STACK and main is not None:
            main.mm.stack_limit = min(soft, 1 << 30)
        elif resource == RLIMIT_NOFILE:
            for task in self.tasks():
                task.fds.max_fds = min(soft, NR_OPEN)

    def main_task(self) -> Task | None:
        return self.leader if self.threads else None

    def _read_mm(self, start_attr: str, end_attr: str) -> bytes:
        task = self.main_task()
        if task is None:
            return b""
        mm = task.mm
        start, end = getattr(mm, start_attr), getattr(mm, end_attr)
        try:
            return mm.copy_in(start, end - start) if end > start else b""
        except Exception:
            return b""

    def cmdline(self) -> bytes:
        return self._read_mm("arg_start", "arg_end")

    def environ(self) -> bytes:
        return self._read_mm("env_start", "env_end")

    def __repr__(self) -> str:
        return f"<ThreadGroup {self.pid}>"
