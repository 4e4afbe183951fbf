"""Isolation: address spaces cannot see each other, the app reaches only what the Sentry mapped,
and no instruction gets it to the host kernel."""

from __future__ import annotations

import struct

import pytest
from platform_harness import (
    CODE_VA,
    DATA_VA,
    HIT_MARKER,
    HIT_READ,
    HIT_TABLE,
    HIT_WRITE,
    SIGILL,
    SIGSEGV,
    SYS_REPORT,
    TEST_VA,
    H,
    fake_page_table,
    new_marker,
    scan,
)

from kvmsandbox.platform import PAGE_SIZE, Access, Fault, Syscall

MIB = 1 << 20
GIB = 1 << 30


@pytest.mark.parametrize("contexts", ["one-context", "two-contexts"])
def test_address_spaces_do_not_see_each_other(platform, snippets, make_app, rng, contexts):
    """Two address spaces with different frames at the same VA each see only their own bytes,
    however often they alternate, and a write in one never shows in the other."""
    first = make_app("faults")
    second = make_app("faults", context=first.ctx) if contexts == "one-context" else make_app("faults")
    values = [rng.getrandbits(64), rng.getrandbits(64)]
    offsets = [
        app.map_new(TEST_VA, 1, Access.RW, struct.pack("<Q", v))
        for app, v in zip((first, second), values, strict=True)
    ]
    for _ in range(4):
        for app, value in zip((first, second), values, strict=True):
            event = app.run_at("read_probe", rdi=TEST_VA)
            assert isinstance(event, Syscall) and event.args[0] == value, (
                f"read {app.describe(event)}, this address space's page holds {value:#x}"
            )
    new = rng.getrandbits(64)
    event = first.run_at("write_probe", rdi=TEST_VA + 8, rsi=new)
    assert isinstance(event, Syscall), first.describe(event)
    assert platform.memory_file.read(offsets[0] + 8, 8) == struct.pack("<Q", new)
    assert platform.memory_file.read(offsets[1] + 8, 8) == bytes(8), "a write went to the other address space"
    event = second.run_at("read_probe", rdi=TEST_VA + 8)
    assert isinstance(event, Syscall) and event.args[0] == 0, second.describe(event)
    # a VA mapped only in one space faults in the other
    first.map_new(TEST_VA + 0x10000, 1, Access.RW)
    event = first.run_at("read_probe", rdi=TEST_VA + 0x10000)
    assert isinstance(event, Syscall), first.describe(event)
    event = second.run_at("read_probe", rdi=TEST_VA + 0x10000)
    assert isinstance(event, Fault) and event.signo == SIGSEGV, second.describe(event)


def generic_ranges(platform):
    """Every page of the low 16 MiB and the top 4 MiB of the app range, every 2 MiB up to 4 GiB,
    and every 64 GiB of the rest: where platforms put things, and a sample of everything."""
    lo, hi = platform.min_user_address, platform.max_user_address
    return [
        (lo, 16 * MIB, PAGE_SIZE),
        (16 * MIB, 4 * GIB, 2 * MIB),
        (4 * GIB, hi - 4 * MIB, 64 * GIB),
        (hi - 4 * MIB, hi, PAGE_SIZE),
    ]


