"""Contexts run truly in parallel, and interrupt() gets a spinning context back quickly."""

from __future__ import annotations

import queue
import statistics
import threading
import time

import pytest
from platform_harness import SYS_REPORT, TEST_VA, App, AppThreads, H, set_xmm

from kvmsandbox.platform import GPR_NAMES, PAGE_SIZE, Access, Fault, Interrupted, Syscall

ROUNDS = 1000


def run_in_threads(apps, body):
    AppThreads(apps, body).join()


@pytest.mark.parametrize("spaces", ["one-address-space", "two-address-spaces"])
def test_two_contexts_run_concurrently(platform, make_app, spaces):
    """Two contexts on two threads play ping-pong through a shared page. Serialised (one vCPU at a
    time, a lock or the GIL held across the run) every turn waits for a host thread switch, which
    pingpong.S counts as a long wait; truly parallel, most turns are quick."""
    first = make_app("pingpong")
    if spaces == "one-address-space":
        second = first.new_thread()
        shared_off = first.map_new(TEST_VA, 1, Access.RW)
    else:
        second = make_app("pingpong")
        shared_off = first.map_new(TEST_VA, 1, Access.RW)
        second.asp.map(TEST_VA, PAGE_SIZE, shared_off, Access.RW)
    for app in {id(a): a for a in (first, second)}.values():
        app.set_u64(H["P_ROUNDS"], ROUNDS)
        app.set_u64(H["P_LONG_SPINS"], 1 << 16)
        app.set_u64(H["P_GIVEUP_SPINS"], 1 << 31)
        app.set_u64(H["P_MAX_LONG"], ROUNDS // 2)
    results = {}
    for role, app in enumerate((first, second)):
        app.regs.rdi = role
        app.regs.rsi = TEST_VA

    def body(app):
        def report(event, regs):
            results[id(app)] = (event.args[0], event.args[1])
            return 0

        results[("status", id(app))] = app.run({SYS_REPORT: report})

    run_in_threads([first, second], body)
    for role, app in enumerate((first, second)):
        rounds, long_waits = results[id(app)]
        status = results[("status", id(app))]
        assert status == 0 and rounds == ROUNDS, (
            f"role {role} gave up after {rounds} rounds with {long_waits} long waits: "
            "the two contexts do not run at the same time"
        )
        # serialised, every turn waits for a thread switch; in parallel most are quick even on a
        # loaded host (a long wait there means the partner's host thread was preempted)
        assert long_waits < ROUNDS // 2, f"role {role}: {long_waits} of {ROUNDS} turns waited long"
    counter = int.from_bytes(platform.memory_file.read(shared_off, 8), "little")
    assert counter == 2 * ROUNDS, f"shared counter {counter}, expected {2 * ROUNDS}"


def wait_spinning(app, threads=None, timeout=5.0):
    """Wait until SPIN_COUNTER moves twice: the app is spinning in user mode right now."""
    deadline = time.monotonic() + timeout
    seen = app.data_u64(H["SPIN_COUNTER"])
    moves = 0
    while moves < 2:
        if threads is not None and threads.errors:
            raise threads.errors[0]
        assert time.monotonic() < deadline, "the spinning app makes no progress"
        time.sleep(0.002)
        now = app.data_u64(H["SPIN_COUNTER"])
        if now != seen:
            moves, seen = moves + 1, now


def test_interrupt_stops_a_spinning_context_within_10ms(make_app):
    """interrupt() from another thread returns a switch spinning in user mode as Interrupted, median of
    5 tries within 10 ms; the app resumes where it was each time, and finally exits normally."""
    app = make_app("spin")
    loop = (app.snippet.addr("spin_loop"), app.snippet.addr("spin_loop_end"))
    tries = 5
    go = queue.Queue()
    returned = queue.Queue()

    def runner(app):
        for _ in range(tries):
            event = app.switch()
            returned.put((time.monotonic(), event, app.regs.rip))
            go.get()
        app.set_u64(H["SPIN_STOP"], 1)
        returned.put(("exit", app.run()))

    threads = AppThreads([app], runner)

    def next_result():
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if threads.errors:
                raise threads.errors[0]
            try:
                return returned.get(timeout=0.05)
            except queue.Empty:
                continue
        pytest.fail("the switching thread reported nothing for 15 s")

    latencies = []
    try:
        for _ in range(tries):
            wait_spinning(app, threads)
            start = time.monotonic()
            app.ctx.interrupt()
            stopped, event, rip = next_result()
            latencies.append(stopped - start)
            assert isinstance(event, Interrupted), f"interrupt() gave {app.describe(event)}"
            assert loop[0] <= rip < loop[1], f"interrupted at {app.snippet.name_of(rip)}, not in the loop"
            go.put(None)
        tag, status = next_result()
        assert tag == "exit" and status == app.data_u64(H["SPIN_COUNTER"])
    finally:
        app.set_u64(H["SPIN_STOP"], 1)
        for _ in range(tries):
            go.put(None)
        for thread in threads.threads:
            thread.join(30)
    median = statistics.median(latencies)
    assert median <= 0.010, f"interrupt latencies {[f'{x * 1e3:.2f} ms' for x in latencies]}"


def test_interrupt_before_switch(make_app):
    """An interrupt() that comes before the switch still makes that switch return Interrupted, once."""
    app = make_app("spin")
    app.ctx.interrupt()
    start = time.monotonic()
    event = app.switch()
    assert isinstance(event, Interrupted), app.describe(event)
    assert time.monotonic() - start < 1.0
    app.set_u64(H["SPIN_STOP"], 1)
    status = app.run()  # the interrupt was consumed: the app runs to its exit
    assert status == app.data_u64(H["SPIN_COUNTER"])


def test_concurrent_contexts_again_after_release(platform, snippets, rng):
    """Pairs of contexts that ran at the same time are released and new pairs take over the
    platform's vCPUs (or stubs), three times: every round runs cleanly."""
    for round_no in range(3):
        apps = [App(platform, snippets["spin"], rng=rng) for _ in range(2)]
        statuses = {}

        def body(app, statuses=statuses):
            statuses[id(app)] = app.run()

        threads = None
        try:
            threads = AppThreads(apps, body)
            for app in apps:
                wait_spinning(app, threads)
            for app in apps:
                app.set_u64(H["SPIN_STOP"], 1)
            threads.join()
            for app in apps:
                assert statuses[id(app)] == app.data_u64(H["SPIN_COUNTER"]), f"round {round_no}"
        finally:
            for app in apps:
                app.set_u64(H["SPIN_STOP"], 1)
            for thread in threads.threads if threads else ():
                thread.join(30)
            for app in apps:
                app.close()


@pytest.mark.parametrize("change", ["unmap", "protect"])
def test_change_reaches_a_running_thread_at_once(make_app, rng, change):
    """While one thread of the app touches a page in a loop, another unmaps it (or makes it read-only
    under a writer). On return no thread may reach the page any more: the looping thread faults, and
    at most the one access already under way when the call returned completes after it."""
    app = make_app("touch")
    app.map_new(TEST_VA, 1, Access.RW)
    value = rng.getrandbits(63) | 1
    app.regs.rdi = TEST_VA + 0x40
    app.regs.rsi = value if change == "protect" else 0
    events = []
    threads = AppThreads([app], lambda app: events.append(app.switch()))
    try:
        wait_spinning(app, threads)
        if change == "unmap":
            app.asp.unmap(TEST_VA, PAGE_SIZE)
        else:
            app.asp.protect(TEST_VA, PAGE_SIZE, Access.READ)
        returned_at = app.data_u64(H["SPIN_COUNTER"])
    finally:
        threads.join(30)
    (event,) = events
    assert isinstance(event, Fault), f"the looping thread stopped with {app.describe(event)}"
    probe = "touch_write" if change == "protect" else "touch_read"
    assert app.regs.rip == app.snippet.addr(probe), app.describe(event)
    assert event.addr == TEST_VA + 0x40, app.describe(event)
    count = app.data_u64(H["SPIN_COUNTER"])
    assert count - returned_at <= 1, f"{count - returned_at} accesses completed after {change}() returned"


def test_watchdog_turns_a_hang_into_a_failure(make_app):
    """The suite's own guard: a switch that never returns on its own (the app spins forever) is
    interrupted by the harness watchdog and fails the test instead of hanging the run."""
    app = make_app("spin")
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="watchdog"):
        app.switch(timeout=0.3)
    assert time.monotonic() - start < 5, "the watchdog's interrupt took seconds to land"
    app.set_u64(H["SPIN_STOP"], 1)
    assert app.run() == app.data_u64(H["SPIN_COUNTER"])


