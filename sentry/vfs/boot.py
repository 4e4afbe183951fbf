"""Building a sandbox's VFS: the mount tree every process starts with.

/          overlay: tmpfs upper over the read-only gofer root (overlay=False: the gofer root, written through)
/dev       devfs, with /dev/shm a tmpfs and /dev/pts devpts
/proc      procfs
/tmp       tmpfs
"""

from __future__ import annotations

import errno
import os
import stat

from gofer.client import GoferClient
from sentry.errors import Errno
from sentry.vfs.file import FileDescription
from sentry.vfs.fs.anon import HOSTFS
from sentry.vfs.fs.dev import emulated_devices, make_devfs
from sentry.vfs.fs.devpts import DevptsFilesystem
from sentry.vfs.fs.gofer import GoferFilesystem
from sentry.vfs.fs.host import HostFile, HostInode
from sentry.vfs.fs.overlay import OverlayFilesystem
from sentry.vfs.fs.proc import make_procfs, make_sysfs
from sentry.vfs.fs.tmpfs import TmpFilesystem
from sentry.vfs.fscontext import FSContext
from sentry.vfs.mount import Location
from sentry.vfs.vfs import VFS


def make_vfs(
    root_dir: str,
    gofer_client: GoferClient,
    stdio_fds: tuple[int, ...] = (0, 1, 2),
    *,
    overlay: bool = True,
) -> VFS:
    """The VFS for a gofer serving root_dir; stdio_fds are the host fds the app's 0, 1, 2 wrap.

    overlay: the root is a tmpfs-backed overlay over the gofer (runsc's --overlay2=root:memory;
    start the gofer read-only); False: the gofer root itself, changes reaching the host
    (--overlay2=none; start the gofer with writable=True).
    Once the kernel exists, set `vfs.procfs.kernel = kernel` so /proc can list processes.
    """
    gofer_fs = GoferFilesystem(gofer_client)
    if overlay:
        overlay_fs = OverlayFilesystem(gofer_fs.root_inode())
        vfs = VFS(overlay_fs, overlay_fs.root, source="overlay")
    else:
        vfs = VFS(gofer_fs, gofer_fs.root_inode(), source=root_dir)

    stdio_fds = tuple(fd for fd in stdio_fds if _is_open(fd))
    ttys = [fd for fd in stdio_fds if os.isatty(fd)]

    def open_console(task, loc: Location, flags: int) -> HostFile:
        return HostFile(loc, flags, os.dup(ttys[0]))

    devpts = DevptsFilesystem()

    def open_tty(task, loc: Location, flags: int) -> FileDescription:
        """/dev/tty: the caller's controlling pty if it has one, else the console."""
        term = devpts.controlling(task) if task is not None else None
        if term is not None:
            slave = vfs.resolve(task, vfs.root, b"/dev/pts/%d" % term.index)
            return slave.inode.open(task, slave, flags)
        if ttys:
            return open_console(task, loc, flags)
        raise Errno(errno.ENXIO)

    dev_fs, dev_root = make_devfs(open_console if ttys else None, open_tty)
    vfs.devices = {**emulated_devices(dev_root), os.makedev(5, 2): devpts.open_master}
    vfs.mount_path(b"/dev", dev_fs, dev_root, source="dev")
    vfs.mount_path(b"/dev/pts", devpts, devpts.root, source="devpts")
    # The console is /dev/console itself (fstat(0) matches stat("/dev/console"), so
    # ttyname() works); other host fds are anonymous files.
    console = vfs.resolve(None, vfs.root, b"/dev/console")
    for fd in stdio_fds:
        if ttys and os.path.sameopenfile(fd, ttys[0]):
            vfs.host_stdio[fd] = console
        else:
            inode = HostInode(fd)
            vfs.host_stdio[fd] = HOSTFS.location(inode, _host_name(fd, inode.ino))
    shm = TmpFilesystem()
    vfs.mount_path(b"/dev/shm", shm, shm.new_root(), source="shm")
    vfs.procfs, proc_root = make_procfs(vfs)
    vfs.mount_path(b"/proc", vfs.procfs, proc_root, source="proc")
    sys_fs, sys_root = make_sysfs(vfs)
    vfs.mount_path(b"/sys", sys_fs, sys_root, readonly=True, source="sysfs")
    tmp = TmpFilesystem()
    vfs.mount_path(b"/tmp", tmp, tmp.new_root(), source="tmpfs")
    return vfs


def _host_name(fd: int, ino: int) -> bytes:
    """What /proc/self/fd/N shows for a host stdio fd, in Linux's style."""
    mode = os.fstat(fd).st_mode
    kind = b"pipe" if stat.S_ISFIFO(mode) else b"socket" if stat.S_ISSOCK(mode) else b"host"
    return b"%s:[%d]" % (kind, ino)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def initial_fs_context(vfs: VFS) -> FSContext:
    """The first process's root, cwd (/) and umask."""
    return FSContext(vfs.root, vfs.root)
