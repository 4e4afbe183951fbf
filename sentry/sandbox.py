"""Booting a sandbox: platform, gofer, VFS, kernel, and the init process running a command."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import stat
import subprocess
from collections.abc import Mapping, Sequence

import gofer
from gofer.client import GoferClient
from kvmsandbox import platform as platforms
from sentry.errors import Errno
from sentry.kernel.creds import Credentials
from sentry.kernel.exec import execve
from sentry.kernel.kernel import Kernel
from sentry.kernel.task import Task
from sentry.seccheck import hooks
from sentry.seccheck import session as seccheck_session
from sentry.seccheck.session import PodInitSession, Session
from sentry.vfs.boot import initial_fs_context, make_vfs
from sentry.vfs.fdtable import FDTable

log = logging.getLogger(__name__)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclasses.dataclass(frozen=True)
class ProcessSettings:
    """What an OCI process spec sets on a new process besides argv, env, creds and cwd; applied
    before its first exec.

    `rlimits` ({RLIMIT_*: (soft, hard)}) replace the defaults; `oom_score_adj` is set as by a
    privileged writer, so it is also the floor for unprivileged changes.
    """

    rlimits: Mapping[int, tuple[int, int]] = dataclasses.field(default_factory=dict)
    oom_score_adj: int = 0
    no_new_privs: bool = False
    umask: int = 0o022

    def apply(self, task: Task) -> None:
        for resource, (soft, hard) in self.rlimits.items():
            task.tg.set_rlimit(resource, soft, hard)
        task.tg.oom_score_adj = task.tg.oom_score_adj_min = self.oom_score_adj
        task.tg.no_new_privs = int(self.no_new_privs)
        task.fs.umask = self.umask


def exit_code(status: int) -> int:
    """A wait status as a shell exit code: 128+signo when killed by a signal."""
    if status & 0x7F:
        return 128 + (status & 0x7F)
    return status >> 8 & 0xFF


class Sandbox:
    """One sandbox: a Sentry kernel over a platform, with a gofer-served root."""

    def __init__(
        self,
        platform: str | None = None,
        root_dir: str = "/",
        stdio: tuple[int, int, int] = (0, 1, 2),
        hostname: str = "kvmsandbox",
        overlay2: str = "root:memory",
        container_id: str = "",
        trace: PodInitSession | None = None,
        network: str = "none",
        started_gofer: tuple[subprocess.Popen, GoferClient] | None = None,
    ) -> None:
        """overlay2: runsc's flag; "none" writes through the gofer to root_dir, anything else
        gives the root a memory-backed overlay (the host directory is never written).

        network: `--network`; "host" makes AF_INET/AF_INET6 sockets host sockets, anything else
        gives the in-Sentry loopback-only stack.

        trace: the `--pod-init-config` session with its sinks already connected outside the
        Sentry (seccheck.session.pod_init_session); it starts here, before any task exists,
        so no early point is lost, and ends in close() once every task has exited.

        started_gofer: the gofer for root_dir that the caller already started (gofer.start,
        writable only for overlay2="none"), so that its start-up, another Python process,
        overlaps the caller's; the sandbox owns it from here. Otherwise it starts here, before
        the platform, for the same reason.
        """
        self.stdio = stdio
        overlay = overlay2 != "none"
        self.gofer_proc, self.gofer = started_gofer or gofer.start(root_dir, writable=not overlay)
        self.trace_session: Session | None = None
        try:
            if trace is not None:
                self.trace_session = seccheck_session.create(*trace)
            self.platform = platforms.create(platform)
        except BaseException:
            self._end_trace()
            self._stop_gofer()
            raise
        try:
            self.vfs = make_vfs(root_dir, self.gofer, stdio_fds=stdio, overlay=overlay)
            self.kernel = Kernel(self.platform, self.vfs, hostname)
            self.kernel.container_id = container_id
            self.kernel.network = network
            self.vfs.procfs.kernel = self.kernel
        except BaseException:
            self.platform.close()
            self._end_trace()
            self._stop_gofer()
            raise

    def start(
        self,
        argv: Sequence[str],
        env: Sequence[str] | None = None,
        creds: Credentials | None = None,
        cwd: str = "/",
        terminal: bool = False,
        settings: ProcessSettings | None = None,
    ) -> None:
        """Create pid 1 in `cwd` and exec argv[0] (PATH is searched if it has no '/'); Errno on failure.

        `terminal` (the OCI process's) is only reported, in the container/start trace point.
        """
        fds = FDTable.from_host_stdio(self.vfs, self.stdio)
        fs = initial_fs_context(self.vfs)
        task = self.kernel.create_init(fds, fs, creds or Credentials())
        (settings or ProcessSettings()).apply(task)
        env = self._exec(task, argv, env, cwd)
        hooks.container_start(
            task, container_id=self.kernel.container_id, cwd=cwd, args=argv, env=env, terminal=terminal
        )
        task.start()

    def spawn(
        self,
        argv: Sequence[str],
        env: Sequence[str] | None = None,
        creds: Credentials | None = None,
        cwd: str = "/",
        stdio: tuple[int, ...] | None = None,
        settings: ProcessSettings | None = None,
    ) -> int:
        """Start another process in the running sandbox (an OCI exec); its pid, for wait_pid.

        `stdio`: host fds for its 0, 1, 2 (default: the sandbox's); each must be one the VFS
        wraps (vfs.host_stdio), others are left closed.
        """
        fds = FDTable.from_host_stdio(self.vfs, stdio or self.stdio)
        fs = initial_fs_context(self.vfs)
        task = self.kernel.create_process(fds, fs, creds or Credentials())
        (settings or ProcessSettings()).apply(task)
        try:
            self._exec(task, argv, env, cwd)
            task.start()
        except BaseException:
            from sentry.kernel.exit import exit_task

            exit_task(task)
            self.kernel.wait_process(task.tg, 5.0)
            raise
        return task.tg.pid

    def wait_pid(self, pid: int, timeout: float | None = None) -> int | None:
        """The wait status of a process started by spawn (None on timeout); pid 1 is wait()."""
        if pid == 1:
            return self.wait(timeout)
        tg = self.kernel.thread_group(pid)
        if tg is None or not tg.keep_zombie:
            raise Errno(errno.ECHILD)
        return self.kernel.wait_process(tg, timeout)

    def pause(self) -> None:
        """Stop all app code (OCI pause) until resume()."""
        self.kernel.freeze()

    def resume(self) -> None:
        self.kernel.thaw()

    def _exec(self, task: Task, argv: Sequence[str], env: Sequence[str] | None, cwd: str) -> list[str]:
        """Put `task` in `cwd` running argv[0]; the environment it got (default PATH if none)."""
        env = list(env if env is not None else [f"PATH={DEFAULT_PATH}"])
        if cwd != "/":
            loc = self.vfs.resolve(task, task.fs.root, os.fsencode(cwd))
            if not stat.S_ISDIR(loc.inode.stat().mode):
                raise Errno(errno.ENOTDIR)
            task.fs.cwd = loc
        args = [os.fsencode(a) for a in argv]
        envb = [os.fsencode(e) for e in env]
        last: Errno = Errno(errno.ENOENT)
        for candidate in self._candidates(argv[0], env):
            try:
                execve(task, candidate, args, envb)
                break
            except Errno as e:
                last = e
                if e.code not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                    raise
        else:
            raise last
        return env

    @staticmethod
    def _candidates(cmd: str, env: Sequence[str]) -> list[bytes]:
        if "/" in cmd:
            return [os.fsencode(cmd)]
        path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        return [os.fsencode(os.path.join(d or ".", cmd)) for d in path.split(":")]

    def wait(self, timeout: float | None = None) -> int | None:
        """pid 1's wait status once it exited (None on timeout)."""
        return self.kernel.wait_init(timeout)

    def close(self) -> None:
        """Kill what is left, then release the platform and the gofer."""
        from sentry.kernel.exit import group_exit, signal_status

        for tg in list(self.kernel.tgs.values()):
            group_exit(tg, signal_status(9))
        if not self.kernel.all_exited(5.0):
            log.warning("some tasks did not exit")
        self.kernel.shutdown()
        self._end_trace()
        self._stop_gofer()
        self.platform.close()

    def _stop_gofer(self) -> None:
        """Close our end of the gofer's socket (it exits on EOF) and reap it."""
        try:
            self.gofer.shutdown()
            self.gofer_proc.wait(timeout=5)
        except Exception:
            log.exception("stopping the gofer")

    def _end_trace(self) -> None:
        """End the trace session this sandbox started: its sinks close, so monitors see the end."""
        session, self.trace_session = self.trace_session, None
        if session is not None:
            with contextlib.suppress(seccheck_session.SessionError):
                seccheck_session.delete(session.name)

    def run(self, argv: Sequence[str], env: Sequence[str] | None = None, cwd: str = "/") -> int:
        """Run a command to completion; its exit code (128+signo if killed, 127 if it cannot be executed)."""
        try:
            self.start(argv, env, cwd=cwd)
        except Errno as e:
            os.write(self.stdio[2], f"kvmsandbox: {argv[0]}: {os.strerror(e.code)}\n".encode())
            return 126 if e.code in (errno.EACCES, errno.ENOEXEC) else 127
        status = self.wait()
        return exit_code(status or 0)
