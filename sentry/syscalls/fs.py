"""Handlers for path-based file syscalls: open, stat, getdents, readlink, access, cwd, and tree changes.

Every path argument is resolved by sentry.vfs (never on the host); fd-based
I/O is in fd.py.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import time

from sentry.errors import Errno
from sentry.syscalls.args import s32, s64, u32
from sentry.syscalls.fsargs import at_location, get_file, parent_at, read_path, resolve_at
from sentry.vfs import xattr
from sentry.vfs.dirent import pack_dirent, pack_dirent64
from sentry.vfs.fs.gofer import GoferFilesystem
from sentry.vfs.fs.overlay import OverlayFilesystem
from sentry.vfs.fs.tmpfs import TmpFilesystem
from sentry.vfs.mount import Location, path_of
from sentry.vfs.permissions import W_OK, X_OK, check_access, is_owner
from sentry.vfs.vfs import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW

AT_NO_AUTOMOUNT = 0x800
AT_REMOVEDIR = 0x200
AT_EACCESS = 0x200
AT_STATX_SYNC_TYPE = 0x6000
STATX__RESERVED = 0x80000000
RENAME_NOREPLACE = 1
CAP_CHOWN = 0
CAP_FSETID = 4
CAP_MKNOD = 27
CAP_SYS_CHROOT = 18
AT_SYMLINK_FOLLOW = 0x400
XATTR_NAME_MAX = 255
# statfs f_type values.
FS_MAGIC = {
    "tmpfs": 0x01021994, "devtmpfs": 0x01021994, "proc": 0x9FA0, "9p": 0x01021997,
    "overlay": 0x794C7630, "sysfs": 0x62656572, "devpts": 0x1CD1, "mqueue": 0x19800202,
}  # fmt: skip


# statfs f_flags for the per-mount options (ST_RDONLY comes from the mount's readonly).
ST_FLAGS = {"nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024}


def _vfs(task):
    return task.kernel.vfs


# --- open ------------------------------------------------------------------------------
def sys_openat(task, dirfd, pathname, flags, mode) -> int:
    path = read_path(task, pathname)
    flags = u32(flags)
    start = at_location(task, dirfd, path)
    file = _vfs(task).open(task, start, path, flags, u32(mode))
    return task.fds.install(file, cloexec=bool(flags & os.O_CLOEXEC))


def sys_open(task, pathname, flags, mode) -> int:
    return sys_openat(task, AT_FDCWD, pathname, flags, mode)


def sys_creat(task, pathname, mode) -> int:
    return sys_openat(task, AT_FDCWD, pathname, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)


# --- stat ------------------------------------------------------------------------------
def _stat_at(task, dirfd, pathname, flags) -> Location:
    flags = u32(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE):
        raise Errno(errno.EINVAL)
    path = read_path(task, pathname)
    return resolve_at(task, dirfd, path, flags, follow=not flags & AT_SYMLINK_NOFOLLOW)


def sys_newfstatat(task, dirfd, pathname, statbuf, flags) -> int:
    if u32(flags) & AT_STATX_SYNC_TYPE:
        raise Errno(errno.EINVAL)
    loc = _stat_at(task, dirfd, pathname, flags)
    task.mm.copy_out(statbuf, loc.inode.stat().pack())
    return 0


def sys_stat(task, pathname, statbuf) -> int:
    return sys_newfstatat(task, AT_FDCWD, pathname, statbuf, 0)


def sys_lstat(task, pathname, statbuf) -> int:
    return sys_newfstatat(task, AT_FDCWD, pathname, statbuf, AT_SYMLINK_NOFOLLOW)


def sys_fstat(task, fd, statbuf) -> int:
    task.mm.copy_out(statbuf, get_file(task, fd).stat().pack())
    return 0


def sys_statx(task, dirfd, pathname, flags, mask, statxbuf) -> int:
    if u32(mask) & STATX__RESERVED or u32(flags) & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE:
        raise Errno(errno.EINVAL)
    loc = _stat_at(task, dirfd, pathname, flags)
    task.mm.copy_out(statxbuf, loc.inode.stat().pack_statx())
    return 0


def _statfs_bytes(loc: Location) -> bytes:
    """struct statfs: tmpfs and the overlay report their size budget, a written-through gofer
    root the host's numbers, other filesystems zero blocks."""
    fs = loc.mount.fs
    magic = FS_MAGIC.get(fs.name, 0x01021994)
    flags = 1 if loc.mount.readonly else 0  # ST_RDONLY
    flags |= sum(bit for name, bit in ST_FLAGS.items() if name in loc.mount.flags)
    blocks = free = files = ffree = 0
    bsize = 4096
    budget = fs.upper if isinstance(fs, OverlayFilesystem) else fs
    if isinstance(budget, TmpFilesystem):
        blocks, free = budget.budget // 4096, max(0, budget.budget - budget.used) // 4096
    elif isinstance(fs, GoferFilesystem):
        host = loc.inode.statfs()
        bsize, blocks, free, files, ffree = host.bsize, host.blocks, host.bavail, host.files, host.ffree
    return struct.pack(
        "<qqqqqqqiiqqq4q", magic, bsize, blocks, free, free, files, ffree, fs.dev, 0, 255, bsize, flags,
        0, 0, 0, 0,
    )  # fmt: skip


