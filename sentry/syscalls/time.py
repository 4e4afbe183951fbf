"""Clocks, sleeps and timers: clock_*, gettimeofday, time, nanosleep, alarm, itimers, POSIX timers, times."""

from __future__ import annotations

import errno
import struct
import time
from typing import TYPE_CHECKING

from sentry.errors import ERESTART_RESTARTBLOCK, Errno
from sentry.kernel import signals as sig
from sentry.kernel.signals import SigInfo
from sentry.kernel.timers import Timer
from sentry.syscalls.args import s32

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID = 0, 1, 2, 3
CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME = 4, 5, 6, 7
CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM, CLOCK_TAI = 8, 9, 11
TIMER_ABSTIME = 1
ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF = 0, 1, 2
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
NSEC = 1_000_000_000
MAX_TIMERS = 4096


def now(clock: int) -> float:
    """Seconds on `clock` (EINVAL for unknown clocks)."""
    if clock in (CLOCK_REALTIME, CLOCK_REALTIME_COARSE, CLOCK_REALTIME_ALARM, CLOCK_TAI):
        return time.time()
    if clock in (
        CLOCK_MONOTONIC,
        CLOCK_MONOTONIC_RAW,
        CLOCK_MONOTONIC_COARSE,
        CLOCK_BOOTTIME,
        CLOCK_BOOTTIME_ALARM,
    ):
        return time.monotonic()
    if clock == CLOCK_PROCESS_CPUTIME_ID:
        return time.process_time()
    if clock == CLOCK_THREAD_CPUTIME_ID:
        return time.thread_time()
    raise Errno(errno.EINVAL)


def read_timespec(task: Task, addr: int) -> float:
    sec, nsec = struct.unpack("<qq", task.mm.copy_in(addr, 16))
    if sec < 0 or not 0 <= nsec < NSEC:
        raise Errno(errno.EINVAL)
    return sec + nsec / NSEC


