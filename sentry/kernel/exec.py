"""execve: replace the calling process's program (de-thread, new MM, reset signals, close-on-exec)."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from kvmsandbox.platform import Regs
from sentry.errors import Errno
from sentry.kernel import sigframe
from sentry.kernel import signals as sig
from sentry.kernel.threadgroup import RLIMIT_AS, RLIMIT_STACK
from sentry.loader import image
from sentry.loader.image import Executable
from sentry.seccheck import hooks

if TYPE_CHECKING:
    from sentry.kernel.task import Task

MAX_SHEBANG_DEPTH = 4
BINPRM_BUF = 256


def _shebang(exe: Executable) -> tuple[bytes, bytes | None] | None:
    if not exe.data.startswith(b"#!"):
        return None
    line = exe.data[2:BINPRM_BUF].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        raise Errno(errno.ENOEXEC)
    parts = line.split(None, 1)
    return parts[0], (parts[1].strip(b" \t") if len(parts) > 1 else None)


def execve(
    task: Task, path: bytes, argv: list[bytes], envp: list[bytes], dirfd: int = -100, flags: int = 0
) -> int:
    kernel = task.kernel
    exe = kernel.open_executable(task, path, dirfd, flags)
    execfn = path
    for _ in range(MAX_SHEBANG_DEPTH):
        script = _shebang(exe)
        if script is None:
            break
        interp, arg = script
        argv = [interp, *([arg] if arg else []), path, *argv[1:]]
        path = interp
        exe = kernel.open_executable(task, interp)
    else:
        raise Errno(errno.ELOOP)

    def open_interp(p: bytes) -> Executable:
        return kernel.open_executable(task, p)

    mm = kernel.new_mm()
    mm.stack_limit = min(task.tg.rlimits[RLIMIT_STACK][0], 1 << 30)
    mm.as_limit = task.tg.rlimits[RLIMIT_AS][0]
    try:
        entry, sp = image.load(mm, exe, open_interp, argv, envp, execfn, task.creds, kernel.vvar, kernel.vdso)
    except BaseException:
        mm.release()
        raise
    _de_thread(task)
    # Point of no return.
    if task.ctx is not None:  # an app's execve; not the Sentry loading a new process (as runsc's)
        hooks.execve(task, binary_path=exe.path, argv=argv, env=envp, stat=exe.stat, content=exe.data)
    from sentry.kernel.exit import _mm_release

    _mm_release(task)
    old = task.mm
    task.mm = mm
    with kernel.lock:
        old.users -= 1
        last = old.users == 0
    if last:
        old.release()
    fds = task.fds
    with kernel.lock:
        shared = kernel.fd_users.get(id(fds), 1) > 1
    if shared:
        new_fds = fds.fork()
        with kernel.lock:
            kernel.fd_users[id(fds)] -= 1
            kernel.fd_users[id(new_fds)] = 1
        task.fds = new_fds
    task.fds.on_exec()
    with kernel.lock:
        tg = task.tg
        if tg.handlers_shared():
            tg.handlers = tg.handlers.copy()
        tg.handlers.reset_for_exec()
        task.altstack = (0, sig.SS_DISABLE, 0)
        task.robust_list = (0, 0)
        task.clear_child_tid = 0
        tg.exe_path = exe.path
        task.creds = task.creds.after_exec(bool(tg.no_new_privs))
        # Linux names the process after the path given (not a link's target); "/dev/fd/N" for fexecve.
        task.comm = os.fsdecode(os.path.basename(execfn) or str(dirfd).encode())[:15]
    fpu = sigframe.initial_fpu(task.ctx.pull_fpu()) if task.ctx is not None else None
    task.regs = Regs(rip=entry, rsp=sp, fpu=fpu)
    return 0


def _de_thread(task: Task) -> None:
    """Kill the other threads and wait for them; the exec'ing thread becomes the leader."""
    kernel = task.kernel
    tg = task.tg
    with kernel.lock:
        others = [t for t in tg.threads if t is not task]
        for t in others:
            t.killed = True
            t.wake()
    for t in others:
        try:
            task.block_on(t.exit_queue, lambda t=t: True if t.exited else None, interruptible=False)
        except Errno:
            t.thread.join()
    with kernel.lock:
        if task.tid != tg.pid:
            kernel.tasks.pop(task.tid, None)
            task.tid = tg.pid
            kernel.tasks[tg.pid] = task
            tg.leader = task
