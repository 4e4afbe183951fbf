"""The kernel: the platform, pid space, task/process registries, and shared services."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Any

from kvmsandbox.platform import Platform, Regs
from sentry.kernel.creds import Credentials
from sentry.kernel.futex import Futexes
from sentry.kernel.sending import SignalSender
from sentry.kernel.signals import Handlers
from sentry.kernel.task import Task
from sentry.kernel.threadgroup import ProcessGroup, Session, ThreadGroup
from sentry.kernel.timekeeper import Timekeeper
from sentry.kernel.timers import TimerWheel
from sentry.kernel.waiter import WaitQueue
from sentry.loader.image import Executable, vdso_image
from sentry.mm.frames import Frames, PageCache, SharedPages
from sentry.mm.mm import MM
from sentry.mm.vma import BytesBacking

UTS_RELEASE = "4.4.0"
UTS_VERSION = "#1 SMP Sun Jan 10 15:06:54 PST 2016"
PID_MAX = 4194304
EXE_CACHE_SIZE = 16


class KernelLog:
    """The kernel log `dmesg` reads (syslog(2)): gVisor-style boot lines, each with the `<6>` (KERN_INFO)
    prefix Linux's and gVisor's buffers carry; without it util-linux dmesg reads one multi-line record."""

    BOOT_LINES = (
        "Starting kvmsandbox...",
        "Mounting root filesystem through the Gofer...",
        "Serving system calls from the Sentry...",
        "Setting up VFS...",
        "Ready!",
    )

    def __init__(self) -> None:
        self.text = "".join(f"<6>[{i * 0.000001:12.6f}] {line}\n" for i, line in enumerate(self.BOOT_LINES))


class Kernel:
    def __init__(self, platform: Platform, vfs: Any = None, hostname: str = "kvmsandbox") -> None:
        self.platform = platform
        self.vfs = vfs
        self.frames = Frames(platform.memory_file)
        self.lock = threading.RLock()
        self.tasks: dict[int, Task] = {}
        self.tgs: dict[int, ThreadGroup] = {}
        self.pgroups: dict[int, ProcessGroup] = {}
        self.fd_users: dict[int, int] = {}
        self.init_tg: ThreadGroup | None = None
        self.exited = WaitQueue()
        self.frozen = False
        self.freeze_queue = WaitQueue()
        self._next_pid = 1
        self.signals = SignalSender(self)
        self.futexes = Futexes()
        self.timers = TimerWheel()
        self.vvar = SharedPages(self.frames)
        self.vvar.attach()
        self.timekeeper = Timekeeper(self.vvar)
        image = vdso_image()
        self.vdso = BytesBacking(image, "[vdso]", cache=PageCache(self.frames, image))
        self.hostname = hostname
        self.container_id = ""  # the OCI container id trace points report; set by whoever boots it
        self.network = "none"  # --network: "host" gives AF_INET/AF_INET6 host sockets (sentry/net/host.py)
        self.domainname = "(none)"
        # The container's user namespace as /proc/<pid>/uid_map and gid_map show it: (inside,
        # outside, count) ranges onto the host; set by whoever boots it (the host's identity map).
        self.uid_map: tuple[tuple[int, int, int], ...] = ((0, 0, 2**32 - 1),)
        self.gid_map: tuple[tuple[int, int, int], ...] = ((0, 0, 2**32 - 1),)
        self.boot_monotonic = time.monotonic()
        self.unimplemented: collections.Counter[int] = collections.Counter()
        self.log = KernelLog()
        self._exe_cache: collections.OrderedDict[tuple, Executable] = collections.OrderedDict()

    # ---- ids and lookups -------------------------------------------------

    def alloc_pid(self) -> int:
        with self.lock:
            for _ in range(PID_MAX):
                pid = self._next_pid
                self._next_pid = pid + 1 if pid + 1 < PID_MAX else 300
                if pid not in self.tasks and pid not in self.tgs and pid not in self.pgroups:
                    return pid
        raise RuntimeError("pid space exhausted")

    def task_by_tid(self, tid: int) -> Task | None:
        return self.tasks.get(tid)

    def thread_group(self, pid: int) -> ThreadGroup | None:
        return self.tgs.get(pid)

    def thread_groups(self) -> list[ThreadGroup]:
        with self.lock:
            return sorted(self.tgs.values(), key=lambda tg: tg.pid)

    def process_group(self, pgid: int) -> ProcessGroup | None:
        return self.pgroups.get(pgid)

    def new_mm(self) -> MM:
        p = self.platform
        return MM(self.frames, p.new_address_space(), p.min_user_address, p.max_user_address)

    # ---- executables -----------------------------------------------------

    def open_executable(self, task: Task, path: bytes, dirfd: int = -100, flags: int = 0) -> Executable:
        """Resolve and read an executable through the VFS (cached by identity and mtime)."""
        file, abs_path = self.vfs.open_executable(task, path, dirfd, flags)
        try:
            st = file.stat()
            key = (st.dev, st.ino, st.size, st.mtime_ns, abs_path)
            with self.lock:
                cached = self._exe_cache.get(key)
                if cached is not None:
                    self._exe_cache.move_to_end(key)
                    return dataclasses.replace(cached, stat=st)
            chunks = []
            offset = 0
            while offset < st.size:
                chunk = file.pread(task, min(st.size - offset, 1 << 20), offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
            data = b"".join(chunks)
            backing = BytesBacking(data, abs_path, st.dev, st.ino, PageCache(self.frames, data))
            exe = Executable(data, backing, abs_path, st)
            with self.lock:
                self._exe_cache[key] = exe
                while len(self._exe_cache) > EXE_CACHE_SIZE:
                    _key, old = self._exe_cache.popitem(last=False)
                    old.backing.cache.release()
            return exe
        finally:
            file.decref()

    # ---- the first process ----------------------------------------------

    def create_init(self, fds: Any, fs: Any, creds: Credentials) -> Task:
        """An empty pid-1 task (no program yet: exec one with sentry.kernel.exec.execve)."""
        task = self._new_process(fds, fs, creds)
        self.init_tg = task.tg
        return task

    def create_process(self, fds: Any, fs: Any, creds: Credentials) -> Task:
        """An empty task of a new process outside the tree (an OCI exec), in its own session.

        It has no parent: its zombie stays until `wait_process` collects it.
        """
        task = self._new_process(fds, fs, creds)
        task.tg.keep_zombie = True
        return task

    def _new_process(self, fds: Any, fs: Any, creds: Credentials) -> Task:
        with self.lock:
            pid = self.alloc_pid()
            tg = ThreadGroup(self, pid, None, Handlers())
            tg.set_pgrp(ProcessGroup(pid, Session(pid)))
            task = Task(self, tg, pid, self.new_mm(), fds, fs, creds, Regs())
            tg.threads.append(task)
            tg.leader = task
            self.tasks[pid] = task
            self.tgs[pid] = tg
            self.fd_users[id(fds)] = 1
            return task

    def wait_init(self, timeout: float | None = None) -> int | None:
        """Block until pid 1 is a zombie; its wait status (None on timeout)."""
        assert self.init_tg is not None
        return self.wait_process(self.init_tg, timeout, reap=False)

    def wait_process(self, tg: ThreadGroup, timeout: float | None = None, reap: bool = True) -> int | None:
        """Block until `tg` is a zombie; its wait status (None on timeout). `reap` forgets it then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        event = threading.Event()
        self.exited.add(event)
        try:
            while not tg.zombie:
                event.clear()
                if tg.zombie:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                event.wait(remaining if remaining is not None else 1.0)
        finally:
            self.exited.remove(event)
        if reap:
            from sentry.kernel.exit import reap as forget

            with self.lock:
                forget(tg)
        return tg.exit_status

    # ---- pause/resume (the OCI runtime's pause) ---------------------------

    def freeze(self) -> None:
        """Stop running app code in every task until thaw() (tasks inside syscalls stop on return)."""
        with self.lock:
            self.frozen = True
            for task in list(self.tasks.values()):
                task.wake()

    def thaw(self) -> None:
        with self.lock:
            self.frozen = False
        self.freeze_queue.notify()

    def shutdown(self) -> None:
        """Stop the kernel's own threads that touch app memory (before the platform goes)."""
        self.timekeeper.stop()

    def all_exited(self, timeout: float) -> bool:
        """Wait until every task's thread has finished (after init died)."""
        deadline = time.monotonic() + timeout
        for task in list(self.tasks.values()):
            if task.thread.ident is not None:
                task.thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.thread.is_alive() for t in self.tasks.values())
