"""The guest layout constants, read from layout.h (shared with the assembly)."""

from __future__ import annotations

import re
from pathlib import Path

_DEFINE = re.compile(r"^#define\s+([A-Z0-9_]+)\s+(0x[0-9a-fA-F]+|\d+)\b")


def parse_header(path: Path) -> dict[str, int]:
    """`#define NAME NUMBER` lines of a C header as a dict."""
    values = {}
    for line in Path(path).read_text().splitlines():
        m = _DEFINE.match(line)
        if m:
            values[m.group(1)] = int(m.group(2), 0)
    return values


LAYOUT = parse_header(Path(__file__).with_name("layout.h"))

RING0_BASE = LAYOUT["RING0_BASE"]
PTMAP_BASE = LAYOUT["PTMAP_BASE"]
MAX_USER_ADDRESS = LAYOUT["MAX_USER_ADDRESS"]
MIN_USER_ADDRESS = LAYOUT["MIN_USER_ADDRESS"]
WINDOW_SIZE = LAYOUT["RING0_WINDOW_SIZE"]


def window_base(vcpu_index: int) -> int:
    """Guest VA of vCPU `vcpu_index`'s ring0 window."""
    return RING0_BASE + vcpu_index * WINDOW_SIZE
