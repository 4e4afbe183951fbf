"""Harness for the systrap-specific tests: apps running tests/systrap/snippets.S under a watchdog."""

from __future__ import annotations

import threading

import pytest

from kvmsandbox import platform as plat
from kvmsandbox.platform import PAGE_SIZE, Access, Event, Regs

CODE_VA = 0x400000
DATA_VA = 0x500000
STACK_TOP = 0x600000
WATCHDOG_S = 10.0


class Watchdog:
    """Interrupts a switch that runs past its deadline; the test then fails."""

    def __init__(self, ctx: plat.Context, seconds: float) -> None:
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire, args=(ctx,))
        self._timer.daemon = True

    def _fire(self, ctx: plat.Context) -> None:
        self.fired = True
        ctx.interrupt()

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


class App:
    """snippets.S mapped at CODE_VA, one RW data page at DATA_VA, a stack, and a context."""

    def __init__(self, platform: plat.Platform, code: bytes, symbols: dict[str, int]) -> None:
        self.platform = platform
        self.symbols = symbols
        self.asp = platform.new_address_space()
        self.ctx = platform.new_context()
        mf = platform.memory_file
        self.code_off = mf.allocate(1)
        mf.write(self.code_off, code)
        self.data_off = mf.allocate(1)
        self.stack_off = mf.allocate(1)
        self.asp.map(CODE_VA, PAGE_SIZE, self.code_off, Access.RX)
        self.asp.map(DATA_VA, PAGE_SIZE, self.data_off, Access.RW)
        self.asp.map(STACK_TOP - PAGE_SIZE, PAGE_SIZE, self.stack_off, Access.RW)
        self.regs = Regs(rsp=STACK_TOP)

    def addr(self, symbol: str) -> int:
        return CODE_VA + self.symbols[symbol]

    def run(self, symbol: str | None = None, timeout: float = WATCHDOG_S, **regs: int) -> Event:
        """One switch (from `symbol` if given) under a watchdog that fails the test if it fires."""
        if symbol is not None:
            self.regs.rip = self.addr(symbol)
        for name, value in regs.items():
            setattr(self.regs, name, value)
        with Watchdog(self.ctx, timeout) as dog:
            event = self.ctx.switch(self.asp, self.regs)
        if dog.fired:
            pytest.fail(f"watchdog: switch ran past {timeout} s (got {event!r})")
        return event

    def close(self) -> None:
        self.ctx.release()
        self.asp.release()
        for off in (self.code_off, self.data_off, self.stack_off):
            self.platform.memory_file.free(off)
