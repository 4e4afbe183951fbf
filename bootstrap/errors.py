"""Errors the OCI commands report to their caller.

Docker and containerd show a runtime's stderr (and the JSON lines in `--log`)
to the user, so every failure the user can fix is an `OCIError` whose message
says what is wrong; anything else escaping a command is a bug.
"""

from __future__ import annotations


class OCIError(Exception):
    """A failure to report as one line on stderr and in `--log`, exiting non-zero."""


class StartError(OCIError):
    """The root process could not be started; the container exits with `exit_code` (127: not found)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SpecError(OCIError):
    """A malformed bundle or config.json; `field` is the JSON path of the offending value."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
