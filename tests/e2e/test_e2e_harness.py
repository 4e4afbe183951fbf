"""The daemons of conftest.py drive runc (proving the harness) and kvmsandbox (as far as the Sentry goes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

pytestmark = pytest.mark.slow


def ctr_run(containerd, rootfs: str, binary: str, cid: str, *cmd: str):  # type: ignore[no-untyped-def]
    return containerd.ctr(
        "run",
        "--rm",
        "--runc-binary",
        binary,
        "--env",
        "PATH=/bin",
        "--rootfs",
        rootfs,
        cid,
        *cmd,
        check=False,
    )


@pytest.mark.parametrize("runtime", ["runc", "kvmsandbox"])
def test_ctr_run_output_and_exit_codes(containerd, rootfs, runtime_binary, runtime: str) -> None:
    binary = shutil.which("runc") if runtime == "runc" else runtime_binary
    result = ctr_run(containerd, rootfs, binary, f"{runtime}-echo", "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr
    result = ctr_run(containerd, rootfs, binary, f"{runtime}-exit", "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr


@pytest.mark.parametrize("runtime", ["runc", "kvmsandbox"])
def test_ctr_task_ps_and_kill(containerd, rootfs, runtime_binary, runtime: str) -> None:
    """`ctr run` in the foreground; `ctr task ps` sees it, `ctr task exec` runs beside it, `ctr task kill -s
    SIGKILL` ends it with 137."""
    binary = shutil.which("runc") if runtime == "runc" else runtime_binary
    cid = f"{runtime}-task"
    run = [
        "run",
        "--rm",
        "--runc-binary",
        binary,
        "--env",
        "PATH=/bin",
        "--rootfs",
        rootfs,
        cid,
        "sleep",
        "100",
    ]
    fg = subprocess.Popen(["ctr", "--address", containerd.address, "--namespace", containerd.namespace, *run])
    try:
        for _ in range(200):
            if any(
                line.split()[::2] == [cid, "RUNNING"]
                for line in containerd.ctr("task", "ls").stdout.splitlines()
            ):
                break
            time.sleep(0.05)
        pids = containerd.ctr("task", "ps", cid).stdout.split()
        assert pids[:2] == ["PID", "INFO"] and len(pids) == 4
        with open(f"/proc/{pids[2]}/cmdline", "rb") as f:  # a host process carrying the app's command line
            assert f.read() == b"sleep\x00100\x00"
        assert containerd.ctr("task", "exec", "--exec-id", "e1", cid, "echo", "exec hi").stdout == "exec hi\n"
        containerd.ctr("task", "kill", "--signal", "SIGKILL", cid)
        assert fg.wait(30) == 137
    finally:
        fg.kill()
        fg.wait()


def test_docker_run_with_runc(dockerd) -> None:
    result = dockerd.docker("run", "--rm", "--runtime=runc", "bb", "echo", "hi")
    assert result.stdout == "hi\n"
    assert dockerd.docker("run", "--rm", "bb", "sh", "-c", "exit 3", check=False).returncode == 3


def test_install_registers_the_runtime_with_dockerd(dockerd, runtime_binary) -> None:
    from click.testing import CliRunner

    from cli.main import main

    args = [
        "install",
        "--config-file",
        dockerd.config_file,
        "--runtime",
        "kvmsandbox",
        "--path",
        runtime_binary,
    ]
    result = CliRunner().invoke(main, [*args, "--", "--platform=systrap"])
    assert result.exit_code == 0, result.output
    dockerd.reload()
    info = json.loads(dockerd.docker("info", "--format", "{{json .Runtimes}}").stdout)
    assert "kvmsandbox" in info


def test_docker_run_with_kvmsandbox(dockerd, runtime_binary) -> None:
    test_install_registers_the_runtime_with_dockerd(dockerd, runtime_binary)
    result = dockerd.docker("run", "--rm", "--runtime=kvmsandbox", "bb", "echo", "hi", check=False)
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr
    result = dockerd.docker("run", "--rm", "--runtime=kvmsandbox", "bb", "sh", "-c", "exit 3", check=False)
    assert result.returncode == 3, result.stderr
