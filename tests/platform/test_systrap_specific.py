"""systrap only: the stub process's own memory and code give the app nothing.

On systrap the app runs in a host process whose address space also holds the
stub (its code and the memory it shares with the Sentry). These tests find
that process through /proc (the one mapping a page only this test mapped) and
check, from the app: no memory-file frame the Sentry did not map is mapped in
it at all; scanning every mapping the process has finds no secret and cannot
write the read-only control area or the stub's code; and jumping to each
SYSCALL instruction in the stub's code (whose syscalls the seccomp filter may
allow) with an mmap or mprotect that would break isolation never runs it.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import threading
from pathlib import Path

import pytest
from platform_harness import (
    DATA_VA,
    HIT_MARKER,
    HIT_READ,
    HIT_WRITE,
    STACK_TOP,
    SYS_REPORT,
    TEST_VA,
    App,
    new_marker,
    open_platform,
    scan,
)

from kvmsandbox.platform import PAGE_SIZE, Access, Fault, Interrupted, PlatformError, Syscall
from kvmsandbox.ring0.layout import parse_header

STUB = parse_header(Path(importlib.util.find_spec("kvmsandbox.systrap").origin).with_name("layout.h"))
MAP_SHARED_FIXED = 0x11
NR_MMAP, NR_MPROTECT, NR_PWRITE64 = 9, 10, 18
ENOSYS = -38


@pytest.fixture(scope="module")
def platform():
    yield from open_platform("systrap")


def maps(pid):
    """[(start, end, perms, path)] of a process; [] once it is gone."""
    rows = []
    try:
        text = Path(f"/proc/{pid}/maps").read_text()
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in fields[0].split("-"))
        rows.append((start, end, fields[1], fields[5] if len(fields) > 5 else ""))
    return rows


def stub_pid(app, rng):
    """The host process the app runs in: the only one mapping a page at a random VA of this test's."""
    tag = TEST_VA + 0x4000_0000 + rng.randrange(1 << 16) * PAGE_SIZE
    app.map_new(tag, 1, Access.READ)  # map() returns once the stub has mapped it
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if any(start == tag for start, _, _, _ in maps(entry)):
                found.append(int(entry))
        except OSError:
            continue
    assert len(found) == 1, f"processes mapping the app's tag page {tag:#x}: {found}"
    return found[0]


def outside_app_range(platform, pid):
    return [m for m in maps(pid) if not (platform.min_user_address <= m[0] < platform.max_user_address)]


def test_stub_maps_no_other_memory_file_frames(platform, make_app, rng):
    """Every mapping of the memory file in the app's process is one the Sentry asked for: the stub
    does not keep the whole file (other apps' frames, the Sentry's) mapped anywhere."""
    app = make_app("faults")
    pid = stub_pid(app, rng)
    memfd = os.readlink(f"/proc/{pid}/fd/{STUB['STUB_MEMFD']}")
    mine = [m for m in maps(pid) if m[3] and m[3] in memfd]
    assert mine, f"the app's own pages are not mapped from {memfd}"
    for start, end, _, _ in mine:
        assert platform.min_user_address <= start and end <= platform.max_user_address, (
            f"memory file mapped at {start:#x}-{end:#x}, outside the app range"
        )


