"""Debian's python3 (dynamic, debootstrap root) on unix sockets: echo servers, epoll, fd passing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "scripts" / "unix_echo.py"


def test_python_unix_socket_echo(debian_do):
    r = debian_do(["/usr/bin/python3", "-c", SCRIPT.read_text()])
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    assert r.stdout.decode().splitlines() == [
        "client got HELLO",
        "client got HELLO",
        "EpollSelector served 3 exit codes [0, 0, 0]",
        "passed fd read through the passed fd",
        "datagrams ['one', 'two', 'three']",
    ]


BEHAVIOUR = Path(__file__).resolve().parent / "scripts" / "unix_behaviour.py"


def test_python_socket_outcomes_match_linux(debian_do):
    """Dozens of socket/epoll operations and their errnos, line by line as the host's Linux answers them."""
    native = subprocess.run([sys.executable, str(BEHAVIOUR)], capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    r = debian_do(["/usr/bin/python3", "-c", BEHAVIOUR.read_text()])
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    assert r.stdout.decode().splitlines() == native.stdout.splitlines()
