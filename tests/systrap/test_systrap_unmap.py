"""unmap and protect are synchronous for threads that are running at the time."""

from __future__ import annotations

import signal
import struct
import threading
import time

from systrap_harness import App

from kvmsandbox.platform import PAGE_SIZE, Access, Fault, Syscall

PAGE_VA = 0x700000
MARKER = 0x6D61726B65722121


def watch_in_thread(app: App, results: list) -> threading.Thread:
    def body() -> None:
        results.append(app.run("watch", rax=PAGE_VA, rcx=MARKER))

    t = threading.Thread(target=body)
    t.start()
    return t


def test_unmap_stops_a_running_reader(make_app, platform):
    """The app spins reading a page; once unmap returns the frame is reused, and the app must fault,
    never see what the Sentry then writes there."""
    app = make_app()
    frame = platform.memory_file.allocate(1)
    try:
        app.asp.map(PAGE_VA, PAGE_SIZE, frame, Access.RW)
        results: list = []
        t = watch_in_thread(app, results)
        time.sleep(0.05)  # the reader is spinning on the page now
        app.asp.unmap(PAGE_VA, PAGE_SIZE)
        platform.memory_file.write(frame, struct.pack("<Q", MARKER))
        t.join(15)
        (event,) = results
        assert isinstance(event, Fault), f"the app read the frame after unmap returned: {event!r}"
        assert event.signo == signal.SIGSEGV and event.addr == PAGE_VA
    finally:
        platform.memory_file.free(frame)


def test_protect_while_running_keeps_reads_and_stops_writes(make_app, platform):
    """protect(READ) while the app spins reading: it keeps reading, and its next write faults."""
    app = make_app()
    frame = platform.memory_file.allocate(1)
    try:
        app.asp.map(PAGE_VA, PAGE_SIZE, frame, Access.RW)
        results: list = []
        t = watch_in_thread(app, results)
        time.sleep(0.05)
        app.asp.protect(PAGE_VA, PAGE_SIZE, Access.READ)
        platform.memory_file.write(frame, struct.pack("<Q", MARKER))
        t.join(15)
        (event,) = results
        assert isinstance(event, Syscall), event  # still readable: the reader saw the marker
        event = app.run("store", rax=PAGE_VA, rbx=1)
        assert isinstance(event, Fault) and event.access == Access.WRITE
    finally:
        platform.memory_file.free(frame)
