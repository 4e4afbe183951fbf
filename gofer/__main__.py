"""Gofer process entry point: `python -m gofer --root DIR --sock-fd N`."""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys

from bootstrap import capabilities, host_filter
from bootstrap.confine import drop_privileges
from gofer.server import serve

KEPT_CAPABILITIES = frozenset(capabilities.numbers(capabilities.GOFER_FILE_CAPABILITIES))


def confine(root: str) -> int:
    """Open the root, then shed what the gofer does not need; returns the root fd.

    With CAP_SYS_CHROOT (as root, or ambient in a user namespace where it is
    unmapped) the process chroots into the tree so that even a bug in the walk
    code cannot name a host path; otherwise it at least leaves its cwd at '/'
    so no relative host path means anything. Then it keeps only the file
    capabilities (not CAP_SYS_CHROOT: no escaping the chroot) and runs under
    its own syscall allowlist (bootstrap.host_filter): no exec, no new
    sockets, no mounts, no namespaces.
    """
    try:
        os.chroot(root)
        root = "/"
        privileged = True
    except PermissionError:
        privileged = False
    os.chdir("/")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if privileged:
        drop_privileges(KEPT_CAPABILITIES)
    host_filter.install(host_filter.GOFER)
    return fd


def main() -> None:
    parser = argparse.ArgumentParser(prog="gofer")
    parser.add_argument("--root", required=True)
    parser.add_argument("--sock-fd", type=int, required=True)
    parser.add_argument("--writable", action="store_true", help="serve writes (--overlay2=none)")
    args = parser.parse_args()
    sock = socket.socket(fileno=args.sock_fd)
    # Whatever else was inherited is not ours to use.
    os.closerange(3, args.sock_fd)
    os.closerange(args.sock_fd + 1, os.sysconf("SC_OPEN_MAX"))
    # Every node the Sentry walks holds an O_PATH fd here.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Modes the Sentry asks for are the modes host files get.
    os.umask(0)
    serve(sock, confine(args.root), writable=args.writable)
    # The Sentry closed its end: nothing is left to tear down, and the sandbox process waits for
    # our exit at its own shutdown, so skip the interpreter's finalization (~10 ms).
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
