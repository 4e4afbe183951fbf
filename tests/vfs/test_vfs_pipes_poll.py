"""Pipes (blocking, O_NONBLOCK, EPIPE/SIGPIPE, EOF) and poll/select over them."""

from __future__ import annotations

import errno
import os
import signal
import struct
import threading
import time

from vfs_fake_task import BASE

from sentry.errors import ERESTARTNOHAND, ERESTARTSYS
from sentry.syscalls import fd as fdcalls
from sentry.syscalls import fs as fscalls
from sentry.syscalls import poll as pollcalls

BUF = BASE + 0x1000
FDS = BASE + 0x100


def pipe(task, flags: int = 0) -> tuple[int, int]:
    assert task.call(fdcalls.sys_pipe2, FDS, flags) == 0
    return struct.unpack("<ii", task.get(FDS, 8))


def write(task, fd: int, data: bytes) -> int:
    task.put(0x20000, data)
    return task.call(fdcalls.sys_write, fd, BASE + 0x20000, len(data))


def later(seconds: float, fn) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        fn()

    t = threading.Thread(target=run)
    t.start()
    return t


def test_pipe_round_trip_and_eof(sandbox):
    task = sandbox
    r, w = pipe(task)
    assert write(task, w, b"hello") == 5
    assert task.call(fdcalls.sys_read, r, BUF, 100) == 5 and task.get(BUF, 5) == b"hello"
    assert task.call(fdcalls.sys_close, w) == 0
    assert task.call(fdcalls.sys_read, r, BUF, 100) == 0
    assert task.call(fdcalls.sys_read, w, BUF, 1) == -errno.EBADF
    assert task.call(fdcalls.sys_lseek, r, 0, 0) == -errno.ESPIPE


def test_nonblocking_pipe(sandbox):
    task = sandbox
    r, w = pipe(task, os.O_NONBLOCK)
    assert task.call(fdcalls.sys_read, r, BUF, 10) == -errno.EAGAIN
    chunk = b"x" * 65536
    assert write(task, w, chunk) == 65536
    assert write(task, w, b"y") == -errno.EAGAIN
    assert task.call(fdcalls.sys_fcntl, w, fdcalls.F_GETFL, 0) & os.O_NONBLOCK


def test_epipe_and_sigpipe(sandbox):
    task = sandbox
    r, w = pipe(task)
    task.call(fdcalls.sys_close, r)
    assert write(task, w, b"x") == -errno.EPIPE
    assert task.signals == [signal.SIGPIPE]


def test_blocking_read_is_woken_by_a_writer(sandbox):
    task = sandbox
    r, w = pipe(task)
    wfile = task.fds.get(w)
    t = later(0.1, lambda: wfile.write(task, b"late"))
    assert task.call(fdcalls.sys_read, r, BUF, 100) == 4
    t.join()


def test_blocking_write_is_woken_by_a_reader(sandbox):
    task = sandbox
    r, w = pipe(task)
    assert write(task, w, b"a" * 65536) == 65536
    rfile = task.fds.get(r)
    t = later(0.1, lambda: rfile.read(task, 10000))
    assert write(task, w, b"b" * 4096) == 4096
    t.join()


def test_blocked_read_is_interrupted_by_a_signal(sandbox):
    task = sandbox
    r, _w = pipe(task)
    t = later(0.1, task.deliver_interrupt)
    assert task.call(fdcalls.sys_read, r, BUF, 10) == -ERESTARTSYS
    t.join()


def test_dup_fcntl_and_cloexec(sandbox):
    task = sandbox
    r, w = pipe(task, os.O_CLOEXEC)
    assert task.call(fdcalls.sys_fcntl, r, fdcalls.F_GETFD, 0) == fdcalls.FD_CLOEXEC
    d = task.call(fdcalls.sys_fcntl, w, fdcalls.F_DUPFD, 10)
    assert d == 10 and task.call(fdcalls.sys_fcntl, d, fdcalls.F_GETFD, 0) == 0
    assert task.call(fdcalls.sys_dup2, w, 20) == 20
    assert task.call(fdcalls.sys_dup3, w, 20, os.O_CLOEXEC) == 20
    assert task.call(fdcalls.sys_dup3, w, w, 0) == -errno.EINVAL
    assert task.call(fdcalls.sys_dup3, w, 21, 0xFF) == -errno.EINVAL
    task.fds.on_exec()
    assert task.call(fdcalls.sys_fcntl, r, fdcalls.F_GETFD, 0) == -errno.EBADF
    assert task.call(fdcalls.sys_fcntl, 20, fdcalls.F_GETFD, 0) == -errno.EBADF
    assert write(task, d, b"still open") == -errno.EPIPE  # the read end went with exec


