"""/proc/<pid>/oom_score_adj and the legacy oom_adj, with Linux's rules (fs/proc/base.c), and oom_score.

The Sentry kills nothing for memory pressure, but programs and the OCI spec's
process.oomScoreAdj set the value and read it back, so it is kept per process
(ThreadGroup.oom_score_adj) and inherited on fork.
"""

from __future__ import annotations

import errno
import re

from sentry.errors import Errno
from sentry.kernel.creds import CAP_SYS_RESOURCE
from sentry.vfs.file import SeekableFile
from sentry.vfs.mount import Location

OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX = -1000, 1000
OOM_DISABLE, OOM_ADJUST_MIN, OOM_ADJUST_MAX = -17, -16, 15
PROC_NUMBUF = 13  # Linux reads at most this many bytes less one of a write
# kstrtoint with base 0: a sign, then hex (0x), octal (leading 0) or decimal digits.
_INT_RE = re.compile(rb"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _trunc_div(a: int, b: int) -> int:
    """C's integer division (towards zero), which the kernel's scaling uses."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def read_value(tg, legacy: bool) -> int:
    adj = tg.oom_score_adj
    if not legacy:
        return adj
    if adj == OOM_SCORE_ADJ_MAX:
        return OOM_ADJUST_MAX
    return _trunc_div(adj * -OOM_DISABLE, OOM_SCORE_ADJ_MAX)


def score(tg) -> int:
    """/proc/<pid>/oom_score: Linux's (1000 + badness) * 2/3 scale, badness being the adjustment
    (the memory share, a few points for a sandboxed app, is left out); 0 when OOM-killing is off."""
    if tg.oom_score_adj == OOM_SCORE_ADJ_MIN:
        return 0
    return (1000 + tg.oom_score_adj) * 2 // 3


def _parse(data: bytes) -> int:
    match = _INT_RE.fullmatch(data[: PROC_NUMBUF - 1].strip())
    if match is None:
        raise Errno(errno.EINVAL)
    sign, digits = match.groups()
    base = 16 if digits[1:2] in (b"x", b"X") else 8 if digits.startswith(b"0") else 10
    value = int(digits[2:] if base == 16 else digits, base) * (-1 if sign == b"-" else 1)
    if not -(1 << 31) <= value < 1 << 31:
        raise Errno(errno.ERANGE)
    return value


def write_value(task, tg, data: bytes, legacy: bool) -> None:
    """Apply a write as Linux does: the value, range-checked, may go below the floor only with
    CAP_SYS_RESOURCE (oom_adj: below the current value), which also sets the floor."""
    value = _parse(data)
    privileged = task.creds.has_cap(CAP_SYS_RESOURCE)
    if legacy:
        if not OOM_ADJUST_MIN <= value <= OOM_ADJUST_MAX and value != OOM_DISABLE:
            raise Errno(errno.EINVAL)
        adj = (
            OOM_SCORE_ADJ_MAX
            if value == OOM_ADJUST_MAX
            else _trunc_div(value * OOM_SCORE_ADJ_MAX, -OOM_DISABLE)
        )
        if adj < tg.oom_score_adj and not privileged:
            raise Errno(errno.EACCES)
    else:
        if not OOM_SCORE_ADJ_MIN <= value <= OOM_SCORE_ADJ_MAX:
            raise Errno(errno.EINVAL)
        adj = value
        if adj < tg.oom_score_adj_min and not privileged:
            raise Errno(errno.EACCES)
    tg.oom_score_adj = adj
    if not legacy and privileged:
        tg.oom_score_adj_min = adj


class OomFile(SeekableFile):
    def __init__(self, loc: Location, flags: int, tg, legacy: bool) -> None:
        super().__init__(loc, flags)
        self.tg = tg
        self.legacy = legacy

    def _text(self) -> bytes:
        return b"%d\n" % read_value(self.tg, self.legacy)

    def size(self) -> int:
        return len(self._text())

    def pread(self, task, count: int, offset: int) -> bytes:
        return self._text()[offset : offset + count]

    def pwrite(self, task, data: bytes, offset: int) -> int:
        write_value(task, self.tg, data, self.legacy)
        return min(len(data), PROC_NUMBUF - 1)
