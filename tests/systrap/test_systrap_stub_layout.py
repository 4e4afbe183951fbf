"""Where the kernel puts the stub's vDSO: never in the app range nor in the stub's fixed ranges.

At exec the kernel places [vvar] and [vdso] just below a randomised mmap
base that spans about 1 TiB under the stack (Linux 6.18: 0x7efc... to
0x7ffb...), so about 1 stub in 65,000 found its vDSO inside the shared
region (its MAP_FIXED_NOREPLACE failed: "exit status 5", seen once in a full
suite run), about 1 in 80 had it below STUB_BASE, in the app range (an app
page not mapped yet read vDSO bytes instead of faulting), and about 1 in 15
between the stub's image and its shared region. With an unlimited stack
rlimit (legacy layout) every stub had it in the app range.

These tests take the randomness away: ADDR_NO_RANDOMIZE on the spawning
thread and a stack rlimit chosen so that the kernel's mmap base lands on a
chosen address (mmap base = TASK_SIZE - (stack rlimit + stack guard gap)).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmsandbox.platform import PAGE_SIZE
from kvmsandbox.systrap import layout
from kvmsandbox.systrap.stubproc import Stub, StubDied

TASK_SIZE = 0x7FFFFFFFF000
STACK_GUARD_GAP = 256 * PAGE_SIZE  # the kernel's default stack_guard_gap
ADDR_NO_RANDOMIZE = 0x0040000
QUERY_PERSONALITY = 0xFFFFFFFF
KERNEL_MAPPINGS = ("[vdso]", "[vvar]", "[vvar_vclock]")
AT_SYSINFO_EHDR = 33

_libc = ctypes.CDLL(None)


@contextlib.contextmanager
def kernel_mmap_base(stack_limit: int) -> Iterator[None]:
    """Processes spawned from this thread meanwhile get a fixed layout for this stack rlimit.

    The personality is per thread (inherited by the children it spawns); the
    rlimit is per process, so it is put back at once.
    """
    old_persona = _libc.personality(QUERY_PERSONALITY)
    old_limit = resource.getrlimit(resource.RLIMIT_STACK)
    _libc.personality(old_persona | ADDR_NO_RANDOMIZE)
    resource.setrlimit(resource.RLIMIT_STACK, (stack_limit, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_STACK, old_limit)
        _libc.personality(old_persona)


def limit_for_base(mmap_base: int) -> int:
    return TASK_SIZE - mmap_base - STACK_GUARD_GAP


def kernel_mappings(pid: int) -> list[tuple[int, int, str]]:
    found = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if fields[-1] in KERNEL_MAPPINGS:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            found.append((start, end, fields[-1]))
    return found


def vdso_address(pid: int) -> int:
    """Where the kernel put the vDSO at exec (the auxiliary vector keeps it after an unmap)."""
    auxv = Path(f"/proc/{pid}/auxv").read_bytes()
    pairs = struct.iter_unpack("<QQ", auxv)
    return next(value for key, value in pairs if key == AT_SYSINFO_EHDR)


SHARED_END = layout.SHARED_BASE + layout.SHARED_SIZE
# placement: (stack rlimit, where the vDSO must then land)
PLACEMENTS = {
    # inside the shared region's read-write part: the "exit status 5" failure
    "shared-region": (limit_for_base(layout.SHARED_BASE + (1 << 23)), (layout.SHARED_BASE, SHARED_END)),
    # in the app range, where the Sentry places app mappings top-down
    "app-range": (limit_for_base(layout.STUB_BASE - (1 << 30)), (layout.MIN_USER_ADDRESS, layout.STUB_BASE)),
    # between the stub's image and its shared region
    "stub-gap": (limit_for_base(layout.STUB_BASE + (1 << 32)), (layout.STUB_BASE, layout.SHARED_BASE)),
    # unlimited stack: the legacy bottom-up layout puts it near TASK_SIZE / 3, in the app range
    "legacy-layout": (resource.RLIM_INFINITY, (layout.MIN_USER_ADDRESS, layout.STUB_BASE)),
}


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_stub_starts_wherever_the_kernel_put_its_vdso(platform, placement):
    """The stub starts, runs a worker, and keeps no kernel mapping below the end of its shared region."""
    limit, (low, high) = PLACEMENTS[placement]
    hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
    if hard != resource.RLIM_INFINITY and (limit == resource.RLIM_INFINITY or hard < limit):
        pytest.skip("the hard stack rlimit is too low to move the mmap base")

    def spawn_here(fn, *args):
        with kernel_mmap_base(limit):
            return fn(*args)

    stub = Stub(platform.memory_file.fd, spawn_here, platform.filters, platform.fsgsbase)
    try:
        stub.new_thread()
        vdso = vdso_address(stub.pid)
        assert low <= vdso < high, f"the kernel put the vDSO at {vdso:#x}: the recipe missed {placement}"
        stray = [
            f"{name} at {start:#x}-{end:#x}"
            for start, end, name in kernel_mappings(stub.pid)
            if start < SHARED_END
        ]
        assert not stray, f"kernel mappings left in the app or stub range: {stray}"
    finally:
        stub.close()


def test_setup_failure_names_the_errno(platform):
    """A stub whose shared region it cannot map writable dies saying why (EACCES), not just "status 5"."""

    def spawn_with_read_only_shared(fn, *args):
        stub = fn.__self__
        read_only = os.open(f"/proc/self/fd/{stub.shared_fd}", os.O_RDONLY | os.O_CLOEXEC)
        stub.shared_fd, read_only = read_only, stub.shared_fd
        try:
            return fn(*args)
        finally:
            stub.shared_fd, read_only = read_only, stub.shared_fd
            os.close(read_only)

    stub = Stub(platform.memory_file.fd, spawn_with_read_only_shared, platform.filters, platform.fsgsbase)
    try:
        with pytest.raises(StubDied, match=r"exit status 5: mapping the shared region failed: EACCES"):
            stub.new_thread()
    finally:
        stub.close()
