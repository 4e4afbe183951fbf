"""End to end: the static busybox from the host runs in a sandbox over a gofer-served root.

The acceptance lines of issue 4 for files: the text tools over files in the
root, sh pipelines, a program reading /proc/self/maps to find its stack, and
escapes out of the root that must fail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest

BUSYBOX = shutil.which("busybox")

pytestmark = pytest.mark.skipif(
    BUSYBOX is None
    or "statically linked"
    not in subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True).stdout,
    reason="needs a static busybox on the host",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("bb")
    root = base / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"
    )
    (root / "data").mkdir()
    (root / "data" / "fruits").write_text("pear\napple\nfig\nbanana\napple\n")
    (root / "data" / "sub").mkdir()
    (root / "data" / "sub" / "deep.txt").write_text("deep\n")
    (root / "data" / "link").symlink_to("/etc/passwd")
    (root / "escape").symlink_to("../../../../../secret")
    (base / "secret").write_text("host secret\n")
    (root / "data" / "big").write_bytes(os.urandom(8 << 20))
    return root


def run(root, tmp_path, *argv: str) -> tuple[int, str]:
    from kvmsandbox import platform as platforms
    from sentry.sandbox import Sandbox

    out = tmp_path / "out"
    with open(os.devnull, "rb") as stdin, open(out, "wb") as stdout:
        try:
            sandbox = Sandbox(
                platform="systrap",
                root_dir=str(root),
                stdio=(stdin.fileno(), stdout.fileno(), stdout.fileno()),
            )
        except (OSError, platforms.PlatformError) as e:
            pytest.skip(f"systrap unavailable: {e}")
        try:
            code = sandbox.run(["/bin/busybox", *argv])
        finally:
            sandbox.close()
    return code, out.read_text()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["cat", "/data/fruits"], "pear\napple\nfig\nbanana\napple\n"),
        (["ls", "/data"], "big\nfruits\nlink\nsub\n"),
        (["grep", "-n", "apple", "/data/fruits"], "2:apple\n5:apple\n"),
        (["sed", "s/a/A/g", "/data/fruits"], "peAr\nApple\nfig\nbAnAnA\nApple\n"),
        (["awk", "-F:", "{print $3}", "/data/link"], "0\n1000\n"),
        (["sort", "-u", "/data/fruits"], "apple\nbanana\nfig\npear\n"),
        (["wc", "-l", "/data/fruits"], "5 /data/fruits\n"),
        (["find", "/data", "-name", "*.txt"], "/data/sub/deep.txt\n"),
        (["head", "-n", "2", "/data/fruits"], "pear\napple\n"),
        (["tail", "-n", "1", "/etc/passwd"], "user:x:1000:1000::/home/user:/bin/sh\n"),
        (["tr", "a-z", "A-Z"], ""),
        (["cut", "-d:", "-f1", "/etc/passwd"], "root\nuser\n"),
    ],
)
def test_text_tools(root, tmp_path, argv, expected):
    assert run(root, tmp_path, *argv) == (0, expected)


def test_sh_pipeline(root, tmp_path):
    script = "cat /data/fruits | sort | uniq -c | sort -rn | head -n 1 | tr -s ' ' | cut -d' ' -f3"
    assert run(root, tmp_path, "sh", "-c", script) == (0, "apple\n")


def test_sh_redirects_into_tmp(root, tmp_path):
    script = "echo hi > /tmp/x && cat /tmp/x /tmp/x | wc -l && ls -l /tmp/x | cut -c1-10"
    assert run(root, tmp_path, "sh", "-c", script) == (0, "2\n-rw-r--r--\n")


def test_finds_its_stack_in_proc_self_maps(root, tmp_path):
    code, out = run(root, tmp_path, "grep", "-c", r"\[stack\]$", "/proc/self/maps")
    assert (code, out) == (0, "1\n")


def test_cannot_escape_the_root(root, tmp_path):
    code, out = run(root, tmp_path, "sh", "-c", "cat /escape; cat /../secret; cat ../../../secret; ls /")
    assert "host secret" not in out
    assert "escape" in out.splitlines()
    # The root is an overlay: writes work inside and never reach the host.
    code, out = run(root, tmp_path, "sh", "-c", "echo x > /data/new; cat /data/new; rm /escape; ls /escape")
    assert code != 0 and out.startswith("x\n")
    assert not (root / "data" / "new").exists() and (root / "escape").is_symlink()


def test_large_pipeline_loses_nothing(root, tmp_path):
    script = "cat /data/big | cat | wc -c; md5sum < /data/big | cut -c1-32"
    digest = hashlib.md5((root / "data" / "big").read_bytes()).hexdigest()
    assert run(root, tmp_path, "sh", "-c", script) == (0, f"{8 << 20}\n{digest}\n")