def test_fork_shares_descriptions(sandbox):
    task = sandbox
    r, w = pipe(task)
    child = task.fds.fork()
    task.call(fdcalls.sys_close, w)
    child.get(w).write(task, b"from child")
    assert task.call(fdcalls.sys_read, r, BUF, 100) == 10
    child.close_all()
    assert task.call(fdcalls.sys_read, r, BUF, 100) == 0


def pollfds(task, entries: list[tuple[int, int]]) -> int:
    task.put(0x100, b"".join(struct.pack("<ihh", fd, ev, 0) for fd, ev in entries))
    return FDS


def revents(task, n: int) -> list[int]:
    return [struct.unpack_from("<ihh", task.get(FDS, 8 * n), 8 * i)[2] for i in range(n)]


def test_poll_pipe_readiness(sandbox):
    task = sandbox
    r, w = pipe(task)
    addr = pollfds(
        task, [(r, pollcalls.POLLIN), (w, pollcalls.POLLOUT), (99, pollcalls.POLLIN), (-1, pollcalls.POLLIN)]
    )
    assert task.call(pollcalls.sys_poll, addr, 4, 0) == 2
    assert revents(task, 4) == [0, pollcalls.POLLOUT, pollcalls.POLLNVAL, 0]
    write(task, w, b"x")
    addr = pollfds(task, [(r, pollcalls.POLLIN)])
    assert task.call(pollcalls.sys_poll, addr, 1, 1000) == 1 and revents(task, 1) == [pollcalls.POLLIN]
    task.call(fdcalls.sys_close, w)
    task.call(fdcalls.sys_read, r, BUF, 10)
    assert task.call(pollcalls.sys_poll, addr, 1, 0) == 1 and revents(task, 1) == [pollcalls.POLLHUP]


def test_poll_times_out_and_wakes(sandbox):
    task = sandbox
    r, w = pipe(task)
    addr = pollfds(task, [(r, pollcalls.POLLIN)])
    start = time.monotonic()
    assert task.call(pollcalls.sys_poll, addr, 1, 100) == 0
    assert 0.09 <= time.monotonic() - start < 2
    wfile = task.fds.get(w)
    t = later(0.1, lambda: wfile.write(task, b"x"))
    assert task.call(pollcalls.sys_poll, addr, 1, -1) == 1
    t.join()
    t = later(0.1, task.deliver_interrupt)
    task.call(fdcalls.sys_read, r, BUF, 10)
    assert task.call(pollcalls.sys_poll, addr, 1, -1) == -ERESTARTNOHAND
    t.join()


def test_poll_watches_host_stdio(sandbox):
    task = sandbox
    host_r = min(task.kernel.vfs.host_stdio)
    host_w = max(task.kernel.vfs.host_stdio)
    addr = pollfds(task, [(0, pollcalls.POLLIN)])
    assert task.call(pollcalls.sys_poll, addr, 1, 0) == 0
    t = later(0.1, lambda: os.write(host_w, b"typed"))
    assert task.call(pollcalls.sys_poll, addr, 1, 5000) == 1
    t.join()
    assert task.call(fdcalls.sys_read, 0, BUF, 100) == 5
    assert host_r != host_w


