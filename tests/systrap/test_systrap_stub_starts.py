"""Stubs started from several Sentry threads at once while the process forks and another stub runs.

The conditions of a forking app under a loaded Sentry (a fork is a new
address space, so a new stub, while the parent's stub runs), compressed
into a second: every start must succeed.
"""

from __future__ import annotations

import os
import threading
import time

from kvmsandbox.platform import PlatformError

STARTERS = 3
DURATION_S = 1.0


def start_stubs(platform, deadline: float, done: list[tuple[str, int]], errors: list[str]) -> None:
    """Start a stub, bring up one worker, release it; again until the deadline."""
    starts = 0
    while time.monotonic() < deadline:
        asp = platform.new_address_space()
        try:
            asp.release_thread(asp.acquire_thread())
            starts += 1
        except PlatformError as e:
            errors.append(str(e))
        finally:
            asp.release()
    done.append(("starts", starts))


def fork_children(deadline: float, done: list[tuple[str, int]]) -> None:
    """fork() and posix_spawn() from another thread: children briefly share the Sentry's fds."""
    forks = 0
    while time.monotonic() < deadline:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0)
        forks += 2
    done.append(("forks", forks))


def run_app(app, deadline: float, done: list[tuple[str, int]]) -> None:
    switches = 0
    while time.monotonic() < deadline:
        app.run("syscall_loop", rax=39)
        switches += 1
    done.append(("switches", switches))


def test_concurrent_stub_starts_while_forking(platform, make_app):
    app = make_app()
    done: list[tuple[str, int]] = []
    errors: list[str] = []
    deadline = time.monotonic() + DURATION_S
    threads = [
        threading.Thread(target=start_stubs, args=(platform, deadline, done, errors)) for _ in range(STARTERS)
    ]
    threads.append(threading.Thread(target=fork_children, args=(deadline, done)))
    threads.append(threading.Thread(target=run_app, args=(app, deadline, done)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    counts = {name: sum(n for key, n in done if key == name) for name in ("starts", "forks", "switches")}
    assert not errors, f"{len(errors)} of {counts['starts'] + len(errors)} stub starts failed: {errors[:3]}"
    assert counts["starts"] > STARTERS and counts["forks"] and counts["switches"], counts