def sys_statfs(task, pathname, buf) -> int:
    loc = _vfs(task).resolve(task, task.fs.cwd, read_path(task, pathname))
    task.mm.copy_out(buf, _statfs_bytes(loc))
    return 0


def sys_fstatfs(task, fd, buf) -> int:
    task.mm.copy_out(buf, _statfs_bytes(get_file(task, fd).loc))
    return 0


# --- directories and links ------------------------------------------------------------------
def sys_getdents64(task, fd, dirp, count) -> int:
    file = get_file(task, fd)
    if file.flags & os.O_PATH:
        raise Errno(errno.EBADF)
    data = file.getdents(task, min(u32(count), 1 << 20), pack_dirent64)
    task.mm.copy_out(dirp, data)
    return len(data)


def sys_getdents(task, fd, dirp, count) -> int:
    file = get_file(task, fd)
    if file.flags & os.O_PATH:
        raise Errno(errno.EBADF)
    data = file.getdents(task, min(u32(count), 1 << 20), pack_dirent)
    task.mm.copy_out(dirp, data)
    return len(data)


def sys_readlinkat(task, dirfd, pathname, buf, bufsiz) -> int:
    size = s32(bufsiz)
    if size <= 0:
        raise Errno(errno.EINVAL)
    path = read_path(task, pathname)
    loc = resolve_at(task, dirfd, path, 0, follow=False)
    if not loc.inode.is_symlink():
        raise Errno(errno.EINVAL)
    target = loc.inode.readlink(task)[:size]
    task.mm.copy_out(buf, target)
    return len(target)


def sys_readlink(task, pathname, buf, bufsiz) -> int:
    return sys_readlinkat(task, AT_FDCWD, pathname, buf, bufsiz)


def sys_faccessat2(task, dirfd, pathname, mode, flags) -> int:
    mode, flags = u32(mode), u32(flags)
    if mode & ~7 or flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    path = read_path(task, pathname)
    loc = resolve_at(task, dirfd, path, flags, follow=not flags & AT_SYMLINK_NOFOLLOW)
    st = loc.inode.stat()
    if mode & W_OK and loc.mount.readonly and not stat.S_ISCHR(st.mode) and not stat.S_ISFIFO(st.mode):
        raise Errno(errno.EROFS)
    check_access(task, st, mode, real=not flags & AT_EACCESS)
    return 0


def sys_faccessat(task, dirfd, pathname, mode) -> int:
    return sys_faccessat2(task, dirfd, pathname, mode, 0)


def sys_access(task, pathname, mode) -> int:
    return sys_faccessat2(task, AT_FDCWD, pathname, mode, 0)


# --- cwd and umask ---------------------------------------------------------------------
def sys_getcwd(task, buf, size) -> int:
    path = path_of(task.fs.cwd, task.fs.root) + b"\0"
    if len(path) > u32(size):
        raise Errno(errno.ERANGE)
    task.mm.copy_out(buf, path)
    return len(path)


def _chdir(task, loc: Location) -> int:
    if not loc.inode.is_dir():
        raise Errno(errno.ENOTDIR)
    check_access(task, loc.inode.stat(), 1)
    with task.fs.lock:
        task.fs.cwd = loc
    return 0


