"""The writable root end to end, on both platforms: busybox over the overlay (changes stay in the sandbox,
seen by later processes), --overlay2=none (changes reach the host), and Debian's own tools when the
Debian root exists (ls -la, cp -a, mv, stat, df, tar, dmesg)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUSYBOX = "/bin/busybox"

pytestmark = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs the host's static busybox")


def test_overlay_changes_are_seen_by_later_processes_not_the_host(sandbox_run):
    marker = "/kvmsandbox-overlay-test"
    script = (
        f"echo one > {marker} && echo two >> {marker} && {BUSYBOX} sh -c 'cat {marker}' && "
        f"mkdir -p /usr/kvmsb/sub && mv {marker} /usr/kvmsb/sub/ && cat /usr/kvmsb/sub/*test && "
        "rm -r /usr/kvmsb && ls /usr/kvmsb; chmod 600 /etc/hostname && stat -c %a /etc/hostname"
    )
    r = sandbox_run([BUSYBOX, "sh", "-c", script])
    assert r.out.splitlines()[:4] == ["one", "two", "one", "two"], r.err
    assert r.out.splitlines()[-1] == "600" and "No such file" in r.err
    assert not os.path.exists(marker) and not os.path.exists("/usr/kvmsb")
    assert os.stat("/etc/hostname").st_mode & 0o777 != 0o600


def _do(platform: str, root: Path, script: str, *flags: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "cli.main", *flags, "do", f"--platform={platform}", f"--root-dir={root}"]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "LANG": "C"}
    return subprocess.run([*cmd, "--", "/bin/sh", "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env=env)  # fmt: skip


def test_overlay2_none_writes_through_to_the_host(platform_name, tmp_path):
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    os.symlink("busybox", root / "bin" / "sh")
    (root / "etc").mkdir()
    (root / "etc" / "old").write_text("old\n")
    script = (
        "echo new > /etc/new; mkdir /d; /bin/busybox mv /etc/old /d/; /bin/busybox ln -s new /etc/ln; echo ok"
    )
    r = _do(platform_name, root, script, "--overlay2=none")
    assert r.stdout == "ok\n", r.stderr
    assert (root / "etc" / "new").read_text() == "new\n"
    assert (root / "d" / "old").read_text() == "old\n" and not (root / "etc" / "old").exists()
    assert os.readlink(root / "etc" / "ln") == "new"
    r = _do(platform_name, root, "echo gone > /etc/new; /bin/busybox rm /d/old; echo ok")
    assert r.stdout == "ok\n", r.stderr
    assert (root / "etc" / "new").read_text() == "new\n" and (root / "d" / "old").exists()


def test_debian_tools_on_the_overlay_root(debian_do):
    script = (
        "ls -la / | head -3 && cp -a /etc /etc2 && mv /etc2 /etc3 && stat -c '%F %a' /etc3/passwd && "
        "df / | tail -1 && tar cf - /etc 2>/dev/null | tar tf - | grep -c passwd && dmesg | head -1 && "
        "test ! -e /etc2 && touch /newfile && sh -c 'ls /newfile'"
    )
    r = debian_do(["/bin/sh", "-c", script])
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "regular file 644" in out and "overlay" in out and "/newfile" in out
    assert "kvmsandbox" in out.lower()
