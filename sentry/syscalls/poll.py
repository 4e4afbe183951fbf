"""poll, ppoll, select and pselect6 over any mix of pipes, files and the console.

One Waiter is registered with every file the call watches; the task sleeps
on it through task.block until a file becomes ready, the timeout passes, or
a signal arrives (ERESTARTNOHAND, which the kernel turns into EINTR or a
restart).
"""

from __future__ import annotations

import errno
import struct
import time

from sentry.errors import ERESTARTNOHAND, RESTART_CODES, Errno
from sentry.syscalls.args import s32, u32
from sentry.vfs.file import FileDescription
from sentry.vfs.waiter import (
    ALWAYS,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    POLLPRI,
    POLLRDNORM,
    POLLWRNORM,
    Waiter,
)

_POLLFD = struct.Struct("<ihh")
SIGSET_SIZE = 8
_UNBLOCKABLE = (1 << (9 - 1)) | (1 << (19 - 1))  # SIGKILL, SIGSTOP
SELECT_READ = POLLIN | POLLRDNORM | POLLHUP | POLLERR
SELECT_WRITE = POLLOUT | POLLWRNORM | POLLERR
SELECT_EXCEPT = POLLPRI


def _revents(file: FileDescription | None, events: int) -> int:
    if file is None:
        return POLLNVAL
    want = events | ALWAYS
    if events & POLLRDNORM:
        want |= POLLIN
    if events & POLLWRNORM:
        want |= POLLOUT
    ready = file.readiness(want)
    if ready & POLLIN:
        ready |= POLLRDNORM
    if ready & POLLOUT:
        ready |= POLLWRNORM
    return ready & (events | ALWAYS)


def wait_ready(task, watched: list[tuple[FileDescription | None, int]], timeout: float | None) -> list[int]:
    """The revents of each (file, events) once any is non-zero or the timeout (seconds) passes."""

    def check() -> list[int]:
        return [_revents(f, ev) for f, ev in watched]

    result = check()
    if any(result) or timeout == 0:
        return result
    deadline = None if timeout is None else time.monotonic() + timeout
    waiter = Waiter()
    for file, events in watched:
        if file is not None:
            file.watch(waiter, events | ALWAYS)
    try:
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return [0] * len(watched)
            try:
                task.block(waiter, remaining)
            except Errno as e:
                raise Errno(ERESTARTNOHAND) if e.code in RESTART_CODES else e from None
            waiter.clear()
            result = check()
            if any(result):
                return result
    finally:
        for file, _ in watched:
            if file is not None:
                file.unwatch(waiter)
        waiter.close()


def _lookup(task, fd: int) -> FileDescription | None:
    try:
        return task.fds.get(fd)
    except Errno:
        return None


def _do_poll(task, fds_addr: int, nfds: int, timeout: float | None) -> int:
    n = u32(nfds)
    if n > task.fds.max_fds:
        raise Errno(errno.EINVAL)
    raw = task.mm.copy_in(fds_addr, n * _POLLFD.size)
    entries = [_POLLFD.unpack_from(raw, i * _POLLFD.size) for i in range(n)]
    watched, slots = [], []
    for i, (fd, events, _) in enumerate(entries):
        if fd >= 0:
            watched.append((_lookup(task, fd), events & 0xFFFF))
            slots.append(i)
    revents = [0] * n
    for i, r in zip(slots, wait_ready(task, watched, timeout), strict=True):
        revents[i] = r
    out = b"".join(_POLLFD.pack(fd, events, revents[i]) for i, (fd, events, _) in enumerate(entries))
    task.mm.copy_out(fds_addr, out)
    return sum(1 for r in revents if r)


def sys_poll(task, fds, nfds, timeout_ms) -> int:
    ms = s32(timeout_ms)
    return _do_poll(task, fds, nfds, None if ms < 0 else ms / 1000)


def read_timespec(task, addr: int, *, usec: bool = False) -> float | None:
    if not addr:
        return None
    sec, frac = struct.unpack("<qq", task.mm.copy_in(addr, 16))
    limit = 1_000_000 if usec else 1_000_000_000
    if sec < 0 or not 0 <= frac < limit:
        raise Errno(errno.EINVAL)
    return sec + frac / limit


def with_sigmask(task, sigmask: int, sigsetsize: int, fn):
    """Run fn with the signal mask temporarily replaced (ppoll/pselect6's atomic mask swap)."""
    if not sigmask:
        return fn()
    if sigsetsize != SIGSET_SIZE:
        raise Errno(errno.EINVAL)
    (mask,) = struct.unpack("<Q", task.mm.copy_in(sigmask, 8))
    with task.kernel.lock:
        task.saved_mask = task.signal_mask
        task.signal_mask = mask & ~_UNBLOCKABLE
    try:
        result = fn()
    except Errno as e:
        if e.code not in RESTART_CODES:
            _restore_mask(task)
        # Interrupted: signal delivery restores saved_mask after running the handler.
        raise
    _restore_mask(task)
    return result


def _restore_mask(task) -> None:
    with task.kernel.lock:
        if task.saved_mask is not None:
            task.signal_mask = task.saved_mask
            task.saved_mask = None


def sys_ppoll(task, fds, nfds, tsp, sigmask, sigsetsize) -> int:
    timeout = read_timespec(task, tsp)
    return with_sigmask(task, sigmask, sigsetsize, lambda: _do_poll(task, fds, nfds, timeout))


def _do_select(task, nfds: int, readfds: int, writefds: int, exceptfds: int, timeout: float | None) -> int:
    n = s32(nfds)
    if n < 0 or n > task.fds.max_fds:
        raise Errno(errno.EINVAL)
    nbytes = (n + 63) // 64 * 8
    sets = [
        (addr, int.from_bytes(task.mm.copy_in(addr, nbytes), "little") if addr else 0)
        for addr in (readfds, writefds, exceptfds)
    ]
    masks = (SELECT_READ, SELECT_WRITE, SELECT_EXCEPT)
    watched, fds = [], []
    for fd in range(n):
        events = sum(m for (_, bits), m in zip(sets, masks, strict=True) if bits >> fd & 1)
        if events:
            file = task.fds.get(fd)
            watched.append((file, events))
            fds.append(fd)
    results = wait_ready(task, watched, timeout)
    count = 0
    outs = [0, 0, 0]
    for fd, (_, events), r in zip(fds, watched, results, strict=True):
        for k, m in enumerate(masks):
            if events & m and r & m:
                outs[k] |= 1 << fd
                count += 1
    for (addr, _), bits in zip(sets, outs, strict=True):
        if addr:
            task.mm.copy_out(addr, bits.to_bytes(nbytes, "little"))
    return count


def sys_select(task, nfds, readfds, writefds, exceptfds, timeout) -> int:
    seconds = read_timespec(task, timeout, usec=True)
    return _do_select(task, nfds, readfds, writefds, exceptfds, seconds)


def sys_pselect6(task, nfds, readfds, writefds, exceptfds, timeout, sigmask_arg) -> int:
    seconds = read_timespec(task, timeout)
    sigmask = sigsetsize = 0
    if sigmask_arg:
        sigmask, sigsetsize = struct.unpack("<QQ", task.mm.copy_in(sigmask_arg, 16))
    return with_sigmask(
        task, sigmask, sigsetsize, lambda: _do_select(task, nfds, readfds, writefds, exceptfds, seconds)
    )
