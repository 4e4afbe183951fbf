"""`kvmsandbox do`: run a command in a throwaway sandbox whose root is the host / (or --root-dir).

Like runsc's `do` test helper: the root is the host tree under a memory
overlay (writes stay in the sandbox; the global --overlay2=none writes
through the gofer to the host instead) with a tmpfs /tmp, stdio is
connected, the caller's environment and working directory are passed, and
the exit status is the command's (128+signo if a signal killed it).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from cli import pod_init

if TYPE_CHECKING:
    from sentry.sandbox import Sandbox


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


@contextlib.contextmanager
def _forwarding_signals(sandbox: Sandbox) -> Iterator[None]:
    """Signals sent to `do` go to the sandboxed command (pid 1), as runsc forwards them."""
    from sentry.kernel.signals import SI_USER, SigInfo

    def forward(signo: int, _frame: object) -> None:
        init = sandbox.kernel.init_tg
        if init is not None:
            sandbox.kernel.signals.send_to_group(init, SigInfo.kill(signo, SI_USER, 0, 0))

    previous = {signo: signal.signal(signo, forward) for signo in FORWARDED}
    try:
        yield
    finally:
        for signo, handler in previous.items():
            signal.signal(signo, handler)


def _confine(network: str) -> None:
    """From here on this process is the sandbox process: confined as `create`'s is (bootstrap.confine)."""
    from bootstrap import confine
    from bootstrap.errors import OCIError

    try:
        confine.confine_sandbox_process(network, own_mount_namespace=False)
    except OCIError as e:
        raise click.ClickException(str(e)) from None


SANDBOX_OWN_MOUNTS = frozenset({"tmp", "proc", "dev", "sys"})


@click.command(
    "do",
    context_settings={"ignore_unknown_options": False, "allow_interspersed_args": False},
)
@click.option(
    "--platform", "platform_name", default=None, help="kvm or systrap (default: the global --platform)."
)
@click.option("--root-dir", default="/", show_default=True, help="Directory to use as the sandbox root.")
@click.option("--hostname", default="kvmsandbox", show_default=True, help="The sandbox's UTS hostname.")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def do_command(
    ctx: click.Context, platform_name: str | None, root_dir: str, hostname: str, command: tuple
) -> None:
    """Run COMMAND [ARGS]... in a sandbox and exit with its status."""
    from kvmsandbox.platform import PlatformError
    from sentry.sandbox import Sandbox

    if platform_name is None and ctx.obj is not None:
        platform_name = getattr(ctx.obj, "platform", None)
    env = [f"{k}={v}" for k, v in os.environ.items()]
    root = os.path.abspath(root_dir)
    # As runsc do: the working directory is the caller's, when the sandbox root has it. Paths
    # under the sandbox's own mounts (its /tmp is a fresh tmpfs) are not the caller's: use /.
    here = os.getcwd()
    cwd = "/" + os.path.relpath(here, root) if root == "/" or here.startswith(root + "/") else "/"
    if os.path.normpath(cwd).split("/")[1] in SANDBOX_OWN_MOUNTS:
        cwd = "/"
    sys.stdout.flush()
    overlay2 = getattr(ctx.obj, "overlay2", "root:memory") if ctx.obj is not None else "root:memory"
    trace = pod_init.connect(ctx.obj)
    network = str(getattr(ctx.obj, "network", "none")) if ctx.obj is not None else "none"
    container_id = f"kvmsandbox-{random.randrange(1_000_000):06d}"  # as runsc do names its container
    try:
        sandbox = Sandbox(
            platform_name,
            root,
            hostname=hostname,
            overlay2=overlay2,
            container_id=container_id,
            trace=trace,
            network=network,
        )
    except (PlatformError, OSError) as e:
        raise click.ClickException(f"cannot start the sandbox: {e}") from None
    try:
        _confine(network)
        with _forwarding_signals(sandbox):
            code = sandbox.run(list(command), env, cwd=os.path.normpath(cwd))
    finally:
        sandbox.close()
    ctx.exit(code)
