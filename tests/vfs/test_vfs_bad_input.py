"""Garbage arguments: every handler answers with an errno (or a result), never another exception or a hang."""

from __future__ import annotations

import inspect
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vfs_fake_task import BASE, SIZE

from sentry.errors import Errno
from sentry.syscalls import epoll as epollcalls
from sentry.syscalls import fd as fdcalls
from sentry.syscalls import fs as fscalls
from sentry.syscalls import mount as mountcalls
from sentry.syscalls import poll as pollcalls

HANDLERS = [
    fn
    for module in (fscalls, fdcalls, pollcalls, epollcalls, mountcalls)
    for name, fn in vars(module).items()
    if name.startswith("sys_") and fn.__module__ == module.__name__
]
MASK = (1 << 64) - 1
PATHS = [b"/etc/passwd", b"/tmp", b"/tmp/x", b"/proc/self/fd/1", b"/proc/self/maps", b"/dev/zero", b".", b"/"]
# Real files of every filesystem: the overlay root, tmpfs, procfs (mem too), sysfs, devfs.
SAMPLE_PATHS = [b"/etc/passwd", b"/tmp", b"/proc/self/fd/1", b"/dev/zero", b".", b"/proc/self/mem", b"/data"]
SAMPLE_PATHS += [b"/sys/devices/system/cpu/online", b"/proc/sys/kernel/hostname", b"/proc/self/fdinfo/1"]
SAMPLE_PATHS += [b"/dev/ptmx", b"/dev/pts"]
ARG = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 5, 100, 0xFFFFFFFF, MASK, 1 << 63, (-100) & MASK, BASE, BASE + SIZE - 1]),
    st.integers(0, 64),
    st.integers(BASE, BASE + SIZE),
    st.integers(0, MASK),
)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_handlers_only_raise_errno(sandbox, data):
    fuzz_one_call(sandbox, data)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_handlers_only_raise_errno_on_a_written_through_root(sandbox_none, rootfs, data):
    fuzz_one_call(sandbox_none, data)
    assert (rootfs.parent / "secret").read_text() == "host secret\n"


def fuzz_one_call(task, data) -> None:
    # Any wait is interrupted at once, so no call can hang the test.
    task.interrupt.set()
    fn = data.draw(st.sampled_from(HANDLERS))
    nargs = len(inspect.signature(fn).parameters) - 1
    args = data.draw(st.lists(ARG, min_size=nargs, max_size=nargs))
    # Paths to real files now and then, so calls get past path resolution.
    if data.draw(st.booleans()):
        task.put(
            0,
            data.draw(st.sampled_from(SAMPLE_PATHS)) + b"\0",
        )
    try:
        result = fn(task, *args)
    except Errno:
        return
    assert isinstance(result, int) and result >= 0


TTY_IOCTLS = [0x5401, 0x5402, 0x5403, 0x5404, 0x5409, 0x540A, 0x540B, 0x540E, 0x540F, 0x5410, 0x5411, 0x5413,
              0x5414, 0x541B, 0x5420, 0x5422, 0x5429, 0x80045430, 0x40045431, 0x80045439, 0x5441]  # fmt: skip


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_terminal_ioctls_and_io_only_raise_errno(sandbox, data):
    task = sandbox
    task.interrupt.set()
    task.put(0, b"/dev/ptmx\0")
    master = fscalls.sys_openat(task, (-100) & MASK, BASE, os.O_RDWR | os.O_NONBLOCK, 0)
    try:
        for _ in range(data.draw(st.integers(1, 6))):
            cmd = data.draw(st.one_of(st.sampled_from(TTY_IOCTLS), st.integers(0, 0xFFFFFFFF)))
            arg = data.draw(ARG)
            op = data.draw(st.sampled_from(["ioctl", "read", "write"]))
            try:
                if op == "ioctl":
                    result = fdcalls.sys_ioctl(task, master, cmd, arg)
                elif op == "read":
                    result = fdcalls.sys_read(task, master, arg, data.draw(ARG))
                else:
                    result = fdcalls.sys_write(task, master, arg, data.draw(st.integers(0, 4096)))
            except Errno:
                continue
            assert isinstance(result, int) and result >= 0
    finally:
        task.fds.close(master)
