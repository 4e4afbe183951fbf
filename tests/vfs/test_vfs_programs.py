"""Real programs in the sandbox on both platforms: /proc/<pid>/mem access rules, file locks, ptys."""

from __future__ import annotations

from sentry.kernel.creds import Credentials

USER = Credentials(ruid=1000, euid=1000, suid=1000, fsuid=1000, rgid=1000, egid=1000, sgid=1000, fsgid=1000,
                   cap_effective=0, cap_permitted=0)  # fmt: skip


def test_proc_pid_mem_self_and_child_only(sandbox_run, cprogram):
    r = sandbox_run([cprogram("procmem")], creds=USER)
    assert (r.code, r.out) == (0, "procmem ok\n"), r.err + r.log


def test_file_locks_between_processes(sandbox_run, cprogram):
    r = sandbox_run([cprogram("locks"), "/tmp/lockfile"])
    assert (r.code, r.out) == (0, "locks ok\n"), r.out + r.err + r.log


def test_pseudo_terminals(sandbox_run, cprogram):
    r = sandbox_run([cprogram("pty")], timeout=60)
    assert (r.code, r.out) == (0, "pty ok\n"), r.out + r.err + r.log
