"""procfs: /proc/self, maps (the acceptance check: a program finds its stack), fd links, static files."""

from __future__ import annotations

import errno
import os
import struct

from test_vfs_files import cat, open_
from test_vfs_pipes_poll import pipe

from sentry.kernel.creds import Credentials
from sentry.syscalls import fs as fscalls


def test_self_maps_has_the_stack(sandbox):
    maps = cat(sandbox, b"/proc/self/maps").decode()
    assert any(line.endswith("[stack]") for line in maps.splitlines())


def test_self_is_the_callers_pid(sandbox):
    task = sandbox
    n = task.call(fscalls.sys_readlink, task.path(b"/proc/self"), 0x11000, 100)
    assert task.get(0x11000, n) == b"1"
    assert cat(task, b"/proc/1/cmdline") == b"busybox\0sh\0"
    assert cat(task, b"/proc/self/comm") == b"busybox\n"
    assert b"Pid:\t1\n" in cat(task, b"/proc/self/status")
    assert cat(task, b"/proc/self/stat").startswith(b"1 (busybox) R 0 1 1 ")
    assert open_(task, b"/proc/2/status") == -errno.ENOENT


def test_fd_links(sandbox):
    task = sandbox
    r, w = pipe(task)
    n = task.call(fscalls.sys_readlink, task.path(b"/proc/self/fd/%d" % r), 0x11000, 100)
    assert task.get(0x11000, n).startswith(b"pipe:[")
    fd = open_(task, b"/etc/passwd")
    n = task.call(fscalls.sys_readlink, task.path(b"/proc/self/fd/%d" % fd), 0x11000, 100)
    assert task.get(0x11000, n) == b"/etc/passwd"
    # Opening an fd link reopens the same pipe.
    again = open_(task, b"/proc/self/fd/%d" % w, os.O_WRONLY)
    assert task.fds.get(again).pipe is task.fds.get(w).pipe
    listing = open_(task, b"/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
    assert listing >= 0


def test_static_files(sandbox):
    task = sandbox
    assert b"processor\t: 0" in cat(task, b"/proc/cpuinfo")
    assert cat(task, b"/proc/meminfo").startswith(b"MemTotal:")
    assert cat(task, b"/proc/version").startswith(b"Linux version 4.4.0")
    assert len(cat(task, b"/proc/uptime").split()) == 2
    assert b" /tmp tmpfs rw" in cat(task, b"/proc/mounts")
    assert open_(task, b"/proc/cpuinfo", os.O_WRONLY) == -errno.EACCES


def test_process_files_belong_to_the_process(sandbox):
    task = sandbox
    task.creds = Credentials(
        ruid=1000, euid=1000, suid=1000, fsuid=1000, rgid=100, egid=100, sgid=100, fsgid=100
    )
    assert task.call(fscalls.sys_stat, task.path(b"/proc/self/fd"), 0x11000) == 0
    assert struct.unpack_from("<II", task.get(0x11000 + 28, 8)) == (1000, 100)
    assert open_(task, b"/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY) >= 0


def test_stat_and_mountinfo(sandbox):
    task = sandbox
    stat_lines = cat(task, b"/proc/stat").decode().splitlines()
    assert stat_lines[0].startswith("cpu ") and stat_lines[1].startswith("cpu0 ")
    info = cat(task, b"/proc/self/mountinfo").decode().splitlines()
    root_line = info[0].split()
    assert root_line[4] == "/" and root_line[5].startswith("rw") and "overlay" in root_line
    assert any(line.split()[4] == "/tmp" for line in info)
