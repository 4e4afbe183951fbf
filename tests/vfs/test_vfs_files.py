"""Files through the syscall handlers: gofer root, tmpfs, devices, stat, getdents, cwd."""

from __future__ import annotations

import errno
import gc
import os
import stat
import struct
import threading

from vfs_fake_task import BASE

from sentry.syscalls import fd as fdcalls
from sentry.syscalls import fs as fscalls

AT_FDCWD = -100 & 0xFFFFFFFF
BUF = BASE + 0x1000


def open_(task, path: bytes, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    return task.call(fscalls.sys_openat, AT_FDCWD, task.path(path), flags, mode)


def read_all(task, fd: int) -> bytes:
    out = b""
    while n := task.call(fdcalls.sys_read, fd, BUF, 4096):
        assert n > 0, n
        out += task.get(BUF, n)
    return out


def cat(task, path: bytes) -> bytes:
    fd = open_(task, path)
    assert fd >= 0, fd
    try:
        return read_all(task, fd)
    finally:
        task.call(fdcalls.sys_close, fd)


def fstat_of(task, fd: int) -> tuple:
    assert task.call(fscalls.sys_fstat, fd, BUF) == 0
    return struct.unpack("<QQQIIIIQqqq", task.get(BUF, 72))


def test_read_seek_pread_on_a_gofer_file(sandbox, rootfs):
    task = sandbox
    fd = open_(task, b"/data/numbers")
    expected = (rootfs / "data" / "numbers").read_bytes()
    assert read_all(task, fd) == expected
    assert task.call(fdcalls.sys_lseek, fd, 10, os.SEEK_SET) == 10
    assert task.call(fdcalls.sys_read, fd, BUF, 4) == 4 and task.get(BUF, 4) == expected[10:14]
    assert task.call(fdcalls.sys_pread64, fd, BUF, 5, 100) == 5 and task.get(BUF, 5) == expected[100:105]
    assert task.call(fdcalls.sys_lseek, fd, 0, os.SEEK_END) == len(expected)
    st = fstat_of(task, fd)
    assert stat.S_ISREG(st[3]) and st[1] == os.stat(rootfs / "data" / "numbers").st_ino
    assert st[8] == len(expected)
    assert task.call(fdcalls.sys_write, fd, BUF, 1) == -errno.EBADF


def test_symlinks_resolve_inside_the_sandbox(sandbox, rootfs):
    task = sandbox
    passwd = (rootfs / "etc" / "passwd").read_bytes()
    assert cat(task, b"/abs-link") == passwd
    assert cat(task, b"/rel-link") == passwd
    assert cat(task, b"/../../../etc/passwd") == passwd
    assert open_(task, b"/../secret") == -errno.ENOENT
    # A link made inside the sandbox that climbs out still lands in the sandbox root.
    assert task.call(fscalls.sys_symlink, task.path(b"../../../../secret", 1), task.path(b"/tmp/esc")) == 0
    assert open_(task, b"/tmp/esc") == -errno.ENOENT
    assert task.call(fscalls.sys_symlink, task.path(b"../../../../etc/passwd", 1), task.path(b"/tmp/ok")) == 0
    assert cat(task, b"/tmp/ok") == passwd
    assert open_(task, b"/abs-link", os.O_RDONLY | os.O_NOFOLLOW) == -errno.ELOOP
    n = task.call(fscalls.sys_readlink, task.path(b"/abs-link"), BUF, 100)
    assert task.get(BUF, n) == b"/etc/passwd"
    assert task.call(fscalls.sys_readlink, task.path(b"/etc/passwd"), BUF, 100) == -errno.EINVAL


def test_symlink_loops_are_eloop(sandbox):
    task = sandbox
    assert task.call(fscalls.sys_symlink, task.path(b"/tmp/b", 1), task.path(b"/tmp/a")) == 0
    assert task.call(fscalls.sys_symlink, task.path(b"/tmp/a", 1), task.path(b"/tmp/b")) == 0
    assert open_(task, b"/tmp/a") == -errno.ELOOP


def dirents(task, fd: int) -> dict[bytes, int]:
    out = {}
    while (n := task.call(fscalls.sys_getdents64, fd, BUF, 512)) > 0:
        data, pos = task.get(BUF, n), 0
        while pos < n:
            _ino, _off, reclen, dtype = struct.unpack_from("<QqHB", data, pos)
            name = data[pos + 19 : pos + reclen].split(b"\0")[0]
            out[name] = dtype
            pos += reclen
    assert n == 0
    return out


def test_getdents64(sandbox):
    task = sandbox
    fd = open_(task, b"/", os.O_RDONLY | os.O_DIRECTORY)
    entries = dirents(task, fd)
    assert {b".", b"..", b"etc", b"bin", b"data", b"abs-link"} <= entries.keys()
    # Mount points the root lacks (dev, proc) are listed too.
    assert {b"dev", b"proc", b"tmp"} <= entries.keys()
    assert entries[b"etc"] == 4 and entries[b"abs-link"] == 10
    # Rewind and list again; a buffer too small for one record is EINVAL.
    assert task.call(fdcalls.sys_lseek, fd, 0, os.SEEK_SET) == 0
    assert dirents(task, fd).keys() == entries.keys()
    assert task.call(fdcalls.sys_lseek, fd, 0, os.SEEK_SET) == 0
    assert task.call(fscalls.sys_getdents64, fd, BUF, 10) == -errno.EINVAL
    assert open_(task, b"/etc/passwd", os.O_RDONLY | os.O_DIRECTORY) == -errno.ENOTDIR
    passwd = open_(task, b"/etc/passwd")
    assert task.call(fscalls.sys_getdents64, passwd, BUF, 512) == -errno.ENOTDIR


def test_tmpfs_create_write_rename_unlink(sandbox):
    task = sandbox
    fd = open_(task, b"/tmp/f", os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o600)
    assert fd >= 0
    assert open_(task, b"/tmp/f", os.O_CREAT | os.O_EXCL | os.O_WRONLY) == -errno.EEXIST
    task.put(0x2000, b"hello world")
    assert task.call(fdcalls.sys_write, fd, BASE + 0x2000, 11) == 11
    assert task.call(fdcalls.sys_pwrite64, fd, BASE + 0x2000, 5, 20) == 5
    assert fstat_of(task, fd)[8] == 25
    assert task.call(fscalls.sys_mkdir, task.path(b"/tmp/d"), 0o755) == 0
    assert task.call(fscalls.sys_rename, task.path(b"/tmp/f"), task.path(b"/tmp/d/g", 1)) == 0
    data = cat(task, b"/tmp/d/g")
    assert data == b"hello world" + bytes(9) + b"hello"
    assert task.call(fscalls.sys_rmdir, task.path(b"/tmp/d")) == -errno.ENOTEMPTY
    assert task.call(fscalls.sys_unlink, task.path(b"/tmp/d/g")) == 0
    assert task.call(fscalls.sys_rmdir, task.path(b"/tmp/d")) == 0
    assert open_(task, b"/tmp/d/g") == -errno.ENOENT
    # The open description still works after unlink.
    assert task.call(fdcalls.sys_pread64, fd, BUF, 5, 0) == 5
    new = open_(task, b"/tmp/t", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o777)
    assert fstat_of(task, new)[3] == stat.S_IFREG | 0o755  # umask 022
    assert task.call(fscalls.sys_rename, task.path(b"/tmp/t"), task.path(b"/dev/shm/t", 1)) == -errno.EXDEV
    assert task.call(fscalls.sys_rename, task.path(b"/tmp"), task.path(b"/etc/x", 1)) == -errno.EBUSY


def test_devices(sandbox):
    task = sandbox
    null = open_(task, b"/dev/null", os.O_RDWR)
    assert task.call(fdcalls.sys_write, null, BUF, 100) == 100
    assert task.call(fdcalls.sys_read, null, BUF, 100) == 0
    zero = open_(task, b"/dev/zero")
    task.put(0x1000, b"\xff" * 16)
    assert task.call(fdcalls.sys_read, zero, BUF, 16) == 16 and task.get(BUF, 16) == bytes(16)
    full = open_(task, b"/dev/full", os.O_WRONLY)
    assert task.call(fdcalls.sys_write, full, BUF, 1) == -errno.ENOSPC
    rnd = open_(task, b"/dev/urandom")
    assert task.call(fdcalls.sys_read, rnd, BUF, 32) == 32
    assert task.call(fscalls.sys_stat, task.path(b"/dev/null"), BUF) == 0
    mode, rdev = (
        struct.unpack_from("<I", task.get(BUF + 24, 4))[0],
        struct.unpack_from("<Q", task.get(BUF + 40, 8))[0],
    )
    assert stat.S_ISCHR(mode) and (os.major(rdev), os.minor(rdev)) == (1, 3)
    # Not a tty: terminal ioctls fail.
    assert task.call(fdcalls.sys_ioctl, 1, 0x5401, BUF) == -errno.ENOTTY
    assert open_(task, b"/dev/tty") == -errno.ENXIO


def test_stdio_goes_to_the_host_fds(sandbox):
    task = sandbox
    r = next(fd for fd, loc in task.kernel.vfs.host_stdio.items() if fd != max(task.kernel.vfs.host_stdio))
    task.put(0x1000, b"out!")
    assert task.call(fdcalls.sys_write, 1, BUF, 4) == 4
    assert os.read(r, 4) == b"out!"
    assert cat(task, b"/dev/null") == b""
    fd = open_(task, b"/dev/stdout", os.O_WRONLY)
    assert task.call(fdcalls.sys_write, fd, BUF, 4) == 4
    assert os.read(r, 4) == b"out!"


def test_cwd_chdir_getcwd_umask(sandbox):
    task = sandbox
    assert task.call(fscalls.sys_chdir, task.path(b"/data")) == 0
    assert task.call(fscalls.sys_getcwd, BUF, 100) == 6 and task.get(BUF, 6) == b"/data\0"
    assert task.call(fscalls.sys_getcwd, BUF, 3) == -errno.ERANGE
    assert cat(task, b"numbers").startswith(b"0\n1\n")
    assert task.call(fscalls.sys_chdir, task.path(b"../proc/self")) == 0
    assert task.call(fscalls.sys_chdir, task.path(b"/etc/passwd")) == -errno.ENOTDIR
    assert task.call(fscalls.sys_umask, 0o77) == 0o22
    assert task.call(fscalls.sys_umask, 0o22) == 0o77
    dirfd = open_(task, b"/etc", os.O_RDONLY | os.O_DIRECTORY)
    assert task.call(fscalls.sys_openat, dirfd, task.path(b"passwd"), 0, 0) >= 0
    assert task.call(fscalls.sys_faccessat, dirfd, task.path(b"passwd"), os.R_OK) == 0
    assert task.call(fscalls.sys_access, task.path(b"/bin/prog"), os.X_OK) == 0
    assert task.call(fscalls.sys_access, task.path(b"/etc/passwd"), os.X_OK) == -errno.EACCES
    # The overlay root is writable.
    assert task.call(fscalls.sys_access, task.path(b"/etc/passwd"), os.W_OK) == 0
    assert task.call(fscalls.sys_access, task.path(b"/nope"), os.F_OK) == -errno.ENOENT


def test_statx_and_newfstatat(sandbox, rootfs):
    task = sandbox
    assert task.call(fscalls.sys_statx, AT_FDCWD, task.path(b"/etc/passwd"), 0, 0x7FF, BUF) == 0
    raw = task.get(BUF, 256)
    mask, _blksize, _attrs, _nlink, _uid, _gid, mode = struct.unpack_from("<IIQIIIH", raw)
    size = struct.unpack_from("<Q", raw, 40)[0]
    assert mask == 0x7FF and stat.S_ISREG(mode) and size == (rootfs / "etc" / "passwd").stat().st_size
    assert task.call(fscalls.sys_newfstatat, AT_FDCWD, task.path(b"/abs-link"), BUF, 0x100) == 0
    assert stat.S_ISLNK(struct.unpack_from("<I", task.get(BUF + 24, 4))[0])
    fd = open_(task, b"/etc/passwd")
    assert task.call(fscalls.sys_newfstatat, fd, task.path(b""), BUF, 0x1000) == 0
    assert task.call(fscalls.sys_newfstatat, fd, task.path(b""), BUF, 0) == -errno.ENOENT
    assert task.call(fscalls.sys_newfstatat, AT_FDCWD, task.path(b"/"), BUF, 0xFFFF) == -errno.EINVAL


def test_exec_open(sandbox):
    task = sandbox
    vfs = task.kernel.vfs
    file, path = vfs.open_executable(task, b"/bin/../bin/prog")
    assert path == "/bin/prog" and file.pread(task, 4, 0) == b"\x7fELF"
    assert file.stat().mode & 0o111
    for bad, code in ((b"/etc/passwd", errno.EACCES), (b"/etc", errno.EACCES), (b"/nope", errno.ENOENT)):
        try:
            vfs.open_executable(task, bad)
        except Exception as e:  # noqa: BLE001
            assert e.code == code
        else:
            raise AssertionError(bad)


def test_utimensat(sandbox):
    task = sandbox
    fd = open_(task, b"/tmp/u", os.O_CREAT | os.O_WRONLY)
    times = task.put(0x3000, struct.pack("<qqqq", 100, 5, 0, (1 << 30) - 2))
    assert task.call(fscalls.sys_utimensat, AT_FDCWD, task.path(b"/tmp/u"), times, 0) == 0
    assert task.call(fscalls.sys_fstat, fd, BUF) == 0
    assert struct.unpack_from("<qq", task.get(BUF + 72, 16)) == (100, 5)
    assert task.call(fscalls.sys_utimensat, fd, 0, 0, 0) == 0
    assert task.call(fscalls.sys_utimensat, AT_FDCWD, task.path(b"/etc/passwd"), 0, 0) == 0
    bad = task.put(0x3000, struct.pack("<qqqq", 0, 2_000_000_000, 0, 0))
    assert task.call(fscalls.sys_utimensat, AT_FDCWD, task.path(b"/tmp/u"), bad, 0) == -errno.EINVAL


def test_links_owners_and_fifos(sandbox):
    task = sandbox
    fd = open_(task, b"/tmp/orig", os.O_CREAT | os.O_WRONLY)
    assert task.call(fscalls.sys_link, task.path(b"/tmp/orig"), task.path(b"/tmp/hard", 1)) == 0
    assert fstat_of(task, fd)[2] == 2  # nlink
    assert task.call(fscalls.sys_link, task.path(b"/tmp"), task.path(b"/tmp/dirlink", 1)) == -errno.EPERM
    assert task.call(fscalls.sys_link, task.path(b"/etc/passwd"), task.path(b"/tmp/x", 1)) == -errno.EXDEV
    assert task.call(fscalls.sys_chown, task.path(b"/tmp/hard"), 1000, 1000) == 0
    assert fstat_of(task, fd)[4:6] == (1000, 1000)
    assert task.call(fscalls.sys_chown, task.path(b"/etc/passwd"), 1, 1) == 0
    assert task.call(fscalls.sys_mknod, task.path(b"/tmp/fifo"), stat.S_IFIFO | 0o600, 0) == 0
    # 1:3 is the Sentry's null; a device it does not emulate opens with EPERM; CAP_MKNOD is needed.
    assert task.call(fscalls.sys_mknod, task.path(b"/tmp/dev"), stat.S_IFCHR | 0o600, 0x103) == 0
    assert open_(task, b"/tmp/dev", os.O_RDWR) >= 0
    assert task.call(fscalls.sys_mknod, task.path(b"/tmp/blk"), stat.S_IFBLK | 0o600, 0x800) == 0
    assert open_(task, b"/tmp/blk", os.O_RDONLY) == -errno.EPERM
    creds, task.creds = task.creds, task.creds.replace(cap_effective=0)
    assert task.call(fscalls.sys_mknod, task.path(b"/tmp/dev2"), stat.S_IFCHR | 0o600, 0x103) == -errno.EPERM
    task.creds = creds
    assert open_(task, b"/tmp/fifo", os.O_WRONLY | os.O_NONBLOCK) == -errno.ENXIO
    r = open_(task, b"/tmp/fifo", os.O_RDONLY | os.O_NONBLOCK)
    w = open_(task, b"/tmp/fifo", os.O_WRONLY)
    task.put(0x2000, b"via fifo")
    assert task.call(fdcalls.sys_write, w, BASE + 0x2000, 8) == 8
    assert task.call(fdcalls.sys_read, r, BUF, 100) == 8 and task.get(BUF, 8) == b"via fifo"
    assert (
        task.call(fscalls.sys_getxattr, task.path(b"/tmp/fifo"), task.path(b"user.x", 1), BUF, 10)
        == -errno.ENODATA
    )
    assert task.call(fscalls.sys_listxattr, task.path(b"/etc/passwd"), BUF, 10) == 0


def test_memfd_fallocate_copy_range_close_range(sandbox):
    task = sandbox
    mfd = task.call(fdcalls.sys_memfd_create, task.path(b"buf"), fdcalls.MFD_CLOEXEC)
    assert mfd >= 0 and task.call(fdcalls.sys_fcntl, mfd, fdcalls.F_GETFD, 0) == fdcalls.FD_CLOEXEC
    n = task.call(fscalls.sys_readlink, task.path(b"/proc/self/fd/%d" % mfd), BUF, 100)
    assert task.get(BUF, n) == b"/memfd:buf (deleted)"
    assert task.call(fdcalls.sys_fallocate, mfd, 0, 0, 8192) == 0
    assert fstat_of(task, mfd)[8] == 8192
    assert task.call(fdcalls.sys_fallocate, mfd, 8, 0, 1) == -errno.EOPNOTSUPP
    src = open_(task, b"/etc/passwd")
    offs = task.put(0x3000, struct.pack("<qq", 5, 100))
    n = task.call(fdcalls.sys_copy_file_range, src, offs, mfd, offs + 8, 4, 0)
    assert n == 4 and struct.unpack("<qq", task.get(offs, 16)) == (9, 104)
    assert task.call(fdcalls.sys_pread64, mfd, BUF, 4, 100) == 4 and task.get(BUF, 4) == b"x:0:"
    iov = task.put(0x3100, struct.pack("<QQ", BUF, 4))
    assert task.call(fdcalls.sys_preadv2, src, iov, 1, 0, 0, 0) == 4 and task.get(BUF, 4) == b"root"
    assert task.call(fdcalls.sys_preadv2, src, iov, 1, (1 << 64) - 1, 0, 0) == 4
    assert task.call(fdcalls.sys_preadv2, src, iov, 1, 0, 0, 0x8) == -errno.EOPNOTSUPP
    assert task.call(fdcalls.sys_close_range, 3, 0xFFFFFFFF, 0) == 0
    assert task.fds.fds() == [0, 1, 2]
    assert task.call(fdcalls.sys_close_range, 5, 4, 0) == -errno.EINVAL


def test_cwd_follows_a_renamed_directory(sandbox):
    task = sandbox
    assert task.call(fscalls.sys_mkdir, task.path(b"/tmp/a"), 0o755) == 0
    assert task.call(fscalls.sys_mkdir, task.path(b"/tmp/a/b"), 0o755) == 0
    assert task.call(fscalls.sys_chdir, task.path(b"/tmp/a/b")) == 0
    assert task.call(fscalls.sys_rename, task.path(b"/tmp/a"), task.path(b"/tmp/z", 1)) == 0
    n = task.call(fscalls.sys_getcwd, BUF, 100)
    assert task.get(BUF, n) == b"/tmp/z/b\0"
    assert open_(task, b"/tmp/a/b") == -errno.ENOENT


def test_open_gofer_file_sees_host_growth(sandbox, rootfs):
    task = sandbox
    fd = open_(task, b"/etc/passwd")
    before = fstat_of(task, fd)[8]
    with open(rootfs / "etc" / "passwd", "a") as f:
        f.write("grown:x:1:1::/:/bin/sh\n")
    assert fstat_of(task, fd)[8] > before
    assert read_all(task, fd).endswith(b"grown:x:1:1::/:/bin/sh\n")


def test_listing_a_directory_makes_stat_of_its_entries_free(sandbox, rootfs):
    task = sandbox
    client = task.kernel.vfs.root.mount.fs.root.lower.fs.client  # the overlay's gofer layer
    walks = []
    real_walk = client.walk
    client.walk = lambda node, name: walks.append(name) or real_walk(node, name)
    fd = open_(task, b"/data", os.O_RDONLY | os.O_DIRECTORY)
    assert (
        {b"numbers", b"sub"} <= dirents(task, fd).keys()
        if (rootfs / "data" / "sub").mkdir() is None
        else False
    )
    walks.clear()
    assert task.call(fscalls.sys_lstat, task.path(b"/data/numbers"), BUF) == 0
    assert walks == []
    # Opening needs the gofer node: one Walk, then the attributes agree.
    assert cat(task, b"/data/numbers").startswith(b"0\n1\n")
    assert walks == [b"numbers"]


def test_concurrent_opens_share_one_gofer_connection(sandbox, rootfs):
    task = sandbox
    vfs = task.kernel.vfs
    want = {p: (rootfs / p.lstrip("/")).read_bytes() for p in ("/etc/passwd", "/data/numbers", "/bin/prog")}
    errors = []

    def worker() -> None:
        for i in range(60):
            path = list(want)[i % 3]
            file = vfs.open(task, vfs.root, path.encode(), os.O_RDONLY, 0)
            try:
                if file.pread(task, 1 << 20, 0) != want[path]:
                    errors.append(path)
            finally:
                file.decref()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_tmpfs_budget_comes_back_after_unlink_and_close(sandbox):
    task = sandbox
    tmpfs = task.kernel.vfs.resolve(task, task.fs.root, b"/tmp").mount.fs
    before = tmpfs.used
    fd = open_(task, b"/tmp/big", os.O_CREAT | os.O_WRONLY)
    assert task.call(fdcalls.sys_fallocate, fd, 0, 0, 1 << 20) == 0
    assert tmpfs.used == before + (1 << 20)
    assert task.call(fscalls.sys_unlink, task.path(b"/tmp/big")) == 0
    assert tmpfs.used == before + (1 << 20)  # still open
    assert task.call(fdcalls.sys_close, fd) == 0
    gc.collect()
    assert tmpfs.used == before


def test_a_dead_gofer_is_eio_not_a_crash(sandbox):
    task = sandbox
    task.kernel.gofer_proc.kill()
    task.kernel.gofer_proc.wait()
    assert open_(task, b"/etc/never-looked-up") == -errno.EIO
    assert cat(task, b"/dev/null") == b""  # the rest of the tree still works
