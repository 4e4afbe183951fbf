"""Context.switch on systrap: hand a register set to a stub thread, wait for its next stop.

A context borrows an idle worker thread of the address space's stub for the
duration of one switch (threads are parked in the stub's signal handler),
writes the registers into the thread's message, flips the message's state
to APP and sleeps on the futex until the stub flips it back to EVENT.

Interrupts are SIGCHLD sent to the worker with tgkill; the handler reports
them like any other stop. A SIGCHLD that arrives after the switch it was
meant for (the context stopped for another reason first) reaches whichever
context runs on that thread next, so an interrupt event only counts if this
context's own flag is set; otherwise the thread is resumed as it was.
"""

from __future__ import annotations

import operator
import signal
import struct
import threading
import time

from kvmsandbox.platform import (
    GPR_NAMES,
    Access,
    Context,
    Event,
    Fault,
    Interrupted,
    Regs,
    Syscall,
    sanitize_rflags,
)
from kvmsandbox.systrap import layout
from kvmsandbox.systrap._systrap import lib
from kvmsandbox.systrap.stubproc import StubCorrupted, StubDied, StubThread, default_fpu

REG_FIELDS = (*GPR_NAMES, "rip", "rflags", "fs_base", "gs_base")
_REGS = struct.Struct(f"<{layout.MSG_NREGS}Q")
_REGS_RFLAGS = struct.Struct("<Q")
_HEADER = struct.Struct("<IIiIQQQQ")  # state signo code pad nr addr trapno err
_RFLAGS_INDEX = REG_FIELDS.index("rflags")
FPU_LOCK = threading.Lock()  # guards FPU ownership moves between contexts
_get_regs = operator.attrgetter(*REG_FIELDS)
_MASK64 = (1 << 64) - 1

WAIT_SLICE_NS = 50_000_000  # how often a waiting switch checks that the stub is alive
INTERRUPT_GRACE_S = 2.0  # an interrupt not acknowledged by then: the stub is killed

FAULT_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGTRAP})
PF_WRITE, PF_INSTR = 1 << 1, 1 << 4
X86_TRAP_PF = 14

_INTERRUPTED = Interrupted()


