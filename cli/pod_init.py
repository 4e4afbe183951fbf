"""The global `--pod-init-config` flag, read by the commands that boot a sandbox (`do`, `create`).

As in runsc, the session's remote sinks are connected here, in the trusted
CLI, before the sandbox boots; the Sentry only gets the connected fds. A
monitor that cannot be reached is a clear error that stops the sandbox from
starting, unless that sink's `ignore_setup_error` is set.
"""

from __future__ import annotations

import click

from sentry.seccheck.config import ConfigError
from sentry.seccheck.session import PodInitSession, pod_init_session
from sentry.seccheck.sinks.remote import SinkSetupError


def connect(obj: object) -> PodInitSession | None:
    """The session named by the global flags in `obj` (click's ctx.obj), sinks connected; None if none."""
    path = getattr(obj, "pod_init_config", None)
    if not path:
        return None
    try:
        return pod_init_session(path)
    except ConfigError as e:
        raise click.ClickException(f"--pod-init-config: {e}") from None
    except SinkSetupError as e:
        raise click.ClickException(
            f"--pod-init-config: {e} (set the sink's ignore_setup_error to start without it)"
        ) from None
