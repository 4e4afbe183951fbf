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
from sentry.syscalls import poll as pollcalls

HANDLERS = [
    fn
    for module in (fscalls, fdcalls, pollcalls, epollcalls)
    for name, fn in vars(module).items()
    if name.startswith("sys_") and fn.__module__ == module.__name__
]
MASK = (1 << 64) - 1
PATHS = [b"/etc/passwd", b"/tmp", b"/tmp/x", b"/proc/self/fd/1", b"/proc/self/maps", b"/dev/zero", b".", b"/"]
# Real files of every filesystem: the overlay root, tmpfs, procfs (mem too), sysfs, devfs.
SAMPLE_PATHS = [b"/etc/passwd", b"/tmp", b"/proc/self/fd/1", b"/dev/zero", b".", b"/proc/self/mem", b"/data"]
SAMPLE_PATHS += [b"/sys/devices/system/cpu/online", b"/proc/sys/kernel/hostname", b"/proc/self/fdinfo/1"]
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
    task = sandbox
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