def sys_chdir(task, pathname) -> int:
    return _chdir(task, _vfs(task).resolve(task, task.fs.cwd, read_path(task, pathname)))


def sys_fchdir(task, fd) -> int:
    return _chdir(task, get_file(task, fd).loc)


def sys_umask(task, mask) -> int:
    with task.fs.lock:
        old = task.fs.umask
        task.fs.umask = u32(mask) & 0o777
    return old


# --- changing the tree ----------------------------------------------------------------------
def sys_mkdirat(task, dirfd, pathname, mode) -> int:
    parent, name = parent_at(task, dirfd, read_path(task, pathname))
    _vfs(task).create(task, parent, name, stat.S_IFDIR | (u32(mode) & 0o1777 & ~task.fs.umask))
    return 0


def sys_mkdir(task, pathname, mode) -> int:
    return sys_mkdirat(task, AT_FDCWD, pathname, mode)


def sys_unlinkat(task, dirfd, pathname, flags) -> int:
    flags = u32(flags)
    if flags & ~AT_REMOVEDIR:
        raise Errno(errno.EINVAL)
    path = read_path(task, pathname)
    parent, name = parent_at(task, dirfd, path)
    if path.endswith(b"/") and not flags & AT_REMOVEDIR:
        raise Errno(errno.EISDIR if _vfs(task).step(parent, name).inode.is_dir() else errno.ENOTDIR)
    _vfs(task).remove(task, parent, name, directory=bool(flags & AT_REMOVEDIR))
    return 0


def sys_unlink(task, pathname) -> int:
    return sys_unlinkat(task, AT_FDCWD, pathname, 0)


def sys_rmdir(task, pathname) -> int:
    return sys_unlinkat(task, AT_FDCWD, pathname, AT_REMOVEDIR)


def sys_renameat2(task, olddirfd, oldpath, newdirfd, newpath, flags) -> int:
    flags = u32(flags)
    if flags & ~RENAME_NOREPLACE:
        raise Errno(errno.EINVAL)
    old, old_name = parent_at(task, olddirfd, read_path(task, oldpath))
    new, new_name = parent_at(task, newdirfd, read_path(task, newpath))
    if flags & RENAME_NOREPLACE:
        try:
            _vfs(task).step(new, new_name)
        except Errno as e:
            if e.code != errno.ENOENT:
                raise
        else:
            raise Errno(errno.EEXIST)
    _vfs(task).rename(task, old, old_name, new, new_name)
    return 0


def sys_renameat(task, olddirfd, oldpath, newdirfd, newpath) -> int:
    return sys_renameat2(task, olddirfd, oldpath, newdirfd, newpath, 0)


def sys_rename(task, oldpath, newpath) -> int:
    return sys_renameat2(task, AT_FDCWD, oldpath, AT_FDCWD, newpath, 0)


def sys_symlinkat(task, target, newdirfd, linkpath) -> int:
    text = read_path(task, target)
    if not text:
        raise Errno(errno.ENOENT)
    parent, name = parent_at(task, newdirfd, read_path(task, linkpath))
    _vfs(task).symlink(task, parent, name, text)
    return 0


def sys_symlink(task, target, linkpath) -> int:
    return sys_symlinkat(task, target, AT_FDCWD, linkpath)


def _chmod(task, loc: Location, mode: int) -> int:
    st = loc.inode.stat()
    if not is_owner(task, st):
        raise Errno(errno.EPERM)
    if loc.mount.readonly:
        raise Errno(errno.EROFS)
    mode = u32(mode) & 0o7777
    creds = task.creds
    foreign_group = st.gid != creds.fsgid and st.gid not in creds.groups
    if not stat.S_ISDIR(st.mode) and foreign_group and not creds.has_cap(CAP_FSETID):
        mode &= ~stat.S_ISGID  # as Linux: setgid only for a group you are in
    loc.inode.chmod(mode)
    return 0


def sys_fchmodat(task, dirfd, pathname, mode) -> int:
    return _chmod(task, resolve_at(task, dirfd, read_path(task, pathname), 0, follow=True), mode)


def sys_chmod(task, pathname, mode) -> int:
    return sys_fchmodat(task, AT_FDCWD, pathname, mode)


def sys_fchmod(task, fd, mode) -> int:
    return _chmod(task, get_file(task, fd).loc, mode)


