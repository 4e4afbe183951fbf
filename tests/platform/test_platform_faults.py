"""Faults and exceptions: the right signal, si_code, address, access and RIP, and a working resumption."""

from __future__ import annotations

import struct

import pytest
from platform_harness import (
    DATA_VA,
    FPE_INTDIV,
    ILL_ILLOPN,
    SEGV_ACCERR,
    SEGV_MAPERR,
    SI_KERNEL,
    SIGFPE,
    SIGILL,
    SIGSEGV,
    SIGTRAP,
    STACK_TOP,
    SYS_REPORT,
    SYS_SIGRETURN,
    TEST_VA,
    H,
)

from kvmsandbox.platform import PAGE_SIZE, Access, Fault, Syscall


def resume_and_report(app, symbol, **regs):
    """After a fault, continue at `symbol`: the app must reach its SYS_REPORT."""
    app.regs.rip = app.snippet.addr(symbol)
    for name, value in regs.items():
        setattr(app.regs, name, value)
    event = app.switch()
    assert isinstance(event, Syscall) and event.nr == SYS_REPORT, f"resuming: {app.describe(event)}"
    return event


def check_fault(app, event, *, signo, si_code, rip, addr=None, access=None):
    desc = app.describe(event)
    assert isinstance(event, Fault), f"expected signal {signo}, got {desc}"
    assert event.signo == signo, desc
    assert event.si_code == si_code, f"si_code {event.si_code:#x}, Linux gives {si_code:#x}: {desc}"
    assert app.regs.rip == rip, (
        f"rip {app.snippet.name_of(app.regs.rip)}, expected {app.snippet.name_of(rip)}"
    )
    if addr is not None:
        assert event.addr == addr, f"fault address {event.addr:#x}, expected {addr:#x}: {desc}"
    if access is not None:
        assert event.access == access, f"access {event.access!r}, expected {access!r}: {desc}"


TF = 0x100  # RFLAGS trap flag
TRAP_TRACE = 2

# (case, perms of the page at TEST_VA or None for unmapped, probe, access, si_code)
MEMORY_CASES = [
    ("read-unmapped", None, "read_probe", Access.READ, SEGV_MAPERR),
    ("write-unmapped", None, "write_probe", Access.WRITE, SEGV_MAPERR),
    ("write-readonly", Access.READ, "write_probe", Access.WRITE, SEGV_ACCERR),
    ("write-rx", Access.RX, "write_probe", Access.WRITE, SEGV_ACCERR),
    ("exec-unmapped", None, "exec_probe", Access.EXEC, SEGV_MAPERR),
    ("exec-readonly", Access.READ, "exec_probe", Access.EXEC, SEGV_ACCERR),
    ("exec-rw", Access.RW, "exec_probe", Access.EXEC, SEGV_ACCERR),
]


@pytest.mark.parametrize(
    ("case", "perms", "probe", "access", "si_code"), MEMORY_CASES, ids=[c[0] for c in MEMORY_CASES]
)
def test_memory_fault(make_app, snippets, rng, case, perms, probe, access, si_code):
    """Unmapped, read-only and no-exec pages fault with the exact address, access kind and si_code."""
    app = make_app("faults")
    page = TEST_VA + rng.randrange(16) * PAGE_SIZE
    if perms is not None:
        # executable content, so an exec that wrongly succeeds reports instead of crashing
        app.map_new(page, 1, perms, snippets["exec_target"].code)
    # an exec target must be where the instruction starts; data accesses anywhere in the page
    target = page if access == Access.EXEC else page + rng.randrange(0, PAGE_SIZE - 8, 8)
    event = app.run_at(probe, rdi=target, rsi=rng.getrandbits(64))
    fault_rip = target if access == Access.EXEC else app.snippet.addr(probe)
    check_fault(app, event, signo=SIGSEGV, si_code=si_code, rip=fault_rip, addr=target, access=access)
    if access == Access.EXEC:
        # the call pushed its return address: return to the probe's tail
        resume_and_report(app, "exec_probe_next", rsp=app.regs.rsp + 8)
    else:
        resume_and_report(app, probe + "_next")


def test_exec_allowed_page_runs(make_app, snippets):
    """Control for the exec cases: the same page mapped RX runs and reports its own address."""
    app = make_app("faults")
    app.map_new(TEST_VA, 1, Access.RX, snippets["exec_target"].code)
    event = app.run_at("exec_probe", rdi=TEST_VA)
    assert isinstance(event, Syscall) and event.nr == SYS_REPORT, app.describe(event)
    assert event.args[0] == TEST_VA, f"the code at {TEST_VA:#x} reported running at {event.args[0]:#x}"


