"""The spec's mounts, made in the Sentry's VFS before the first task runs.

The Sentry already gives every sandbox /proc, /dev (its own devfs, with
/dev/pts and /dev/shm), /sys and /tmp; a spec mount of the same type at one of
those places is that mount, relabelled with the spec's source and options and
moved to the spec's place in the mount table, so /proc/self/mountinfo lists
the spec's mounts in the spec's order, as runc's containers do. Bind mounts of
host directories are served by a gofer of their own (writable unless `ro`: a
volume's changes reach the host, as with runc); a bind of a single file
(Docker's /etc/hosts) is served through one host fd (sentry/vfs/fs/hostfile.py).
tmpfs and mqueue mounts are fresh Sentry filesystems; proc, sysfs and devpts
elsewhere are more mounts of the Sentry's own. What cannot be honoured (cgroup,
binds of host devices or sockets) is logged and skipped rather than failing
the container. linux.devices, readonlyPaths and maskedPaths follow.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import subprocess
from typing import Any

from bootstrap import devices, protected_paths
from bootstrap.spec import PROPAGATIONS, Mount, Spec
from sentry.errors import Errno
from sentry.vfs import mounting
from sentry.vfs.mounting import FILESYSTEMS, filesystem, size_option

log = logging.getLogger("kvmsandbox.sandbox")

# (destination, type) pairs the Sentry's own boot already provides.
PROVIDED = {
    ("/proc", "proc"),
    ("/dev", "tmpfs"),
    ("/dev", "devtmpfs"),
    ("/dev/pts", "devpts"),
    ("/dev/shm", "tmpfs"),
    ("/sys", "sysfs"),
    ("/tmp", "tmpfs"),
}

# Options that are the mount's own (shown before the " - " in mountinfo); those with a
# value (size=, mode=, gid=) are the filesystem's; the rest (bind, propagation, rw) are neither.
MOUNT_FLAGS = ("nosuid", "nodev", "noexec", "strictatime", "noatime", "relatime", "nodiratime")


def apply(vfs: Any, spec: Spec) -> list[tuple[subprocess.Popen, Any]]:
    """Mount what the spec asks for; returns the bind mounts' gofers (process, client) to stop at shutdown."""
    gofers: list[tuple[subprocess.Popen, Any]] = []
    sentrys = {id(m) for m in vfs.mounts()}
    for mount in spec.mounts:
        try:
            if (mount.destination, mount.type) in PROVIDED:
                _adopt(vfs, mount)
                continue
            _replace(vfs, mount, sentrys)
            if _is_bind(mount):
                gofers.extend(_bind(vfs, mount, spec.bundle))
            elif mount.type in FILESYSTEMS:
                _new_filesystem(vfs, mount)
            else:
                log.warning("mount %s (type %s) is not supported yet: skipped", mount.destination, mount.type)
        except (Errno, OSError, ValueError) as e:
            log.warning("mount %s (%s from %s) skipped: %s", mount.destination, mount.type, mount.source, e)
    devices.apply(vfs, spec.linux.devices)
    protected_paths.apply(vfs, spec.linux)
    if spec.root.readonly:
        vfs.root.mount.readonly = True
    if spec.linux.rootfs_propagation:
        _set_propagation(vfs, vfs.root.mount, spec.linux.rootfs_propagation)
    return gofers


def _set_propagation(vfs: Any, mnt: Any, option: str) -> None:
    """shared, slave, private, unbindable on mnt; their r- forms on its submounts too."""
    kind = option.removeprefix("r")
    mounting.set_propagation(vfs, mnt, kind, recursive=kind != option)


def _label(mnt: Any, mount: Mount, *, data: bool = True) -> None:
    """Give a Sentry mount the spec's source and options, as mountinfo shows them."""
    mnt.source = mount.source or mount.type or "none"
    mnt.flags = tuple(f for f in MOUNT_FLAGS if f in mount.options)
    if data:
        mnt.data = ",".join(filter(None, (_data_option(mount.type, o) for o in mount.options if "=" in o)))
    mnt.readonly = mnt.readonly or "ro" in mount.options


def _data_option(kind: str, option: str) -> str:
    """A filesystem option as Linux shows it: modes without leading zeros, tmpfs's default 1777 not at all."""
    key, _, value = option.partition("=")
    if key in ("mode", "ptmxmode") and value.isdigit():
        value = f"{int(value, 8):o}"
        if kind == "tmpfs" and key == "mode" and value == "1777":
            return ""
    return f"{key}={value}"


