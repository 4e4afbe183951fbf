"""Terminals for process.terminal: a host pty whose master goes to `--console-socket`.

runc's contract, which the shim relies on: connect to the console socket
(SOCK_STREAM), send one message carrying the pty master as SCM_RIGHTS, close.
The shim then copies between the master and the user; the slave becomes the
process's stdio, and the Sentry shows it to the app as its terminal.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios

from bootstrap import unixsock
from bootstrap.errors import OCIError


def open_pty(size: tuple[int, int] | None = None) -> tuple[int, int]:
    """A new (master, slave) pair, the slave sized (rows, cols) when given."""
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    os.set_inheritable(slave, False)
    if size and all(size):
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    return master, slave


def send_master(console_socket: str, master: int) -> None:
    """Hand the pty master to whoever listens on `console_socket`."""
    try:
        sock = unixsock.connect(console_socket, socket.SOCK_STREAM)
    except OSError as e:
        raise OCIError(f"--console-socket {console_socket}: {e.strerror}") from None
    with sock:
        unixsock.send(sock, b"/dev/ptmx", [master])


def stdio_for(
    terminal: bool, console_socket: str | None, size: tuple[int, int] | None
) -> tuple[int, int, int]:
    """The three fds a new process gets: ours (0, 1, 2), or a pts slave sent off as a pty."""
    if not terminal:
        if console_socket:
            raise OCIError("--console-socket given but process.terminal is false")
        return (0, 1, 2)
    if not console_socket:
        if os.isatty(0):  # `run` from a terminal: the process shares ours
            return (0, 1, 2)
        raise OCIError("process.terminal is true but no --console-socket was given")
    master, slave = open_pty(size)
    try:
        send_master(console_socket, master)
    finally:
        os.close(master)
    return (slave, slave, slave)
