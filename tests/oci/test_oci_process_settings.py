"""The spec's process settings seen by the app: rlimits, oomScoreAdj and ambient capabilities.

Real `kvmsandbox run` of a bundle whose root holds the host's static busybox, on every usable platform.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from bootstrap.default_spec import default_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "net"))
from sandbox_fixtures import platform_name  # noqa: E402

__all__ = ["platform_name"]
BUSYBOX = "/bin/busybox"
pytestmark = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs the host's static busybox")


def _bundle(tmp_path, args: list[str], **process: object) -> str:
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, bundle / "rootfs" / "bin" / "busybox")
    config = default_spec(args)
    config["process"].update(process)
    (bundle / "config.json").write_text(json.dumps(config))
    return str(bundle)


def _cli(platform: str, tmp_path, *args: str, output=subprocess.PIPE) -> subprocess.CompletedProcess:
    """The CLI's result; `output`: where its stdout and stderr go (a file for a command whose sandbox
    keeps them open after it exits)."""
    cmd = [sys.executable, "-m", "cli.main", "--root", str(tmp_path / "state"), f"--platform={platform}"]
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run(
        [*cmd, *args], env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output, text=True, timeout=120
    )


def _run(platform: str, tmp_path, script: str, **process: object) -> subprocess.CompletedProcess:
    bundle = _bundle(tmp_path, ["/bin/busybox", "sh", "-c", script], **process)
    return _cli(platform, tmp_path, "run", "--bundle", bundle, "c1")


def test_rlimits_are_the_containers_initial_limits(platform_name, tmp_path) -> None:
    rlimits = [
        {"type": "RLIMIT_NOFILE", "soft": 3000, "hard": 4000},
        {"type": "RLIMIT_STACK", "soft": 4 << 20, "hard": 16 << 20},
        {"type": "RLIMIT_CPU", "soft": 60, "hard": 120},
    ]
    # 2000 open fds need the raised NOFILE (the default is 1024); lowering the soft limit then stops it.
    script = (
        "ulimit -n; ulimit -Hn; ulimit -s; ulimit -t; grep -E 'open files|stack|cpu time' /proc/self/limits;"
        'i=3; while [ $i -lt 2000 ]; do eval "exec $i</dev/null"; i=$((i+1)); done; echo opened $i;'
        "ulimit -n 100; (exec 150</dev/null) 2>/dev/null || echo refused"
    )
    r = _run(platform_name, tmp_path, script, rlimits=rlimits)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:4] == ["3000", "4000", "4096", "60"]
    assert [line.split()[-3:-1] for line in lines[4:7]] == [
        ["60", "120"],
        ["4194304", "16777216"],
        ["3000", "4000"],
    ]
    assert lines[7:] == ["opened 2000", "refused"]


def test_oom_score_adj_is_set_and_follows_linuxs_write_rules(platform_name, tmp_path) -> None:
    script = (
        "cat /proc/self/oom_score_adj /proc/self/oom_adj /proc/self/oom_score;"
        "echo 700 > /proc/self/oom_score_adj && cat /proc/self/oom_score_adj;"
        "echo 400 > /proc/self/oom_score_adj || echo below-floor;"  # 500 was set with privilege
        "echo 1001 > /proc/self/oom_score_adj || echo out-of-range;"
        "echo 15 > /proc/self/oom_adj && cat /proc/self/oom_score_adj;"
        "echo 0x10 > /proc/self/oom_adj || echo bad-adj"
    )
    r = _run(platform_name, tmp_path, script, oomScoreAdj=500, user={"uid": 1000, "gid": 1000})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "500",
        "8",
        "1000",
        "700",
        "below-floor",
        "out-of-range",
        "1000",
        "bad-adj",
    ]


def test_ambient_capabilities_reach_a_non_root_app(platform_name, tmp_path) -> None:
    kept = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    caps = {"bounding": [*kept, "CAP_CHOWN"], "effective": kept, "permitted": kept, "inheritable": kept}
    script = "grep Cap /proc/self/status"
    r = _run(
        platform_name,
        tmp_path,
        script,
        user={"uid": 1000, "gid": 1000},
        capabilities={**caps, "ambient": ["CAP_NET_BIND_SERVICE"]},
    )
    assert r.returncode == 0, r.stderr
    status = dict(line.split(":\t") for line in r.stdout.splitlines())
    nbs, kill = 1 << 10, 1 << 5
    assert {k: int(v, 16) for k, v in status.items()} == {
        "CapInh": nbs | kill,
        "CapPrm": nbs,  # a non-root exec keeps only the ambient set
        "CapEff": nbs,
        "CapBnd": nbs | kill | 1,
        "CapAmb": nbs,
    }


@pytest.mark.parametrize(("no_new_privileges", "permitted"), [(False, 0b100001), (True, 0b100000)])
def test_no_new_privileges_keeps_roots_exec_within_its_permitted_set(
    platform_name, tmp_path, no_new_privileges: bool, permitted: int
) -> None:
    caps = {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
    r = _run(
        platform_name,
        tmp_path,
        "grep -E 'CapPrm|NoNewPrivs' /proc/self/status",
        capabilities=caps,
        noNewPrivileges=no_new_privileges,
    )
    assert r.returncode == 0, r.stderr
    status = dict(line.split(":\t") for line in r.stdout.splitlines())
    # Root's exec gains the bounding set (as under runc) unless no_new_privs forbids gaining anything.
    assert (int(status["CapPrm"], 16), status["NoNewPrivs"]) == (permitted, str(int(no_new_privileges)))


def test_user_umask_is_the_processs_umask(platform_name, tmp_path) -> None:
    script = "umask; /bin/busybox touch /tmp/f && /bin/busybox stat -c %a /tmp/f"
    r = _run(platform_name, tmp_path, script, user={"uid": 0, "gid": 0, "umask": 0o027})
    assert (r.returncode, r.stdout.split()) == (0, ["0027", "640"]), r.stderr


def test_exec_gets_the_containers_limits_and_capabilities(platform_name, tmp_path) -> None:
    process = {
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}],
        "oomScoreAdj": 123,
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
    }
    bundle = _bundle(tmp_path, ["/bin/busybox", "sleep", "60"], **process)
    with open(tmp_path / "container.out", "w") as out:
        created = _cli(platform_name, tmp_path, "create", "--bundle", bundle, "c1", output=out)
    assert created.returncode == 0, (tmp_path / "container.out").read_text()
    try:
        assert _cli(platform_name, tmp_path, "start", "c1").returncode == 0
        script = "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; grep CapEff /proc/self/status"
        r = _cli(platform_name, tmp_path, "exec", "c1", "/bin/busybox", "sh", "-c", script)
        assert (r.returncode, r.stdout.splitlines()) == (
            0,
            ["321", "654", "123", "CapEff:\t0000000000000020"],
        ), r.stderr
    finally:
        _cli(platform_name, tmp_path, "delete", "--force", "c1")
