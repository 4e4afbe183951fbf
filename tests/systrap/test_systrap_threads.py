"""Worker-thread pooling under load: many contexts, contexts moving between stubs, interrupt storms."""

from __future__ import annotations

import random
import struct
import threading

from systrap_harness import App, Watchdog

from kvmsandbox.platform import Interrupted, Syscall

XMM0 = 160  # offset of xmm0 in the XSAVE legacy area


def with_xmm0(image: bytearray, value: float) -> bytearray:
    struct.pack_into("<dd", image, XMM0, value, value)
    return image


def xmm0(image: bytearray) -> float:
    return struct.unpack_from("<d", image, XMM0)[0]


def switch(app: App, asp) -> object:
    with Watchdog(app.ctx, 10) as dog:
        event = app.ctx.switch(asp, app.regs)
    assert not dog.fired, "watchdog fired"
    return event


def test_many_contexts_in_one_address_space(platform, make_app):
    """Eight contexts on eight Python threads share one stub; registers and FPU state stay per context."""
    first = make_app()
    rounds, errors = 200, []

    def body(k: int) -> None:
        try:
            ctx = first.ctx if k == 0 else platform.new_context()
            app = App.__new__(App)
            app.ctx, app.asp = ctx, first.asp
            app.regs = first.regs.copy()
            app.regs.rip, app.regs.rbx = first.addr("count_loop"), 0
            app.regs.r12 = k
            for n in range(1, rounds + 1):
                event = switch(app, first.asp)
                assert isinstance(event, Syscall), event
                assert app.regs.rbx == n and app.regs.r12 == k, (k, n, app.regs.rbx, app.regs.r12)
            app.regs.rip = first.addr("fpu_loop")
            app.regs.fpu = with_xmm0(ctx.pull_fpu(), float(k + 1))
            for _ in range(10):
                assert isinstance(switch(app, first.asp), Syscall)
            assert xmm0(ctx.pull_fpu()) == float(k + 1) * 2**10
            if k:
                ctx.release()
        except BaseException as exc:  # noqa: BLE001 - collected for the test thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    assert len(first.asp.stub.threads) <= 8


def test_context_moves_between_address_spaces(make_app):
    """One context alternating between two stubs: its FPU state follows it."""
    a, b = make_app(), make_app()
    ctx = a.ctx
    a.regs.rip = a.addr("fpu_loop")
    a.regs.fpu = with_xmm0(ctx.pull_fpu(), 1.5)
    for i in range(20):
        asp = (a.asp, b.asp)[i % 2]
        assert isinstance(switch(a, asp), Syscall)
        a.regs.rip = a.addr("fpu_loop")
    assert xmm0(ctx.pull_fpu()) == 1.5 * 2**20


def test_interrupt_storm_loses_no_syscall(make_app):
    """Interrupts at random moments: every switch returns Syscall or Interrupted, no syscall is lost."""
    app = make_app()
    app.regs.rip, app.regs.rbx = app.addr("count_loop"), 0
    stop = threading.Event()
    rng = random.Random(7)

    def storm() -> None:
        while not stop.is_set():
            app.ctx.interrupt()
            stop.wait(rng.random() * 0.0005)

    kicker = threading.Thread(target=storm)
    kicker.start()
    syscalls = interrupts = 0
    try:
        while syscalls < 2000:
            event = switch(app, app.asp)
            if isinstance(event, Interrupted):
                interrupts += 1
                continue
            assert isinstance(event, Syscall), event
            syscalls += 1
            assert app.regs.rbx == syscalls
    finally:
        stop.set()
        kicker.join()
    assert interrupts > 0