def _truncate(loc: Location, length: int) -> int:
    if length < 0:
        raise Errno(errno.EINVAL)
    if loc.inode.is_dir():
        raise Errno(errno.EISDIR)
    if not stat.S_ISREG(loc.inode.mode):
        raise Errno(errno.EINVAL)
    if loc.mount.readonly:
        raise Errno(errno.EROFS)
    loc.inode.truncate(length)
    return 0


def sys_truncate(task, pathname, length) -> int:
    loc = _vfs(task).resolve(task, task.fs.cwd, read_path(task, pathname))
    check_access(task, loc.inode.stat(), W_OK)
    return _truncate(loc, s64(length))


def sys_ftruncate(task, fd, length) -> int:
    file = get_file(task, fd)
    if not file.writable:
        raise Errno(errno.EINVAL)
    return _truncate(file.loc, s64(length))


UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


def _utime(task, addr: int) -> tuple[int | None, int | None]:
    """The (atime, mtime) a times argument asks for; None where UTIME_OMIT."""
    if not addr:
        now = time.time_ns()
        return now, now
    out = []
    for sec, nsec in struct.iter_unpack("<qq", task.mm.copy_in(addr, 32)):
        if nsec == UTIME_OMIT:
            out.append(None)
        elif nsec == UTIME_NOW:
            out.append(time.time_ns())
        elif 0 <= nsec < 1_000_000_000 and sec >= 0:
            out.append(sec * 1_000_000_000 + nsec)
        else:
            raise Errno(errno.EINVAL)
    return out[0], out[1]


def _set_times(task, loc: Location, atime: int | None, mtime: int | None, explicit: bool) -> int:
    """Owner (or CAP_FOWNER) may set any times; anyone who can write may set them to now."""
    st = loc.inode.stat()
    if not is_owner(task, st):
        if explicit:
            raise Errno(errno.EPERM)
        check_access(task, st, W_OK)
    if loc.mount.readonly:
        raise Errno(errno.EROFS)
    if atime is not None or mtime is not None:
        loc.inode.set_times(atime, mtime)
    return 0


