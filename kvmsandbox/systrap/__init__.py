"""The systrap platform: app code in seccomp-trapped stub processes.

Importing this package registers "systrap" with kvmsandbox.platform. The
implementation is imported only when probed or instantiated, so a missing
build artefact (the stub, the cffi module) makes the platform report itself
unusable instead of breaking the import. Security design: README.md here.
"""

from __future__ import annotations

from kvmsandbox import platform

DESCRIPTION = (
    "stub processes, one per address space, trapping every app syscall (syscall user dispatch, "
    "then seccomp RET_TRAP); syscalls and faults reach the Sentry through shared memory and "
    "futexes (no ptrace, no /dev/kvm needed)"
)


def probe() -> platform.PlatformInfo:
    try:
        from kvmsandbox.systrap import systrap_platform
    except ImportError as e:
        return platform.PlatformInfo("systrap", "", False, f"not built: {e}", DESCRIPTION)
    reason = systrap_platform.usable_reason()
    flavour = systrap_platform.flavour()
    return platform.PlatformInfo("systrap", flavour, not reason, reason or "ok", DESCRIPTION)


def factory(**options: object) -> platform.Platform:
    from kvmsandbox.systrap.systrap_platform import SystrapPlatform

    return SystrapPlatform(**options)


platform.register("systrap", probe, factory)
