"""The stub layout constants, read from layout.h (shared with the stub's C and assembly)."""

from __future__ import annotations

from pathlib import Path

from kvmsandbox.ring0.layout import parse_header

LAYOUT = parse_header(Path(__file__).with_name("layout.h"))
globals().update(LAYOUT)

assert LAYOUT["SHARED_SIZE"] == LAYOUT["THREADS_OFFSET"] + LAYOUT["MAX_THREADS"] * LAYOUT["THREAD_SIZE"]


def thread_offset(index: int) -> int:
    """Offset of stub thread `index`'s area (message, then signal stack) in the shared region."""
    return LAYOUT["THREADS_OFFSET"] + index * LAYOUT["THREAD_SIZE"]
