"""Errors a syscall handler raises: `raise Errno(errno.EBADF)`.

The dispatcher turns an Errno into `-errno` in rax. The restart codes are
Linux's kernel-internal values: a blocking handler interrupted by a signal
raises `Errno(ERESTARTSYS)` and the signal-delivery code decides, as Linux
does, whether the app sees EINTR or the syscall is restarted.
"""

from __future__ import annotations

import errno as _errno

ERESTARTSYS = 512  # restart if the handler has SA_RESTART (or no handler runs), else EINTR
ERESTARTNOINTR = 513  # always restart
ERESTARTNOHAND = 514  # restart only if no handler runs, else EINTR
ERESTART_RESTARTBLOCK = 516  # like ERESTARTNOHAND (nanosleep and friends)

RESTART_CODES = frozenset({ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK})


class Errno(Exception):
    """A syscall failure carrying a Linux errno (or a restart code above)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code, message or _errno.errorcode.get(code, str(code)))
        self.code = code

    def __repr__(self) -> str:
        return f"Errno({_errno.errorcode.get(self.code, self.code)})"
