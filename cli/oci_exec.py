"""exec: run another process in a container."""

from __future__ import annotations

import json
import sys

import click

from bootstrap.errors import OCIError
from bootstrap.execute import exec_process, process_from_argv
from cli.oci_common import report_errors, store


@click.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("--process", "-p", "process_file", default=None, help="process.json to run (the shim's form).")
@click.option("--detach", "-d", is_flag=True, help="Return once started; --pid-file names its stand-in.")
@click.option("--pid-file", default=None, help="Write the pid of the process's host stand-in here.")
@click.option("--console-socket", default=None, help="Unix socket receiving the pty master.")
@click.option("--tty", "-t", is_flag=True, help="Allocate a terminal (argv form).")
@click.option("--cwd", default=None, help="Working directory (argv form).")
@click.option("--env", "-e", multiple=True, help="KEY=VALUE to add (argv form).")
@click.option("--user", "-u", default=None, help="UID[:GID] (argv form).")
@click.option("--cap", multiple=True, hidden=True)
@click.option("--no-new-privs", is_flag=True, hidden=True)
@click.option("--preserve-fds", type=int, default=0, hidden=True)
@click.option("--process-label", default=None, hidden=True)
@click.option("--apparmor", default=None, hidden=True)
@click.option("--internal-pid-file", default=None, hidden=True)
@click.argument("container_id")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@report_errors
def exec_command(ctx: click.Context, container_id: str, command: tuple[str, ...], process_file: str | None,
                 detach: bool, pid_file: str | None, console_socket: str | None, tty: bool, cwd: str | None,
                 env: tuple[str, ...], user: str | None, **_ignored: object) -> None:  # fmt: skip
    """Run a process in a running container: `exec ID cmd...` or `exec --process P.json ID`."""
    states = store(ctx)
    if process_file:
        if command:
            raise OCIError("give either --process or a command, not both")
        try:
            with open(process_file) as f:
                process = json.load(f)
        except (OSError, ValueError) as e:
            raise OCIError(f"--process {process_file}: {e}") from None
    elif command:
        process = process_from_argv(states, container_id, list(command), cwd=cwd, env=env, user=user, tty=tty)
    else:
        raise OCIError("exec needs --process or a command")
    status = exec_process(
        states, container_id, process, detach=detach, pid_file=pid_file, console_socket=console_socket
    )
    sys.exit(status)


EXEC_COMMANDS = [exec_command]
