"""SandboxBackend over the Sentry's `sentry.sandbox.Sandbox`.

The adapter turns the OCI process spec into what the Sentry takes (argv,
env, credentials, cwd), makes the spec's mounts (bootstrap/mounts.py) before
the first task exists, and turns the control requests into Sandbox calls.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from bootstrap import capabilities, mounts, userns
from bootstrap.backend import BootRequest, ProcessInfo
from bootstrap.errors import OCIError, StartError
from bootstrap.spec import Process


class SentryBackend:
    """One container's Sentry: boots at construction, runs spec.process on start()."""

    def __init__(self, request: BootRequest) -> None:
        import gofer

        self._request = request
        self._spec = request.spec
        # First: the gofer (another Python process) boots while the Sentry's modules load and its
        # platform starts. Writable only where the root has no overlay, as Sandbox starts it.
        started_gofer = gofer.start(self._spec.root.path, writable=request.overlay2 == "none")
        try:
            from sentry.sandbox import Sandbox
        except BaseException:
            started_gofer[1].shutdown()
            started_gofer[0].wait()
            raise
        self._sandbox = Sandbox(
            request.platform,
            self._spec.root.path,
            stdio=request.stdio,
            hostname=self._spec.hostname or "kvmsandbox",
            overlay2=request.overlay2,
            container_id=request.container_id,
            trace=request.trace,
            network=request.network,
            started_gofer=started_gofer,
        )
        try:
            kernel = self._sandbox.kernel
            kernel.uid_map, kernel.gid_map = userns.own_maps()
            self._mount_gofers = mounts.apply(self._sandbox.vfs, self._spec)
        except BaseException:
            self._sandbox.close()
            raise

    def start(self) -> None:
        from sentry.errors import Errno

        process = self._spec.process
        try:
            self._sandbox.start(
                process.args,
                process.env,
                _credentials(process),
                cwd=process.cwd,
                terminal=process.terminal,
                settings=_settings(process),
            )
        except Errno as e:
            # Exit codes as a shell gives them for a command it cannot run.
            code = 126 if e.code in (errno.EACCES, errno.ENOEXEC) else 127
            raise StartError(f"starting {process.args[0]!r}: {os.strerror(e.code)}", code) from None

    def exec(self, process: Process, stdio: list[int]) -> int:
        from sentry.errors import Errno

        vfs = self._sandbox.vfs
        added = [fd for fd in dict.fromkeys(stdio) if fd not in vfs.host_stdio]
        try:
            for fd in added:  # spawn wraps only host fds the VFS knows; each open dups them
                vfs.host_stdio[fd] = _host_location(fd)
            return self._sandbox.spawn(
                process.args,
                process.env,
                _credentials(process),
                process.cwd,
                tuple(stdio),
                settings=_settings(process),
            )
        except Errno as e:
            raise OCIError(f"exec {process.args[0]!r}: {os.strerror(e.code)}") from None
        finally:
            for fd in added:
                del vfs.host_stdio[fd]
            for fd in set(stdio):
                os.close(fd)

    def signal(self, signo: int, pid: int = 0, all_processes: bool = False) -> None:
        from sentry.kernel.signals import SigInfo

        kernel = self._sandbox.kernel
        if all_processes:
            targets = kernel.thread_groups()
        else:
            tg = kernel.thread_group(pid or 1)
            if tg is None:
                raise OCIError(f"no process {pid or 1} in the container")
            targets = [tg]
        for tg in targets:
            kernel.signals.send_to_group(tg, SigInfo(signo))

    def processes(self) -> list[ProcessInfo]:
        out = []
        for tg in self._sandbox.kernel.thread_groups():
            if tg.zombie:
                continue
            leader = tg.leader
            uid = leader.creds.ruid if leader is not None else 0
            cmdline = tg.cmdline()
            cmd = cmdline.replace(b"\0", b" ").strip().decode(errors="replace") or tg.exe_path
            argv = tuple(map(os.fsdecode, cmdline.removesuffix(b"\0").split(b"\0"))) if cmdline else ()
            out.append(ProcessInfo(pid=tg.pid, ppid=tg.parent_pid(), uid=uid, cmd=cmd, argv=argv))
        return out

    def wait(self, pid: int = 0) -> int:
        from sentry.errors import Errno
        from sentry.sandbox import exit_code

        try:
            status = self._sandbox.wait_pid(pid or 1)
        except Errno as e:
            raise OCIError(f"no process {pid} to wait for: {os.strerror(e.code)}") from None
        return exit_code(status or 0)

    def stats(self) -> dict[str, Any]:
        return {"pids": {"current": len(self.processes())}}

    def pause(self) -> None:
        self._sandbox.pause()

    def resume(self) -> None:
        self._sandbox.resume()

    def shutdown(self) -> None:
        self._sandbox.close()
        for proc, client in self._mount_gofers:
            client.shutdown()
            proc.wait()


def _host_location(fd: int) -> Any:
    """A VFS location wrapping host fd `fd`, named as /proc/<pid>/fd shows pipes and sockets."""
    from sentry.vfs.fs.anon import HOSTFS
    from sentry.vfs.fs.host import HostInode

    inode = HostInode(fd)
    mode = os.fstat(fd).st_mode
    kind = b"pipe" if stat.S_ISFIFO(mode) else b"socket" if stat.S_ISSOCK(mode) else b"host"
    return HOSTFS.location(inode, b"%s:[%d]" % (kind, inode.ino))


def _settings(process: Process) -> Any:
    """The spec's rlimits (by number: spec.py has checked the names), oomScoreAdj, noNewPrivileges, umask."""
    from sentry.kernel.threadgroup import RLIMIT_NAMES
    from sentry.sandbox import ProcessSettings

    rlimits = {RLIMIT_NAMES.index(r.type.removeprefix("RLIMIT_")): (r.soft, r.hard) for r in process.rlimits}
    umask = process.user.umask
    return ProcessSettings(
        rlimits=rlimits,
        oom_score_adj=process.oom_score_adj or 0,
        no_new_privs=process.no_new_privileges,
        umask=0o022 if umask is None else umask,
    )


def _credentials(process: Process) -> Any:
    from sentry.kernel.creds import Credentials

    user = process.user
    creds = Credentials.for_user(user.uid, user.gid, tuple(user.additional_gids))
    caps = process.capabilities
    if caps is None:
        return creds
    return creds.replace(
        cap_effective=capabilities.mask(caps.effective),
        cap_permitted=capabilities.mask(caps.permitted),
        cap_inheritable=capabilities.mask(caps.inheritable),
        cap_bounding=capabilities.mask(caps.bounding),
    ).with_ambient(capabilities.mask(caps.ambient))
