"""One stub process: its shared region, its control channel, its threads.

The Sentry talks to a stub through a memfd mapped at SHARED_BASE in the stub
and anywhere in the Sentry:

- the control RO area is read-only in the stub, so app code (which shares
  the stub's address space) cannot forge a request; the stub's control loop
  acknowledges each request by writing to an eventfd the app cannot reach,
  with a success/failure value chosen from its own registers, so app code
  cannot forge an outcome either;
- each worker thread's message holds its saved context. App code can write
  it, so the Sentry takes only register values from it and validates
  everything else (`StubCorrupted`).

Stubs are started from one long-lived spawner thread: PR_SET_PDEATHSIG
fires when the *thread* that forked the stub exits, so that thread must live
as long as the platform.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import mmap
import os
import select
import signal
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kvmsandbox import xsave
from kvmsandbox.platform import PlatformError
from kvmsandbox.systrap import layout
from kvmsandbox.systrap._systrap import ffi, lib

if TYPE_CHECKING:
    from kvmsandbox.systrap.context import SystrapContext

STUB_PATH = Path(__file__).with_name("stub")

REQUEST_TIMEOUT_S = 5.0
ACK_OK, ACK_FAIL = 1, 2
SIGNAL_MASK_WORKER = ~sum(
    1 << (s - 1)
    for s in (
        signal.SIGSYS,
        signal.SIGSEGV,
        signal.SIGBUS,
        signal.SIGILL,
        signal.SIGFPE,
        signal.SIGTRAP,
        signal.SIGCHLD,
    )
) & ((1 << 64) - 1)

_REQUEST = struct.Struct("<Q7Q")
_FPROG = struct.Struct("<HxxxxxxQ")
_STACK_T = struct.Struct("<QixxxxQ")
_U64 = struct.Struct("<Q")
_RW = mmap.PROT_READ | mmap.PROT_WRITE


FCW_DEFAULT, MXCSR_DEFAULT = 0x37F, 0x1F80


@functools.cache
def default_fpu() -> bytes:
    """The XSAVE image of a fresh thread: FCW and MXCSR at reset values, all registers zero."""
    image = bytearray(lib.systrap_xsave_size())
    struct.pack_into("<H", image, 0, FCW_DEFAULT)
    struct.pack_into("<I", image, 24, MXCSR_DEFAULT)
    image[xsave.XSTATE_BV_OFFSET] = xsave.XFEATURE_FP_SSE
    return bytes(image)


class StubDied(PlatformError):
    """The stub process exited or was killed."""


class StubCorrupted(PlatformError):
    """The stub's shared state is inconsistent (app code wrote it, or the stub broke)."""


class StubThread:
    """A worker thread of a stub: one app thread runs on it at a time."""

    def __init__(self, stub: Stub, index: int, tid: int) -> None:
        self.stub = stub
        self.index = index
        self.tid = tid
        self.offset = layout.thread_offset(index)
        self.state = ffi.cast("uint32_t *", stub.base_ptr + self.offset + layout.MSG_STATE)
        self.owner: SystrapContext | None = None  # whose FPU state is in this thread's message

    def write_fpu(self, image: bytes | bytearray) -> None:
        """Put an XSAVE image in the message, made valid for the host's sigreturn (kvmsandbox.xsave)."""
        size = len(default_fpu())
        start = self.offset + layout.MSG_FPU
        self.stub.view[start : start + size] = xsave.sanitize(image, size, xsave.host_xfeatures())

    def read_fpu(self) -> bytearray:
        start = self.offset + layout.MSG_FPU
        return bytearray(self.stub.view[start : start + len(default_fpu())])

    def kick(self) -> None:
        """Send the interrupt signal (SIGCHLD) to this thread; a dead stub is noticed by the waiter."""
        lib.systrap_tgkill(self.stub.pid, self.tid, signal.SIGCHLD)


