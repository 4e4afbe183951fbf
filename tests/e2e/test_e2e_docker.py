"""Docker on kvmsandbox, per platform: what the issue's acceptance asks of `docker run` and friends.

Each platform is its own runtime in the test dockerd's daemon.json, installed
the way a user would: `kvmsandbox install --runtime NAME -- --platform=P`.
"""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from cli.main import main

pytestmark = pytest.mark.slow

TRAP = (
    'trap "echo got usr1" USR1; trap "echo term; exit 7" TERM; echo started; while true; do sleep 0.1; done'
)


@pytest.fixture(scope="module", params=["kvm", "systrap"])
def runtime(request, dockerd, runtime_binary) -> str:
    name = f"kvmsandbox-{request.param}"
    args = ["install", "--config-file", dockerd.config_file, "--runtime", name, "--path", runtime_binary]
    result = CliRunner().invoke(main, [*args, "--", f"--platform={request.param}"])
    assert result.exit_code == 0, result.output
    dockerd.reload()
    return name


@pytest.fixture
def app(dockerd, runtime):  # type: ignore[no-untyped-def]
    """A detached container running the TERM/USR1 trap loop; removed afterwards."""
    name = f"app-{runtime}-{time.monotonic_ns()}"
    dockerd.docker("run", "-d", "--name", name, f"--runtime={runtime}", "bb", "sh", "-c", TRAP)
    _wait_for_log(dockerd, name, "started")
    yield name
    dockerd.docker("rm", "-f", name, check=False)


def _wait_for_log(dockerd, name: str, text: str, timeout: float = 20) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        logs = dockerd.docker("logs", name).stdout
        if text in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.1)


def test_run_rm_echo(dockerd, runtime) -> None:
    result = dockerd.docker("run", "--rm", f"--runtime={runtime}", "bb", "echo", "hi", check=False)
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr


@pytest.mark.parametrize("code", [0, 3])
def test_exit_codes(dockerd, runtime, code: int) -> None:
    result = dockerd.docker(
        "run", "--rm", f"--runtime={runtime}", "bb", "sh", "-c", f"exit {code}", check=False
    )
    assert result.returncode == code, result.stderr


def test_usr1_is_delivered_and_stop_runs_the_term_trap(dockerd, app) -> None:
    dockerd.docker("kill", "-s", "USR1", app)
    assert "got usr1" in _wait_for_log(dockerd, app, "got usr1")
    assert dockerd.docker("inspect", "--format", "{{.State.Running}}", app).stdout.strip() == "true"
    dockerd.docker("stop", "-t", "10", app)
    assert dockerd.docker("inspect", "--format", "{{.State.ExitCode}}", app).stdout.strip() == "7"
    assert dockerd.docker("logs", app).stdout == "started\ngot usr1\nterm\n"


def test_rm_force_kills(dockerd, runtime) -> None:
    name = f"sleeper-{runtime}"
    dockerd.docker("run", "-d", "--name", name, f"--runtime={runtime}", "bb", "sleep", "100")
    assert dockerd.docker("rm", "-f", name).returncode == 0
    assert name not in dockerd.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_top_lists_the_containers_processes(dockerd, runtime) -> None:
    """`docker top` shows host processes (the sandbox's mirrors) with the app processes' command lines."""
    name = f"top-{runtime}"
    script = "sleep 1000 & wait"
    dockerd.docker("run", "-d", "--name", name, f"--runtime={runtime}", "bb", "sh", "-c", script)
    try:
        deadline = time.monotonic() + 20
        while True:  # until the shell has forked its child
            lines = dockerd.docker("top", name).stdout.splitlines()
            if any(line.endswith(" sleep 1000") for line in lines) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        header = lines[0].split()
        assert header[:2] == ["UID", "PID"] and header[-1] == "CMD"
        rows = {line.split(None, len(header) - 1)[-1]: int(line.split()[1]) for line in lines[1:]}
        assert set(rows) == {f"sh -c {script}", "sleep 1000"}
        for cmd, pid in rows.items():  # each row is a live host process carrying that command line
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert f.read().replace(b"\0", b" ").decode().strip() == cmd
    finally:
        dockerd.docker("rm", "-f", name, check=False)


