"""Address-space changes take effect at once: map, unmap, protect, remap, shared pages, range edges."""

from __future__ import annotations

import struct

from platform_harness import SEGV_ACCERR, SEGV_MAPERR, SIGSEGV, SYS_REPORT, TEST_VA, App

from kvmsandbox.platform import PAGE_SIZE, Access, Fault, Syscall


def read(app, addr):
    """read_probe at addr: the value, or the Fault."""
    event = app.run_at("read_probe", rdi=addr)
    if isinstance(event, Syscall):
        assert event.nr == SYS_REPORT, app.describe(event)
        return event.args[0]
    assert isinstance(event, Fault), app.describe(event)
    assert app.regs.rip == app.snippet.addr("read_probe"), app.describe(event)
    return event


def write(app, addr, value):
    """write_probe at addr: None if it worked, else the Fault."""
    event = app.run_at("write_probe", rdi=addr, rsi=value)
    if isinstance(event, Syscall):
        assert event.nr == SYS_REPORT, app.describe(event)
        return None
    assert isinstance(event, Fault), app.describe(event)
    assert app.regs.rip == app.snippet.addr("write_probe"), app.describe(event)
    return event


def assert_segv(event, addr, access, si_codes):
    assert isinstance(event, Fault), f"expected SIGSEGV at {addr:#x}, the access worked (got {event!r})"
    assert event.signo == SIGSEGV and event.si_code in si_codes, event
    assert event.addr == addr and event.access == access, event


def u64(value):
    return struct.pack("<Q", value)


def test_unmap_then_touch_faults_at_once(make_app, rng):
    """Once unmap returns, the very next access faults: no stale translation survives."""
    app = make_app("faults")
    values = [rng.getrandbits(64) for _ in range(3)]
    off = app.alloc(3)
    for i, value in enumerate(values):
        app.mf.write(off + i * PAGE_SIZE, u64(value))
    app.asp.map(TEST_VA, 3 * PAGE_SIZE, off, Access.RW)
    for i, value in enumerate(values):
        assert read(app, TEST_VA + i * PAGE_SIZE) == value  # now cached in any TLB
    assert write(app, TEST_VA + PAGE_SIZE, 1) is None
    app.asp.unmap(TEST_VA + PAGE_SIZE, PAGE_SIZE)
    assert_segv(read(app, TEST_VA + PAGE_SIZE), TEST_VA + PAGE_SIZE, Access.READ, (SEGV_MAPERR,))
    assert_segv(write(app, TEST_VA + PAGE_SIZE + 8, 2), TEST_VA + PAGE_SIZE + 8, Access.WRITE, (SEGV_MAPERR,))
    # the neighbours stay
    assert read(app, TEST_VA) == values[0]
    assert read(app, TEST_VA + 2 * PAGE_SIZE) == values[2]
    app.asp.unmap(TEST_VA, 3 * PAGE_SIZE)
    for i in range(3):
        assert_segv(read(app, TEST_VA + i * PAGE_SIZE), TEST_VA + i * PAGE_SIZE, Access.READ, (SEGV_MAPERR,))


def test_protect_takes_effect_at_once(make_app, rng, snippets):
    """protect() changes what the next access may do, in both directions, without a remap."""
    app = make_app("faults")
    off = app.map_new(TEST_VA, 1, Access.RW, snippets["exec_target"].code)
    first = rng.getrandbits(64)
    addr = TEST_VA + 0x800
    assert write(app, addr, first) is None
    assert app.mf.read(off + 0x800, 8) == u64(first), "the app's write is not in the memory file"

    app.asp.protect(TEST_VA, PAGE_SIZE, Access.READ)
    assert_segv(write(app, addr, 0), addr, Access.WRITE, (SEGV_ACCERR,))
    assert read(app, addr) == first

    app.asp.protect(TEST_VA, PAGE_SIZE, Access.RW)
    second = rng.getrandbits(64)
    assert write(app, addr, second) is None
    assert app.mf.read(off + 0x800, 8) == u64(second)

    app.asp.protect(TEST_VA, PAGE_SIZE, Access.NONE)
    event = read(app, addr)
    assert_segv(event, addr, Access.READ, (SEGV_ACCERR, SEGV_MAPERR))

    app.asp.protect(TEST_VA, PAGE_SIZE, Access.RX)
    event = app.run_at("exec_probe", rdi=TEST_VA)
    assert isinstance(event, Syscall) and event.args[0] == TEST_VA, (
        f"RX page does not run: {app.describe(event)}"
    )
    app.asp.protect(TEST_VA, PAGE_SIZE, Access.READ)
    event = app.run_at("exec_probe", rdi=TEST_VA)
    assert_segv(event, TEST_VA, Access.EXEC, (SEGV_ACCERR,))


def test_map_replaces_at_once(make_app, rng):
    """Mapping over a mapped page switches the app to the new frame immediately."""
    app = make_app("faults")
    first, second = rng.getrandbits(64), rng.getrandbits(64)
    app.map_new(TEST_VA, 1, Access.RW, u64(first))
    assert read(app, TEST_VA) == first
    off2 = app.alloc(1, u64(second))
    app.asp.map(TEST_VA, PAGE_SIZE, off2, Access.READ)
    assert read(app, TEST_VA) == second, "the app still sees the replaced frame"
    assert_segv(write(app, TEST_VA, 0), TEST_VA, Access.WRITE, (SEGV_ACCERR,))


