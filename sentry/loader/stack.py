"""The initial process stack: argv, envp, auxv, AT_RANDOM bytes and AT_EXECFN, as Linux lays it out."""

from __future__ import annotations

import errno
import os
import struct

from sentry.errors import Errno
from sentry.mm.mm import MM

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_SYSINFO_EHDR, AT_MINSIGSTKSZ = 23, 25, 26, 31, 33, 51

MAX_ARG_STRLEN = 32 * 4096
STACK_INITIAL = 128 * 1024


def hwcap() -> int:
    """CPUID.1:EDX as Linux reports it in AT_HWCAP (read from the host's /proc/cpuinfo flags)."""
    bits = {
        "fpu": 0, "vme": 1, "de": 2, "pse": 3, "tsc": 4, "msr": 5, "pae": 6, "mce": 7, "cx8": 8,
        "apic": 9, "sep": 11, "mtrr": 12, "pge": 13, "mca": 14, "cmov": 15, "pat": 16, "pse36": 17,
        "clflush": 19, "mmx": 23, "fxsr": 24, "sse": 25, "sse2": 26, "ss": 27, "ht": 28,
    }  # fmt: skip
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sum(1 << b for name, b in bits.items() if name in flags)
    except OSError:
        pass
    return 0x178BFBFF


HWCAP = hwcap()


def build(
    mm: MM,
    top: int,
    argv: list[bytes],
    envp: list[bytes],
    execfn: bytes,
    auxv: list[tuple[int, int]],
) -> int:
    """Write the initial stack below `top` (mapped, writable); returns the initial rsp."""
    total = sum(len(s) + 1 for s in argv) + sum(len(s) + 1 for s in envp) + len(execfn) + 1
    if any(len(s) + 1 > MAX_ARG_STRLEN for s in (*argv, *envp)) or total > mm.stack_limit // 4:
        raise Errno(errno.E2BIG)
    sp = top - 8  # an end marker, as Linux leaves
    sp -= len(execfn) + 1
    execfn_addr = sp
    mm.copy_out(sp, execfn + b"\0")
    strings = b"".join(s + b"\0" for s in argv) + b"".join(s + b"\0" for s in envp)
    sp -= len(strings)
    mm.copy_out(sp, strings)
    mm.arg_start = sp
    ptrs = []
    addr = sp
    for s in argv:
        ptrs.append(addr)
        addr += len(s) + 1
    mm.arg_end = mm.env_start = addr
    env_ptrs = []
    for s in envp:
        env_ptrs.append(addr)
        addr += len(s) + 1
    mm.env_end = addr
    sp -= 16
    random_addr = sp
    mm.copy_out(sp, os.urandom(16))
    platform = b"x86_64\0"
    sp -= len(platform)
    platform_addr = sp
    mm.copy_out(sp, platform)
    sp &= ~15
    full_auxv = [
        *auxv,
        (AT_RANDOM, random_addr),
        (AT_EXECFN, execfn_addr),
        (AT_PLATFORM, platform_addr),
        (AT_NULL, 0),
    ]
    words = [len(argv), *ptrs, 0, *env_ptrs, 0]
    for key, value in full_auxv:
        words += [key, value]
    sp = (sp - 8 * len(words)) & ~15
    block = struct.pack(f"<{len(words)}Q", *words)
    mm.copy_out(sp, block)
    mm.auxv = block[8 * (len(argv) + len(envp) + 3) :]
    return sp
