"""Text of the per-process /proc files that are computed from maps, fds and limits.

Kept apart from the directory structure in proc.py: each function is the
exact format a Linux tool parses (procps, glibc, util-linux).
"""

from __future__ import annotations

import os

RLIM_INFINITY = (1 << 64) - 1
# /proc/<pid>/limits rows: (title, unit), in RLIMIT_* order.
LIMIT_ROWS = (
    ("Max cpu time", "seconds"), ("Max file size", "bytes"), ("Max data size", "bytes"),
    ("Max stack size", "bytes"), ("Max core file size", "bytes"), ("Max resident set", "bytes"),
    ("Max processes", "processes"), ("Max open files", "files"), ("Max locked memory", "bytes"),
    ("Max address space", "bytes"), ("Max file locks", "locks"), ("Max pending signals", "signals"),
    ("Max msgqueue size", "bytes"), ("Max nice priority", ""), ("Max realtime priority", ""),
    ("Max realtime timeout", "us"),
)  # fmt: skip


def mapped_bytes(maps_text: str) -> int:
    """The total size of the mappings (VmSize; residency is not tracked, so it stands for RSS too)."""
    total = 0
    for line in maps_text.splitlines():
        if line.strip():
            start, _, end = line.split(None, 1)[0].partition("-")
            total += int(end, 16) - int(start, 16)
    return total


def statm(maps_text: str) -> bytes:
    pages = mapped_bytes(maps_text) // 4096
    return f"{pages} {pages} 0 0 0 {pages} 0\n".encode()


def smaps(maps_text: str) -> bytes:
    """/proc/<pid>/smaps: each maps line with its size (residency is not tracked: Rss counts it all)."""
    out = []
    for line in maps_text.splitlines():
        if not line.strip():
            continue
        start, _, end = line.split(None, 1)[0].partition("-")
        kb = (int(end, 16) - int(start, 16)) // 1024
        out.append(line.rstrip() + "\n")
        out.append(
            f"Size:           {kb:8d} kB\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\n"
            f"Rss:            {kb:8d} kB\nPss:            {kb:8d} kB\nShared_Clean:          0 kB\n"
            f"Shared_Dirty:          0 kB\nPrivate_Clean:         0 kB\nPrivate_Dirty:  {kb:8d} kB\n"
            f"Referenced:     {kb:8d} kB\nAnonymous:      {kb:8d} kB\nSwap:                  0 kB\n"
            "Locked:                0 kB\nVmFlags: rd wr mr mw me ac\n"
        )
    return "".join(out).encode()


def id_map(ranges: tuple[tuple[int, int, int], ...]) -> bytes:
    """/proc/<pid>/uid_map, gid_map: Linux's three right-aligned columns."""
    return "".join(f"{inside:>10} {outside:>10} {count:>10}\n" for inside, outside, count in ranges).encode()


def limits(rlimits: list[tuple[int, int]]) -> bytes:
    def show(v: int) -> str:
        return "unlimited" if v >= RLIM_INFINITY or v < 0 else str(v)

    lines = [f"{'Limit':<26}{'Soft Limit':<21}{'Hard Limit':<21}{'Units':<10}"]
    for (title, unit), (soft, hard) in zip(LIMIT_ROWS, rlimits, strict=False):
        lines.append(f"{title:<26}{show(soft):<21}{show(hard):<21}{unit:<10}")
    return ("\n".join(line.rstrip() for line in lines) + "\n").encode()


def fdinfo(file, cloexec: bool, mount_id: int) -> bytes:
    """/proc/<pid>/fdinfo/<fd>: position, flags (with O_CLOEXEC as Linux shows it), mount and inode."""
    flags = file.flags | (os.O_CLOEXEC if cloexec else 0)
    return f"pos:\t{file.offset}\nflags:\t0{flags:o}\nmnt_id:\t{mount_id}\nino:\t{file.stat().ino}\n".encode()


def cpu_list() -> str:
    """ "0-N" for the CPUs this sandbox may run on (sysfs online/possible/present, status)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return "0" if n == 1 else f"0-{n - 1}"
