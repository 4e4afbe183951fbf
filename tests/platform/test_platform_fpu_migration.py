"""A context's FPU state is its own, whichever vCPU (or stub thread) its switches land on.

Several contexts on several threads, each with its own MXCSR (rounding mode
bits), switch concurrently and at staggered times, so that on kvm they take
each other's vCPUs and leave their FPU state loaded in vCPUs they do not
come back to. Each round trip the app reports its MXCSR; it must always be
the one its own context was given.
"""

from __future__ import annotations

import struct
import threading
import time

from kvmsandbox.platform import Syscall
from tests.platform.platform_harness import AppThreads

CONTEXTS = 4
ROUNDS = 150
MXCSR_OFFSET = 24  # in the XSAVE legacy area
ROUNDING_MODES = (0x0000, 0x2000, 0x4000, 0x6000)


def test_fpu_state_stays_with_its_context(make_app):
    apps = [make_app("mxcsr") for _ in range(CONTEXTS)]
    expected = {}
    for i, app in enumerate(apps):
        image = app.ctx.pull_fpu()
        mxcsr = (struct.unpack_from("<I", image, MXCSR_OFFSET)[0] & ~0x6000) | ROUNDING_MODES[i]
        struct.pack_into("<I", image, MXCSR_OFFSET, mxcsr)
        app.regs.fpu = image
        expected[id(app)] = mxcsr
    wrong: list[str] = []

    def body(app):
        index = apps.index(app)
        for round_ in range(ROUNDS):
            event = app.switch()
            assert isinstance(event, Syscall), app.describe(event)
            if event.args[0] != expected[id(app)]:
                wrong.append(f"context {index} round {round_}: mxcsr {event.args[0]:#x}")
            if round_ % (index + 2) == 0:
                time.sleep(0.0005 * index)  # stagger, so vCPUs change hands
            app.regs.rax = 0

    AppThreads(apps, body).join()
    assert not wrong, "; ".join(wrong[:5]) + f" ({len(wrong)} wrong reports)"
    assert threading.active_count() >= 1


def test_garbage_fpu_image_still_runs(make_app, rng):
    """An FPU image the Sentry got from an app's signal frame may be anything: the context still
    runs, and the rounding-mode bits the image asks for still take effect."""
    app = make_app("mxcsr")
    for _ in range(5):
        image = bytearray(rng.randbytes(4096))
        mxcsr = (0x1F80 & ~0x6000) | ROUNDING_MODES[2]
        struct.pack_into("<I", image, MXCSR_OFFSET, mxcsr)
        app.regs.fpu = image
        event = app.switch()
        assert isinstance(event, Syscall), app.describe(event)
        assert event.args[0] & 0x6000 == ROUNDING_MODES[2], f"mxcsr {event.args[0]:#x}"
        app.regs.rax = 0