class Stub:
    """A stub process and the Sentry's end of its shared region."""

    def __init__(
        self,
        memfd: int,
        spawn: Callable[[Callable[[int], int], int], int],
        filters: tuple[bytes, bytes],
        fsgsbase: bool,
    ) -> None:
        """Start a stub on `memfd` (the memory file); `spawn(fn, memfd)` runs fn on the spawner thread."""
        self.lock = threading.Lock()
        self.pid = -1
        self.pidfd = -1
        self.dead = False
        self._seq = 0
        self._nthreads = 0
        self.threads: list[StubThread] = []
        self.shared = self.view = self.base_ptr = None
        self.shared_fd = os.memfd_create("systrap-shared", os.MFD_CLOEXEC)
        # Non-blocking so that a dead stub's eventfd can be drained for its death report.
        self.ack_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._death_errno = 0
        try:
            os.ftruncate(self.shared_fd, layout.SHARED_SIZE)
            self.shared = mmap.mmap(self.shared_fd, layout.SHARED_SIZE, mmap.MAP_SHARED, _RW)
            self.view = memoryview(self.shared)
            self.base_ptr = ffi.from_buffer("char[]", self.shared)
            self._req_seq = ffi.cast("uint32_t *", self.base_ptr + layout.REQ_SEQ)
            self._write_control_area(filters, fsgsbase)
            self.pid = spawn(self._spawn, memfd)
            self.pidfd = os.pidfd_open(self.pid)
        except BaseException:
            self.close()
            raise

    def _write_control_area(self, filters: tuple[bytes, bytes], fsgsbase: bool) -> None:
        v = self.view
        _U64.pack_into(v, layout.RO_FLAGS, layout.FLAG_FSGSBASE if fsgsbase else 0)
        _U64.pack_into(v, layout.RO_ACK_OK, ACK_OK)
        _U64.pack_into(v, layout.RO_ACK_FAIL, ACK_FAIL)
        _U64.pack_into(v, layout.RO_SIGMASK_WORKER, SIGNAL_MASK_WORKER)
        worker, process = filters
        for prog_off, filt_off, prog in (
            (layout.RO_FPROG_WORKER, layout.RO_FILTER_WORKER, worker),
            (layout.RO_FPROG_PROCESS, layout.RO_FILTER_PROCESS, process),
        ):
            if len(prog) // 8 > layout.RO_FILTER_MAX:
                raise ValueError("seccomp filter too long")
            v[filt_off : filt_off + len(prog)] = prog
            _FPROG.pack_into(v, prog_off, len(prog) // 8, layout.SHARED_BASE + filt_off)
        stack_size = layout.THREAD_SIZE - layout.THREAD_MSG_SIZE
        for i in range(layout.MAX_THREADS):
            stack = layout.SHARED_BASE + layout.thread_offset(i) + layout.THREAD_MSG_SIZE
            _STACK_T.pack_into(v, layout.RO_ALTSTACKS + i * layout.STACK_T_SIZE, stack, 0, stack_size)

    def _spawn(self, memfd: int) -> int:
        """Start the stub with exactly the memory file, the shared region and the ack eventfd."""
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in (memfd, self.shared_fd, self.ack_fd)]
        try:
            targets = (layout.STUB_MEMFD, layout.STUB_SHAREDFD, layout.STUB_ACKFD)
            actions = [(os.POSIX_SPAWN_DUP2, fd, target) for fd, target in zip(high, targets, strict=True)]
            path = str(STUB_PATH)
            return os.posix_spawn(path, [path, str(os.getpid())], {}, file_actions=actions, setpgroup=0)
        finally:
            for fd in high:
                os.close(fd)

    # -- liveness ---------------------------------------------------------

    def alive(self) -> bool:
        if self.dead:
            return False
        readable, _, _ = select.select([self.pidfd], [], [], 0)  # stateless: safe from any thread
        if readable:
            self.dead = True
        return not self.dead

    def check_alive(self) -> None:
        if not self.alive():
            raise StubDied(f"systrap stub {self.pid} died ({self._exit_status()})")

    def _exit_status(self) -> str:
        try:
            info = os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return "already reaped"
        if info is None:
            return "running"
        if info.si_code == os.CLD_EXITED:
            reason = layout.EXIT_REASONS.get(info.si_status)
            err = self._death_report()
            return (
                f"exit status {info.si_status}"
                + (f": {reason}" if reason else "")
                + (f": {errno.errorcode.get(err, err)} ({os.strerror(err)})" if err else "")
            )
        return f"killed by signal {info.si_status}"

    def _death_report(self) -> int:
        """The errno of the failed set-up step, if the stub reported one (stub.c die_errno), else 0.

        Only asked once the stub has exited: an ack still unread then is of no
        use to anyone.
        """
        if not self._death_errno:
            with contextlib.suppress(BlockingIOError):
                self._decode_death_report(os.eventfd_read(self.ack_fd))
        return self._death_errno

    def _decode_death_report(self, value: int) -> bool:
        if value < layout.DEATH_REPORT:
            return False
        self._death_errno = value - layout.DEATH_REPORT
        return True

    def kill(self) -> None:
        """SIGKILL the stub (idempotent); its threads' waiters then see StubDied."""
        if self.pidfd >= 0 and not self.dead:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            self.dead = True

    # -- control requests -------------------------------------------------

    def request(self, op: int, *args: int) -> int:
        """Have the control loop perform `op`; return its (untrusted) raw result.

        Success or failure comes from the eventfd acknowledgement, which app
        code cannot forge; a failed request kills the stub, because its
        address space is then in an unknown state.
        """
        with self.lock:
            self.check_alive()
            _REQUEST.pack_into(self.view, layout.REQ_OP, op, *args, *(0,) * (7 - len(args)))
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            lib.systrap_publish(self._req_seq, self._seq)
            ack = self._wait_ack()
            result = _U64.unpack_from(self.view, layout.RW_RESULT)[0]
        if ack != ACK_OK:
            self.kill()
            raise StubCorrupted(f"systrap stub request {op}{args} failed (ack {ack}, result {result:#x})")
        return result

    def _wait_ack(self) -> int:
        ack = lib.systrap_wait_ack(self.ack_fd, self.pidfd, int(REQUEST_TIMEOUT_S * 1000))
        if self._decode_death_report(ack):
            # It failed its set-up and is exiting: wait for that, for the exit status.
            select.select([self.pidfd], [], [], REQUEST_TIMEOUT_S)
            ack = -1
        if ack > 0:
            return ack
        if ack < 0:
            self.dead = True
            self.check_alive()
        self.kill()
        raise StubDied(f"systrap stub {self.pid} did not answer a request")

    def mm(self, nr: int, *args: int) -> None:
        self.request(layout.OP_SYSCALL, nr, *args)

    # -- threads ----------------------------------------------------------

    def new_thread(self) -> StubThread:
        """Clone a worker thread and wait until it parks in the signal handler."""
        with self.lock:
            index = self._nthreads
            if index >= layout.MAX_THREADS:
                raise PlatformError(f"systrap stub has no room for more than {layout.MAX_THREADS} threads")
            self._nthreads += 1
        off = layout.thread_offset(index)
        self.view[off : off + layout.THREAD_MSG_SIZE] = bytes(layout.THREAD_MSG_SIZE)
        tid = self.request(layout.OP_CLONE, index)
        if not 0 < tid < 1 << 31:
            raise StubCorrupted(f"systrap stub reported thread id {tid:#x}")
        thread = StubThread(self, index, tid)
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        none = layout.STATE_NONE
        while (state := lib.systrap_wait(thread.state, none, 50_000_000, 0)) == none:
            self.check_alive()
            if time.monotonic() > deadline:
                self.kill()
                raise StubDied(f"systrap stub {self.pid}: thread {index} never started")
        if state != layout.STATE_EVENT:
            self.kill()
            raise StubCorrupted(f"systrap stub thread {index} started in state {state}")
        self.threads.append(thread)
        return thread

    # -- teardown ---------------------------------------------------------

    def close(self) -> None:
        """Kill the stub, reap it and free the shared region."""
        if self.pid > 0:
            self.kill()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = -1
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        if self.base_ptr is not None:
            ffi.release(self.base_ptr)
            self.base_ptr = None
        if self.view is not None:
            self.view.release()
            self.view = None
        if self.shared is not None:
            self.shared.close()
            self.shared = None
        for name in ("shared_fd", "ack_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