@pytest.mark.parametrize(
    ("command", "expected"),
    [(["ls", "-la", "/"], "bin -> usr/bin"), (["python3", "-c", "print(1)"], "1\n")],
)
def test_debian_image(dockerd, runtime, debian_image, command: list[str], expected: str) -> None:
    result = dockerd.docker("run", "--rm", f"--runtime={runtime}", debian_image, *command, check=False)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_volume_tmpfs_and_workdir(dockerd, runtime, tmp_path) -> None:
    """-v: the container's writes reach the host directory; --tmpfs; -w sets the cwd."""
    volume = tmp_path / "vol"
    volume.mkdir()
    script = "pwd; echo written > /data/out; ls -d /scratch"
    result = dockerd.docker(
        "run", "--rm", f"--runtime={runtime}", "-v", f"{volume}:/data", "--tmpfs", "/scratch", "-w", "/data",
        "bb", "sh", "-c", script, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "/data\n/scratch\n"), result.stderr
    assert (volume / "out").read_text() == "written\n"


def test_dockers_file_binds(dockerd, runtime) -> None:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf are Docker's files, bound as runc binds them."""
    script = "cat /etc/hostname; grep -cE ' /etc/(hostname|hosts|resolv.conf) ' /proc/self/mountinfo"
    result = dockerd.docker(
        "run", "--rm", f"--runtime={runtime}", "--hostname", "boxname", "bb", "sh", "-c", script, check=False
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "boxname\n3\n"), result.stderr


def test_exec(dockerd, app) -> None:
    assert dockerd.docker("exec", app, "echo", "exec hi").stdout == "exec hi\n"
    assert dockerd.docker("exec", app, "sh", "-c", "exit 5", check=False).returncode == 5


def test_run_tty(dockerd, runtime) -> None:
    script = "[ -t 0 ] && [ -t 1 ] && echo tty"
    result = dockerd.docker(
        "run", "--rm", "-t", f"--runtime={runtime}", "bb", "sh", "-c", script, check=False
    )
    assert result.stdout.strip() == "tty", result.stderr


def test_exec_tty(dockerd, app) -> None:
    result = dockerd.docker("exec", "-t", app, "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo tty", check=False)
    assert result.stdout.strip() == "tty", result.stderr


def test_pause_unpause(dockerd, app) -> None:
    dockerd.docker("pause", app)
    assert dockerd.docker("inspect", "--format", "{{.State.Status}}", app).stdout.strip() == "paused"
    dockerd.docker("unpause", app)
    dockerd.docker("kill", "-s", "USR1", app)
    assert "got usr1" in _wait_for_log(dockerd, app, "got usr1")  # it runs again


def test_memory_limit_is_the_sandboxs_host_cgroup_and_docker_stats_reads_it(dockerd, runtime) -> None:
    """`docker run --memory` puts the whole sandbox in a host cgroup with that limit (as runsc);
    `docker stats` reads its usage there."""
    name = f"limited-{runtime}-{time.monotonic_ns()}"
    dockerd.docker(
        "run", "-d", "--name", name, f"--runtime={runtime}", "--memory", "64m", "bb", "sleep", "100"
    )
    try:
        pid = int(dockerd.docker("inspect", "--format", "{{.State.Pid}}", name).stdout)
        with open(f"/proc/{pid}/cgroup") as f:
            memory = next(line.split(":", 2)[2].strip() for line in f if ":memory:" in line)
        with open(f"/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes") as f:
            assert int(f.read()) == 64 << 20
        usage = dockerd.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", name).stdout.strip()
        used, _, limit = usage.partition(" / ")
        assert limit == "64MiB", usage
        assert used.endswith("MiB") and float(used[:-3]) > 1, usage
    finally:
        dockerd.docker("rm", "-f", name, check=False)
