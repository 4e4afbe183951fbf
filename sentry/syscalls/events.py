"""Handlers for timerfd_*, signalfd/signalfd4 and inotify_* (files in sentry/vfs/events)."""

from __future__ import annotations

import errno
import os
import struct

from sentry.errors import Errno
from sentry.syscalls.args import s32, u32
from sentry.syscalls.fsargs import get_file, read_path
from sentry.vfs.events import inotify, signalfd, timerfd
from sentry.vfs.permissions import R_OK, check_access
from sentry.vfs.vfs import AT_FDCWD

NONBLOCK, CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
TFD_TIMER_CANCEL_ON_SET = 2
CAP_WAKE_ALARM = 35
SIGSET_SIZE = 8
_ITIMERSPEC = struct.Struct("<qqqq")
NSEC = 1_000_000_000


def _fd_flags(flags: int) -> int:
    """O_NONBLOCK|O_CLOEXEC, the only flags these *_create calls take."""
    flags = u32(flags)
    if flags & ~(NONBLOCK | CLOEXEC):
        raise Errno(errno.EINVAL)
    return flags


# --- timerfd ------------------------------------------------------------------------
def _timerfd(task, fd: int) -> timerfd.TimerFD:
    file = get_file(task, fd)
    if not isinstance(file, timerfd.TimerFD):
        raise Errno(errno.EINVAL)
    return file


def _seconds(sec: int, nsec: int) -> float:
    if sec < 0 or not 0 <= nsec < NSEC:
        raise Errno(errno.EINVAL)
    return sec + nsec / NSEC


def _itimerspec(value: float, interval: float) -> bytes:
    def split(seconds: float) -> tuple[int, int]:
        ns = round(seconds * NSEC)
        return ns // NSEC, ns % NSEC

    return _ITIMERSPEC.pack(*split(interval), *split(value))


def sys_timerfd_create(task, clockid, flags) -> int:
    clock = s32(clockid)
    flags = _fd_flags(flags)
    if clock not in timerfd.CLOCKS:
        raise Errno(errno.EINVAL)
    alarm = clock in (timerfd.CLOCK_REALTIME_ALARM, timerfd.CLOCK_BOOTTIME_ALARM)
    if alarm and not task.creds.has_cap(CAP_WAKE_ALARM):
        raise Errno(errno.EPERM)
    file = timerfd.TimerFD(task.kernel.timers, clock, flags & NONBLOCK)
    return task.fds.install(file, cloexec=bool(flags & CLOEXEC))


def sys_timerfd_settime(task, fd, flags, new_value, old_value) -> int:
    flags = s32(flags)
    if flags & ~(timerfd.TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET):
        raise Errno(errno.EINVAL)
    file = _timerfd(task, fd)
    isec, insec, vsec, vnsec = _ITIMERSPEC.unpack(task.mm.copy_in(new_value, _ITIMERSPEC.size))
    interval, value = _seconds(isec, insec), _seconds(vsec, vnsec)
    if old_value:
        # Fault before changing anything.
        task.mm.copy_out(old_value, _itimerspec(*file.gettime()))
    old = file.settime(value, interval, bool(flags & timerfd.TFD_TIMER_ABSTIME))
    if old_value:
        task.mm.copy_out(old_value, _itimerspec(*old))
    return 0


def sys_timerfd_gettime(task, fd, curr_value) -> int:
    task.mm.copy_out(curr_value, _itimerspec(*_timerfd(task, fd).gettime()))
    return 0


# --- signalfd -----------------------------------------------------------------------
def sys_signalfd4(task, fd, mask, sizemask, flags) -> int:
    if sizemask != SIGSET_SIZE:
        raise Errno(errno.EINVAL)
    flags = _fd_flags(flags)
    (signals,) = struct.unpack("<Q", task.mm.copy_in(mask, SIGSET_SIZE))
    n = s32(fd)
    if n != -1:
        file = get_file(task, fd)
        if not isinstance(file, signalfd.SignalFD):
            raise Errno(errno.EINVAL)
        file.set_mask(signals)
        return n
    file = signalfd.SignalFD(task.tg, signals, flags & NONBLOCK)
    return task.fds.install(file, cloexec=bool(flags & CLOEXEC))


def sys_signalfd(task, fd, mask, sizemask) -> int:
    return sys_signalfd4(task, fd, mask, sizemask, 0)


# --- inotify ------------------------------------------------------------------------
def _inotify(task, fd: int) -> inotify.InotifyFD:
    file = get_file(task, fd)
    if not isinstance(file, inotify.InotifyFD):
        raise Errno(errno.EINVAL)
    return file


def sys_inotify_init1(task, flags) -> int:
    flags = _fd_flags(flags)
    return task.fds.install(inotify.InotifyFD(flags & NONBLOCK), cloexec=bool(flags & CLOEXEC))


def sys_inotify_init(task) -> int:
    return sys_inotify_init1(task, 0)


def sys_inotify_add_watch(task, fd, pathname, mask) -> int:
    mask = u32(mask)
    file = _inotify(task, fd)
    if not mask & inotify.IN_ALL_EVENTS:
        raise Errno(errno.EINVAL)
    if mask & inotify.IN_MASK_ADD and mask & inotify.IN_MASK_CREATE:
        raise Errno(errno.EINVAL)
    path = read_path(task, pathname)
    vfs = task.kernel.vfs
    follow = not mask & inotify.IN_DONT_FOLLOW
    loc = vfs.resolve(task, vfs.start_for(task, AT_FDCWD, path), path, follow=follow)
    if mask & inotify.IN_ONLYDIR and not loc.inode.is_dir():
        raise Errno(errno.ENOTDIR)
    check_access(task, loc.inode.stat(), R_OK)
    return file.add_watch(loc.inode, mask & inotify.VALID_MASK)


def sys_inotify_rm_watch(task, fd, wd) -> int:
    _inotify(task, fd).rm_watch(s32(wd))
    return 0
