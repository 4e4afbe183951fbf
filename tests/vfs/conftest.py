"""A real gofer serving a small tree under tmp_path, a VFS on it, and a fake task."""

from __future__ import annotations

import os
import sys

import pytest
from vfs_fake_task import FakeKernel, FakeTask

import gofer
from sentry.vfs.boot import initial_fs_context, make_vfs
from sentry.vfs.fdtable import FDTable


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "bin").mkdir()
    (root / "bin" / "prog").write_bytes(b"\x7fELF" + bytes(100))
    (root / "bin" / "prog").chmod(0o755)
    (root / "data").mkdir()
    (root / "data" / "numbers").write_text("".join(f"{i}\n" for i in range(1000)))
    (root / "abs-link").symlink_to("/etc/passwd")
    (root / "rel-link").symlink_to("etc/../etc/passwd")
    (root / "tmp").mkdir()
    (tmp_path / "secret").write_text("host secret\n")
    return root


@pytest.fixture
def sandbox(rootfs):
    """A fake task over the overlay root, with stdio on a pipe pair of the host."""
    yield from _sandbox(rootfs, overlay=True)


@pytest.fixture
def sandbox_none(rootfs):
    """The same over a writable gofer root (--overlay2=none): changes reach rootfs."""
    yield from _sandbox(rootfs, overlay=False)


def _sandbox(rootfs, overlay: bool):
    proc, client = gofer.start(str(rootfs), writable=not overlay)
    r, w = os.pipe()
    vfs = make_vfs(str(rootfs), client, stdio_fds=(r, w, w), overlay=overlay)
    kernel = FakeKernel(vfs)
    kernel.gofer_proc = proc
    task = FakeTask(kernel, 1, FDTable.from_host_stdio(vfs, (r, w, w)), initial_fs_context(vfs))
    yield task
    task.fds.close_all()
    client.shutdown()
    proc.wait(timeout=10)
    os.close(r)
    os.close(w)


# Real programs on every platform: tests/sentry's runner and tests/net's builder, not copies.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "net"))
from sandbox_fixtures import cprogram, debian_do, debian_root, platform_name, sandbox_run  # noqa: E402

__all__ = ["cprogram", "debian_do", "debian_root", "platform_name", "sandbox_run"]
