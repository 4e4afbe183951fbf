"""epoll (level, edge, one-shot, blocking, EPERM on regular files) and eventfd."""

from __future__ import annotations

import errno
import os
import struct

from test_vfs_files import open_
from test_vfs_pipes_poll import later, pipe, write
from vfs_fake_task import BASE

from sentry.syscalls import epoll as epollcalls
from sentry.syscalls import fd as fdcalls

EVENTS = BASE + 0x4000
EPOLLIN, EPOLLOUT, EPOLLET, EPOLLONESHOT = 1, 4, 1 << 31, 1 << 30


def ctl(task, ep: int, op: int, fd: int, events: int, data: int) -> int:
    ev = task.put(0x3800, struct.pack("<IQ", events, data))
    return task.call(epollcalls.sys_epoll_ctl, ep, op, fd, ev)


def wait(task, ep: int, timeout_ms: int = 0, n: int = 8) -> list[tuple[int, int]]:
    got = task.call(epollcalls.sys_epoll_wait, ep, EVENTS, n, timeout_ms)
    assert got >= 0, got
    return [struct.unpack_from("<IQ", task.get(EVENTS, 12 * got), 12 * i) for i in range(got)]


def test_level_edge_and_oneshot(sandbox):
    task = sandbox
    ep = task.call(epollcalls.sys_epoll_create1, os.O_CLOEXEC)
    r1, w1 = pipe(task)
    r2, w2 = pipe(task)
    r3, w3 = pipe(task)
    assert ctl(task, ep, 1, r1, EPOLLIN, 11) == 0
    assert ctl(task, ep, 1, r2, EPOLLIN | EPOLLET, 22) == 0
    assert ctl(task, ep, 1, r3, EPOLLIN | EPOLLONESHOT, 33) == 0
    assert ctl(task, ep, 1, r1, EPOLLIN, 11) == -errno.EEXIST
    assert wait(task, ep) == []
    for w in (w1, w2, w3):
        write(task, w, b"x")
    assert sorted(wait(task, ep)) == [(EPOLLIN, 11), (EPOLLIN, 22), (EPOLLIN, 33)]
    # Level-triggered stays; edge and one-shot do not report again without a new event.
    assert wait(task, ep) == [(EPOLLIN, 11)]
    write(task, w2, b"y")
    write(task, w3, b"y")
    assert sorted(wait(task, ep)) == [(EPOLLIN, 11), (EPOLLIN, 22)]
    assert ctl(task, ep, 3, r3, EPOLLIN, 34) == 0
    assert (EPOLLIN, 34) in wait(task, ep)
    assert ctl(task, ep, 2, r1, 0, 0) == 0
    assert ctl(task, ep, 2, r1, 0, 0) == -errno.ENOENT
    assert (EPOLLIN, 11) not in wait(task, ep)


def test_blocking_wait_timeout_and_errors(sandbox):
    task = sandbox
    ep = task.call(epollcalls.sys_epoll_create, 1)
    r, w = pipe(task)
    assert ctl(task, ep, 1, r, EPOLLIN, 7) == 0
    assert task.call(epollcalls.sys_epoll_wait, ep, EVENTS, 4, 50) == 0
    wfile = task.fds.get(w)
    t = later(0.1, lambda: wfile.write(task, b"x"))
    assert wait(task, ep, -1) == [(EPOLLIN, 7)]
    t.join()
    assert ctl(task, ep, 1, open_(task, b"/etc/passwd"), EPOLLIN, 0) == -errno.EPERM
    assert ctl(task, ep, 1, ep, EPOLLIN, 0) == -errno.EINVAL
    assert ctl(task, r, 1, w, EPOLLIN, 0) == -errno.EINVAL
    assert task.call(epollcalls.sys_epoll_wait, ep, EVENTS, 0, 0) == -errno.EINVAL
    assert task.call(epollcalls.sys_epoll_create, 0) == -errno.EINVAL
    task.call(fdcalls.sys_read, r, BASE, 10)
    t = later(0.1, task.deliver_interrupt)
    assert task.call(epollcalls.sys_epoll_wait, ep, EVENTS, 4, -1) == -errno.EINTR
    t.join()


def test_eventfd(sandbox):
    task = sandbox
    efd = task.call(epollcalls.sys_eventfd2, 3, os.O_NONBLOCK)
    assert efd >= 0
    buf = task.put(0x3000, struct.pack("<Q", 4))
    assert task.call(fdcalls.sys_write, efd, buf, 8) == 8
    assert task.call(fdcalls.sys_read, efd, buf, 8) == 8 and task.get(buf, 8) == struct.pack("<Q", 7)
    assert task.call(fdcalls.sys_read, efd, buf, 8) == -errno.EAGAIN
    assert task.call(fdcalls.sys_read, efd, buf, 4) == -errno.EINVAL
    ep = task.call(epollcalls.sys_epoll_create1, 0)
    assert ctl(task, ep, 1, efd, EPOLLIN | EPOLLOUT, 5) == 0
    assert wait(task, ep) == [(EPOLLOUT, 5)]
    sem = task.call(epollcalls.sys_eventfd2, 2, epollcalls.EFD_SEMAPHORE)
    assert task.call(fdcalls.sys_read, sem, buf, 8) == 8 and task.get(buf, 8) == struct.pack("<Q", 1)
    assert task.call(epollcalls.sys_eventfd2, 0, 0xFF) == -errno.EINVAL
