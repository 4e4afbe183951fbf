"""Build the mirror (mirror.c): a static, libc-free executable next to its source.

Called by setup.py's build (NATIVE_BUILDERS) with the package directory or
the build tree as `out_dir`; the program lands there as `mirror`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

MIRRORS_DIR = Path(__file__).resolve().parent
CFLAGS = (
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-static",
    "-nostdlib",
    "-ffreestanding",
    "-fno-pie",
    "-no-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fcf-protection=none",
    "-mgeneral-regs-only",
    "-fno-builtin",
)


def build_mirror(out_dir: Path = MIRRORS_DIR) -> Path:
    """Compile and link the mirror into `out_dir/mirror`; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "mirror"
    link = ("-Wl,--build-id=none", "-Wl,-z,noexecstack")
    subprocess.run(["gcc", *CFLAGS, "-o", str(out), str(MIRRORS_DIR / "mirror.c"), *link], check=True)
    return out


if __name__ == "__main__":
    print(build_mirror())
