"""Host process liveness by pid *and* start time.

The sandbox process is not a child of later CLI invocations (the shim reaps
it), so its pid may be reused once it is gone. A pid counts as ours only while
/proc/<pid>/stat shows the start time recorded at create, and a zombie counts
as gone: its exit status is already decided.
"""

from __future__ import annotations

import os
import signal
import time


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None if no live process has that pid."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _stat_fields(pid: int | str) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses; the fields after the last ')' are fixed.
    return stat[stat.rindex(b")") + 2 :].split()


def session_members(sid: int) -> list[int]:
    """Live processes whose session id is `sid`."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(name)
            if fields is not None and int(fields[3]) == sid and fields[0] not in (b"Z", b"X"):
                members.append(int(name))
    return members


def children_by_own_pid(parent: int) -> dict[int, int]:
    """Live children of `parent`, as {pid in their own pid namespace: pid here}.

    NSpid in /proc/<pid>/status lists a process's pids from our namespace down
    to its own: its last field is the pid its parent got from fork when the
    parent lives in that namespace (the sandbox process, pid 1 of its own).
    """
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(name)
        if fields is None or int(fields[1]) != parent or fields[0] in (b"Z", b"X"):
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                nspid = next((line.split()[1:] for line in f if line.startswith(b"NSpid:")), None)
        except OSError:  # it is gone
            continue
        if nspid:
            children[int(nspid[-1])] = int(name)
    return children


def usage(pid: int) -> tuple[int, int]:
    """(CPU time in ns, resident bytes) of a live process; (0, 0) once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0, 0
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    rss_pages = int(fields[21])
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK"), rss_pages * os.sysconf("SC_PAGE_SIZE")


def is_alive(pid: int, started: int) -> bool:
    """Whether `pid` is still the process that started at `started`."""
    return pid > 0 and start_time(pid) == started


def kill_if_alive(pid: int, started: int, signo: int = signal.SIGKILL, *, group: bool = False) -> bool:
    """Signal the process (and, with group, the process group it leads) if it is still the one recorded.

    True if a signal was sent.
    """
    if not is_alive(pid, started):
        return False
    try:
        if group and os.getpgid(pid) == pid:
            os.killpg(pid, signo)
        else:
            os.kill(pid, signo)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, started: int, timeout: float) -> bool:
    """Poll until the recorded process is gone (it is not our child, so no waitpid); True if it went."""
    deadline = time.monotonic() + timeout
    while is_alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
