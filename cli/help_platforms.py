"""`kvmsandbox help platforms`: every platform, its flavour, and whether it can run here.

The answer matters most when something is broken, so this command must not
break with it: each backend is imported and probed on its own, and an import
error or a crashing probe is shown as that platform being unusable instead
of taking the whole listing down (`platform.probe_all()` would re-raise it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import click

from kvmsandbox import platform

# Backend name -> the module whose import registers it (platform._load_builtin's list).
BACKENDS = {"kvm": "kvmsandbox.kvmplatform", "systrap": "kvmsandbox.systrap"}


def _unusable(name: str, reason: str) -> platform.PlatformInfo:
    return platform.PlatformInfo(name=name, flavour="-", usable=False, reason=reason, description="")


def _registered_probes() -> dict[str, Callable[[], platform.PlatformInfo]]:
    # platform.py exposes probing only all-at-once; one failing probe must not hide the others.
    return {name: entry.probe for name, entry in platform._REGISTRY.items()}


def platform_infos() -> list[platform.PlatformInfo]:
    """One PlatformInfo per known or registered platform; never raises."""
    infos: dict[str, platform.PlatformInfo] = {}
    for name, module in BACKENDS.items():
        try:
            importlib.import_module(module)
        except Exception as exc:  # any import failure just disables that backend
            infos[name] = _unusable(name, f"import {module} failed: {type(exc).__name__}: {exc}")
    probes = _registered_probes()
    for name, module in BACKENDS.items():
        if name not in infos and name not in probes:
            infos[name] = _unusable(name, f"{module} registers no platform named {name!r}")
    for name, probe in probes.items():
        try:
            infos[name] = probe()
        except Exception as exc:  # a broken probe means "not usable", with the reason shown
            infos[name] = _unusable(name, f"probe failed: {type(exc).__name__}: {exc}")
    order = [*BACKENDS, *(name for name in infos if name not in BACKENDS)]
    return [infos[name] for name in order if name in infos]


def render(infos: list[platform.PlatformInfo]) -> str:
    """Aligned columns NAME FLAVOUR USABLE DETAILS (description if usable, else why not)."""
    rows = [("NAME", "FLAVOUR", "USABLE", "DETAILS")]
    for info in infos:
        details = info.description if info.usable else info.reason
        rows.append((info.name, info.flavour or "-", "yes" if info.usable else "no", details))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        (
            "".join(cell.ljust(width + 2) for cell, width in zip(row[:3], widths, strict=True)) + row[3]
        ).rstrip()
        for row in rows
    )


@click.command("platforms")
def platforms() -> None:
    """List the platforms, their flavour, and whether each is usable on this host."""
    click.echo(render(platform_infos()))
