"""mount(2) and umount2(2): bind mounts, propagation changes, remounts and new tmpfs, mqueue, proc,
sysfs and devpts mounts in the sandbox's own mount tree (sentry/vfs/mounting.py); nothing here reaches
the host's mounts."""

from __future__ import annotations

import errno
import os

from sentry.errors import Errno
from sentry.kernel import creds as capdefs
from sentry.syscalls.args import u32
from sentry.syscalls.fsargs import read_path
from sentry.vfs import mounting
from sentry.vfs.mount import Location, Mount

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_STRICTATIME = 1 << 24
MS_MGC_MSK = 0xFFFF0000
MS_MGC_VAL = 0xC0ED0000
PROPAGATION = {MS_SHARED: "shared", MS_SLAVE: "slave", MS_PRIVATE: "private", MS_UNBINDABLE: "unbindable"}
MOUNT_FLAGS = {
    MS_NOSUID: "nosuid", MS_NODEV: "nodev", MS_NOEXEC: "noexec", MS_NOATIME: "noatime",
    MS_STRICTATIME: "strictatime",
}  # fmt: skip

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8


def sys_mount(task, source, target, fstype, flags, data) -> int:
    if not task.creds.has_cap(capdefs.CAP_SYS_ADMIN):
        raise Errno(errno.EPERM)
    if flags & MS_MGC_MSK == MS_MGC_VAL:
        flags &= ~MS_MGC_MSK
    vfs = task.kernel.vfs
    at = vfs.resolve(task, task.fs.cwd, read_path(task, target))
    if flags & MS_REMOUNT:
        mnt = _mount_root(at)
        mnt.readonly = bool(flags & MS_RDONLY)
        mnt.flags = _flag_names(flags)
        return 0
    if flags & MS_BIND:
        src = vfs.resolve(task, task.fs.cwd, read_path(task, source))
        if src.inode.is_dir() != at.inode.is_dir():
            raise Errno(errno.ENOTDIR)
        mounting.bind(vfs, src, at, recursive=bool(flags & MS_REC))
        return 0
    kinds = [name for bit, name in PROPAGATION.items() if flags & bit]
    if kinds:
        if len(kinds) > 1:
            raise Errno(errno.EINVAL)
        mounting.set_propagation(vfs, _mount_root(at), kinds[0], recursive=bool(flags & MS_REC))
        return 0
    if flags & MS_MOVE:
        raise Errno(errno.EINVAL)
    return _new_filesystem(task, at, source, fstype, flags, data)


def _new_filesystem(task, at: Location, source: int, fstype: int, flags: int, data: int) -> int:
    """A filesystem mounting.filesystem() knows; any other type is not configured here (ENODEV)."""
    vfs = task.kernel.vfs
    kind = os.fsdecode(read_path(task, fstype)) if fstype else ""
    if kind not in mounting.FILESYSTEMS:
        raise Errno(errno.ENODEV)
    if not at.inode.is_dir():
        raise Errno(errno.ENOTDIR)
    options = task.mm.read_cstring(data, 4096).decode(errors="replace") if data else ""
    label = os.fsdecode(read_path(task, source)) if source else "none"
    fs, root = mounting.filesystem(vfs, kind, options.split(","))

    def make(loc: Location) -> Mount:
        mnt = vfs.mount(loc, fs, root, readonly=bool(flags & MS_RDONLY), source=label)
        mnt.flags = _flag_names(flags)
        mnt.data = ",".join(o for o in options.split(",") if "=" in o)
        return mnt

    mounting.mount_new(vfs, at, make)
    return 0


def _flag_names(flags: int) -> tuple[str, ...]:
    return tuple(name for bit, name in MOUNT_FLAGS.items() if flags & bit)


def _mount_root(at: Location) -> Mount:
    """The mount whose root at is; EINVAL for any other directory, as Linux."""
    if at.dentry is not at.mount.root:
        raise Errno(errno.EINVAL)
    return at.mount


def sys_umount2(task, target, flags) -> int:
    flags = u32(flags)
    if flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW):
        raise Errno(errno.EINVAL)
    if flags & MNT_EXPIRE and flags & (MNT_FORCE | MNT_DETACH):
        raise Errno(errno.EINVAL)
    if not task.creds.has_cap(capdefs.CAP_SYS_ADMIN):
        raise Errno(errno.EPERM)
    vfs = task.kernel.vfs
    at = vfs.resolve(task, task.fs.cwd, read_path(task, target), follow=not flags & UMOUNT_NOFOLLOW)
    mnt = _mount_root(at)
    if mnt is vfs.root.mount or mnt is task.fs.root.mount:
        raise Errno(errno.EBUSY)
    mounting.umount(vfs, mnt, detach=bool(flags & MNT_DETACH))
    return 0
