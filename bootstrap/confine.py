"""Confining the sandbox process once the Sentry has booted.

Everything that needs root is done by then: namespaces entered, /dev/kvm and
the memory file open, the gofer started, the control socket bound. From then
on the process runs untrusted code's requests, so, in this order:

1. its filesystem becomes its own code only (bootstrap.code_root): host
   files reach the app only through the gofers' fds;
2. it keeps no capabilities (only CAP_NET_BIND_SERVICE with `--network=host`,
   where the app's binds become host binds), none can come back (the bounding
   set is emptied) and exec cannot grant any (no_new_privs, which systrap's
   seccomp stubs also rely on);
3. its host system calls are limited to an allowlist (bootstrap.host_filter).
"""

from __future__ import annotations

import ctypes
import functools
import os

from bootstrap import code_root, host_filter
from bootstrap.errors import OCIError

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
CAP_NET_BIND_SERVICE = 10
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


@functools.cache
def _last_cap() -> int:
    """Read once, at import: the confined process has no /proc."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


_last_cap()


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise OCIError(f"{what}: {os.strerror(ctypes.get_errno())}")


def drop_privileges(keep: frozenset[int] = frozenset()) -> None:
    """Keep only the capabilities in `keep` (effective and permitted), empty the rest; set no_new_privs."""
    for cap in range(_last_cap() + 1):
        if cap not in keep:
            _check(
                _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 or ctypes.get_errno() == 22, "PR_CAPBSET_DROP"
            )
    mask = sum(1 << cap for cap in keep)
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)(_Data(mask & 0xFFFFFFFF, mask & 0xFFFFFFFF, 0), _Data(mask >> 32, mask >> 32, 0))
    _check(_libc.capset(ctypes.byref(header), data) == 0, "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS")


def make_ambient(caps: tuple[int, ...]) -> None:
    """Keep `caps` (held already) across exec for what we start from now on; drop_privileges ends it."""
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    _check(_libc.capget(ctypes.byref(header), data) == 0, "capget")
    for cap in caps:
        data[cap // 32].inheritable |= 1 << (cap % 32)
    _check(_libc.capset(ctypes.byref(header), data) == 0, "capset")
    for cap in caps:
        _check(
            _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) == 0,
            f"raising ambient capability {cap}",
        )


def capabilities_for(network: str) -> frozenset[int]:
    """What the sandbox process keeps for a `--network` mode."""
    return frozenset({CAP_NET_BIND_SERVICE}) if network == "host" else frozenset()


def confine_sandbox_process(network: str, *, own_mount_namespace: bool) -> None:
    """All three steps; rootless only the last two (there is nothing to pivot with)."""
    if code_root.available():
        code_root.enter(code_root.code_directories(), own_namespace=own_mount_namespace)
    drop_privileges(capabilities_for(network))
    host_filter.install(host_filter.SENTRY)