class SystrapContext(Context):
    """One app thread's execution vehicle on systrap."""

    def __init__(self, spin_ns: int = 0) -> None:
        self._spin_ns = spin_ns
        self._interrupt = False
        self._kicked_at = 0.0
        self._thread: StubThread | None = None
        self._lock = threading.Lock()
        # The FPU state lives in the message of the stub thread this context
        # last ran on (`_fpu_thread`, whose `owner` is this context) until
        # another context takes that thread; then it is saved in `_fpu`.
        self._fpu_thread: StubThread | None = None
        self._fpu: bytearray | None = None

    def interrupt(self) -> None:
        with self._lock:
            self._interrupt = True
            thread = self._thread
        if thread is not None:
            thread.kick()

    def pull_fpu(self) -> bytearray:
        with FPU_LOCK:
            if self._fpu_thread is not None:
                return self._fpu_thread.read_fpu()
            if self._fpu is not None:
                return bytearray(self._fpu)
            return bytearray(default_fpu())

    def release(self) -> None:
        with FPU_LOCK:
            if self._fpu_thread is not None and self._fpu_thread.owner is self:
                self._fpu_thread.owner = None
            self._fpu_thread = None

    def evict_fpu(self) -> None:
        """Save this context's FPU state out of its thread's message (the thread is being reused or freed)."""
        thread = self._fpu_thread
        if thread is not None:
            self._fpu = thread.read_fpu() if thread.stub.view is not None else None
            thread.owner = None
            self._fpu_thread = None

    def switch(self, address_space, regs: Regs) -> Event:
        thread = address_space.acquire_thread(self._fpu_thread)
        try:
            with self._lock:
                if self._interrupt:
                    self._interrupt = False
                    return _INTERRUPTED
                self._thread = thread
                self._kicked_at = 0.0
            if thread.owner is not self:
                self._take_fpu(thread)
            if regs.fpu is not None:
                thread.write_fpu(regs.fpu)
                regs.fpu = None
            _store(thread, regs)
            return self._run(thread, regs)
        finally:
            with self._lock:
                self._thread = None
            address_space.release_thread(thread)

    def _take_fpu(self, thread: StubThread) -> None:
        with FPU_LOCK:
            if thread.owner is not None:
                thread.owner.evict_fpu()
            self.evict_fpu()
            thread.write_fpu(self._fpu if self._fpu is not None else default_fpu())
            self._fpu = None
            thread.owner = self
            self._fpu_thread = thread

    def _run(self, thread: StubThread, regs: Regs) -> Event:
        stub = thread.stub
        view = stub.view
        off = thread.offset
        while True:
            state = lib.systrap_handoff(thread.state, layout.STATE_APP, WAIT_SLICE_NS, self._spin_ns)
            while state == layout.STATE_APP:
                self._check_stuck(stub)
                state = lib.systrap_wait(thread.state, layout.STATE_APP, WAIT_SLICE_NS, self._spin_ns)
            if state != layout.STATE_EVENT:
                stub.kill()
                raise StubCorrupted(f"systrap thread {thread.index} in state {state}")
            _, signo, code, _, nr, addr, trapno, err = _HEADER.unpack_from(view, off)
            if signo == signal.SIGCHLD:
                with self._lock:
                    if not self._interrupt:
                        continue  # a stale kick meant for an earlier switch: resume as is
                    self._interrupt = False
                _load(thread, regs)
                return _INTERRUPTED
            _load(thread, regs)
            if signo == signal.SIGSYS:
                # rax still holds the number, all 64 bits (si_syscall has 32).
                return Syscall(regs.rax, (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9))
            if signo in FAULT_SIGNALS:
                return _fault(signo, code, addr, trapno, err, regs)
            stub.kill()
            raise StubCorrupted(f"systrap thread {thread.index} reported signal {signo}")

    def _check_stuck(self, stub) -> None:
        """Called every WAIT_SLICE_NS while app code runs: notice a dead or unresponsive stub."""
        stub.check_alive()
        if not self._interrupt:
            return
        now = time.monotonic()
        if not self._kicked_at:
            self._kicked_at = now
        elif now - self._kicked_at > INTERRUPT_GRACE_S:
            # App code blocked the kick signal (it can, through a forged
            # rt_sigreturn frame): the only way to stop it is to kill the stub.
            stub.kill()
            raise StubDied(f"systrap stub {stub.pid} ignored an interrupt; killed")


def _store(thread: StubThread, regs: Regs) -> None:
    view = thread.stub.view
    at = thread.offset + layout.MSG_REGS
    values = _get_regs(regs)
    try:
        _REGS.pack_into(view, at, *values)
    except struct.error:
        _REGS.pack_into(view, at, *(v & _MASK64 for v in values))
    _REGS_RFLAGS.pack_into(view, at + _RFLAGS_INDEX * 8, sanitize_rflags(regs.rflags))


def _load(thread: StubThread, regs: Regs) -> None:
    values = _REGS.unpack_from(thread.stub.view, thread.offset + layout.MSG_REGS)
    regs.__dict__.update(zip(REG_FIELDS, values, strict=True))
    regs.rflags = sanitize_rflags(regs.rflags)


def _fault(signo: int, code: int, addr: int, trapno: int, err: int, regs: Regs) -> Fault:
    if trapno == X86_TRAP_PF:
        access = Access.WRITE if err & PF_WRITE else Access.EXEC if err & PF_INSTR else Access.READ
    else:
        access = Access.NONE
    if signo not in (signal.SIGSEGV, signal.SIGBUS) and not addr:
        addr = regs.rip
    return Fault(addr=addr, access=access, signo=signo, si_code=code, vector=trapno, error_code=err)
