"""linux.readonlyPaths and linux.maskedPaths, made as runc makes them.

A read-only path is bound onto itself read-only. A masked directory gets an
empty read-only tmpfs on it; any other masked file gets the Sentry's /dev/null
bound on it, so reads see nothing and writes vanish. Paths that do not exist
are left alone (the default spec names /proc files a kernel may not have).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from typing import Any

from bootstrap.spec import Linux
from sentry.errors import Errno
from sentry.vfs.fs.tmpfs import TmpFilesystem

log = logging.getLogger("kvmsandbox.sandbox")


def apply(vfs: Any, linux: Linux) -> None:
    """Read-only paths first, then masks, in runc's order."""
    for path in linux.readonly_paths:
        _guarded(vfs, path, _make_readonly, "read-only path")
    for path in linux.masked_paths:
        _guarded(vfs, path, _mask, "masked path")


def _guarded(vfs: Any, path: str, make: Callable[[Any, bytes], None], what: str) -> None:
    try:
        make(vfs, os.fsencode(path))
    except Errno as e:
        if e.code not in (errno.ENOENT, errno.ENOTDIR):
            log.warning("%s %s skipped: %s", what, path, os.strerror(e.code))


def _make_readonly(vfs: Any, path: bytes) -> None:
    loc = vfs.pin_path(path)
    vfs.bind(loc, loc, readonly=True)


def _mask(vfs: Any, path: bytes) -> None:
    loc = vfs.pin_path(path)
    if loc.inode.is_dir():
        fs = TmpFilesystem(0)
        vfs.mount(loc, fs, fs.new_root(), readonly=True, source="tmpfs")
    else:
        vfs.bind(loc, vfs.resolve(None, vfs.root, b"/dev/null"))
