"""App code can reach the stub's rt_sigreturn with a forged frame; what it gains must stay harmless."""

from __future__ import annotations

import signal
import struct
import threading
import time

import pytest
from elftools.elf.elffile import ELFFile
from systrap_harness import DATA_VA, STACK_TOP

from kvmsandbox.platform import PlatformError
from kvmsandbox.systrap import context
from kvmsandbox.systrap.stubproc import STUB_PATH

# struct ucontext (x86-64): uc_mcontext at 40, then these sigcontext fields.
UC_RSP, UC_RIP, UC_EFLAGS, UC_CS, UC_SS, UC_SIGMASK, UC_SIZE = 160, 168, 176, 184, 190, 296, 304
USER_CS, USER_DS = 0x33, 0x2B


def stub_symbol(name: str) -> int:
    with open(STUB_PATH, "rb") as f:
        (sym,) = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
        return sym["st_value"]


def forged_frame(rip: int, rsp: int, blocked: int) -> bytes:
    uc = bytearray(UC_SIZE)
    struct.pack_into("<QQQ", uc, UC_RSP, rsp, rip, 0x202)
    struct.pack_into("<H", uc, UC_CS, USER_CS)
    struct.pack_into("<H", uc, UC_SS, USER_DS)
    struct.pack_into("<Q", uc, UC_SIGMASK, blocked)
    return bytes(uc)


def test_blocking_the_kick_signal_gets_the_stub_killed(make_app, platform, monkeypatch):
    """A forged frame that blocks SIGCHLD makes the app deaf to interrupts: the switch still ends
    (the stub is killed after the grace period) with a PlatformError."""
    monkeypatch.setattr(context, "INTERRUPT_GRACE_S", 0.3)
    app = make_app()
    frame_at = DATA_VA + 0x100
    blocked = 1 << (signal.SIGCHLD - 1)
    platform.memory_file.write(app.data_off + 0x100, forged_frame(app.addr("spin"), STACK_TOP, blocked))
    app.regs.rip = app.addr("jump")
    app.regs.rbx = stub_symbol("stub_restore_rt")
    app.regs.rsp = frame_at  # rt_sigreturn reads the ucontext at rsp (after the popped pretcode)
    kicker = threading.Timer(0.1, app.ctx.interrupt)
    kicker.start()
    start = time.monotonic()
    try:
        with pytest.raises(PlatformError, match="ignored an interrupt"):
            app.ctx.switch(app.asp, app.regs)
    finally:
        kicker.cancel()
    assert time.monotonic() - start < 5


def test_forged_frame_without_blocking_is_just_a_jump(make_app, platform):
    """The same path with an ordinary mask only resumes app code where the frame says."""
    app = make_app()
    platform.memory_file.write(app.data_off + 0x100, forged_frame(app.addr("syscall_loop"), STACK_TOP, 0))
    event = app.run("jump", rbx=stub_symbol("stub_restore_rt"), rsp=DATA_VA + 0x100)
    assert app.regs.rip == app.addr("syscall_loop") + 2, event
