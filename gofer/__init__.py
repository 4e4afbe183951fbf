"""The gofer: a separate process that is the sandbox's only access to host files.

`start(root_dir)` spawns it for one host directory and returns the process and
a connected client for the Sentry.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

from gofer.client import GoferClient

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(root_dir: str, *, writable: bool = False) -> tuple[subprocess.Popen, GoferClient]:
    """Spawn `python -m gofer` serving root_dir over a fresh SOCK_SEQPACKET pair.

    Read-only unless writable: under the default overlay the host tree is only ever read.
    """
    if not os.path.isdir(root_dir):
        raise NotADirectoryError(errno.ENOTDIR, "gofer root is not a directory", root_dir)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # The child imports this very package, wherever the caller's cwd or sys.path is.
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PACKAGE_PARENT, os.environ.get("PYTHONPATH")]))
    )
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gofer", "--root", root_dir, "--sock-fd", str(theirs.fileno())]
            + (["--writable"] if writable else []),
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            close_fds=True,
            env=env,
        )
    finally:
        theirs.close()
    return proc, GoferClient(ours)
