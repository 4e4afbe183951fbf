"""The `kvmsandbox` command: runsc-style global flags, then a subcommand.

Docker, containerd and go-runc put runc's global flags before the
subcommand (`kvmsandbox --root R --log F --log-format json create ...`), and
runsc adds its own (`--platform`, `--network`, ...). The group parses them
once into a `GlobalFlags` in the click context, so every subcommand reads
the same values through `@click.pass_obj` (or `ctx.obj`) without importing
this module, which would be circular. Unknown flags are usage errors
(exit 2), so a mistyped runtime argument fails loudly instead of being
ignored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time

import click

from cli.lazy_group import LazyGroup
from cli.oci import OCI_COMMANDS

DEFAULT_ROOT = "/var/run/kvmsandbox"
OCI_VERSION = "1.0.2"  # the OCI runtime spec version, printed by --version as runsc does


@dataclasses.dataclass(frozen=True)
class GlobalFlags:
    """The global flags, as every subcommand sees them."""

    root: str = DEFAULT_ROOT
    log: str | None = None
    log_format: str = "text"
    debug: bool = False
    debug_log: str | None = None
    platform: str | None = None
    network: str = "none"
    overlay2: str = "root:memory"
    file_access: str = "exclusive"
    pod_init_config: str | None = None
    systemd_cgroup: bool = False


class Overlay2(click.ParamType):
    """runsc's `--overlay2 {root|all}:{memory|self|dir=/abs}[,size=N]` or `none`."""

    name = "overlay2"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value == "none":
            return value
        mounts, _, medium = value.partition(":")
        medium, _, size = medium.partition(",")
        medium_ok = medium in ("memory", "self") or (medium.startswith("dir=/") and len(medium) > 5)
        size_ok = not size or (size.startswith("size=") and len(size) > 5)
        if mounts not in ("root", "all") or not medium_ok or not size_ok:
            self.fail(f"{value!r} is not none or {{root|all}}:{{memory|self|dir=/abs}}[,size=N]", param, ctx)
        return value


class _JsonFormatter(logging.Formatter):
    """One JSON object per record, the shape runsc writes to `--log` for containerd."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        return json.dumps({"msg": record.getMessage(), "level": record.levelname.lower(), "time": stamp})


_handlers: list[logging.Handler] = []


def _configure_logging(flags: GlobalFlags) -> None:
    """`--log` gets warnings and errors (what the shim shows a user); `--debug-log` gets everything.

    Handlers from an earlier invocation in the same process (tests) are replaced, not stacked.
    """
    root = logging.getLogger()
    for handler in _handlers:
        root.removeHandler(handler)
        handler.close()
    _handlers.clear()
    root.setLevel(logging.DEBUG if flags.debug else logging.INFO)
    formatter = (
        _JsonFormatter() if flags.log_format == "json" else logging.Formatter("%(levelname).1s %(message)s")
    )
    log_handler = _file_handler(flags.log) if flags.log else logging.StreamHandler(sys.stderr)
    log_handler.setLevel(logging.DEBUG if flags.debug and not flags.debug_log else logging.WARNING)
    log_handler.setFormatter(formatter)
    _handlers.append(log_handler)
    if flags.debug_log:
        debug_handler = _file_handler(flags.debug_log)
        debug_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s] %(message)s"))
        _handlers.append(debug_handler)
    for handler in _handlers:
        root.addHandler(handler)


def _file_handler(path: str) -> logging.FileHandler:
    """A handler appending to `path`; one line on stderr and exit 1 if it cannot be opened.

    runc does the same for a `--log` whose directory is missing (`open PATH: no such file
    or directory`, status 1): the shim shows that line, where a traceback would bury it.
    """
    try:
        return logging.FileHandler(path)
    except OSError as e:
        click.echo(f"kvmsandbox: open {path}: {e.strerror or e}", err=True)
        sys.exit(1)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--version`, as click's version_option prints it; importlib.metadata only loads when asked."""
    if not value or ctx.resilient_parsing:
        return
    import importlib.metadata

    try:
        version = importlib.metadata.version("kvmsandbox")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    click.echo(f"kvmsandbox version {version}\nspec: {OCI_VERSION}", color=ctx.color)
    ctx.exit()


# Subcommands, one module each, imported only when the command runs (see cli/lazy_group.py).
_COMMANDS = {
    "cpu-features": "cli.cpu_features:cpu_features",
    "help": "cli.help:help_group",
    **OCI_COMMANDS,
    "do": "cli.do:do_command",
    "trace": "cli.trace:trace",
}


@click.group(cls=LazyGroup, lazy_commands=_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", default=DEFAULT_ROOT, show_default=True, help="Directory holding container state.")
@click.option("--log", default=None, help="File for warnings and errors (default: stderr).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Format of --log.",
)
@click.option("--debug", is_flag=True, help="Log at debug level.")
@click.option("--debug-log", default=None, help="File for the debug log.")
@click.option("--platform", default=None, help="kvm or systrap (default: kvm where /dev/kvm works).")
@click.option(
    "--network",
    type=click.Choice(["sandbox", "host", "none"]),
    default="none",
    show_default=True,
    help="Sandbox network: none (loopback only, in the Sentry), host (host sockets), sandbox (as none).",
)
@click.option(
    "--overlay2",
    type=Overlay2(),
    default="root:memory",
    show_default=True,
    help="Overlay over the root (or all) mounts: {root|all}:{memory|self|dir=/abs}[,size=N] or none.",
)
@click.option(
    "--file-access",
    type=click.Choice(["exclusive", "shared"]),
    default="exclusive",
    show_default=True,
    help="Whether the root fs may change outside the sandbox (shared) or not (exclusive).",
)
@click.option(
    "--pod-init-config",
    default=None,
    help='JSON file {"trace_session": ...}: a trace session started with the sandbox (runsc\'s).',
)
@click.option(
    "--systemd-cgroup",
    is_flag=True,
    help="linux.cgroupsPath is slice:prefix:name, the cgroup <slice path>/<prefix>-<name>.scope (runc's).",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.pass_context
def main(ctx: click.Context, **flags: object) -> None:
    """kvmsandbox: run untrusted Linux programs under a user-space kernel on KVM or systrap."""
    ctx.obj = GlobalFlags(**flags)  # type: ignore[arg-type]
    _configure_logging(ctx.obj)


@main.command("flags")
def flags_command() -> None:
    """Print the global flags with their defaults (runsc's `flags`)."""
    for param in main.params:
        if not isinstance(param, click.Option) or param.name in ("version", "help"):
            continue
        kind = "" if param.is_flag else f" {param.type.name}"
        default = f" (default {json.dumps(param.default)})" if isinstance(param.default, str) else ""
        click.echo(f"  {param.opts[0]}{kind}")
        click.echo(f"    \t{param.help}{default}")


if __name__ == "__main__":
    main()
