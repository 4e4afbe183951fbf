"""Handlers for I/O on open files: read/write and friends, lseek, close, dup, fcntl, ioctl, pipes.

Path-based calls are in fs.py; poll/select in poll.py.
"""

from __future__ import annotations

import errno
import os
import stat
import struct

from sentry.errors import Errno
from sentry.syscalls.args import s32, s64, u32
from sentry.syscalls.filelocks import LOCK_COMMANDS, fcntl_lock, flock
from sentry.syscalls.fsargs import IO_CHUNK, get_file, install_pair, io_count
from sentry.vfs.file import MAX_RW, SEEK_CUR, SEEK_SET, SETFL_MASK, FileDescription
from sentry.vfs.fs.pipe import CAPACITY, PipeFile, make_pipe

IOV_MAX = 1024
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
F_SETOWN, F_GETOWN = 8, 9
F_DUPFD_CLOEXEC, F_SETPIPE_SZ, F_GETPIPE_SZ = 1030, 1031, 1032
FD_CLOEXEC = 1
FIONBIO, FIONCLEX, FIOCLEX = 0x5421, 0x5450, 0x5451
O_LARGEFILE = 0o100000


def _readable(task, fd: int) -> FileDescription:
    file = get_file(task, fd)
    if not file.readable:
        raise Errno(errno.EBADF)
    return file


def _writable(task, fd: int) -> FileDescription:
    file = get_file(task, fd)
    if not file.writable:
        raise Errno(errno.EBADF)
    return file


def _offset(offset: int) -> int:
    off = s64(offset)
    if off < 0:
        raise Errno(errno.EINVAL)
    return off


def sys_read(task, fd, buf, count) -> int:
    file = _readable(task, fd)
    data = file.read(task, io_count(count))
    task.mm.copy_out(buf, data)
    return len(data)


def sys_write(task, fd, buf, count) -> int:
    file = _writable(task, fd)
    return file.write(task, task.mm.copy_in(buf, io_count(count)))


def sys_pread64(task, fd, buf, count, offset) -> int:
    file = _readable(task, fd)
    data = file.pread(task, io_count(count), _offset(offset))
    task.mm.copy_out(buf, data)
    return len(data)


def sys_pwrite64(task, fd, buf, count, offset) -> int:
    file = _writable(task, fd)
    off = _offset(offset)
    return file.pwrite(task, task.mm.copy_in(buf, io_count(count)), off)


def _iovecs(task, iov: int, iovcnt: int) -> list[tuple[int, int]]:
    n = s32(iovcnt)
    if n < 0 or n > IOV_MAX:
        raise Errno(errno.EINVAL)
    vecs = task.mm.read_iovec(iov, n)
    total = 0
    for _, length in vecs:
        if length >= 1 << 63:
            raise Errno(errno.EINVAL)
        total += length
    if total >= 1 << 63:
        raise Errno(errno.EINVAL)
    return vecs


def _scatter(task, vecs: list[tuple[int, int]], data: bytes) -> None:
    pos = 0
    for base, length in vecs:
        if pos >= len(data):
            break
        task.mm.copy_out(base, data[pos : pos + length])
        pos += length


def _gather(task, vecs: list[tuple[int, int]]) -> bytes:
    parts, total = [], 0
    for base, length in vecs:
        take = min(length, IO_CHUNK - total)
        if take <= 0:
            break
        parts.append(task.mm.copy_in(base, take))
        total += take
    return b"".join(parts)


def _vec_total(vecs: list[tuple[int, int]]) -> int:
    return min(sum(length for _, length in vecs), MAX_RW, IO_CHUNK)


def sys_readv(task, fd, iov, iovcnt) -> int:
    file = _readable(task, fd)
    vecs = _iovecs(task, iov, iovcnt)
    data = file.read(task, _vec_total(vecs))
    _scatter(task, vecs, data)
    return len(data)


def sys_writev(task, fd, iov, iovcnt) -> int:
    file = _writable(task, fd)
    return file.write(task, _gather(task, _iovecs(task, iov, iovcnt)))


def sys_preadv(task, fd, iov, iovcnt, offset) -> int:
    file = _readable(task, fd)
    vecs = _iovecs(task, iov, iovcnt)
    data = file.pread(task, _vec_total(vecs), _offset(offset))
    _scatter(task, vecs, data)
    return len(data)


def sys_pwritev(task, fd, iov, iovcnt, offset) -> int:
    file = _writable(task, fd)
    off = _offset(offset)
    return file.pwrite(task, _gather(task, _iovecs(task, iov, iovcnt)), off)


def sys_lseek(task, fd, offset, whence) -> int:
    file = get_file(task, fd)
    if file.flags & os.O_PATH:
        raise Errno(errno.EBADF)
    return file.seek(s64(offset), u32(whence))


