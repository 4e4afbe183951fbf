"""The console: terminal ioctls reach the host tty (a pty here); job-control ioctls use the session."""

from __future__ import annotations

import errno
import os
import pty
import struct
import termios
from types import SimpleNamespace

import pytest
from vfs_fake_task import BASE, FakeKernel, FakeMM, FakeTask

import gofer
from sentry.errors import Errno
from sentry.vfs.boot import initial_fs_context, make_vfs
from sentry.vfs.fdtable import FDTable
from sentry.vfs.fs.anon import HOSTFS
from sentry.vfs.fs.host import HostInode


@pytest.fixture
def console():
    master, slave = pty.openpty()
    inode = HostInode(slave)
    file = inode.open(None, HOSTFS.location(inode, b"console"), os.O_RDWR)
    session = SimpleNamespace(sid=1, foreground_pgid=1)
    group = SimpleNamespace(session=session)
    task = SimpleNamespace(
        mm=FakeMM(),
        tg=SimpleNamespace(session=session),
        kernel=SimpleNamespace(process_group=lambda pgid: group if pgid == 5 else None),
    )
    yield file, task, master, session
    file.decref()
    os.close(master)
    os.close(slave)


def test_termios_and_winsize(console):
    file, task, master, _ = console
    termios.tcsetwinsize(master, (24, 80))
    assert file.ioctl(task, termios.TIOCGWINSZ, BASE) == 0
    assert struct.unpack("<HHHH", task.mm.copy_in(BASE, 8))[:2] == (24, 80)
    assert file.ioctl(task, termios.TCGETS, BASE) == 0
    raw = bytearray(task.mm.copy_in(BASE, 36))
    lflag = struct.unpack_from("<I", raw, 12)[0]
    struct.pack_into("<I", raw, 12, lflag & ~termios.ECHO)
    task.mm.copy_out(BASE, bytes(raw))
    assert file.ioctl(task, termios.TCSETS, BASE) == 0
    assert not termios.tcgetattr(master)[3] & termios.ECHO


def test_job_control(console):
    file, task, _, session = console
    task.mm.copy_out(BASE, struct.pack("<i", 5))
    assert file.ioctl(task, termios.TIOCSPGRP, BASE) == 0 and session.foreground_pgid == 5
    assert file.ioctl(task, termios.TIOCGPGRP, BASE + 8) == 0
    assert struct.unpack("<i", task.mm.copy_in(BASE + 8, 4)) == (5,)
    task.mm.copy_out(BASE, struct.pack("<i", 9))
    with pytest.raises(Errno) as e:
        file.ioctl(task, termios.TIOCSPGRP, BASE)
    assert e.value.code == errno.EPERM
    with pytest.raises(Errno) as e:
        file.ioctl(task, 0x1234, BASE)
    assert e.value.code == errno.ENOTTY


def test_a_tty_stdio_is_dev_console(rootfs):

    master, slave = pty.openpty()
    proc, client = gofer.start(str(rootfs))
    try:
        vfs = make_vfs(str(rootfs), client, stdio_fds=(slave, slave, slave))
        task = FakeTask(
            FakeKernel(vfs), 1, FDTable.from_host_stdio(vfs, (slave,) * 3), initial_fs_context(vfs)
        )
        console = vfs.resolve(task, vfs.root, b"/dev/console")
        assert task.fds.get(0).loc == console and task.fds.get(0).stat() == console.inode.stat()
        assert task.fds.get(1).path == "/dev/console"
        assert task.fds.get(1).write(task, b"hi") == 2
        assert os.read(master, 2) == b"hi"
        tty = vfs.open(task, vfs.root, b"/dev/tty", os.O_RDWR, 0)
        assert tty.ioctl(task, termios.TIOCGWINSZ, BASE) == 0
        task.fds.close_all()
        tty.decref()
    finally:
        client.shutdown()
        proc.wait(timeout=10)
        os.close(master)
        os.close(slave)
