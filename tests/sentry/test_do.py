"""`kvmsandbox do`: exit status propagation, stdio, and --root-dir."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sentry.conftest import sandbox_visible_build_dir

BUILD = sandbox_visible_build_dir(Path(__file__).resolve().parent)
ROOT = Path(__file__).resolve().parents[2]


def do(platform: str, *argv: str, input: bytes = b"", root: str | None = None, cwd: Path = ROOT):
    cmd = [sys.executable, "-m", "cli.main", "do", f"--platform={platform}"]
    if root:
        cmd.append(f"--root-dir={root}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*cmd, "--", *argv], input=input, capture_output=True, timeout=120, cwd=cwd, env=env
    )


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("exit 7", 7),
        ("busybox sh -c 'kill -TERM $$'; exit $?", 143),  # a child: pid 1 would ignore it
        ("busybox sh -c 'kill -SEGV $$'; exit $?", 139),
        ("kill -TERM $$; echo init ignores it", 0),
        ("true", 0),
    ],
)
def test_exit_status_propagates(platform_name, script, code):
    assert do(platform_name, "/bin/busybox", "sh", "-c", script).returncode == code


def test_stdio_is_connected(platform_name):
    r = do(platform_name, "/bin/busybox", "sh", "-c", "busybox tr a-z A-Z; echo err >&2", input=b"hello\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"HELLO\n", b"err\n")


def test_root_dir_and_writable_tmp(platform_name):
    root = BUILD / "rootfs"
    shutil.rmtree(root, ignore_errors=True)
    (root / "bin").mkdir(parents=True)
    (root / "tmp").mkdir()
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    (root / "marker").write_text("inside\n")
    script = "busybox cat /marker; busybox ls /; echo t > /tmp/f; busybox cat /tmp/f"
    r = do(platform_name, "/bin/busybox", "sh", "-c", script, root=str(root))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split("\n")
    assert lines[0] == "inside" and lines[-2:] == ["t", ""]
    assert {"bin", "marker", "tmp"} <= set(lines[1:-2])
    assert not (root / "tmp" / "f").exists()


def test_missing_command_is_127(platform_name):
    assert do(platform_name, "/no/such/program").returncode == 127


def test_working_directory_is_the_callers(platform_name):
    BUILD.mkdir(parents=True, exist_ok=True)
    r = do(platform_name, "/bin/busybox", "pwd", cwd=BUILD)
    assert (r.returncode, r.stdout) == (0, f"{BUILD}\n".encode())


def test_working_directory_under_the_sandboxs_own_tmp_is_root(platform_name, tmp_path):
    """The sandbox's /tmp is its own tmpfs: a caller sitting in the host's /tmp starts in /."""
    r = do(platform_name, "/bin/busybox", "pwd", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, b"/\n")


def test_signals_to_do_reach_the_command(platform_name):
    cmd = [
        sys.executable,
        "-m",
        "cli.main",
        "do",
        f"--platform={platform_name}",
        "--",
        "/bin/busybox",
        "sleep",
        "30",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