def _copy(
    task, src: FileDescription, dst: FileDescription, n: int, in_off: int | None
) -> tuple[int, int | None]:
    """Move up to n bytes from src (at in_off, else its own offset) to dst's own offset.

    Reads with pread and then advances src by what dst took, so a short write
    (a full pipe, a signal) loses nothing. Returns (bytes written, src offset after).
    """
    if in_off is None:
        try:
            in_off = src.seek(0, SEEK_CUR)
        except Errno as e:
            if e.code != errno.ESPIPE:
                raise
            data = src.read(task, n)
            return (dst.write(task, data) if data else 0), None
        data = src.pread(task, n, in_off)
        written = dst.write(task, data) if data else 0
        src.seek(in_off + written, SEEK_SET)
        return written, None
    data = src.pread(task, n, in_off)
    written = dst.write(task, data) if data else 0
    return written, in_off + written


def sys_sendfile(task, out_fd, in_fd, offset_ptr, count) -> int:
    """Copy through the Sentry: read from in_fd (at *offset if given), write to out_fd."""
    src = _readable(task, in_fd)
    dst = _writable(task, out_fd)
    n = io_count(count)
    off = None
    if offset_ptr:
        (off,) = struct.unpack("<q", task.mm.copy_in(offset_ptr, 8))
        _offset(off)
    written, after = _copy(task, src, dst, n, off)
    if offset_ptr:
        task.mm.copy_out(offset_ptr, struct.pack("<q", after))
    return written


def sys_close(task, fd) -> int:
    n = s32(fd)
    if n < 0:
        raise Errno(errno.EBADF)
    task.fds.close(n)
    return 0


def sys_dup(task, oldfd) -> int:
    get_file(task, oldfd)
    return task.fds.dup(s32(oldfd))


def sys_dup2(task, oldfd, newfd) -> int:
    file = get_file(task, oldfd)
    if s32(oldfd) == s32(newfd):
        return s32(newfd)
    return _dup_to(task, file, newfd, cloexec=False)


def sys_dup3(task, oldfd, newfd, flags) -> int:
    file = get_file(task, oldfd)
    if u32(flags) & ~os.O_CLOEXEC:
        raise Errno(errno.EINVAL)
    if s32(oldfd) == s32(newfd):
        raise Errno(errno.EINVAL)
    return _dup_to(task, file, newfd, cloexec=bool(u32(flags) & os.O_CLOEXEC))


def _dup_to(task, file: FileDescription, newfd: int, *, cloexec: bool) -> int:
    new = s32(newfd)
    if new < 0 or new >= task.fds.max_fds:
        raise Errno(errno.EBADF)
    file.incref()
    task.fds.install_at(new, file, cloexec=cloexec)
    return new


def sys_fcntl(task, fd, cmd, arg) -> int:
    n = s32(fd)
    file = get_file(task, fd)
    cmd = u32(cmd)
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        lowest = s32(arg)
        if lowest < 0 or lowest >= task.fds.max_fds:
            raise Errno(errno.EINVAL)
        return task.fds.dup(n, lowest=lowest, cloexec=cmd == F_DUPFD_CLOEXEC)
    if cmd == F_GETFD:
        return FD_CLOEXEC if task.fds.get_cloexec(n) else 0
    if cmd == F_SETFD:
        task.fds.set_cloexec(n, bool(arg & FD_CLOEXEC))
        return 0
    if cmd == F_GETFL:
        return file.flags | O_LARGEFILE
    if file.flags & os.O_PATH:
        raise Errno(errno.EBADF)
    if cmd == F_SETFL:
        with file.lock:
            file.flags = (file.flags & ~SETFL_MASK) | (u32(arg) & SETFL_MASK)
        return 0
    if cmd in LOCK_COMMANDS:
        return fcntl_lock(task, file, cmd, arg)
    if cmd in (F_GETOWN, F_SETOWN):
        # No SIGIO delivery: there is no owner to report or keep.
        return 0
    if cmd in (F_GETPIPE_SZ, F_SETPIPE_SZ) and isinstance(file, PipeFile):
        return CAPACITY
    raise Errno(errno.EINVAL)


def sys_ioctl(task, fd, cmd, arg) -> int:
    file = get_file(task, fd)
    if file.flags & os.O_PATH:
        raise Errno(errno.EBADF)
    cmd = u32(cmd)
    if cmd in (FIOCLEX, FIONCLEX):
        task.fds.set_cloexec(s32(fd), cmd == FIOCLEX)
        return 0
    if cmd == FIONBIO:
        (on,) = struct.unpack("<i", task.mm.copy_in(arg, 4))
        with file.lock:
            file.flags = file.flags | os.O_NONBLOCK if on else file.flags & ~os.O_NONBLOCK
        return 0
    return file.ioctl(task, cmd, arg)


def sys_pipe2(task, fds_addr, flags) -> int:
    flags = u32(flags)
    if flags & ~(os.O_CLOEXEC | os.O_NONBLOCK | os.O_DIRECT):
        raise Errno(errno.EINVAL)
    read_end, write_end = make_pipe(flags)
    install_pair(task, read_end, write_end, bool(flags & os.O_CLOEXEC), fds_addr)
    return 0