def test_ud2_is_sigill(make_app):
    app = make_app("faults")
    event = app.run_at("ud_probe")
    rip = app.snippet.addr("ud_probe")
    check_fault(app, event, signo=SIGILL, si_code=ILL_ILLOPN, rip=rip, addr=rip)
    resume_and_report(app, "ud_probe_next")


def test_int3_is_sigtrap_after_the_instruction(make_app):
    app = make_app("faults")
    event = app.run_at("int3_probe")
    check_fault(app, event, signo=SIGTRAP, si_code=SI_KERNEL, rip=app.snippet.addr("int3_probe_next"))
    event = app.switch()  # a trap resumes after the int3 as is
    assert isinstance(event, Syscall) and event.nr == SYS_REPORT, app.describe(event)


def test_divide_error_is_sigfpe(make_app, rng):
    app = make_app("faults")
    event = app.run_at("div_probe", rax=rng.getrandbits(64), rdx=0, rcx=0)
    rip = app.snippet.addr("div_probe")
    check_fault(app, event, signo=SIGFPE, si_code=FPE_INTDIV, rip=rip, addr=rip)
    resume_and_report(app, "div_probe_next")


# probe -> extra registers. Each must #GP in user mode: SIGSEGV, si_code SI_KERNEL.
PRIVILEGED = {
    "cr3_write_probe": {"rdi": 0},
    "cr3_read_probe": {},
    "cr0_read_probe": {},
    "rdmsr_probe": {"rcx": 0xC000_0080},
    "wrmsr_probe": {"rcx": 0xC000_0100, "rax": 0, "rdx": 0},
    "hlt_probe": {},
    "in_probe": {"rdx": 0x30},
    "out_probe": {"rdx": 0x40},
    "out_exit_probe": {},
    "out_exc_probe": {},
    "cli_probe": {},
    "invlpg_probe": {"rdi": 0x400000},
    "lidt_probe": {"rdi": 0x100000},
    "lgdt_probe": {"rdi": 0x100000},
    "swapgs_probe": {},
    "wbinvd_probe": {},
    "sysret_probe": {"rcx": 0x400000, "r11": 0x202},
    "dr7_probe": {"rdi": 0},
    "xsetbv_probe": {"rcx": 0, "rax": 3, "rdx": 0},
    "clts_probe": {},
}


@pytest.mark.parametrize("probe", sorted(PRIVILEGED))
def test_privileged_instruction_is_sigsegv(make_app, probe):
    """Privileged instructions (control registers, MSRs, hlt, port I/O, descriptor tables...) are SIGSEGV."""
    app = make_app("faults")
    regs = dict(PRIVILEGED[probe])
    if probe == "sysret_probe":
        regs["rcx"] = app.snippet.addr("probe_report")  # where a SYSRET that worked would land
    event = app.run_at(probe, **regs)
    check_fault(app, event, signo=SIGSEGV, si_code=SI_KERNEL, rip=app.snippet.addr(probe))
    resume_and_report(app, probe + "_next")


CHAIN = ("cr3_read", "cr3_write", "rdmsr", "wrmsr", "hlt")


def run_chain(app, prefix, enter=True):
    """Run `chain`/`sig_chain` (from its start, or from wherever the app is if not `enter`): each
    privileged instruction must fault; skip it and go on."""
    labels = [f"{prefix}_{op}" for op in CHAIN] + [f"{prefix}_end"]
    if enter:
        app.regs.rip = app.snippet.addr(prefix)
    for label, following in zip(labels, labels[1:], strict=False):
        event = app.switch()
        check_fault(app, event, signo=SIGSEGV, si_code=SI_KERNEL, rip=app.snippet.addr(label))
        app.regs.rip = app.snippet.addr(following)
    return app.switch()


# how to raise a first exception: probe, registers, signal
EXCEPTIONS = {
    "ud2": ("ud_probe", {}, SIGILL),
    "int3": ("int3_probe", {}, SIGTRAP),
    "pagefault": ("read_probe", {"rdi": TEST_VA}, SIGSEGV),
    "divide": ("div_probe", {"rcx": 0, "rdx": 0}, SIGFPE),
    "gp": ("cr3_read_probe", {}, SIGSEGV),
}