def test_stub_memory_scan(platform, make_app, rng):
    """Scan every page of every mapping the app's process has outside the app range (stub code,
    shared areas, vDSO...): the secret frame is never there, the read-only control area and the
    stub's code cannot be written, and each writable page is one the kernel maps writable."""
    app = make_app("scan")
    marker = new_marker(rng)
    app.alloc(1, marker * (PAGE_SIZE // 16))  # never mapped
    control = TEST_VA + 0x10000
    app.map_new(control, 1, Access.READ, marker)
    pid = stub_pid(app, rng)
    regions = outside_app_range(platform, pid)
    ranges = [(control, control + PAGE_SIZE, PAGE_SIZE)]
    ranges += [(start, end, PAGE_SIZE) for start, end, _, _ in regions if end <= 1 << 47]
    result = scan(app, ranges, marker, allow_sigbus=True)
    assert result.with_flag(HIT_MARKER) == [control], "the secret frame is readable in the stub's memory"
    readable = result.with_flag(HIT_READ)
    assert any(p >= STUB["STUB_BASE"] for p in readable), "the scan saw none of the stub: did it run?"
    ro_end = STUB["SHARED_BASE"] + STUB["CTL_RO_SIZE"]
    for page in result.with_flag(HIT_WRITE):
        assert not STUB["SHARED_BASE"] <= page < ro_end, f"control page {page:#x} is writable"
        perms = next(p for s, e, p, _ in regions if s <= page < e)
        assert "w" in perms and "x" not in perms, f"page {page:#x} ({perms}) was written"


def syscall_sites(platform, pid):
    """Every SYSCALL (0f 05) in the executable mappings outside the app range, keyed by
    (mapping name, offset in it): addresses move from stub to stub (the vDSO is placed at random)
    and the vDSO's bytes are not even the same in every process, so a key may be missing."""
    sites = {}
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for start, end, perms, path in outside_app_range(platform, pid):
            if "x" not in perms or path == "[vsyscall]":
                continue
            mem.seek(start)
            data = mem.read(end - start)
            index = data.find(b"\x0f\x05")
            while index >= 0:
                sites[(path, index)] = start + index
                index = data.find(b"\x0f\x05", index + 1)
    return sites


def attempt(app, site, regs, read_back):
    """Jump to `site` with `regs`; serve what comes (ENOSYS to syscalls) until a fault, the stub's
    death, or a second. A `ret` after the syscall lands on read_probe (the stack is full of its
    address), which would report what `read_back` holds."""
    probe = app.snippet.addr("read_probe")
    app.mf.write(app.stack_off, struct.pack("<Q", probe) * (4 * PAGE_SIZE // 8))
    app.regs.rip = site
    app.regs.rsp = STACK_TOP - 0x800
    for name, value in regs.items():
        setattr(app.regs, name, value)
    app.regs.rbx = app.regs.rbp = app.regs.r12 = read_back
    for _ in range(8):
        # stub code may spin or wait forever, which only stalls the app itself: stop it after 1 s
        timer = threading.Timer(1.0, app.ctx.interrupt)
        timer.start()
        try:
            event = app.switch()
        except PlatformError:
            return None  # the stub died: the app only hurt itself
        finally:
            timer.cancel()
        if isinstance(event, (Fault, Interrupted)):
            return event
        assert isinstance(event, Syscall), app.describe(event)
        if event.nr == SYS_REPORT:
            return event
        app.regs.rax = ENOSYS
        app.regs.rdi = read_back
    return None


def test_stub_syscall_instructions_do_not_reach_the_host(platform, snippets, rng):
    """For each SYSCALL in the stub's code and vDSO: jumping there with pwrite64(memory file, a frame
    the app does not map), mmap(a secret frame) or mprotect(control area, RW) must be trapped like any
    app syscall; afterwards none of the three happened."""
    first = App(platform, snippets["faults"], rng=rng)
    try:
        keys = sorted(syscall_sites(platform, stub_pid(first, rng)))
    finally:
        first.close()
    assert keys, "no SYSCALL instruction found in the stub's code"
    marker = new_marker(rng)
    for key in keys:
        app = App(platform, snippets["faults"], rng=rng)
        try:
            pid = stub_pid(app, rng)
            site = syscall_sites(platform, pid).get(key)
            if site is None:
                continue  # no 0f 05 at that place in this process
            memfd = STUB["STUB_MEMFD"]

            canary = app.alloc(1)
            app.set_bytes(0, marker)
            pwrite = {"rax": NR_PWRITE64, "rdi": memfd, "rsi": DATA_VA, "rdx": 16, "r10": canary}
            attempt(app, site, pwrite, DATA_VA)
            assert app.mf.read(canary, 16) == bytes(16), f"pwrite64 on the host via {site:#x}"

            secret = app.alloc(1, marker * (PAGE_SIZE // 16))
            target = TEST_VA + 0x20_0000
            mmap = {"rax": NR_MMAP, "rdi": target, "rsi": PAGE_SIZE, "rdx": 1, "r10": MAP_SHARED_FIXED}
            event = attempt(app, site, mmap | {"r8": memfd, "r9": secret}, target)
            if isinstance(event, Syscall) and event.nr == SYS_REPORT:
                assert event.args[0] != int.from_bytes(marker[:8], "little"), f"mmap via {site:#x} worked"
            mapped = any(s <= target < e for s, e, _, _ in maps(pid))  # [] if the attempt killed it
            assert not mapped, f"the host mapped {target:#x} via {site:#x}"

            protect = {"rax": NR_MPROTECT, "rdi": STUB["SHARED_BASE"], "rsi": STUB["CTL_RO_SIZE"], "rdx": 3}
            attempt(app, site, protect, STUB["SHARED_BASE"])
            for start, end, perms, _ in maps(pid):
                if start <= STUB["SHARED_BASE"] < end:
                    assert "w" not in perms, f"the control area became writable via {site:#x}"
        finally:
            app.close()