def sys_pipe(task, fds_addr) -> int:
    return sys_pipe2(task, fds_addr, 0)


def sys_fsync(task, fd) -> int:
    get_file(task, fd).fsync()
    return 0


def sys_fdatasync(task, fd) -> int:
    get_file(task, fd).fsync()
    return 0


def sys_flock(task, fd, operation) -> int:
    """Advisory whole-file locks between the sandbox's processes (sentry/vfs/locks.py)."""
    return flock(task, get_file(task, fd), operation)


def sys_fadvise64(task, fd, offset, length, advice) -> int:
    file = get_file(task, fd)
    if isinstance(file, PipeFile):
        raise Errno(errno.ESPIPE)
    if u32(advice) > 5:
        raise Errno(errno.EINVAL)
    return 0


RWF_SUPPORTED = 0x1 | 0x2 | 0x4 | 0x10  # HIPRI, DSYNC, SYNC, APPEND: no-ops or handled by O_APPEND
CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC = 2, 4
FALLOC_FL_KEEP_SIZE = 1
MFD_CLOEXEC, MFD_ALLOW_SEALING = 1, 2
MFD_NAME_MAX = 249


def _rwf(flags: int) -> None:
    if u32(flags) & ~RWF_SUPPORTED:
        raise Errno(errno.EOPNOTSUPP)


def sys_preadv2(task, fd, iov, iovcnt, pos_l, pos_h, flags) -> int:
    """x86-64 passes the whole offset in pos_l; -1 means the file's own offset."""
    _rwf(flags)
    if s64(pos_l) == -1:
        return sys_readv(task, fd, iov, iovcnt)
    return sys_preadv(task, fd, iov, iovcnt, pos_l)


def sys_pwritev2(task, fd, iov, iovcnt, pos_l, pos_h, flags) -> int:
    _rwf(flags)
    if s64(pos_l) == -1:
        return sys_writev(task, fd, iov, iovcnt)
    return sys_pwritev(task, fd, iov, iovcnt, pos_l)


def sys_close_range(task, first, last, flags) -> int:
    """CLOSE_RANGE_UNSHARE is accepted but the table is not unshared first."""
    first, last, flags = u32(first), u32(last), u32(flags)
    if flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) or first > last:
        raise Errno(errno.EINVAL)
    for n in task.fds.fds():
        if first <= n <= last:
            if flags & CLOSE_RANGE_CLOEXEC:
                task.fds.set_cloexec(n, True)
            else:
                task.fds.close(n)
    return 0


def sys_fallocate(task, fd, mode, offset, length) -> int:
    """Mode 0 grows the file (tmpfs files are never sparse); KEEP_SIZE has nothing to reserve."""
    file = get_file(task, fd)
    mode, off, n = u32(mode), s64(offset), s64(length)
    if off < 0 or n <= 0:
        raise Errno(errno.EINVAL)
    if mode & ~FALLOC_FL_KEEP_SIZE:
        raise Errno(errno.EOPNOTSUPP)
    if not file.writable:
        raise Errno(errno.EBADF)
    if isinstance(file, PipeFile):
        raise Errno(errno.ESPIPE)
    inode = file.loc.inode
    if inode.is_dir():
        raise Errno(errno.EISDIR)
    if not stat.S_ISREG(inode.mode):
        raise Errno(errno.ENODEV)
    if not mode & FALLOC_FL_KEEP_SIZE and off + n > inode.stat().size:
        inode.truncate(off + n)
    return 0


def sys_copy_file_range(task, fd_in, off_in, fd_out, off_out, length, flags) -> int:
    if u32(flags):
        raise Errno(errno.EINVAL)
    src, dst = _readable(task, fd_in), _writable(task, fd_out)
    n = io_count(length)
    pos_in = None
    if off_in:
        (pos_in,) = struct.unpack("<q", task.mm.copy_in(off_in, 8))
        _offset(pos_in)
    if off_out:
        (pos_out,) = struct.unpack("<q", task.mm.copy_in(off_out, 8))
        data = src.pread(task, n, pos_in) if off_in else src.read(task, n)
        written = dst.pwrite(task, data, _offset(pos_out)) if data else 0
        task.mm.copy_out(off_out, struct.pack("<q", pos_out + written))
        after = None if pos_in is None else pos_in + written
    else:
        written, after = _copy(task, src, dst, n, pos_in)
    if off_in:
        task.mm.copy_out(off_in, struct.pack("<q", after))
    return written


def sys_memfd_create(task, name, flags) -> int:
    """An unlinked tmpfs file; sealing is accepted but not enforced."""
    flags = u32(flags)
    if flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING):
        raise Errno(errno.EINVAL)
    label = task.mm.read_cstring(name, MFD_NAME_MAX + 1)
    if len(label) > MFD_NAME_MAX:
        raise Errno(errno.EINVAL)
    file = task.kernel.vfs.memfd(task, label)
    return task.fds.install(file, cloexec=bool(flags & MFD_CLOEXEC))
