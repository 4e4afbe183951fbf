"""`exec --detach`: a host process that stands for a process exec'd in the sandbox.

The shim waits on the pid it finds in exec's `--pid-file` to learn the exit
code, as with runc, whose exec'd process is a real host child. Our exec'd
process lives in the Sentry, so a small proxy holds the control connection,
waits there, and exits with that process's exit code (137 if the sandbox
itself went away). Its fds 0, 1, 2 are the process's stdio.

    python -m bootstrap.exec_proxy CONTROL_SOCKET PROCESS_JSON READY_FD
"""

from __future__ import annotations

import json
import os
import signal
import sys

from bootstrap.control import ControlClient
from bootstrap.errors import OCIError


def run(control_path: str, process: dict, ready_fd: int) -> int:
    """Exec, report `{"ok": .., "pid": ..}` on ready_fd, wait; returns the exit code."""
    with os.fdopen(ready_fd, "w") as ready:
        try:
            client = ControlClient(control_path)
            pid = client.exec(process, (0, 1, 2))
        except OCIError as e:
            ready.write(json.dumps({"ok": False, "error": str(e)}))
            return 1
        ready.write(json.dumps({"ok": True, "pid": pid}))
    # Our stdio now belongs to the process in the sandbox; keep none of it alive here.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        return client.wait(pid)
    except OCIError:
        return 128 + signal.SIGKILL


def main() -> None:
    ready_fd = int(sys.argv[3])
    os.set_inheritable(ready_fd, False)
    os._exit(run(sys.argv[1], json.loads(sys.argv[2]), ready_fd))


if __name__ == "__main__":
    main()
