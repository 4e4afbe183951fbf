"""What every OCI command shares: the state store from `--root`, and error reporting.

The shim shows the user a runtime's stderr and the JSON lines in `--log`
(facts/container-clients.md), so an OCIError becomes one line on stderr, one
record in `--log` when given, and exit status 1.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from bootstrap.errors import OCIError
from bootstrap.state import StateStore

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("kvmsandbox")


def store(ctx: click.Context) -> StateStore:
    return StateStore(ctx.find_root().obj.root)


def report_errors(command: F) -> F:
    """Turn an OCIError escaping `command` into the runtime's error report and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OCIError as e:
            _report(str(e))
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as e:  # a bug: still one line for the shim to show, the traceback for --debug-log
            log.debug("internal error", exc_info=True)
            _report(f"internal error: {type(e).__name__}: {e}")

    return wrapper  # type: ignore[return-value]


def _report(message: str) -> None:
    click.echo(f"kvmsandbox: {message}", err=True)
    flags = click.get_current_context().find_root().obj
    if flags is not None and flags.log:
        log.error("%s", message)
    sys.exit(1)