def test_app_and_sentry_share_the_memory_file(make_app, rng):
    """The Sentry's writes through the memory file reach a mapped page, and the app's writes come back."""
    app = make_app("faults")
    off = app.map_new(TEST_VA, 1, Access.RW)
    for _ in range(3):
        value = rng.getrandbits(64)
        app.mf.write(off + 0x10, u64(value))
        assert read(app, TEST_VA + 0x10) == value
        value = rng.getrandbits(64)
        assert write(app, TEST_VA + 0x18, value) is None
        assert app.mf.read(off + 0x18, 8) == u64(value)


def test_one_frame_at_two_addresses(make_app, rng):
    """A frame mapped twice (RW and R) shows one write at both addresses."""
    app = make_app("faults")
    off = app.map_new(TEST_VA, 1, Access.RW)
    app.asp.map(TEST_VA + 0x10000, PAGE_SIZE, off, Access.READ)
    value = rng.getrandbits(64)
    assert write(app, TEST_VA + 0x20, value) is None
    assert read(app, TEST_VA + 0x10020) == value
    assert_segv(write(app, TEST_VA + 0x10020, 0), TEST_VA + 0x10020, Access.WRITE, (SEGV_ACCERR,))


def test_large_mappings_and_range_edges(platform, make_app, rng):
    """Mappings across 2 MiB and 1 GiB boundaries, and at the lowest and highest app pages, work."""
    app = make_app("faults")
    places = [
        0x3FE0_0000 - 8 * PAGE_SIZE,  # 32 pages across the 1 GiB line (and a 2 MiB one)
        platform.min_user_address,
        platform.max_user_address - 32 * PAGE_SIZE,
    ]
    for va in places:
        off = app.alloc(32)
        values = [rng.getrandbits(64) for _ in range(32)]
        for i, value in enumerate(values):
            app.mf.write(off + i * PAGE_SIZE + 8 * i, u64(value))
        app.asp.map(va, 32 * PAGE_SIZE, off, Access.RW)
        for i in (0, 7, 8, 9, 31):
            addr = va + i * PAGE_SIZE + 8 * i
            assert read(app, addr) == values[i], f"page {i} of the mapping at {va:#x}"
        assert write(app, va + 31 * PAGE_SIZE + 0xFF8, values[0]) is None
        assert app.mf.read(off + 31 * PAGE_SIZE + 0xFF8, 8) == u64(values[0])
        app.asp.unmap(va, 32 * PAGE_SIZE)
        assert_segv(read(app, va), va, Access.READ, (SEGV_MAPERR,))


def test_partial_overlaps(make_app, rng):
    """map over the middle of a mapping replaces just those pages; protect and unmap of a middle
    range leave the pages around it as they were (the Sentry's MAP_FIXED, mprotect, munmap)."""
    app = make_app("faults")
    old = [rng.getrandbits(64) for _ in range(8)]
    new = [rng.getrandbits(64) for _ in range(3)]
    off = app.alloc(8)
    for i, value in enumerate(old):
        app.mf.write(off + i * PAGE_SIZE, u64(value))
    app.asp.map(TEST_VA, 8 * PAGE_SIZE, off, Access.RW)
    assert [read(app, TEST_VA + i * PAGE_SIZE) for i in range(8)] == old
    off2 = app.alloc(3)
    for i, value in enumerate(new):
        app.mf.write(off2 + i * PAGE_SIZE, u64(value))
    app.asp.map(TEST_VA + 2 * PAGE_SIZE, 3 * PAGE_SIZE, off2, Access.READ)
    assert [read(app, TEST_VA + i * PAGE_SIZE) for i in range(8)] == old[:2] + new + old[5:]
    for i in range(8):
        event = write(app, TEST_VA + i * PAGE_SIZE + 8, 7)
        if 2 <= i < 5:
            assert_segv(event, TEST_VA + i * PAGE_SIZE + 8, Access.WRITE, (SEGV_ACCERR,))
        else:
            assert event is None, f"page {i}: {event}"
    app.asp.protect(TEST_VA + PAGE_SIZE, 2 * PAGE_SIZE, Access.NONE)
    app.asp.unmap(TEST_VA + 6 * PAGE_SIZE, PAGE_SIZE)
    for i, want in enumerate(old[:2] + new + old[5:]):
        got = read(app, TEST_VA + i * PAGE_SIZE)
        if i in (1, 2, 6):
            assert isinstance(got, Fault) and got.addr == TEST_VA + i * PAGE_SIZE, f"page {i}: {got}"
        else:
            assert got == want, f"page {i}: {got!r}"


def test_context_moves_to_new_address_spaces(platform, snippets, make_app, rng):
    """execve's pattern: one context runs in an address space, which is released, then in a fresh
    one, 30 times over. Each time the new space shows only its own page and runs normally."""
    keeper = make_app("faults")  # owns the context for the whole test
    keeper.run_at("probe_report")
    for step in range(30):
        value = rng.getrandbits(64)
        app = App(platform, snippets["faults"], context=keeper.ctx, rng=rng)
        try:
            app.map_new(TEST_VA, 1, Access.READ, u64(value))
            assert read(app, TEST_VA) == value, f"step {step}"
            assert_segv(read(app, TEST_VA + PAGE_SIZE), TEST_VA + PAGE_SIZE, Access.READ, (SEGV_MAPERR,))
        finally:
            app.close()  # releases the address space, keeps the context
