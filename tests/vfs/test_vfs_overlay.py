"""The writable root: overlay semantics (copy-up, whiteouts, opaque dirs, merged listings, stable inodes),
--overlay2=none writing through to the host, and permission checks with the task's credentials."""

from __future__ import annotations

import errno
import os
import struct

import pytest
from test_vfs_files import BUF, cat, open_
from vfs_fake_task import FakeKernel, FakeTask

import gofer
from sentry.kernel.creds import Credentials
from sentry.syscalls import fd as fdcalls
from sentry.syscalls import fs as fscalls
from sentry.vfs.boot import initial_fs_context, make_vfs
from sentry.vfs.fdtable import FDTable

AT_FDCWD = -100 & 0xFFFFFFFF


def names(task, path: bytes) -> set[bytes]:
    fd = open_(task, path, os.O_RDONLY | os.O_DIRECTORY)
    assert fd >= 0, fd
    out = set()
    while (n := task.call(fscalls.sys_getdents64, fd, BUF, 4096)) > 0:
        raw, off = task.get(BUF, n), 0
        while off < n:
            _, _, reclen, _ = struct.unpack_from("<QqHB", raw, off)
            out.add(raw[off + 19 : off + reclen].rstrip(b"\0"))
            off += reclen
    task.call(fdcalls.sys_close, fd)
    return out - {b".", b".."}


def ino(task, path: bytes) -> int:
    assert task.call(fscalls.sys_lstat, task.path(path), BUF) == 0
    return struct.unpack_from("<QQ", task.get(BUF, 16))[1]


