"""Build the systrap stub: a static, libc-free executable linked at STUB_BASE.

Called by setup.py's build (NATIVE_BUILDERS) with the package directory or
the build tree as `out_dir`; the stub lands there as `stub`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SYSTRAP_DIR = Path(__file__).resolve().parent
SOURCES = ("stub_entry.S", "stub.c")
CFLAGS = (
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-static",
    "-nostdlib",
    "-ffreestanding",
    "-fpie",
    "-no-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fcf-protection=none",
    "-mgeneral-regs-only",
    "-mfsgsbase",
    "-fno-builtin",
)


def build_stub(out_dir: Path = SYSTRAP_DIR) -> Path:
    """Compile and link the stub into `out_dir/stub`; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "stub"
    sources = [str(SYSTRAP_DIR / name) for name in SOURCES]
    link = ["-Wl,-T," + str(SYSTRAP_DIR / "stub.ld"), "-Wl,--build-id=none", "-Wl,-z,noexecstack"]
    subprocess.run(["gcc", *CFLAGS, f"-I{SYSTRAP_DIR}", "-o", str(out), *sources, *link], check=True)
    return out


if __name__ == "__main__":
    print(build_stub())
