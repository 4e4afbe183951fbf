"""The syscall hot path: table lookup, trace points, call, errno/restart translation into rax.

The seccheck tables are bound once here and updated in place by a session,
so with no session a syscall pays two list indexes and two `is None` tests
(measured in bench/trace_overhead.py: lost in the noise of a ~14 us syscall).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from typing import TYPE_CHECKING

from sentry.errors import RESTART_CODES, Errno
from sentry.seccheck.hooks import SYSCALL_ENTER, SYSCALL_EXIT
from sentry.syscalls import table

if TYPE_CHECKING:
    from sentry.kernel.task import Task

log = logging.getLogger(__name__)
MASK64 = (1 << 64) - 1
STRACE = bool(os.environ.get("KVMSANDBOX_STRACE"))
_NAMES = {row.nr: row.name for row in table.rows()}
_TABLE = table.bind()


def dispatch(task: Task, nr: int, args: tuple[int, ...]) -> None:
    """Run syscall `nr` for `task` and put the result in rax."""
    known = 0 <= nr <= table.MAX_NR
    entry = None
    if known:
        entry = _TABLE[nr]
        on_enter = SYSCALL_ENTER[nr]
        if on_enter is not None:
            on_enter(task, args)
    if entry is None:
        task.kernel.unimplemented[nr] += 1
        ret = -errno.ENOSYS
    else:
        fn, nargs = entry
        try:
            ret = fn(task, *args[:nargs])
        except Errno as e:
            ret = -e.code
            if e.code in RESTART_CODES:
                task.restart = (e.code, nr)
        except Exception:
            log.exception("syscall %s(%s) by task %d raised", _NAMES.get(nr, nr), args, task.tid)
            ret = -errno.EIO
    if known:
        on_exit = SYSCALL_EXIT[nr]
        if on_exit is not None:
            on_exit(task, args, ret)
    if STRACE:
        print(f"[{task.tid}] {_NAMES.get(nr, nr)}{tuple(hex(a) for a in args[:4])} = {ret}", file=sys.stderr)
    task.regs.rax = ret & MASK64
