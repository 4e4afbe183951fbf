"""Moving the sandbox process into a root that holds only its own code, read-only.

Once booted, the sandbox process has every host file it serves open already
(the gofers' sockets, /dev/kvm, the memory file, its log files); it needs
the host filesystem only to import Python modules lazily and to spawn its
own helper binaries (systrap stubs, ps mirrors). So, as runsc does with an
empty root, it pivots into a fresh tmpfs holding read-only bind mounts of
exactly those code directories at their usual paths, and the old root is
detached: no /etc, no /proc, no state directories, no host devices. The
tmpfs itself is then made read-only, so nothing can be created either.

Directories are found, not listed by hand: Python's import path, the
directories of our own packages (an editable install is not on sys.path),
and the directories of every file already mapped (libc, libpython, cffi
modules, so that dlopen of a sibling still works).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import site
import sys
from collections.abc import Iterable

from bootstrap.errors import OCIError

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
# statvfs flag -> mount flag, for the flags a bind remount must repeat.
_KEPT = {os.ST_NOEXEC: 0x8, os.ST_NOATIME: 0x400, os.ST_NODIRATIME: 0x800, os.ST_RELATIME: 0x200000}

# The new mount API (prepare_staging): syscall numbers and flags from <linux/mount.h>.
SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x2, 0x4
MOVE_MOUNT_F_EMPTY_PATH = 4
AT_FDCWD = -100

# Where the new root is built, inside our private mount namespace only.
STAGING = "/tmp"
OUR_PACKAGES = ("kvmsandbox", "sentry", "gofer", "bootstrap", "cli")

_libc = ctypes.CDLL(None, use_errno=True)


# The staging tmpfs made in advance by prepare_staging (a detached mount's fd), or None.
_prepared: int | None = None


def _check(result: int, what: str) -> None:
    if result != 0:
        raise OCIError(f"confining the sandbox process: {what}: {os.strerror(ctypes.get_errno())}")


def _check_fd(result: int, what: str) -> int:
    _check(0 if result >= 0 else result, what)
    return result


def prepare_staging() -> None:
    """Make the staging tmpfs now, detached, while still host root: before the sandbox process
    enters a user namespace in which its uid (host 0) is unmapped. A tmpfs mounted from inside
    would belong to that namespace and refuse to create our directories (EOVERFLOW); this one
    belongs to the host's, and enter() attaches it instead of mounting one."""
    global _prepared
    fs = _check_fd(_libc.syscall(SYS_FSOPEN, b"tmpfs", FSOPEN_CLOEXEC), "fsopen(tmpfs)")
    try:
        # 0755, not 0555: unmapped, we create its directories as their owner, without CAP_DAC_OVERRIDE.
        _check(_libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_SET_STRING, b"mode", b"0755", 0), "fsconfig(mode)")
        _check(_libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0), "fsconfig(create)")
        flags = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        _prepared = _check_fd(_libc.syscall(SYS_FSMOUNT, fs, FSMOUNT_CLOEXEC, flags), "fsmount(tmpfs)")
    finally:
        os.close(fs)


def available() -> bool:
    """Whether enter() can run: as root, or unmapped in a user namespace with the staging prepared."""
    return os.geteuid() == 0 or _prepared is not None


def _mount_staging() -> None:
    if _prepared is None:
        flags = MS_NOSUID | MS_NODEV
        _check(_libc.mount(b"kvmsandbox-root", STAGING.encode(), b"tmpfs", flags, b"mode=0555"), "tmpfs")
        return
    move = _libc.syscall(SYS_MOVE_MOUNT, _prepared, b"", AT_FDCWD, STAGING.encode(), MOVE_MOUNT_F_EMPTY_PATH)
    _check(move, "attaching the staging tmpfs")


def code_directories() -> list[str]:
    """The host directories the sandbox process may still read: outermost first, none nested."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    found: set[str] = set()
    for entry in sys.path:
        # Python's own import path, not the caller's cwd or whatever else PYTHONPATH names.
        if entry and os.path.isdir(entry) and any(_within(entry, p) for p in prefixes):
            found.add(os.path.realpath(entry))
    for name in OUR_PACKAGES:
        module = sys.modules.get(name) or importlib.import_module(name)
        found.add(os.path.dirname(os.path.realpath(module.__file__ or "")))
    found.update(os.path.dirname(path) for path in _mapped_files())
    return _outermost(found)


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _mapped_files() -> Iterable[str]:
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/") and not fields[5].endswith(" (deleted)\n"):
                path = fields[5].rstrip("\n")
                if os.path.isfile(path):
                    yield os.path.realpath(path)


def _outermost(paths: Iterable[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(paths, key=lambda p: (p.count("/"), p)):
        if path != "/" and not any(_within(path, k) for k in kept):
            kept.append(path)
    return kept


def _kept_flags(fd: int) -> int:
    have = os.fstatvfs(fd).f_flag
    return sum(flag for st, flag in _KEPT.items() if have & st)


def enter(directories: list[str], *, own_namespace: bool) -> None:
    """Pivot into a read-only tmpfs holding read-only binds of `directories`; needs CAP_SYS_ADMIN.

    own_namespace: we are in a mount namespace made for this sandbox (and made
    private then: bootstrap.namespaces); otherwise (the spec joins one, or shares
    the caller's) a private one is made first, so that pivoting changes nobody
    else's view.
    """
    if not own_namespace:
        _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
    # Sources are held open first: the staging tmpfs may hide them (a checkout under /tmp).
    sources = {
        directory: os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for directory in directories
    }
    try:
        _mount_staging()
        for directory, fd in sources.items():
            target = STAGING + directory
            os.makedirs(target, exist_ok=True)
            source, dest = f"/proc/self/fd/{fd}".encode(), target.encode()
            _check(_libc.mount(source, dest, None, MS_BIND | MS_REC, None), f"binding {directory}")
            # A remount must keep the flags the source mount has locked (from a user namespace's view).
            flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | _kept_flags(fd)
            _check(_libc.mount(None, dest, None, flags, None), f"making {directory} read-only")
    finally:
        for fd in sources.values():
            os.close(fd)
    os.chdir(STAGING)
    _check(_libc.syscall(155, b".", b"."), "pivot_root")  # SYS_pivot_root: glibc has no wrapper
    _check(_libc.umount2(b".", MNT_DETACH), "detaching the old root")
    os.chdir("/")
    _check(_libc.mount(None, b"/", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None), "making the root read-only")
