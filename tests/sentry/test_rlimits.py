"""rlimits inside the sandbox: Linux's checks, and RLIMIT_NOFILE bounding new fds."""

from __future__ import annotations


def test_rlimit_rules_and_nofile_enforcement(sandbox_run, program):
    r = sandbox_run([program("rlimits")])
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "nofile_above_nr_open=EPERM",
        "nofile_infinity=EPERM",
        "soft_above_hard=EINVAL",
        "nofile_16=0",
        "open_past_limit=EMFILE",
        "last_fd=15",
        "dup2_at_limit=EBADF",
        "dupfd_at_limit=EINVAL",
        "nofile_back_up=0",
        "open_again=1",
        "child_setresuid=0",
        "raise_hard_unprivileged=EPERM",
        "lower_hard_unprivileged=0",
        "prlimit_parent=EPERM",  # another uid's process
        "prlimit_self_by_pid=200",
        "root_prlimit_child_gone=ESRCH",
    ]