def sys_utimensat(task, dirfd, pathname, times, flags) -> int:
    flags = u32(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    atime, mtime = _utime(task, times)
    if pathname:
        path = read_path(task, pathname)
        loc = resolve_at(task, dirfd, path, flags, follow=not flags & AT_SYMLINK_NOFOLLOW)
    else:
        loc = get_file(task, dirfd).loc  # futimens()
    return _set_times(task, loc, atime, mtime, bool(times))


def _timevals(task, addr: int) -> tuple[int | None, int | None]:
    if not addr:
        now = time.time_ns()
        return now, now
    out = []
    for sec, usec in struct.iter_unpack("<qq", task.mm.copy_in(addr, 32)):
        if not 0 <= usec < 1_000_000 or sec < 0:
            raise Errno(errno.EINVAL)
        out.append(sec * 1_000_000_000 + usec * 1000)
    return out[0], out[1]


def sys_futimesat(task, dirfd, pathname, times) -> int:
    atime, mtime = _timevals(task, times)
    loc = resolve_at(task, dirfd, read_path(task, pathname), 0, follow=True)
    return _set_times(task, loc, atime, mtime, bool(times))


def sys_utimes(task, pathname, times) -> int:
    return sys_futimesat(task, AT_FDCWD, pathname, times)


def sys_utime(task, pathname, times) -> int:
    if times:
        actime, modtime = struct.unpack("<qq", task.mm.copy_in(times, 16))
        atime, mtime = actime * 1_000_000_000, modtime * 1_000_000_000
    else:
        atime = mtime = time.time_ns()
    loc = _vfs(task).resolve(task, task.fs.cwd, read_path(task, pathname))
    return _set_times(task, loc, atime, mtime, bool(times))


# --- links, owners, special files ------------------------------------------------------
def sys_linkat(task, olddirfd, oldpath, newdirfd, newpath, flags) -> int:
    flags = u32(flags)
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    target = resolve_at(
        task, olddirfd, read_path(task, oldpath), flags, follow=bool(flags & AT_SYMLINK_FOLLOW)
    )
    if target.inode.is_dir():
        raise Errno(errno.EPERM)
    parent, name = parent_at(task, newdirfd, read_path(task, newpath))
    _vfs(task).link(task, target, parent, name)
    return 0


def sys_link(task, oldpath, newpath) -> int:
    return sys_linkat(task, AT_FDCWD, oldpath, AT_FDCWD, newpath, 0)


def _chown(task, loc: Location, uid: int, gid: int) -> int:
    uid, gid = s32(uid), s32(gid)
    st = loc.inode.stat()
    creds = task.creds
    if not creds.has_cap(CAP_CHOWN):
        own_group = gid == -1 or gid == creds.fsgid or gid in creds.groups
        if (uid != -1 and uid != st.uid) or creds.fsuid != st.uid or not own_group:
            raise Errno(errno.EPERM)
    if loc.mount.readonly:
        raise Errno(errno.EROFS)
    loc.inode.chown(uid, gid)
    # As Linux: a changed owner drops set-user-ID, and set-group-ID where it means "setgid" (group exec).
    kill = stat.S_ISUID | (stat.S_ISGID if st.mode & stat.S_IXGRP else 0)
    if stat.S_ISREG(st.mode) and st.mode & kill and (uid != -1 or gid != -1):
        loc.inode.chmod(st.mode & 0o7777 & ~kill)
    return 0


def sys_fchownat(task, dirfd, pathname, owner, group, flags) -> int:
    flags = u32(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise Errno(errno.EINVAL)
    path = read_path(task, pathname)
    loc = resolve_at(task, dirfd, path, flags, follow=not flags & AT_SYMLINK_NOFOLLOW)
    return _chown(task, loc, owner, group)


def sys_chown(task, pathname, owner, group) -> int:
    return sys_fchownat(task, AT_FDCWD, pathname, owner, group, 0)


def sys_lchown(task, pathname, owner, group) -> int:
    return sys_fchownat(task, AT_FDCWD, pathname, owner, group, AT_SYMLINK_NOFOLLOW)


def sys_fchown(task, fd, owner, group) -> int:
    return _chown(task, get_file(task, fd).loc, owner, group)


def sys_mknodat(task, dirfd, pathname, mode, dev) -> int:
    """Regular files, FIFOs, and with CAP_MKNOD device nodes: the Sentry's own device where it emulates
    the number, else a node that opens with EPERM (sentry/vfs/vfs.py mknod). Sockets are refused."""
    mode = u32(mode)
    kind = stat.S_IFMT(mode) or stat.S_IFREG
    parent, name = parent_at(task, dirfd, read_path(task, pathname))
    perms = mode & 0o7777 & ~task.fs.umask
    if kind == stat.S_IFREG:
        _vfs(task).create(task, parent, name, stat.S_IFREG | perms)
    elif kind == stat.S_IFIFO:
        _vfs(task).mkfifo(task, parent, name, perms)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        if not task.creds.has_cap(CAP_MKNOD):
            raise Errno(errno.EPERM)
        _vfs(task).mknod(task, parent, name, kind | perms, _decode_dev(dev))
    elif kind == stat.S_IFSOCK:
        raise Errno(errno.EPERM)
    else:
        raise Errno(errno.EINVAL)
    return 0


def _decode_dev(dev: int) -> int:
    """mknod's dev_t (the kernel's new_decode_dev layout) as Python's os.makedev number."""
    dev &= 0xFFFFFFFF
    major = (dev & 0xFFF00) >> 8
    minor = (dev & 0xFF) | ((dev >> 12) & 0xFFF00)
    return os.makedev(major, minor)


def sys_mknod(task, pathname, mode, dev) -> int:
    return sys_mknodat(task, AT_FDCWD, pathname, mode, dev)


def sys_chroot(task, pathname) -> int:
    if not task.creds.has_cap(CAP_SYS_CHROOT):
        raise Errno(errno.EPERM)
    loc = _vfs(task).resolve(task, task.fs.cwd, read_path(task, pathname))
    if not loc.inode.is_dir():
        raise Errno(errno.ENOTDIR)
    check_access(task, loc.inode.stat(), X_OK)
    with task.fs.lock:
        task.fs.root = loc
    return 0


# --- syncing: everything is in memory or read-only, so there is nothing to flush ------------
def sys_sync(task) -> int:
    return 0


def sys_syncfs(task, fd) -> int:
    get_file(task, fd)
    return 0


def sys_sync_file_range(task, fd, offset, nbytes, flags) -> int:
    get_file(task, fd)
    if s64(offset) < 0 or s64(nbytes) < 0 or u32(flags) & ~7:
        raise Errno(errno.EINVAL)
    return 0


def sys_readahead(task, fd, offset, count) -> int:
    file = get_file(task, fd)
    if not file.readable or not stat.S_ISREG(file.stat().mode):
        raise Errno(errno.EINVAL if file.readable else errno.EBADF)
    return 0


# --- extended attributes (rules: sentry/vfs/xattr.py) ---------------------------------------
def _xattr_target(task, pathname: int, follow: bool) -> Location:
    return _vfs(task).resolve(task, task.fs.cwd, read_path(task, pathname), follow=follow)


def _xattr_name(task, name: int) -> bytes:
    text = task.mm.read_cstring(name, XATTR_NAME_MAX + 1)
    if not text or len(text) > XATTR_NAME_MAX:
        raise Errno(errno.ERANGE)
    return text


def _sized_out(task, buf: int, size: int, data: bytes) -> int:
    """The getxattr/listxattr convention: size 0 asks for the length, too small is ERANGE."""
    if size == 0:
        return len(data)
    if size < len(data):
        raise Errno(errno.ERANGE)
    task.mm.copy_out(buf, data)
    return len(data)


def _getxattr(task, loc: Location, name: int, value: int, size: int) -> int:
    key = _xattr_name(task, name)
    xattr.check(task, loc, key, write=False)
    return _sized_out(task, value, size, loc.inode.getxattr(key))


def _setxattr(task, loc: Location, name: int, value: int, size: int, flags: int) -> int:
    key = _xattr_name(task, name)
    flags = u32(flags)
    if flags & ~(xattr.XATTR_CREATE | xattr.XATTR_REPLACE):
        raise Errno(errno.EINVAL)
    if size > xattr.XATTR_SIZE_MAX:
        raise Errno(errno.E2BIG)
    data = task.mm.copy_in(value, size) if size else b""
    xattr.check(task, loc, key, write=True)
    loc.inode.setxattr(key, data, flags)
    return 0


def _listxattr(task, loc: Location, buf: int, size: int) -> int:
    names = xattr.visible(task, loc.inode.listxattr())
    return _sized_out(task, buf, size, b"".join(n + b"\0" for n in names))


def _removexattr(task, loc: Location, name: int) -> int:
    key = _xattr_name(task, name)
    xattr.check(task, loc, key, write=True)
    loc.inode.removexattr(key)
    return 0


def sys_getxattr(task, pathname, name, value, size) -> int:
    return _getxattr(task, _xattr_target(task, pathname, True), name, value, size)


def sys_lgetxattr(task, pathname, name, value, size) -> int:
    return _getxattr(task, _xattr_target(task, pathname, False), name, value, size)


def sys_fgetxattr(task, fd, name, value, size) -> int:
    return _getxattr(task, get_file(task, fd).loc, name, value, size)


def sys_setxattr(task, pathname, name, value, size, flags) -> int:
    return _setxattr(task, _xattr_target(task, pathname, True), name, value, size, flags)


def sys_lsetxattr(task, pathname, name, value, size, flags) -> int:
    return _setxattr(task, _xattr_target(task, pathname, False), name, value, size, flags)


def sys_fsetxattr(task, fd, name, value, size, flags) -> int:
    return _setxattr(task, get_file(task, fd).loc, name, value, size, flags)


def sys_listxattr(task, pathname, buf, size) -> int:
    return _listxattr(task, _xattr_target(task, pathname, True), buf, size)


def sys_llistxattr(task, pathname, buf, size) -> int:
    return _listxattr(task, _xattr_target(task, pathname, False), buf, size)


def sys_flistxattr(task, fd, buf, size) -> int:
    return _listxattr(task, get_file(task, fd).loc, buf, size)


def sys_removexattr(task, pathname, name) -> int:
    return _removexattr(task, _xattr_target(task, pathname, True), name)


def sys_lremovexattr(task, pathname, name) -> int:
    return _removexattr(task, _xattr_target(task, pathname, False), name)


def sys_fremovexattr(task, fd, name) -> int:
    return _removexattr(task, get_file(task, fd).loc, name)
