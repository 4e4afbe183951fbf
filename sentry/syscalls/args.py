"""Helpers to read syscall arguments, which arrive as raw unsigned 64-bit register values."""

from __future__ import annotations

MASK64 = (1 << 64) - 1


def u32(value: int) -> int:
    return value & 0xFFFFFFFF


def s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def s64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value