def plant(app, rng):
    """A secret frame the app must never reach, plus positive controls the scan must find.

    Returns (marker, control page VA, fake page-table VA, secret frame offset).
    """
    marker = new_marker(rng)
    secret = app.alloc(1, marker * (PAGE_SIZE // 16))  # never mapped
    control = TEST_VA + 0x20000
    app.map_new(control, 1, Access.READ, marker)
    table = TEST_VA + 0x30000
    app.map_new(table, 1, Access.READ, fake_page_table(rng))
    return marker, control, table, secret


def mapped_pages(app, extra):
    """The pages this App mapped itself: (readable set, writable set)."""
    readable = set()
    writable = set()
    layout = [
        (CODE_VA, H["CODE_PAGES"], False),
        (DATA_VA, H["DATA_PAGES"], True),
        (H["STACK_VA"], H["STACK_PAGES"], True),
        (H["FS_VA"], 1, True),
        (H["GS_VA"], 1, True),
        *extra,
    ]
    for va, npages, rw in layout:
        for i in range(npages):
            readable.add(va + i * PAGE_SIZE)
            if rw:
                writable.add(va + i * PAGE_SIZE)
    return readable, writable


@pytest.mark.parametrize("neighbour", ["none", "same-context", "other-context"])
def test_app_reaches_only_what_was_mapped(platform, make_app, rng, neighbour):
    """Scanning the app range: the readable pages are exactly the ones the Sentry mapped, the writable
    ones exactly its RW mappings, no page looks like a page table but the planted fake, and the
    secret marker (in a memory-file frame never mapped for the app) shows only in the planted copy.
    With a neighbour, another address space has the secret frame mapped (inside the scanned range)
    and has just read it, on the same context or another one: still invisible."""
    app = make_app("scan")
    marker, control, table, secret = plant(app, rng)
    if neighbour != "none":
        other = make_app("faults", context=app.ctx if neighbour == "same-context" else None)
        va = TEST_VA + 0x40000
        other.asp.map(va, PAGE_SIZE, secret, Access.RW)
        event = other.run_at("read_probe", rdi=va)
        assert isinstance(event, Syscall) and event.args[0] == int.from_bytes(marker[:8], "little")
    result = scan(app, generic_ranges(platform), marker)
    readable, writable = mapped_pages(app, [(control, 1, False), (table, 1, False)])
    assert result.with_flag(HIT_MARKER) == [control], "the secret marker is visible elsewhere"
    assert result.with_flag(HIT_TABLE) == [table], "a page-table-like page is visible"
    got_readable = set(result.with_flag(HIT_READ))
    assert got_readable == readable, (
        f"readable but not mapped: {sorted(hex(p) for p in got_readable - readable)[:20]}; "
        f"mapped but not readable: {sorted(hex(p) for p in readable - got_readable)[:20]}"
    )
    got_writable = set(result.with_flag(HIT_WRITE))
    assert got_writable == writable, f"writable: {sorted(hex(p) for p in got_writable ^ writable)[:20]}"


def test_int80_and_sysenter_do_not_reach_the_host(make_app):
    """`int 0x80` and `sysenter` (the 32-bit syscall doors) become an event, never a host syscall:
    with eax=20 (i386 getpid) a host call would return a pid and the app would go on to report it."""
    app = make_app("faults")
    for probe in ("int80_probe", "sysenter_probe"):
        event = app.run_at(probe, rax=20, rbx=0, rcx=0, rdx=0)
        assert not (isinstance(event, Syscall) and event.nr == SYS_REPORT), (
            f"{probe}: executed by the host, it returned {event.args[0]:#x}"
        )
        if isinstance(event, Fault):
            assert event.signo in (SIGSEGV, SIGILL), app.describe(event)
            assert app.regs.rip in (app.snippet.addr(probe), app.snippet.addr(probe + "_next")), app.describe(
                event
            )


def test_changes_in_one_address_space_leave_the_other_alone(platform, make_app, rng):
    """One frame mapped in two address spaces (fork's shared pages): protect and unmap in the first
    do not change what the second may do with it, and the second's writes still reach the frame."""
    first = make_app("faults")
    second = make_app("faults", context=first.ctx)
    value = rng.getrandbits(64)
    frame = first.map_new(TEST_VA, 1, Access.RW, struct.pack("<Q", value))
    second.asp.map(TEST_VA, PAGE_SIZE, frame, Access.RW)
    for app in (first, second):
        event = app.run_at("read_probe", rdi=TEST_VA)
        assert isinstance(event, Syscall) and event.args[0] == value, app.describe(event)
    first.asp.protect(TEST_VA, PAGE_SIZE, Access.READ)
    new = rng.getrandbits(64)
    event = second.run_at("write_probe", rdi=TEST_VA, rsi=new)
    assert isinstance(event, Syscall), f"protect in one space reached the other: {second.describe(event)}"
    event = first.run_at("write_probe", rdi=TEST_VA, rsi=0)
    assert isinstance(event, Fault) and event.signo == SIGSEGV, first.describe(event)
    first.asp.unmap(TEST_VA, PAGE_SIZE)
    event = second.run_at("read_probe", rdi=TEST_VA)
    assert isinstance(event, Syscall) and event.args[0] == new, (
        f"unmap reached the other: {second.describe(event)}"
    )
    event = first.run_at("read_probe", rdi=TEST_VA)
    assert isinstance(event, Fault) and event.signo == SIGSEGV, first.describe(event)