DF = 0x400


def test_interrupts_preserve_every_register(make_app, rng):
    """Interrupts land anywhere in user code: while the app holds random values in every GPR (rcx
    and r11 too), DF and XMM0-15, 30 interrupt/resume cycles must leave all of it as it was."""
    app = make_app("hold")
    gprs = {name: rng.getrandbits(64) for name in GPR_NAMES}
    gprs["rsp"] = rng.randrange(0x10000, 1 << 47) & ~7
    for name, value in gprs.items():
        setattr(app.regs, name, value)
    app.regs.rflags |= DF
    xmm = rng.randbytes(256)
    loop = (app.snippet.addr("hold_loop"), app.snippet.addr("hold_loop_end"))
    image = app.ctx.pull_fpu()
    set_xmm(image, xmm)
    app.regs.fpu = image
    for cycle in range(30):
        timer = threading.Timer(rng.uniform(0.0005, 0.003), app.ctx.interrupt)
        timer.start()
        event = app.switch()
        timer.join()
        assert isinstance(event, Interrupted), f"cycle {cycle}: {app.describe(event)}"
        assert loop[0] <= app.regs.rip < loop[1], f"cycle {cycle}: rip {app.regs.rip:#x}"
        for name, value in gprs.items():
            got = getattr(app.regs, name)
            assert got == value, f"cycle {cycle}: {name}={got:#x} at the interrupt, the app had {value:#x}"
    app.set_u64(H["SPIN_STOP"], 1)
    assert app.run() == 0
    saved = dict(zip(GPR_NAMES, app.data_u64s(H["R_SAVE"], 16), strict=True))
    for name, value in gprs.items():
        assert saved[name] == value, (
            f"after the interrupts the app has {name}={saved[name]:#x}, not {value:#x}"
        )
    assert app.data_u64(H["R_SAVE_FLAGS"]) & DF, "DF was lost"
    assert app.mf.read(app.data_off + H["R_VSAVE"], 256) == xmm, "XMM registers changed"


