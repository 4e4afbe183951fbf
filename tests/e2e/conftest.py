"""Real containerd and dockerd, on loopback-only settings, each in its own temp dir.

As facts/container-clients.md measured them: containerd with root, state and
sockets under a temp dir and the CRI plugin off; dockerd with its own
data-root, exec-root, socket, pidfile and daemon.json (so `kvmsandbox
install --config-file` edits that one, never /etc/docker/daemon.json), and
with iptables, the bridge, forwarding and masquerading off. Nothing here
reaches a network address. The tests are `slow` and need root and the
Debian packages docker.io, containerd and runc (install.sh installs them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests"))

from debian_root import debian_root  # noqa: E402  (the cached bookworm root, a session fixture)

__all__ = ["debian_root"]
BUSYBOX = "/bin/busybox"


def _require(*binaries: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        pytest.skip(f"missing {' '.join(missing)} (./install.sh installs them)")


def _wait_for(check, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up in {timeout:g}s")
        time.sleep(0.05)


def _kill_leftovers(marker: str) -> None:
    """SIGKILL processes we caused (shims, sandboxes) that still name our temp dir on their command line."""
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(name), signal.SIGKILL)


def _unmount_under(path: str) -> None:
    """Lazily unmount whatever a daemon left mounted under `path`, deepest first."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def remove_daemon_dir(directory: str) -> None:
    """Kill what still names `directory`, unmount under it, remove it: the end of any daemons run there."""
    _kill_leftovers(directory)
    _unmount_under(directory)
    shutil.rmtree(directory, ignore_errors=True)


def kvmsandbox_wrapper(directory: str, name: str = "kvmsandbox") -> str:
    """An executable that runs this checkout's CLI (a shim or dockerd execs it with their own env)."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m cli.main "$@"\n')
    os.chmod(path, 0o755)
    return path


def busybox_rootfs(directory: str) -> str:
    """A root filesystem of static busybox and its applet links: a 2 MB container image."""
    rootfs = os.path.join(directory, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "sys", "dev", "tmp", "etc", "root"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    return rootfs


class Containerd:
    """A containerd with everything under `directory`, and `ctr` pointed at it."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.address = os.path.join(directory, "containerd.sock")
        # The runc shim keeps runtime state in /run/containerd/runc/<namespace> whatever containerd's
        # own dirs are: a namespace of our own keeps runs apart, and stop() removes it.
        suffix = os.path.basename(os.path.dirname(directory)).rsplit("-", 1)[-1]
        self.namespace = "e2e" + "".join(c for c in suffix if c.isalnum())
        config = os.path.join(directory, "config.toml")
        with open(config, "w") as f:
            f.write(
                "version = 2\n"
                f'root = "{directory}/root"\n'
                f'state = "{directory}/state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{self.address}"\n'
                f'[ttrpc]\n  address = "{self.address}.ttrpc"\n'
                f'[debug]\n  address = "{directory}/debug.sock"\n'
            )
        self.log = open(os.path.join(directory, "containerd.log"), "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(["containerd", "--config", config], stdout=self.log, stderr=self.log)
        _wait_for(lambda: self.ctr("version", check=False).returncode == 0, "containerd")

    def ctr(self, *args: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
        cmd = ["ctr", "--address", self.address, "--namespace", self.namespace, *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout, **kw)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(os.path.join("/run/containerd/runc", self.namespace), ignore_errors=True)


class Dockerd:
    """A dockerd (with the containerd it starts) under `directory`, its own daemon.json and socket."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.host = f"unix://{directory}/docker.sock"
        self.config_file = os.path.join(directory, "daemon.json")
        with open(self.config_file, "w") as f:
            f.write("{}\n")
        self.log = open(os.path.join(directory, "dockerd.log"), "w")  # noqa: SIM115 (closed in stop)
        cmd = [
            "dockerd",
            "--host", self.host,
            "--data-root", os.path.join(directory, "data"),
            "--exec-root", os.path.join(directory, "exec"),
            "--pidfile", os.path.join(directory, "docker.pid"),
            "--config-file", self.config_file,
            "--iptables=false", "--bridge=none", "--ip-forward=false", "--ip-masq=false",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        _wait_for(lambda: self.docker("version", check=False).returncode == 0, "dockerd")

    def docker(
        self, *args: str, check: bool = True, timeout: float = 60, **kw
    ) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
        cmd = ["docker", "--host", self.host, *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout, **kw)

    def reload(self) -> None:
        """Re-read daemon.json (what `systemctl reload docker` does)."""
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def import_image(self, rootfs: str, name: str) -> None:
        tar = subprocess.Popen(["tar", "-C", rootfs, "-cf", "-", "."], stdout=subprocess.PIPE)
        self.docker("import", "-", name, stdin=tar.stdout)
        tar.wait()

    def stop(self) -> None:
        self.docker("ps", "-aq", check=False)
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def e2e_dir() -> Iterator[str]:
    """One short temp dir for all daemons (socket paths must stay short); cleaned up at the end."""
    directory = tempfile.mkdtemp(prefix="kvmsb-e2e-", dir="/tmp")
    yield directory
    remove_daemon_dir(directory)


@pytest.fixture(scope="session")
def rootfs(e2e_dir: str) -> str:
    return busybox_rootfs(os.path.join(e2e_dir))


@pytest.fixture(scope="session")
def runtime_binary(e2e_dir: str) -> str:
    return kvmsandbox_wrapper(e2e_dir)


@pytest.fixture(scope="session")
def containerd(e2e_dir: str) -> Iterator[Containerd]:
    _require("containerd", "ctr", "runc")
    directory = os.path.join(e2e_dir, "cd")
    os.makedirs(directory)
    daemon = Containerd(directory)
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def dockerd(e2e_dir: str, rootfs: str) -> Iterator[Dockerd]:
    _require("dockerd", "docker", "containerd", "runc")
    directory = os.path.join(e2e_dir, "d")
    os.makedirs(directory)
    daemon = Dockerd(directory)
    daemon.import_image(rootfs, "bb:latest")
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def debian_image(dockerd: Dockerd, debian_root: str) -> str:
    """The Debian root (minbase + python3) as the image `deb`."""
    dockerd.import_image(debian_root, "deb:latest")
    return "deb"
