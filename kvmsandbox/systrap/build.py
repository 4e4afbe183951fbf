"""Build the systrap stub: a static, libc-free executable linked at STUB_BASE.

Called by setup.py's build (NATIVE_BUILDERS) with the package directory or
the build tree as `out_dir`; the stub lands there as `stub`.
"""

from __future__ import annotations

from pathlib import Path

from kvmsandbox.build import build_static

SYSTRAP_DIR = Path(__file__).resolve().parent
SOURCES = ("stub_entry.S", "stub.c")
# What only the stub needs: its code model, the fsgsbase instructions, layout.h.
CFLAGS = ("-fpie", "-mfsgsbase", f"-I{SYSTRAP_DIR}")


def build_stub(out_dir: Path = SYSTRAP_DIR) -> Path:
    """Compile and link the stub into `out_dir/stub`; return its path."""
    sources = [SYSTRAP_DIR / name for name in SOURCES]
    return build_static(Path(out_dir) / "stub", sources, CFLAGS, ["-Wl,-T," + str(SYSTRAP_DIR / "stub.ld")])


if __name__ == "__main__":
    print(build_stub())
