"""What app code on systrap cannot do: reach host syscalls, the stub's privileges, Sentry memory."""

from __future__ import annotations

import signal
import struct
import sys

import capstone
import pytest
from systrap_harness import DATA_VA

from kvmsandbox.platform import Access, Fault, PlatformError, Syscall
from kvmsandbox.systrap import layout, seccomp
from kvmsandbox.systrap.stubproc import STUB_PATH
from kvmsandbox.systrap.systrap_platform import stub_text_end

SEGV_ACCERR = 2


def stub_syscall_sites() -> list[int]:
    """Addresses of every SYSCALL instruction in the stub's code."""
    data = STUB_PATH.read_bytes()
    from elftools.elf.elffile import ELFFile

    with open(STUB_PATH, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        code, base = text.data(), text["sh_addr"]
    assert data and base == layout.STUB_BASE
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    return [insn.address for insn in md.disasm(code, base) if insn.mnemonic == "syscall"]


# The stub's own calls, with the arguments its process filter would accept.
PRIVILEGED = {
    "mmap": dict(rdi=0x700000, rsi=0x1000, rdx=3, r10=seccomp.MAP_SHARED_FIXED, r8=layout.STUB_MEMFD, r9=0),
    "munmap": dict(rdi=0x400000, rsi=0x1000),
    "mprotect": dict(rdi=0x400000, rsi=0x1000, rdx=7),
    "clone": dict(rdi=seccomp.WORKER_CLONE_FLAGS, rsi=0),
    "write": dict(rdi=layout.STUB_ACKFD, rsi=layout.SHARED_BASE + layout.RO_ACK_OK, rdx=8),
    "rt_sigprocmask": dict(rdi=2, rsi=DATA_VA, rdx=0, r10=8),
    "sigaltstack": dict(rdi=0, rsi=0),
    "prctl": dict(rdi=seccomp.PR_SET_SYSCALL_USER_DISPATCH, rsi=0),
    "seccomp": dict(rdi=1, rsi=0, rdx=0),
    "exit_group": dict(rdi=0),
}


def test_stub_has_syscall_sites():
    sites = stub_syscall_sites()
    assert len(sites) >= 5 and all(layout.STUB_BASE <= s < stub_text_end() for s in sites)


@pytest.mark.parametrize("name", sorted(PRIVILEGED))
def test_jumping_into_stub_code_does_not_grant_its_syscalls(make_app, name):
    """App code that jumps onto the stub's own SYSCALL instructions still only traps."""
    app = make_app()
    nr = seccomp.NR[name]
    for site in stub_syscall_sites():
        event = app.run("jump", rax=nr, rbx=site, **PRIVILEGED[name])
        assert isinstance(event, Syscall), f"{name} at stub site {site:#x}: {event!r}"
        assert event.nr == nr and app.regs.rip == site + 2


def test_every_number_traps_including_the_stubs_own(make_app):
    app = make_app()
    for nr in range(451):
        event = app.run("syscall_loop", rax=nr, rdi=layout.STUB_ACKFD, rsi=0x7F0000000000, rdx=8)
        assert isinstance(event, Syscall) and event.nr == nr, f"nr {nr}: {event!r}"


def test_control_page_and_stub_code_are_read_only(make_app):
    """The request page (the Sentry's only channel into the stub) and the stub's code cannot be written."""
    app = make_app()
    for target in (
        layout.SHARED_BASE + layout.REQ_SEQ,
        layout.SHARED_BASE + layout.RO_FPROG_WORKER,
        layout.STUB_BASE,
    ):
        event = app.run("store", rax=target, rbx=0x4141)
        assert isinstance(event, Fault), f"store to {target:#x}: {event!r}"
        assert event.signo == signal.SIGSEGV and event.si_code == SEGV_ACCERR and event.addr == target
        assert event.access == Access.WRITE


def _probe_read(app, addr: int, marker: int) -> None:
    event = app.run("load", rax=addr, rbx=0)
    if isinstance(event, Fault):
        assert event.signo == signal.SIGSEGV and event.addr == addr
    else:
        assert isinstance(event, Syscall) and app.regs.rbx != marker, f"app read Sentry memory at {addr:#x}"


def test_app_cannot_read_sentry_memory(make_app, platform):
    """Sentry addresses (a Python object, the Sentry's view of the memory file) show nothing in the stub."""
    from kvmsandbox.systrap._systrap import ffi

    app = make_app()
    marker = 0x5EC7E7_0000_0000 | id(app) & 0xFFFF_FFFF
    blob = struct.pack("<Q", marker) * 4
    blob_data = id(blob) + sys.getsizeof(b"") - 1  # CPython: bytes payload after the header
    _probe_read(app, blob_data, marker)
    platform.memory_file.write(app.data_off, struct.pack("<Q", marker))
    view = ffi.from_buffer(platform.memory_file.map)
    try:
        sentry_va = int(ffi.cast("uintptr_t", view)) + app.data_off
    finally:
        ffi.release(view)
    _probe_read(app, sentry_va, marker)
    event = app.run("load", rax=DATA_VA, rbx=0)  # the positive control: the app's own mapping
    assert isinstance(event, Syscall) and app.regs.rbx == marker


def test_forged_thread_state_is_a_platform_error(make_app):
    """App code can write its thread's message; a nonsense state there is a clean error, not a hang."""
    app = make_app()
    msg = layout.SHARED_BASE + layout.thread_offset(0)
    with pytest.raises(PlatformError):
        app.run("store_spin", rax=msg + layout.MSG_STATE, rbx=7)


def test_forged_event_is_a_platform_error(make_app):
    app = make_app()
    msg = layout.SHARED_BASE + layout.thread_offset(0)
    with pytest.raises(PlatformError):
        app.run("forge_event", rax=msg, rbx=99, rcx=layout.STATE_EVENT)
