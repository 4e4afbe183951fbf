"""update: change a running container's cgroup limits (runc's flags, or `-r resources.json`)."""

from __future__ import annotations

import json
import sys

import click

from bootstrap import container, resources
from bootstrap.errors import OCIError
from cli.oci_common import report_errors, store

# runc's flag -> (linux.resources section, key); the value's type is checked by resources.parse.
_FLAGS = {
    "memory": ("memory", "limit"),
    "memory_reservation": ("memory", "reservation"),
    "memory_swap": ("memory", "swap"),
    "kernel_memory": ("memory", "kernel"),
    "cpu_shares": ("cpu", "shares"),
    "cpu_period": ("cpu", "period"),
    "cpu_quota": ("cpu", "quota"),
    "cpu_rt_period": ("cpu", "realtimePeriod"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime"),
    "cpuset_cpus": ("cpu", "cpus"),
    "cpuset_mems": ("cpu", "mems"),
    "pids_limit": ("pids", "limit"),
    "blkio_weight": ("blockIO", "weight"),
}
_SUFFIXES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _bytes(text: str) -> int:
    """runc's memory sizes: 64m, 1g, 1024 (bytes), -1 (unlimited)."""
    t = text.strip().lower().removesuffix("b")
    scale = _SUFFIXES.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in _SUFFIXES else t
    try:
        return int(number) * scale
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size like 64m, 1g or -1") from None


def _option(name: str) -> click.Option:
    kind = "memory" if name.startswith(("memory", "kernel")) else name
    parse = _bytes if kind == "memory" else str if name.startswith("cpuset") else int
    return click.Option(
        [f"--{name.replace('_', '-')}"], default=None, callback=lambda _c, _p, v: v and parse(v)
    )


@click.command("update", params=[_option(name) for name in _FLAGS])
@click.option(
    "--resources", "-r", "resources_file", default=None, help="linux.resources JSON file; - for stdin."
)
@click.argument("container_id")
@click.pass_context
@report_errors
def update_command(
    ctx: click.Context, container_id: str, resources_file: str | None, **values: object
) -> None:
    """Update the container's resource limits (its host cgroup)."""
    if resources_file:
        try:
            with open(resources_file) if resources_file != "-" else sys.stdin as f:
                res = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise OCIError(f"--resources {resources_file}: {e}") from None
    else:
        res = {}
        for name, value in values.items():
            if value is not None:
                section, key = _FLAGS[name]
                res.setdefault(section, {})[key] = value
    container.update(store(ctx), container_id, resources.parse(res, "resources"))


UPDATE_COMMANDS = [update_command]