@pytest.mark.parametrize("after", ["exception", "signal-return"])
@pytest.mark.parametrize("first", sorted(EXCEPTIONS))
def test_no_privilege_after_exception(make_app, first, after):
    """`mov cr3`, `rdmsr`, `wrmsr`, `hlt` still fault after resuming from an exception and after a
    (Sentry-emulated) signal handler and its rt_sigreturn: resumption never leaves the app privileged."""
    app = make_app("faults")
    probe, regs, signo = EXCEPTIONS[first]
    event = app.run_at(probe, **regs)
    assert isinstance(event, Fault) and event.signo == signo, app.describe(event)
    if after == "exception":
        event = run_chain(app, "chain")
        assert isinstance(event, Syscall) and event.nr == SYS_REPORT, app.describe(event)
        return
    saved = app.regs.copy()
    # deliver the signal: handler(signo) on a fresh stack frame below the interrupted one
    app.regs.rsp = ((app.regs.rsp - 1024) & ~15) - 8
    app.regs.rdi = signo
    event = run_chain(app, "sig_chain")
    assert isinstance(event, Syscall) and event.nr == SYS_SIGRETURN, app.describe(event)
    # rt_sigreturn: restore the interrupted registers, continuing where the handler said
    app.regs = saved
    event = run_chain(app, "chain")
    assert isinstance(event, Syscall) and event.nr == SYS_REPORT, app.describe(event)


def test_access_straddling_into_an_unmapped_page(make_app, rng):
    """An 8-byte read that starts on a mapped page and ends on an unmapped one faults at the first
    byte of the unmapped page (CR2 semantics), with rip on the instruction."""
    app = make_app("faults")
    app.map_new(TEST_VA, 1, Access.RW)
    start = TEST_VA + PAGE_SIZE - rng.choice((1, 4, 7))
    event = app.run_at("read_probe", rdi=start)
    rip = app.snippet.addr("read_probe")
    check_fault(
        app, event, signo=SIGSEGV, si_code=SEGV_MAPERR, rip=rip, addr=TEST_VA + PAGE_SIZE, access=Access.READ
    )


def test_single_step_traps_after_one_instruction(make_app):
    """With TF set by the Sentry (ptrace single-step), the app runs one instruction and stops with
    SIGTRAP (TRAP_TRACE) at the next; clearing TF lets it run on."""
    app = make_app("faults")
    app.regs.rflags |= TF
    event = app.run_at("read_probe", rdi=DATA_VA)
    check_fault(app, event, signo=SIGTRAP, si_code=TRAP_TRACE, rip=app.snippet.addr("read_probe_next"))
    event = app.switch()  # TF still set: one more instruction (the jmp to probe_report)
    check_fault(app, event, signo=SIGTRAP, si_code=TRAP_TRACE, rip=app.snippet.addr("probe_report"))
    app.regs.rflags &= ~TF
    event = app.switch()
    assert isinstance(event, Syscall) and event.nr == SYS_REPORT, app.describe(event)
    # resuming a single-stepped app (an IRETQ-based path on kvm) leaves it unprivileged
    app.regs.rflags |= TF
    event = app.run_at("chain")
    check_fault(app, event, signo=SIGTRAP, si_code=TRAP_TRACE, rip=app.snippet.addr("chain_cr3_read"))
    app.regs.rflags &= ~TF
    event = run_chain(app, "chain", enter=False)
    assert isinstance(event, Syscall) and event.nr == SYS_REPORT, app.describe(event)


@pytest.mark.parametrize(
    "rip",
    [0, 0x0000_8000_0000_0000, 0xFFFF_8000_0000_1000, 0xFFFF_FFFF_FFFF_F000],
    ids=["null", "non-canonical", "kernel-half", "top-page"],
)
def test_sentry_set_bad_rip_is_a_fault(make_app, rip):
    """A RIP the Sentry sets to an unusable address (a forged sigreturn frame, say), non-canonical
    included (the SYSRET hazard), gives the app SIGSEGV at that RIP; the platform carries on."""
    app = make_app("faults")
    app.regs.rip = rip
    event = app.switch()
    assert isinstance(event, Fault) and event.signo == SIGSEGV, app.describe(event)
    assert app.regs.rip == rip, f"rip {app.regs.rip:#x} after jumping to {rip:#x}: {app.describe(event)}"
    resume_and_report(app, "probe_report")


BAD_STACKS = {
    "null": 0,
    "unmapped": 0x7FF0,
    "non-canonical-low": 0x0000_8000_0000_0000,
    "non-canonical-high": 0xFFFF_8000_0000_0000 - 8,
    "top": 0xFFFF_FFFF_FFFF_FFF8,
}
PROBES = {"syscall": ("probe_report", 0), "ud2": ("ud_probe", SIGILL), "int3": ("int3_probe", SIGTRAP)}