def write_file(task, path: bytes, data: bytes, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    fd = open_(task, path, flags)
    if fd < 0:
        return fd
    task.put(0x1000, data)
    assert task.call(fdcalls.sys_write, fd, BUF, len(data)) == len(data)
    task.call(fdcalls.sys_close, fd)
    return 0


def call(task, handler, *paths: bytes, ints: tuple[int, ...] = ()) -> int:
    return task.call(handler, *(task.path(p, i) for i, p in enumerate(paths)), *ints)


@pytest.fixture(params=["overlay", "none"])
def mode(request):
    return request.param


@pytest.fixture
def world(rootfs, mode):
    """(root task, a second task as uid 1000, rootfs) over one VFS."""
    overlay = mode == "overlay"
    proc, client = gofer.start(str(rootfs), writable=not overlay)
    r, w = os.pipe()
    vfs = make_vfs(str(rootfs), client, stdio_fds=(r, w, w), overlay=overlay)
    kernel = FakeKernel(vfs)
    root = FakeTask(kernel, 1, FDTable.from_host_stdio(vfs, (r, w, w)), initial_fs_context(vfs))
    user_creds = Credentials(ruid=1000, euid=1000, suid=1000, fsuid=1000, rgid=1000, egid=1000, sgid=1000,
                             fsgid=1000, groups=(), cap_effective=0, cap_permitted=0)  # fmt: skip
    user = FakeTask(kernel, 2, root.fds.fork(), initial_fs_context(vfs), creds=user_creds)
    yield root, user, rootfs
    root.fds.close_all()
    user.fds.close_all()
    client.shutdown()
    proc.wait(timeout=10)
    os.close(r)
    os.close(w)


def test_writes_land_in_the_overlay_or_on_the_host(world, mode):
    task, _, rootfs = world
    before = ino(task, b"/etc/passwd")
    assert write_file(task, b"/etc/passwd", b"changed\n", os.O_WRONLY | os.O_APPEND) == 0
    assert cat(task, b"/etc/passwd") == b"root:x:0:0:root:/root:/bin/sh\nchanged\n"
    assert ino(task, b"/etc/passwd") == before
    assert write_file(task, b"/etc/new", b"fresh") == 0
    assert call(task, fscalls.sys_mkdir, b"/newdir", ints=(0o755,)) == 0
    assert call(task, fscalls.sys_rename, b"/etc/new", b"/newdir/moved") == 0
    assert cat(task, b"/newdir/moved") == b"fresh"
    assert call(task, fscalls.sys_symlink, b"moved", b"/newdir/ln") == 0
    assert cat(task, b"/newdir/ln") == b"fresh"
    assert call(task, fscalls.sys_chmod, b"/bin/prog", ints=(0o700,)) == 0
    host_passwd = (rootfs / "etc" / "passwd").read_text()
    if mode == "overlay":
        assert host_passwd == "root:x:0:0:root:/root:/bin/sh\n"
        assert not (rootfs / "newdir").exists()
        assert (rootfs / "bin" / "prog").stat().st_mode & 0o777 == 0o755
    else:
        assert host_passwd.endswith("changed\n")
        assert (rootfs / "newdir" / "moved").read_text() == "fresh"
        assert os.readlink(rootfs / "newdir" / "ln") == "moved"
        assert (rootfs / "bin" / "prog").stat().st_mode & 0o777 == 0o700


def test_whiteouts_opaque_dirs_and_merged_listings(world, mode):
    task, _, rootfs = world
    assert names(task, b"/data") == {b"numbers"}
    assert write_file(task, b"/data/extra", b"x") == 0
    assert names(task, b"/data") == {b"numbers", b"extra"}
    assert call(task, fscalls.sys_unlink, b"/data/numbers") == 0
    assert names(task, b"/data") == {b"extra"}
    assert open_(task, b"/data/numbers") == -errno.ENOENT
    assert write_file(task, b"/data/numbers", b"again") == 0
    assert cat(task, b"/data/numbers") == b"again"
    # rm -r of a lower directory, then mkdir: the new one is empty (opaque).
    assert call(task, fscalls.sys_rmdir, b"/etc") == -errno.ENOTEMPTY
    assert call(task, fscalls.sys_unlink, b"/etc/passwd") == 0
    assert call(task, fscalls.sys_rmdir, b"/etc") == 0
    assert b"etc" not in names(task, b"/")
    assert call(task, fscalls.sys_mkdir, b"/etc", ints=(0o755,)) == 0
    assert names(task, b"/etc") == set()
    assert ((rootfs / "etc" / "passwd").exists()) == (mode == "overlay")


def test_renaming_a_lower_directory_takes_its_contents(world, mode):
    task, _, rootfs = world
    numbers = (rootfs / "data" / "numbers").read_bytes()
    assert call(task, fscalls.sys_rename, b"/data", b"/moved") == 0
    assert open_(task, b"/data/numbers") == -errno.ENOENT
    assert cat(task, b"/moved/numbers") == numbers
    assert call(task, fscalls.sys_mkdir, b"/data", ints=(0o755,)) == 0
    assert names(task, b"/data") == set()
    assert call(task, fscalls.sys_rename, b"/moved", b"/bin") == -errno.ENOTEMPTY
    assert call(task, fscalls.sys_rename, b"/moved/numbers", b"/bin") == -errno.EISDIR
    assert call(task, fscalls.sys_link, b"/moved/numbers", b"/hard") == 0
    assert cat(task, b"/hard") == numbers


def test_permissions_follow_the_task_credentials(world):
    root, user, _ = world
    assert open_(user, b"/etc/passwd", os.O_WRONLY) == -errno.EACCES
    assert open_(user, b"/etc/new", os.O_WRONLY | os.O_CREAT) == -errno.EACCES
    assert call(user, fscalls.sys_unlink, b"/etc/passwd") == -errno.EACCES
    assert call(user, fscalls.sys_chmod, b"/etc/passwd", ints=(0o777,)) == -errno.EPERM
    assert call(user, fscalls.sys_chown, b"/etc/passwd", ints=(1000, 1000)) == -errno.EPERM
    assert call(root, fscalls.sys_mkdir, b"/private", ints=(0o700,)) == 0
    assert open_(user, b"/private/x", os.O_WRONLY | os.O_CREAT) == -errno.EACCES
    assert call(user, fscalls.sys_stat, b"/private/x", ints=(BUF,)) == -errno.EACCES
    # The sticky /tmp: a user's file there is safe from another user, not from root.
    assert write_file(root, b"/tmp/roots", b"r") == 0
    assert write_file(user, b"/tmp/users", b"u") == 0
    assert call(user, fscalls.sys_unlink, b"/tmp/roots") == -errno.EPERM
    assert call(user, fscalls.sys_rename, b"/tmp/roots", b"/tmp/mine") == -errno.EPERM
    assert call(root, fscalls.sys_unlink, b"/tmp/users") == 0
    # chown drops set-user-ID.
    assert call(root, fscalls.sys_chmod, b"/tmp/roots", ints=(0o4755,)) == 0
    assert call(root, fscalls.sys_chown, b"/tmp/roots", ints=(1000, 1000)) == 0
    assert call(root, fscalls.sys_stat, b"/tmp/roots", ints=(BUF,)) == 0
    assert struct.unpack_from("<I", root.get(BUF + 24, 4))[0] & 0o7777 == 0o755
    assert call(root, fscalls.sys_chown, b"/tmp/roots", ints=(0, 0)) == 0
    # Root without CAP_DAC_OVERRIDE is just an owner like any other.
    weak = Credentials(cap_effective=0, cap_permitted=0)
    root.creds = weak
    assert open_(root, b"/tmp/roots") >= 0
    assert call(root, fscalls.sys_chmod, b"/tmp/roots", ints=(0,)) == 0
    assert open_(root, b"/tmp/roots") == -errno.EACCES


def test_o_tmpfile_and_o_direct_are_refused(world):
    task, _, _ = world
    assert open_(task, b"/tmp", os.O_TMPFILE | os.O_RDWR) == -errno.EOPNOTSUPP
    assert open_(task, b"/etc/passwd", os.O_DIRECT | os.O_RDONLY) == -errno.EINVAL


def test_extended_attributes(world, mode):
    task, user, rootfs = world
    name = task.put(0x3000, b"user.color\0")
    value = task.put(0x3100, b"blue")
    path = task.path(b"/etc/passwd")
    got = task.call(fscalls.sys_setxattr, path, name, value, 4, 0)
    if got == -errno.EOPNOTSUPP and mode == "none":
        pytest.skip("the host filesystem has no user xattrs")
    assert got == 0
    assert task.call(fscalls.sys_getxattr, path, name, 0, 0) == 4
    assert task.call(fscalls.sys_getxattr, path, name, BUF, 2) == -errno.ERANGE
    assert task.call(fscalls.sys_getxattr, path, name, BUF, 100) == 4 and task.get(BUF, 4) == b"blue"
    assert task.call(fscalls.sys_setxattr, path, name, value, 4, 1) == -errno.EEXIST  # XATTR_CREATE
    n = task.call(fscalls.sys_listxattr, path, BUF, 100)
    assert b"user.color" in task.get(BUF, n).split(b"\0")
    assert task.call(fscalls.sys_setxattr, task.path(b"/etc/passwd", 1), name, value, 4, 0) == 0
    uname, uvalue = user.put(0x3000, b"user.color\0"), user.put(0x3100, b"blue")
    assert user.call(fscalls.sys_setxattr, user.path(b"/etc/passwd"), uname, uvalue, 4, 0) == -errno.EACCES
    trusted = user.put(0x3200, b"trusted.x\0")
    assert user.call(fscalls.sys_setxattr, user.path(b"/tmp"), trusted, uvalue, 4, 0) == -errno.EPERM
    assert task.call(fscalls.sys_removexattr, path, name) == 0
    assert task.call(fscalls.sys_getxattr, path, name, BUF, 100) == -errno.ENODATA
    bogus = task.put(0x3300, b"bogus.x\0")
    assert task.call(fscalls.sys_setxattr, path, bogus, value, 4, 0) == -errno.EOPNOTSUPP
    if mode == "overlay":
        assert os.listxattr(rootfs / "etc" / "passwd") == []


def test_a_reader_opened_before_a_copy_up_sees_the_new_data(world, mode):
    task, _, _ = world
    reader = open_(task, b"/etc/passwd")
    assert write_file(task, b"/etc/passwd", b"rewritten\n") == 0
    assert task.call(fdcalls.sys_pread64, reader, BUF, 100, 0) == 10 and task.get(BUF, 10) == b"rewritten\n"
    task.call(fdcalls.sys_close, reader)
