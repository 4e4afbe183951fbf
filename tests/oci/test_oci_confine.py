"""The sandbox process's and the gofer's confinement, each step tried in a forked child."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import socket
import termios
import threading
import time

import pytest

from bootstrap import code_root, confine, host_filter


def _status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f.read().splitlines())}


@pytest.mark.parametrize(("network", "eff"), [("none", "0000000000000000"), ("host", "0000000000000400")])
def test_drop_privileges(network: str, eff: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            confine.drop_privileges(confine.capabilities_for(network))
            s = _status()
            os.write(w, f"{s['CapEff']} {s['CapPrm']} {s['CapBnd']} {s['NoNewPrivs']}".encode())
        finally:
            os._exit(0)
    os.close(w)
    result = os.read(r, 200).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    assert result == [eff, eff, eff, "1"]


def _in_child(body) -> list[str]:
    """Run body() in a forked child (it may change the child beyond repair); its returned words."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = "error"
        try:
            out = " ".join(body())
        finally:
            os.write(w, out.encode())
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        result = f.read().decode().split()
    os.waitpid(pid, 0)
    return result


def _errno_of(call) -> str:
    try:
        call()
    except OSError as e:
        return errno.errorcode[e.errno]
    return "ok"


_libc = ctypes.CDLL(None, use_errno=True)


def _libc_call(name: str, *args):
    def call():
        if getattr(_libc, name)(*args) != 0:
            raise OSError(ctypes.get_errno(), name)

    return call


def test_sentry_filter_refuses_what_it_does_not_list_and_allows_the_rest() -> None:
    """Each refused call would succeed (or fail otherwise) for this root process without the filter."""
    if os.geteuid() != 0:
        pytest.skip("needs root")

    def body() -> list[str]:
        host_filter.install(host_filter.SENTRY)
        out = [
            _errno_of(_libc_call("unshare", 0x00020000)),  # CLONE_NEWNS
            _errno_of(_libc_call("mount", b"none", b"/mnt", b"tmpfs", 0, None)),
            _errno_of(_libc_call("ptrace", 0, 0, 0, 0)),  # PTRACE_TRACEME
            _errno_of(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)),
            _errno_of(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
            _errno_of(lambda: fcntl.ioctl(0, termios.TIOCSTI, b"x")),
        ]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM):
            pass
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join()
        child = os.posix_spawn("/bin/true", ["true"], {})
        out.append(str(os.waitpid(child, 0)[1]))
        return out

    assert _in_child(body) == ["EPERM"] * 6 + ["0"]


def test_gofer_filter_allows_file_calls_but_no_exec_or_sockets(tmp_path) -> None:
    (tmp_path / "f").write_text("hello")

    def body() -> list[str]:
        root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
        host_filter.install(host_filter.GOFER)
        fd = os.open("f", os.O_RDONLY, dir_fd=root)
        os.mkdir("d", dir_fd=root)
        return [
            os.read(fd, 5).decode(),
            _errno_of(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)),
            _errno_of(lambda: os.posix_spawn("/bin/true", ["true"], {})),
        ]

    assert _in_child(body) == ["hello", "EPERM", "EPERM"]
    assert (tmp_path / "d").is_dir()


def test_code_root_holds_only_code_read_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    directories = code_root.code_directories()
    assert os.path.dirname(confine.__file__) in directories
    assert "/etc" not in directories and "/" not in directories

    def body() -> list[str]:
        code_root.enter(directories, own_namespace=False)
        import xml.dom.minidom  # noqa: F401  (a lazy import still works)

        return [
            _errno_of(lambda: open("/etc/passwd").close()),
            _errno_of(lambda: os.listdir("/proc")),
            _errno_of(lambda: open(os.path.join(os.path.dirname(confine.__file__), "new"), "w").close()),
            _errno_of(lambda: os.mkdir("/new")),
        ]

    assert _in_child(body) == ["ENOENT", "ENOENT", "EROFS", "EROFS"]


def test_a_wait_resumed_after_a_stop_is_restarted_under_the_filter() -> None:
    """A stopped and continued task resumes a timed wait through restart_syscall, which the filter
    must allow: refused, glibc aborts ("The futex facility returned an unexpected error code")."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = b"error"
        try:
            host_filter.install(host_filter.SENTRY)
            os.write(w, b"r")
            threading.Event().wait(0.6)  # futex with a timeout
            time.sleep(0.3)  # clock_nanosleep
            out = b"ok"
        finally:
            os.write(w, out)
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"r"
    for _ in range(2):
        time.sleep(0.15)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.05)
        os.kill(pid, signal.SIGCONT)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"ok"
    os.waitpid(pid, 0)