def _propagation(vfs: Any, mnt: Any, mount: Mount) -> None:
    for option in mount.options:
        if option in PROPAGATIONS:
            _set_propagation(vfs, mnt, option)


def _adopt(vfs: Any, mount: Mount) -> None:
    """The Sentry's own mount at the destination becomes the spec's, moved to its place in the table."""
    loc = vfs.pin_path(os.fsencode(mount.destination))
    if loc.dentry is not loc.mount.root or loc.mount is vfs.root.mount:
        log.warning("mount %s (type %s): the Sentry has none there: skipped", mount.destination, mount.type)
        return
    _label(loc.mount, mount)
    _propagation(vfs, loc.mount, mount)
    size = dict(o.partition("=")[::2] for o in mount.options).get("size")
    if size and hasattr(loc.mount.fs, "budget"):  # a tmpfs honours the spec's size= (Docker's 64m /dev/shm)
        loc.mount.fs.budget = size_option(size)
    vfs.restack(loc.mount)


def _replace(vfs: Any, mount: Mount, sentrys: set[int]) -> None:
    """A spec mount of another kind where the Sentry has its own (Docker's /dev/shm is a bind) takes
    its place, as in runc's fresh tree; one with submounts (/dev) stays under the spec's."""
    if not any(mount.destination == where for where, _ in PROVIDED):
        return
    with contextlib.suppress(Errno):  # nothing there, or submounts: the spec's mount goes on top
        loc = vfs.pin_path(os.fsencode(mount.destination))
        if loc.dentry is loc.mount.root and id(loc.mount) in sentrys and loc.mount is not vfs.root.mount:
            mounting.umount(vfs, loc.mount, detach=False)


def _is_bind(mount: Mount) -> bool:
    return mount.type in ("bind", "rbind") or "bind" in mount.options or "rbind" in mount.options


def _bind(vfs: Any, mount: Mount, bundle: str) -> list[tuple[subprocess.Popen, Any]]:
    """A directory gets a gofer of its own; a regular file is served through one host fd."""
    import gofer
    from sentry.vfs.fs.gofer import GoferFilesystem

    # The runtime spec: a bind source is absolute or relative to the bundle.
    source = os.path.normpath(os.path.join(bundle, mount.source))
    if not os.path.isdir(source):
        _bind_file(vfs, mount, source)
        return []
    readonly = "ro" in mount.options
    proc, client = gofer.start(source, writable=not readonly)
    try:
        fs = GoferFilesystem(client)
        mnt = vfs.mount_path(os.fsencode(mount.destination), fs, fs.root_inode(), readonly=readonly)
        _label(mnt, mount, data=False)
        _propagation(vfs, mnt, mount)
        mnt.root_path = source
    except BaseException:
        client.shutdown()
        proc.wait()
        raise
    return [(proc, client)]


def _bind_file(vfs: Any, mount: Mount, source: str) -> None:
    """Docker's /etc/hosts and friends: only regular files (a host device, FIFO or socket never enters)."""
    from sentry.vfs.fs.hostfile import HostFileFilesystem, HostFileInode

    dest = os.fsencode(mount.destination)
    try:
        if vfs.pin_path(dest).inode.is_dir():
            raise ValueError(f"cannot bind the file {source} over a directory")
    except Errno as e:
        if e.code != errno.ENOENT:
            raise
    if not stat.S_ISREG(os.stat(source).st_mode):  # checked before opening: opening a device can act
        raise ValueError(f"{source} is not a directory or a regular file")
    readonly = "ro" in mount.options
    flags = os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
    fd = os.open(source, flags | (os.O_RDONLY if readonly else os.O_RDWR))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{source} changed into something other than a regular file")
        fs = HostFileFilesystem()
        mnt = vfs.mount_path(dest, fs, HostFileInode(fs, fd, writable=not readonly), readonly=readonly)
    except BaseException:
        os.close(fd)
        raise
    _label(mnt, mount, data=False)
    _propagation(vfs, mnt, mount)
    mnt.root_path = source


def _new_filesystem(vfs: Any, mount: Mount) -> None:
    """A fresh tmpfs or mqueue (the Sentry has no message queues: that directory stays empty), or another
    mount of the Sentry's proc, sysfs or devpts."""
    fs, root = filesystem(vfs, mount.type, list(mount.options))
    mnt = vfs.mount_path(os.fsencode(mount.destination), fs, root)
    _label(mnt, mount)
    _propagation(vfs, mnt, mount)
