"""spec, features, install, uninstall: setting kvmsandbox up rather than running containers."""

from __future__ import annotations

import json
import os
import shutil
import sys

import click

from bootstrap import daemon_json
from bootstrap.capabilities import host_capabilities
from bootstrap.default_spec import default_spec
from bootstrap.errors import OCIError
from bootstrap.features import features
from cli.oci_common import report_errors


@click.command("spec", context_settings={"allow_interspersed_args": False})
@click.option("--bundle", "-b", default=".", help="Directory to write config.json in.")
@click.option("--cwd", default="/", help="The process's working directory.")
@click.option("--netns", default="", help="Network namespace path to join.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@report_errors
def spec_command(bundle: str, cwd: str, netns: str, args: tuple[str, ...]) -> None:
    """Write a starter config.json (running `sh`, or the command after --)."""
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise OCIError(f"{path} exists; remove it first")
    try:
        with open(path, "x") as f:
            json.dump(default_spec(list(args), cwd=cwd, netns=netns), f, indent=4)
            f.write("\n")
    except OSError as e:
        raise OCIError(f"writing {path}: {e.strerror}") from None


@click.command("features")
def features_command() -> None:
    """Print the OCI runtime-features JSON (dockerd asks for it when loading the runtime)."""
    click.echo(json.dumps(features(host_capabilities()), indent=4))


def _executable() -> str:
    """This command as Docker should call it: the `kvmsandbox` script we run as, or the one on PATH."""
    if os.path.basename(sys.argv[0]) == "kvmsandbox":
        return os.path.abspath(sys.argv[0])
    found = shutil.which("kvmsandbox")
    if found is None:
        raise OCIError("no kvmsandbox command on PATH: give --path")
    return os.path.abspath(found)


@click.command("install", context_settings={"allow_interspersed_args": False})
@click.option("--runtime", default="kvmsandbox", show_default=True, help="Name of the Docker runtime.")
@click.option("--config-file", "--config_file", default=daemon_json.DEFAULT_CONFIG, show_default=True)
@click.option("--path", "executable", default=None, help="Runtime executable (default: this command).")
@click.argument("runtime_args", nargs=-1, type=click.UNPROCESSED)
@report_errors
def install_command(
    runtime: str, config_file: str, executable: str | None, runtime_args: tuple[str, ...]
) -> None:
    """Register kvmsandbox in Docker's daemon.json; arguments after -- become runtimeArgs."""
    message = daemon_json.install(config_file, runtime, executable or _executable(), list(runtime_args))
    click.echo(message, err=True)
    click.echo("Successfully updated config.", err=True)


@click.command("uninstall")
@click.option("--runtime", default="kvmsandbox", show_default=True, help="Name of the Docker runtime.")
@click.option("--config-file", "--config_file", default=daemon_json.DEFAULT_CONFIG, show_default=True)
@report_errors
def uninstall_command(runtime: str, config_file: str) -> None:
    """Remove the runtime from Docker's daemon.json, keeping everything else."""
    click.echo(daemon_json.uninstall(config_file, runtime), err=True)


SETUP_COMMANDS = [spec_command, features_command, install_command, uninstall_command]
