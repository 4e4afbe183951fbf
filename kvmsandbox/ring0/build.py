"""Assemble `.S` sources into a flat binary plus a symbol table.

Used by the package build (ring0 flavours) and by the tests (machine-code
snippets). The blob is linked at address 0; callers add their load address.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

RING0_DIR = Path(__file__).resolve().parent
FLAVOURS = ("pvm_native",)


def assemble(source: Path, out_dir: Path, include_dirs: tuple[Path, ...] = (RING0_DIR,)) -> Path:
    """Assemble `source` to `out_dir/<stem>.bin` and `<stem>.sym.json`; return the .bin path."""
    source = Path(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = source.stem
    with tempfile.TemporaryDirectory(prefix="kvmsb-as-") as tmp:
        obj = Path(tmp) / f"{stem}.o"
        elf = Path(tmp) / f"{stem}.elf"
        incs = [f"-I{d}" for d in include_dirs]
        subprocess.run(["gcc", "-c", "-nostdlib", *incs, "-o", str(obj), str(source)], check=True)
        subprocess.run(
            ["ld", "-N", "--no-warn-rwx-segments", "-e", "0", "-Ttext=0", "-o", str(elf), str(obj)],
            check=True,
        )
        binary = out_dir / f"{stem}.bin"
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(elf), str(binary)], check=True)
        nm = subprocess.run(["nm", str(elf)], capture_output=True, text=True, check=True).stdout
    symbols = {}
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTaA":
            symbols[parts[2]] = int(parts[0], 16)
    (out_dir / f"{stem}.sym.json").write_text(json.dumps(symbols, indent=1, sort_keys=True))
    return binary


def build_flavours(out_dir: Path = RING0_DIR) -> list[Path]:
    """Assemble every ring0 flavour into `out_dir` (the package directory by default)."""
    return [assemble(RING0_DIR / f"{name}.S", out_dir) for name in FLAVOURS]


if __name__ == "__main__":
    for path in build_flavours():
        print(path)
