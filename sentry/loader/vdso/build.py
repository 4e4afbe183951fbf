"""Build the vDSO (vdso.c) and the timekeeper's rdtsc helper (tsc.c), at package build or first use."""

from __future__ import annotations

import subprocess
from pathlib import Path

SRC = Path(__file__).resolve().parent


def build_vdso(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "vdso.so"
    cmd = [
        "gcc", "-O2", "-fPIC", "-shared", "-nostdlib", "-fno-stack-protector", "-fno-builtin",
        "-fno-asynchronous-unwind-tables", "-mno-red-zone", "-fvisibility=default",
        "-Wl,-T," + str(SRC / "vdso.lds"), "-Wl,--version-script=" + str(SRC / "vdso.map"),
        "-Wl,--hash-style=both", "-Wl,-soname=linux-vdso.so.1", "-Wl,--build-id=none",
        "-Wl,-z,max-page-size=4096", "-o", str(out), str(SRC / "vdso.c"),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    build_tsc(out_dir)
    return out


def build_tsc(out_dir: Path) -> Path:
    out = Path(out_dir) / "tsc.so"
    subprocess.run(["gcc", "-O2", "-fPIC", "-shared", "-o", str(out), str(SRC / "tsc.c")], check=True)
    return out
