"""Build the mirror (mirror.c): a static, libc-free executable next to its source.

Called by setup.py's build (NATIVE_BUILDERS) with the package directory or
the build tree as `out_dir`; the program lands there as `mirror`.
"""

from __future__ import annotations

from pathlib import Path

from kvmsandbox.build import build_static

MIRRORS_DIR = Path(__file__).resolve().parent


def build_mirror(out_dir: Path = MIRRORS_DIR) -> Path:
    """Compile and link the mirror into `out_dir/mirror`; return its path."""
    return build_static(Path(out_dir) / "mirror", [MIRRORS_DIR / "mirror.c"], ["-fno-pie"])


if __name__ == "__main__":
    print(build_mirror())