@pytest.mark.parametrize("stack", sorted(BAD_STACKS))
@pytest.mark.parametrize("what", sorted(PROBES))
def test_bad_user_stack_does_not_matter(make_app, stack, what):
    """Syscalls and exceptions never use the app's stack: with rsp unmapped, non-canonical or in the
    kernel half they are reported normally, with that exact rsp, and the app resumes."""
    rsp = BAD_STACKS[stack]
    probe, signo = PROBES[what]
    app = make_app("faults")
    event = app.run_at(probe, rsp=rsp)
    if signo:
        assert isinstance(event, Fault) and event.signo == signo, app.describe(event)
    else:
        assert isinstance(event, Syscall) and event.nr == SYS_REPORT, app.describe(event)
    assert app.regs.rsp == rsp, f"rsp {app.regs.rsp:#x}, the app had {rsp:#x}"
    resume_and_report(app, "probe_report")
    assert app.regs.rsp == rsp


@pytest.mark.parametrize("next_page", ["unmapped", "no-exec"])
def test_instruction_fetch_across_a_page_boundary(make_app, snippets, next_page):
    """Execution that runs off the end of an executable page into an unmapped or no-exec page
    faults on the fetch: the address is the first byte of the next page, access EXEC, and rip is
    the instruction that straddles the boundary (it has not executed: rax keeps its value)."""
    sled = snippets["sled"]
    app = make_app("faults")
    app.map_new(TEST_VA, 1, Access.RX, sled.code[:PAGE_SIZE])
    if next_page == "no-exec":
        app.map_new(TEST_VA + PAGE_SIZE, 1, Access.RW, sled.code[PAGE_SIZE:])
    app.regs.rip = TEST_VA
    app.regs.rax = 0x5EED
    event = app.switch()
    straddle = TEST_VA + sled.symbols["straddle"]
    si_code = SEGV_MAPERR if next_page == "unmapped" else SEGV_ACCERR
    check_fault(
        app, event, signo=SIGSEGV, si_code=si_code, rip=straddle, addr=TEST_VA + PAGE_SIZE, access=Access.EXEC
    )
    assert app.regs.rax == 0x5EED, "the straddling instruction executed"


USER_CS, USER_SS, KERNEL_CS, KERNEL_SS = 0x33, 0x2B, 0x10, 0x18
IOPL3 = 0x3000

# frame name -> (cs, ss, extra RFLAGS, expect a fault at the iretq)
IRET_FRAMES = {
    "user": (USER_CS, USER_SS, 0, False),
    "user-iopl3": (USER_CS, USER_SS, IOPL3, False),
    "kernel-cs": (KERNEL_CS, KERNEL_SS, 0, True),
    "user-cs-rpl0": (USER_CS & ~3, USER_SS, 0, True),
}


@pytest.mark.parametrize("frame", sorted(IRET_FRAMES))
def test_iretq_from_the_app_gains_nothing(make_app, frame):
    """The app's own IRETQ (legal in user mode) with a user frame just continues there, and with a
    ring-0 CS or an IOPL=3 request still leaves it unprivileged: a kernel frame is SIGSEGV at the
    iretq, IOPL is ignored (port I/O and cli still fault), and mov cr3/rdmsr/wrmsr/hlt still fault."""
    cs, ss, extra_flags, faults = IRET_FRAMES[frame]
    app = make_app("faults")
    frame_va = STACK_TOP - 0x100
    target = app.snippet.addr("chain_cr3_read")  # past chain's `mov ecx` (rdmsr's ecx is set here)
    app.regs.rcx = 0xC000_0080
    words = [target, cs, 0x202 | extra_flags, STACK_TOP - 0x200, ss]
    app.mf.write(app.stack_off + frame_va - H["STACK_VA"], struct.pack("<5Q", *words))
    app.regs.rsp = frame_va
    app.regs.rip = app.snippet.addr("iret_probe")
    if faults:
        event = app.switch()
        check_fault(app, event, signo=SIGSEGV, si_code=SI_KERNEL, rip=app.snippet.addr("iret_probe"))
        app.regs.rip = target
    event = run_chain(app, "chain", enter=False)  # the iretq (or the harness) put rip on the chain
    assert app.regs.rsp == (frame_va if faults else STACK_TOP - 0x200), f"rsp {app.regs.rsp:#x}"
    assert isinstance(event, Syscall) and event.nr == SYS_REPORT, app.describe(event)
    for probe in ("out_probe", "cli_probe"):
        event = app.run_at(probe, rdx=0x80)
        check_fault(app, event, signo=SIGSEGV, si_code=SI_KERNEL, rip=app.snippet.addr(probe))
