"""Linux capability names and numbers, as the OCI spec spells them (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE).

The spec's process.capabilities sets are lists of names; the Sentry's
credentials and `features` need numbers and masks.
"""

from __future__ import annotations

from collections.abc import Iterable

# Index = capability number (<linux/capability.h>).
NAMES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

_NUMBERS = {name: number for number, name in enumerate(NAMES)}

# What a gofer keeps to serve files of any owner (gofer/__main__.py): not CAP_SYS_CHROOT, so its
# chroot cannot be escaped.
GOFER_FILE_CAPABILITIES = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID")


def number(name: str) -> int | None:
    """The capability's number, None for a name Linux does not have."""
    return _NUMBERS.get(name)


def numbers(names: Iterable[str]) -> tuple[int, ...]:
    """The numbers of known capability names."""
    return tuple(_NUMBERS[name] for name in names)


def mask(names: Iterable[str]) -> int:
    """The bit mask of known capability names."""
    return sum(1 << _NUMBERS[name] for name in names)


def host_capabilities() -> list[str]:
    """Capability names up to the host's last one (/proc/sys/kernel/cap_last_cap)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = len(NAMES) - 1
    return list(NAMES[: last + 1])