def pack_timespec(seconds: float) -> bytes:
    ns = max(0, int(round(seconds * NSEC)))
    return struct.pack("<qq", ns // NSEC, ns % NSEC)


def _read_timeval(task: Task, addr: int) -> float:
    sec, usec = struct.unpack("<qq", task.mm.copy_in(addr, 16))
    if sec < 0 or not 0 <= usec < 1_000_000:
        raise Errno(errno.EINVAL)
    return sec + usec / 1e6


def _pack_timeval(seconds: float) -> bytes:
    us = max(0, int(round(seconds * 1e6)))
    return struct.pack("<qq", us // 1_000_000, us % 1_000_000)


def sys_clock_gettime(task: Task, clock: int, ts: int) -> int:
    task.mm.copy_out(ts, pack_timespec(now(s32(clock))))
    return 0


def sys_clock_getres(task: Task, clock: int, ts: int) -> int:
    clock = s32(clock)
    now(clock)
    if ts:
        coarse = clock in (CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE)
        task.mm.copy_out(ts, struct.pack("<qq", 0, 4_000_000 if coarse else 1))
    return 0


def sys_clock_settime(task: Task, clock: int, ts: int) -> int:
    now(s32(clock))
    read_timespec(task, ts)
    raise Errno(errno.EPERM)


def sys_settimeofday(task: Task, tv: int, tz: int) -> int:
    if tv:
        _read_timeval(task, tv)
    raise Errno(errno.EPERM)


def sys_adjtimex(task: Task, buf: int) -> int:
    task.mm.copy_in(buf, 208)
    raise Errno(errno.EPERM)


def sys_clock_adjtime(task: Task, clock: int, buf: int) -> int:
    now(s32(clock))
    task.mm.copy_in(buf, 208)
    raise Errno(errno.EPERM)


def sys_gettimeofday(task: Task, tv: int, tz: int) -> int:
    if tv:
        task.mm.copy_out(tv, _pack_timeval(time.time()))
    if tz:
        task.mm.copy_out(tz, bytes(8))
    return 0


def sys_time(task: Task, addr: int) -> int:
    seconds = int(time.time())
    if addr:
        task.mm.write_u64(addr, seconds)
    return seconds


def _sleep_until(task: Task, clock: int, deadline: float, rem_addr: int) -> int:
    """Sleep until clock reaches deadline; on a signal write the remainder and let delivery decide."""
    while True:
        remaining = deadline - now(clock)
        if remaining <= 0:
            return 0
        try:
            task.sleep(remaining)
        except Errno:
            if rem_addr:
                task.mm.copy_out(rem_addr, pack_timespec(max(0.0, deadline - now(clock))))
            raise Errno(ERESTART_RESTARTBLOCK) from None


def sys_nanosleep(task: Task, req: int, rem: int) -> int:
    duration = read_timespec(task, req)
    return _sleep_until(task, CLOCK_MONOTONIC, time.monotonic() + duration, rem)


def sys_clock_nanosleep(task: Task, clock: int, flags: int, req: int, rem: int) -> int:
    clock = s32(clock)
    if clock == CLOCK_THREAD_CPUTIME_ID:
        raise Errno(errno.EINVAL)
    now(clock)
    value = read_timespec(task, req)
    if flags & TIMER_ABSTIME:
        return _sleep_until(task, clock, value, 0)
    return _sleep_until(task, clock, now(clock) + value, rem)


# ---- interval timers -------------------------------------------------------------


def _itimer_real(tg: ThreadGroup) -> Timer:
    if tg.itimer_real is None:
        kernel = tg.kernel

        def fire() -> None:
            kernel.signals.send_to_group(tg, SigInfo.kill(sig.SIGALRM, sig.SI_KERNEL, 0, 0))

        tg.itimer_real = Timer(kernel.timers, fire, tg)
    return tg.itimer_real


def _pack_itimerval(remaining: float | None, interval: float) -> bytes:
    return _pack_timeval(interval) + _pack_timeval(remaining or 0.0)


def sys_getitimer(task: Task, which: int, value: int) -> int:
    which = s32(which)
    if which not in (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF):
        raise Errno(errno.EINVAL)
    if which == ITIMER_REAL:
        timer = _itimer_real(task.tg)
        task.mm.copy_out(value, _pack_itimerval(timer.remaining(), timer.interval))
    else:
        task.mm.copy_out(value, bytes(32))
    return 0


def sys_setitimer(task: Task, which: int, new: int, old: int) -> int:
    which = s32(which)
    if which not in (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF):
        raise Errno(errno.EINVAL)
    interval, value = (_read_timeval(task, new), _read_timeval(task, new + 16)) if new else (0.0, 0.0)
    if which != ITIMER_REAL:
        if old:
            task.mm.copy_out(old, bytes(32))
        return 0
    timer = _itimer_real(task.tg)
    deadline = time.monotonic() + value if value else None
    prev_remaining, prev_interval = timer.set(deadline, interval if value else 0.0)
    if old:
        task.mm.copy_out(old, _pack_itimerval(prev_remaining, prev_interval))
    return 0


def sys_alarm(task: Task, seconds: int) -> int:
    seconds &= 0xFFFFFFFF
    timer = _itimer_real(task.tg)
    prev, _ = timer.set(time.monotonic() + seconds if seconds else None, 0.0)
    if prev is None:
        return 0
    return max(1, int(prev + 0.5))


# ---- POSIX timers ----------------------------------------------------------------


class PosixTimer:
    def __init__(
        self, task: Task, timer_id: int, clock: int, notify: int, signo: int, value: int, target: Task
    ):
        self.clock = clock
        self.timer_id = timer_id
        kernel = task.kernel
        tg = task.tg

        def fire() -> None:
            if notify == SIGEV_NONE:
                return
            info = SigInfo.timer(signo, timer_id, self.timer.overrun, value)
            if notify & SIGEV_THREAD_ID:
                kernel.signals.send_to_task(target, info)
            else:
                kernel.signals.send_to_group(tg, info)

        self.timer = Timer(kernel.timers, fire, tg)


def sys_timer_create(task: Task, clock: int, sevp: int, timer_id_addr: int) -> int:
    clock = s32(clock)
    now(clock)
    notify, signo, value, target = SIGEV_SIGNAL, sig.SIGALRM, 0, task
    tg = task.tg
    if sevp:
        raw = task.mm.copy_in(sevp, 64)
        value, signo, notify, tid = struct.unpack_from("<Qiii", raw)
        if notify not in (SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID):
            raise Errno(errno.EINVAL)
        if notify != SIGEV_NONE and not sig.valid(signo):
            raise Errno(errno.EINVAL)
        if notify == SIGEV_THREAD_ID:
            found = task.kernel.task_by_tid(tid)
            if found is None or found.tg is not tg:
                raise Errno(errno.EINVAL)
            target = found
    with task.kernel.lock:
        if len(tg.posix_timers) >= MAX_TIMERS:
            raise Errno(errno.EAGAIN)
        timer_id = next(i for i in range(MAX_TIMERS + 1) if i not in tg.posix_timers)
        if not sevp:
            value = timer_id
        tg.posix_timers[timer_id] = PosixTimer(task, timer_id, clock, notify, signo, value, target)
    try:
        task.mm.write_u32(timer_id_addr, timer_id)
    except Errno:
        tg.posix_timers.pop(timer_id, None)
        raise
    return 0


def _posix_timer(task: Task, timer_id: int) -> PosixTimer:
    timer = task.tg.posix_timers.get(s32(timer_id))
    if timer is None:
        raise Errno(errno.EINVAL)
    return timer


def sys_timer_settime(task: Task, timer_id: int, flags: int, new: int, old: int) -> int:
    timer = _posix_timer(task, timer_id)
    interval, value = read_timespec(task, new), read_timespec(task, new + 16)
    if value and flags & TIMER_ABSTIME:
        value = max(0.0, value - now(timer.clock))
        value = value or 1e-9
    deadline = time.monotonic() + value if value else None
    prev, prev_interval = timer.timer.set(deadline, interval if value else 0.0)
    if old:
        task.mm.copy_out(old, pack_timespec(prev_interval) + pack_timespec(prev or 0.0))
    return 0


def sys_timer_gettime(task: Task, timer_id: int, cur: int) -> int:
    timer = _posix_timer(task, timer_id)
    task.mm.copy_out(cur, pack_timespec(timer.timer.interval) + pack_timespec(timer.timer.remaining() or 0.0))
    return 0


def sys_timer_getoverrun(task: Task, timer_id: int) -> int:
    return min(_posix_timer(task, timer_id).timer.overrun, 0x7FFFFFFF)


def sys_timer_delete(task: Task, timer_id: int) -> int:
    timer = _posix_timer(task, timer_id)
    timer.timer.set(None, 0.0)
    task.tg.posix_timers.pop(timer.timer_id, None)
    return 0


def sys_times(task: Task, buf: int) -> int:
    ticks = int((time.monotonic() - task.kernel.boot_monotonic) * 100)
    if buf:
        cpu = int(time.process_time() * 100)
        task.mm.copy_out(buf, struct.pack("<4q", cpu, 0, 0, 0))
    return ticks


def sys_getrusage(task: Task, who: int, usage: int) -> int:
    who = s32(who)
    if who not in (0, -1, 1):
        raise Errno(errno.EINVAL)
    cpu = time.thread_time() if who == 1 else (time.process_time() if who == 0 else 0.0)
    task.mm.copy_out(usage, _pack_timeval(cpu) + _pack_timeval(0.0) + bytes(112))
    return 0