def test_select_and_pselect(sandbox):
    task = sandbox
    r, w = pipe(task)
    rset, wset = BASE + 0x300, BASE + 0x308
    task.put(0x300, (1 << r).to_bytes(8, "little") + (1 << w).to_bytes(8, "little"))
    assert task.call(pollcalls.sys_select, max(r, w) + 1, rset, wset, 0, 0) == 1
    assert int.from_bytes(task.get(rset, 8), "little") == 0
    assert int.from_bytes(task.get(wset, 8), "little") == 1 << w
    write(task, w, b"x")
    task.put(0x300, (1 << r).to_bytes(8, "little"))
    tv = task.put(0x400, struct.pack("<qq", 1, 0))
    assert task.call(pollcalls.sys_pselect6, r + 1, rset, 0, 0, tv, 0) == 1
    task.put(0x300, (1 << 50).to_bytes(8, "little"))
    assert task.call(pollcalls.sys_select, 51, rset, 0, 0, 0) == -errno.EBADF
    assert task.call(pollcalls.sys_select, -1 & 0xFFFFFFFF, 0, 0, 0, 0) == -errno.EINVAL
    bad_tv = task.put(0x400, struct.pack("<qq", 0, 2_000_000))
    assert task.call(pollcalls.sys_select, 0, 0, 0, 0, bad_tv) == -errno.EINVAL


def test_pipe_stress_between_threads(sandbox):
    """Many wakeups racing with waiters coming and going: every byte arrives, in order."""
    task = sandbox
    r, w = pipe(task)
    rfile, wfile = task.fds.get(r), task.fds.get(w)
    payload = os.urandom(1 << 20)

    def produce() -> None:
        for i in range(0, len(payload), 7000):
            wfile.write(task, payload[i : i + 7000])
        task.call(fdcalls.sys_close, w)

    t = threading.Thread(target=produce)
    t.start()
    got = bytearray()
    while chunk := rfile.read(task, 3000):
        got += chunk
    t.join()
    assert bytes(got) == payload


def test_sendfile_short_write_loses_nothing(sandbox):
    task = sandbox
    fd = task.call(
        fscalls.sys_openat, -100 & 0xFFFFFFFF, task.path(b"/tmp/src"), os.O_CREAT | os.O_RDWR, 0o644
    )
    data = os.urandom(10000)
    task.put(0x20000, data)
    assert task.call(fdcalls.sys_pwrite64, fd, BASE + 0x20000, len(data), 0) == len(data)
    r, w = pipe(task, os.O_NONBLOCK)
    assert write(task, w, b"f" * (65536 - 2000)) == 65536 - 2000
    assert task.call(fdcalls.sys_sendfile, w, fd, 0, 100000) == 2000
    assert task.call(fdcalls.sys_lseek, fd, 0, os.SEEK_CUR) == 2000
    out = b""
    while (n := task.call(fdcalls.sys_read, r, BUF, 65536)) > 0:
        out += task.get(BUF, n)
    while (n := task.call(fdcalls.sys_sendfile, w, fd, 0, 100000)) > 0:
        while (m := task.call(fdcalls.sys_read, r, BUF, 65536)) > 0:
            out += task.get(BUF, m)
    assert out[65536 - 2000 :] == data


def test_ppoll_swaps_the_signal_mask(sandbox):
    task = sandbox
    r, w = pipe(task)
    write(task, w, b"x")
    addr = pollfds(task, [(r, pollcalls.POLLIN)])
    mask = task.put(0x500, struct.pack("<Q", 1 << 1))
    task.signal_mask = 1 << 5
    assert task.call(pollcalls.sys_ppoll, addr, 1, 0, mask, 8) == 1
    assert (task.signal_mask, task.saved_mask) == (1 << 5, None)
    assert task.call(pollcalls.sys_ppoll, addr, 1, 0, mask, 7) == -errno.EINVAL
    # Interrupted: the temporary mask stays until signal delivery restores saved_mask.
    task.call(fdcalls.sys_read, r, BUF, 10)
    task.interrupt.set()
    assert task.call(pollcalls.sys_ppoll, addr, 1, 0, mask, 8) == -ERESTARTNOHAND
    assert (task.signal_mask, task.saved_mask) == (1 << 1, 1 << 5)


def test_fionread_on_pipes_and_host_stdin(sandbox):
    task = sandbox
    r, w = pipe(task)
    write(task, w, b"12345")
    assert task.call(fdcalls.sys_ioctl, r, 0x541B, BUF) == 0
    assert struct.unpack("<i", task.get(BUF, 4)) == (5,)
    os.write(max(task.kernel.vfs.host_stdio), b"abc")
    assert task.call(fdcalls.sys_ioctl, 0, 0x541B, BUF) == 0
    assert struct.unpack("<i", task.get(BUF, 4)) == (3,)