def test_interrupts_racing_with_syscalls(make_app, rng):
    """interrupt() fired at random moments while the app makes 300 syscalls: each switch returns a
    Syscall or Interrupted, every syscall is seen exactly once and in order, and every return value
    reaches the app."""
    app = make_app("echo")
    count = 300
    table = []
    for i in range(count):
        table += [i % 451, i, rng.getrandbits(64), 0, 0, 0, 0, 0, 0, 0]
    app.set_u64(H["D_PARAM"] + H["ECHO_COUNT"], count)
    app.set_u64(H["D_LOG"], *table)
    returns = [rng.getrandbits(64) for _ in range(count)]
    done = threading.Event()

    def interrupter():
        while not done.is_set():
            app.ctx.interrupt()
            time.sleep(rng.uniform(0, 0.0005))

    thread = threading.Thread(target=interrupter)
    thread.start()
    interrupted = 0
    try:
        seen = 0
        while seen < count:
            event = app.switch()
            if isinstance(event, Interrupted):
                interrupted += 1
                continue
            assert isinstance(event, Syscall), app.describe(event)
            assert event.args[0] == seen, f"syscall {event.args[0]} came when {seen} was due"
            assert event.nr == seen % 451 and event.args[1] == table[10 * seen + 2]
            app.regs.rax = returns[seen]
            seen += 1
    finally:
        done.set()
        thread.join()
    while True:
        event = app.switch()
        if not isinstance(event, Interrupted):
            break
    assert isinstance(event, Syscall) and event.nr == H["SYS_EXIT"] and event.args[0] == count, app.describe(
        event
    )
    got = [app.data_u64(H["D_LOG"] + i * H["ECHO_ENTRY"] + H["E_RET"]) for i in range(count)]
    assert got == returns, "a return value was lost or duplicated around an interrupt"
    assert interrupted > 0, "no interrupt landed: the race was not exercised"


@pytest.mark.slow
def test_stress_syscalls_interrupts_and_shootdowns(platform, make_app, rng):
    """(pytest -m slow) Two threads of one app make 400 syscalls each while the Sentry maps and
    unmaps an unrelated page 300 times (kicking both) and fires interrupts: every syscall arrives
    once, in order, with its arguments, and every return value reaches the app."""
    count = 400
    first = make_app("echo")
    second = first.new_thread()
    table = []
    for i in range(count):
        table += [100 + i % 300, i, rng.getrandbits(64), 0, 0, 0, 0, 0, 0, 0]  # never SYS_EXIT
    first.set_u64(H["D_PARAM"] + H["ECHO_COUNT"], count)
    first.set_u64(H["D_LOG"], *table)
    returns = {id(app): [rng.getrandbits(64) for _ in range(count)] for app in (first, second)}

    def body(app):
        seen = 0
        while True:
            event = app.switch()
            if isinstance(event, Interrupted):
                continue
            assert isinstance(event, Syscall), app.describe(event)
            if event.nr == H["SYS_EXIT"]:
                assert event.args[0] == count and seen == count
                return
            assert event.args[0] == seen and event.args[1] == table[10 * seen + 2], app.describe(event)
            app.regs.rax = returns[id(app)][seen]
            seen += 1

    threads = AppThreads([first, second], body)
    try:
        for i in range(300):
            if not any(t.is_alive() for t in threads.threads):
                break
            first.map_new(TEST_VA + (i % 8) * PAGE_SIZE, 1, Access.RW)
            first.asp.unmap(TEST_VA + (i % 8) * PAGE_SIZE, PAGE_SIZE)
            (first if i % 2 else second).ctx.interrupt()
    finally:
        threads.join()
    # both threads share the table, so each one's results land in the same slots: the last writer wins
    got = [first.data_u64(H["D_LOG"] + i * H["ECHO_ENTRY"] + H["E_RET"]) for i in range(count)]
    for i, value in enumerate(got):
        assert value in (returns[id(first)][i], returns[id(second)][i]), f"call {i}: rax {value:#x}"
