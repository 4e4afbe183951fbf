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
from typing import TYPE_CHECKING

from kvmsandbox.platform import (
    GPR_NAMES,
    RFLAGS_FIXED,
    RFLAGS_USER_MASK,
    Access,
    Context,
    Event,
    Fault,
    Interrupted,
    Regs,
    Syscall,
)
from kvmsandbox.systrap import layout
from kvmsandbox.systrap._systrap import lib
from kvmsandbox.systrap.stubproc import Stub, StubCorrupted, StubDied, StubThread, default_fpu

if TYPE_CHECKING:
    from kvmsandbox.systrap.systrap_platform import SystrapAddressSpace

REG_FIELDS = (*GPR_NAMES, "rip", "rflags", "fs_base", "gs_base")
_REGS = struct.Struct(f"<{layout.MSG_NREGS}Q")
_U64 = struct.Struct("<Q")
_SIGNO = struct.Struct("<I")
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
SIGSYS, SIGCHLD = int(signal.SIGSYS), int(signal.SIGCHLD)
STATE_APP, STATE_EVENT = layout.STATE_APP, layout.STATE_EVENT


class SystrapContext(Context):
    """One app thread's execution vehicle on systrap."""

    def __init__(self, spin_ns: int = 0) -> None:
        self._spin_ns = spin_ns
        self._interrupt = False
        self._kicked_at = 0.0
        self._thread: StubThread | None = None
        # The FPU state lives in the message of the stub thread this context
        # last ran on (`_fpu_thread`, whose `owner` is this context) until
        # another context takes that thread; then it is saved in `_fpu`.
        self._fpu_thread: StubThread | None = None
        self._fpu: bytearray | None = None

    def interrupt(self) -> None:
        # No lock: under the GIL, "set flag, then read _thread" here and "set
        # _thread, then read flag" in switch() cannot both miss each other.
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

    def switch(self, address_space: SystrapAddressSpace, regs: Regs) -> Event:
        thread = address_space.acquire_thread(self._fpu_thread)
        try:
            self._thread = thread
            if thread.owner is not self:
                self._take_fpu(thread)
            if regs.fpu is not None:
                thread.write_fpu(regs.fpu)
                regs.fpu = None
            if self._interrupt:
                self._interrupt = False
                return _INTERRUPTED
            self._kicked_at = 0.0
            _store(thread, regs)
            return self._run(thread, regs)
        finally:
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
        view = thread.stub.view
        off = thread.offset
        while True:
            state = lib.systrap_handoff(thread.state, STATE_APP, WAIT_SLICE_NS, self._spin_ns)
            while state == STATE_APP:
                self._check_stuck(thread.stub)
                state = lib.systrap_wait(thread.state, STATE_APP, WAIT_SLICE_NS, self._spin_ns)
            if state != STATE_EVENT:
                thread.stub.kill()
                raise StubCorrupted(f"systrap thread {thread.index} in state {state}")
            signo = _SIGNO.unpack_from(view, off + layout.MSG_SIGNO)[0]
            if signo == SIGCHLD:
                if not self._interrupt:
                    continue  # a stale kick meant for an earlier switch: resume as is
                self._interrupt = False
                _load(view, off, regs)
                return _INTERRUPTED
            _load(view, off, regs)
            if signo == SIGSYS:
                # rax still holds the number, all 64 bits (si_syscall has 32).
                return Syscall(regs.rax, (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9))
            if signo in FAULT_SIGNALS:
                _, _, code, _, _, addr, trapno, err = _HEADER.unpack_from(view, off)
                return _fault(signo, code, addr, trapno, err, regs)
            thread.stub.kill()
            raise StubCorrupted(f"systrap thread {thread.index} reported signal {signo}")

    def _check_stuck(self, stub: Stub) -> None:
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
    at = thread.offset + layout.MSG_REGS
    values = _get_regs(regs)
    try:
        _REGS.pack_into(thread.stub.view, at, *values)
    except struct.error:
        _REGS.pack_into(thread.stub.view, at, *(v & _MASK64 for v in values))
    _U64.pack_into(thread.stub.view, at + _RFLAGS_INDEX * 8, (regs.rflags & RFLAGS_USER_MASK) | RFLAGS_FIXED)


def _load(view: memoryview, off: int, regs: Regs) -> None:
    d = regs.__dict__
    d.update(zip(REG_FIELDS, _REGS.unpack_from(view, off + layout.MSG_REGS), strict=True))
    d["rflags"] = (d["rflags"] & RFLAGS_USER_MASK) | RFLAGS_FIXED


def _fault(signo: int, code: int, addr: int, trapno: int, err: int, regs: Regs) -> Fault:
    if trapno == X86_TRAP_PF:
        access = Access.WRITE if err & PF_WRITE else Access.EXEC if err & PF_INSTR else Access.READ
    else:
        access = Access.NONE
    if signo not in (signal.SIGSEGV, signal.SIGBUS) and not addr:
        addr = regs.rip
    return Fault(addr=addr, access=access, signo=signo, si_code=code, vector=trapno, error_code=err)
