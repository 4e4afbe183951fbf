"""The vDSO time page: a TSC-anchored clock sample the app's vDSO reads without exiting.

Layout (must match struct vvar in sentry/loader/vdso/vdso.c): seq (u32, odd
while being written), valid (u32), tsc_base (u64), mono_base_ns (i64),
real_base_ns (i64), mult (u32), shift (u32); ns = base + (tsc - tsc_base) *
mult >> shift. The TSC rate is calibrated against the host's monotonic
clock and refined every second; CLOCK_MONOTONIC stays continuous across
refinements (it is re-anchored at its own current value), CLOCK_REALTIME
is re-anchored to the host's.
"""

from __future__ import annotations

import ctypes
import logging
import struct
import threading
import time

from sentry.loader.image import VDSO_DIR
from sentry.mm.frames import SharedPages

log = logging.getLogger(__name__)

SHIFT = 32
PERIOD = 1.0
_FMT = struct.Struct("<IIQqqII")
_rdtsc = None


def rdtsc() -> int:
    global _rdtsc
    if _rdtsc is None:
        path = VDSO_DIR / "tsc.so"
        if not path.exists():
            from sentry.loader.vdso.build import build_tsc

            build_tsc(VDSO_DIR)
        fn = ctypes.CDLL(str(path)).kvmsandbox_rdtsc
        fn.restype = ctypes.c_uint64
        fn.argtypes = []
        _rdtsc = fn
    return _rdtsc()


def _sample() -> tuple[int, int, int]:
    """(tsc, monotonic ns, realtime ns) taken as close together as possible."""
    best = None
    for _ in range(5):
        t0 = rdtsc()
        mono = time.monotonic_ns()
        real = time.time_ns()
        t1 = rdtsc()
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, (t0 + t1) // 2, mono, real)
    return best[1], best[2], best[3]


class Timekeeper:
    """Keeps one kernel's time page current; `valid` stays 0 (syscall fallback) without a TSC."""

    def __init__(self, vvar: SharedPages, enabled: bool = True) -> None:
        self.view = vvar.frames.view
        self.offset = vvar.frame(0)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.seq = 0
        if not enabled:
            return
        try:
            self.tsc0, self.mono0, _ = _sample()
        except OSError:
            log.warning("no rdtsc helper: the vDSO falls back to system calls")
            return
        time.sleep(0.01)
        self._update(first=True)
        threading.Thread(target=self._run, name="sentry-timekeeper", daemon=True).start()

    def _update(self, first: bool = False) -> None:
        tsc, mono, real = _sample()
        if tsc <= self.tsc0:
            return
        mult = round((mono - self.mono0) * (1 << SHIFT) / (tsc - self.tsc0))
        if not 0 < mult < 1 << 32:
            return
        if first:
            mono_base = mono
        else:
            # Continue the published clock from where it is now, so it never jumps backwards.
            _seq, _valid, old_tsc, old_mono, _real, old_mult, _shift = _FMT.unpack_from(
                self.view, self.offset
            )
            mono_base = max(old_mono + ((tsc - old_tsc) * old_mult >> SHIFT), 0)
        self.seq += 1
        struct.pack_into("<I", self.view, self.offset, self.seq * 2 - 1)
        _FMT.pack_into(self.view, self.offset, self.seq * 2 - 1, 1, tsc, mono_base, real, mult, SHIFT)
        struct.pack_into("<I", self.view, self.offset, self.seq * 2)

    def _run(self) -> None:
        while not self._stop.wait(PERIOD):
            with self._lock:
                if self._stop.is_set():
                    return
                self._update()

    def stop(self) -> None:
        """No more writes to the page once this returns."""
        with self._lock:
            self._stop.set()
