"""Syscall events: exact number and arguments, the return value reaches the app, nothing reaches the host."""

from __future__ import annotations

import struct

from platform_harness import MASK64, SYS_EXIT, H

from kvmsandbox.platform import RFLAGS_USER_MASK, Syscall

ENTRY = H["ECHO_ENTRY"]


def run_echo(app, calls):
    """Run echo.S over `calls` [(nr, args, ret)]; check each event, then what the app stored."""
    table = b"".join(struct.pack("<7Q", nr, *args) + bytes(ENTRY - 56) for nr, args, _ in calls)
    app.set_u64(H["D_PARAM"] + H["ECHO_COUNT"], len(calls))
    app.set_bytes(H["D_LOG"], table)
    after = app.snippet.addr("echo_return")
    seen_r11 = []
    for i, (nr, args, ret) in enumerate(calls):
        event = app.expect_syscall()
        assert event.nr == nr, f"call {i}: nr {event.nr}, the app used {nr}"
        assert tuple(event.args) == tuple(args), f"call {i} (nr {nr}): args {event.args}, app used {args}"
        assert app.regs.rip == after, f"call {i}: rip {app.regs.rip:#x}, syscall ends at {after:#x}"
        assert app.regs.rcx == after, f"call {i}: rcx {app.regs.rcx:#x} is not the return address"
        assert app.regs.r11 & RFLAGS_USER_MASK == app.regs.rflags & RFLAGS_USER_MASK, (
            f"call {i}: r11 {app.regs.r11:#x} is not RFLAGS {app.regs.rflags:#x}"
        )
        seen_r11.append(app.regs.r11)
        app.regs.rax = ret
    event = app.expect_syscall(SYS_EXIT)
    assert event.args[0] == len(calls), f"echo.S did {event.args[0]} of {len(calls)} calls"
    for i, (_, _, ret) in enumerate(calls):
        base = H["D_LOG"] + i * ENTRY
        got_ret, got_rcx, got_r11 = app.data_u64s(base + H["E_RET"], 3)
        assert got_ret == ret, f"call {i}: the app got rax {got_ret:#x}, the Sentry returned {ret:#x}"
        assert got_rcx == after, f"call {i}: the app's rcx after the syscall is {got_rcx:#x}"
        assert got_r11 == seen_r11[i], f"call {i}: the app's r11 {got_r11:#x}, event had {seen_r11[i]:#x}"


def random_args(rng):
    # Edge values too: zero, all ones, sign bit, non-canonical pointers.
    pool = [0, MASK64, 1 << 63, (1 << 63) - 1, 0x0000_8000_0000_0000, 0xFFFF_8000_0000_0000]
    return tuple(rng.choice(pool) if rng.random() < 0.2 else rng.getrandbits(64) for _ in range(6))


def test_syscall_args_and_return_values(make_app, rng):
    """Every argument register reaches the Sentry unchanged and rax comes back to the app bit for bit."""
    app = make_app("echo")
    returns = [0, MASK64, (-14) & MASK64, 1 << 63] + [rng.getrandbits(64) for _ in range(60)]
    calls = [(rng.randrange(0, 451), random_args(rng), ret) for ret in returns]
    run_echo(app, calls)


def test_every_syscall_number_is_an_event(make_app, rng):
    """Raw SYSCALL with every number 0..450 becomes a Syscall event: none reaches the host kernel.

    (exit, kill, mmap, ptrace... with random arguments would visibly break
    the platform if any leaked through.)
    """
    app = make_app("echo")
    calls = [(nr, random_args(rng), rng.getrandbits(64)) for nr in range(451)]
    run_echo(app, calls)


def test_syscall_regs_reported_at_the_event(make_app, rng):
    """At a Syscall event the Sentry sees the app's registers (what signal delivery and ptrace use)."""
    app = make_app("echo")
    args = random_args(rng)
    app.set_u64(H["D_PARAM"] + H["ECHO_COUNT"], 1)
    app.set_u64(H["D_LOG"], 39, *args)
    event = app.expect_syscall()
    assert isinstance(event, Syscall)
    regs = app.regs
    assert (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9) == args
    assert regs.rax == 39, f"rax at the event {regs.rax:#x}: the CPU state at SYSCALL holds the number"
    assert regs.rbx == 0, "rbx holds the echo index (0)"
    assert regs.r13 == H["DATA_VA"] + H["D_LOG"], f"r13 {regs.r13:#x} is echo.S's table pointer"
    assert regs.rsp == H["STACK_TOP"]
    assert regs.fs_base == H["FS_VA"] and regs.gs_base == H["GS_VA"]


def test_syscall_restart(make_app, rng):
    """The Sentry restarts a syscall (ERESTARTSYS after a signal) by putting rip back on the SYSCALL
    and the number back in rax: the app issues the very same call again, then gets the result."""
    app = make_app("echo")
    args = random_args(rng)
    ret = rng.getrandbits(64)
    nr = rng.randrange(451)
    app.set_u64(H["D_PARAM"] + H["ECHO_COUNT"], 1)
    app.set_u64(H["D_LOG"], nr, *args)
    syscall_at = app.snippet.addr("echo_syscall")
    for _ in range(3):
        event = app.expect_syscall()
        assert (event.nr, tuple(event.args)) == (nr, args), app.describe(event)
        app.regs.rip = syscall_at
        app.regs.rax = nr
    event = app.expect_syscall()
    assert (event.nr, tuple(event.args)) == (nr, args), app.describe(event)
    app.regs.rax = ret
    assert app.expect_syscall(SYS_EXIT).args[0] == 1
    assert app.data_u64(H["D_LOG"] + H["E_RET"]) == ret
