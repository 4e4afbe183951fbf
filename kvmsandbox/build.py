"""Build a static, libc-free helper executable (the systrap stub, the ps mirror).

Such a program runs without a dynamic loader or libc, so it owns every
register and byte of its address space: no stack protector, unwind tables,
CET notes, or SSE code that the compiler would slip in. The per-program
builders (kvmsandbox/systrap/build.py, bootstrap/mirrors/build.py) add only
what differs: sources, code model and linker script.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

FREESTANDING_CFLAGS = (
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-static",
    "-nostdlib",
    "-ffreestanding",
    "-no-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fcf-protection=none",
    "-mgeneral-regs-only",
    "-fno-builtin",
)
LINK_FLAGS = ("-Wl,--build-id=none", "-Wl,-z,noexecstack")


def build_static(
    out: Path, sources: Sequence[Path], cflags: Sequence[str] = (), ldflags: Sequence[str] = ()
) -> Path:
    """Compile and link `sources` into the executable `out` (its directory made if missing); return `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["gcc", *FREESTANDING_CFLAGS, *cflags, "-o", str(out), *map(str, sources), *ldflags, *LINK_FLAGS]
    subprocess.run(cmd, check=True)
    return out
