"""The daemons of conftest.py drive runc (proving the harness) and kvmsandbox (as far as the Sentry goes)."""

from __future__ import annotations

import json
import shutil

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
