"""linux.devices: the nodes the spec asks for, made in the Sentry's VFS (usually its /dev tmpfs).

The app never gets a host device. A character node whose number the Sentry
emulates (1:3 null, 1:5 zero, 5:0 tty, 5:2 ptmx, ...) opens that emulation;
any other node has its type, number, mode and owner, as runc makes it, and
opens with ENXIO, Linux's answer for a device no driver serves.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import Any

from bootstrap.spec import Device
from sentry.errors import Errno
from sentry.vfs.fs.dev import DeviceInode, Opener, no_such_device
from sentry.vfs.fs.tmpfs import TmpFifo

log = logging.getLogger("kvmsandbox.sandbox")


def apply(vfs: Any, devices: tuple[Device, ...]) -> None:
    """Make each device node; one that cannot be made is logged and skipped, as other spec mounts are."""
    if not devices:
        return
    emulated = vfs.devices
    for device in devices:
        try:
            _make(vfs, device, emulated)
        except (Errno, OSError, ValueError) as e:
            log.warning(
                "device %s (%s %d:%d) skipped: %s", device.path, device.type, device.major, device.minor, e
            )


def _make(vfs: Any, device: Device, emulated: dict[int, Opener]) -> None:
    head, _, name = os.fsencode(device.path).rpartition(b"/")
    parent = vfs.pin_path(head, create=True)
    if vfs.occupant(parent, name) is not None:
        parent.inode.unlink(name)
    parent.dentry.forget(name)
    mode, uid, gid = device.file_mode, device.uid, device.gid
    if device.type == "p":
        parent.inode.add_memory_node(name, lambda fs: TmpFifo(fs, mode, uid, gid))
    else:
        char = device.type in ("c", "u")
        rdev = os.makedev(device.major, device.minor)
        opener = emulated.get(rdev, no_such_device) if char else no_such_device
        kind = stat.S_IFCHR if char else stat.S_IFBLK
        parent.inode.add_memory_node(
            name,
            lambda fs: DeviceInode(
                fs, device.major, device.minor, opener, kind=kind, mode=mode, uid=uid, gid=gid
            ),
        )
    parent.dentry.forget(name)
