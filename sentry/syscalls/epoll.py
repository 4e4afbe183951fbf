"""Handlers for epoll_* and eventfd/eventfd2."""

from __future__ import annotations

import errno
import os
import struct

from sentry.errors import RESTART_CODES, Errno
from sentry.syscalls.args import s32, u32
from sentry.syscalls.fsargs import get_file
from sentry.syscalls.poll import read_timespec, with_sigmask
from sentry.vfs.fs.epoll import EpollFile
from sentry.vfs.fs.eventfd import EventFD

EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLL_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("<IQ")  # struct epoll_event is packed on x86-64
MAX_EVENTS = (1 << 31) // _EVENT.size
EFD_SEMAPHORE = 1


def sys_epoll_create1(task, flags) -> int:
    if u32(flags) & ~EPOLL_CLOEXEC:
        raise Errno(errno.EINVAL)
    return task.fds.install(EpollFile(0), cloexec=bool(u32(flags) & EPOLL_CLOEXEC))


def sys_epoll_create(task, size) -> int:
    if s32(size) <= 0:
        raise Errno(errno.EINVAL)
    return sys_epoll_create1(task, 0)


def _epoll(task, epfd: int) -> EpollFile:
    file = get_file(task, epfd)
    if not isinstance(file, EpollFile):
        raise Errno(errno.EINVAL)
    return file


def sys_epoll_ctl(task, epfd, op, fd, event) -> int:
    ep = _epoll(task, epfd)
    target = get_file(task, fd)
    op = s32(op)
    if op == EPOLL_CTL_DEL:
        ep.ctl_del(s32(fd), target)
        return 0
    if op not in (EPOLL_CTL_ADD, EPOLL_CTL_MOD):
        raise Errno(errno.EINVAL)
    events, data = _EVENT.unpack(task.mm.copy_in(event, _EVENT.size))
    if op == EPOLL_CTL_ADD:
        ep.ctl_add(s32(fd), target, events, data)
    else:
        ep.ctl_mod(s32(fd), target, events, data)
    return 0


def _wait(task, epfd: int, events: int, maxevents: int, timeout: float | None) -> int:
    n = s32(maxevents)
    if n <= 0 or n > MAX_EVENTS:
        raise Errno(errno.EINVAL)
    ep = _epoll(task, epfd)
    try:
        ready = ep.wait(task, n, timeout)
    except Errno as e:
        # epoll_wait is never restarted: a signal makes it fail with EINTR.
        raise Errno(errno.EINTR) if e.code in RESTART_CODES else e from None
    task.mm.copy_out(events, b"".join(_EVENT.pack(ev, data) for ev, data in ready))
    return len(ready)


def sys_epoll_wait(task, epfd, events, maxevents, timeout) -> int:
    ms = s32(timeout)
    return _wait(task, epfd, events, maxevents, None if ms < 0 else ms / 1000)


def sys_epoll_pwait(task, epfd, events, maxevents, timeout, sigmask, sigsetsize) -> int:
    ms = s32(timeout)
    seconds = None if ms < 0 else ms / 1000
    return with_sigmask(task, sigmask, sigsetsize, lambda: _wait(task, epfd, events, maxevents, seconds))


def sys_epoll_pwait2(task, epfd, events, maxevents, timeout, sigmask, sigsetsize) -> int:
    seconds = read_timespec(task, timeout)
    return with_sigmask(task, sigmask, sigsetsize, lambda: _wait(task, epfd, events, maxevents, seconds))


def sys_eventfd2(task, initval, flags) -> int:
    flags = u32(flags)
    if flags & ~(os.O_CLOEXEC | os.O_NONBLOCK | EFD_SEMAPHORE):
        raise Errno(errno.EINVAL)
    file = EventFD(u32(initval), flags & os.O_NONBLOCK, bool(flags & EFD_SEMAPHORE))
    return task.fds.install(file, cloexec=bool(flags & os.O_CLOEXEC))


def sys_eventfd(task, initval) -> int:
    return sys_eventfd2(task, initval, 0)
