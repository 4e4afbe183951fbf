"""A SandboxBackend that runs nothing, for testing the OCI layer without the Sentry.

Select it with KVMSANDBOX_BACKEND=tests.oci.fake_backend:FakeBackend. Processes
are scripted by their argv:

    echo WORDS...      write WORDS to stdout, exit 0
    exit N             exit N
    sleep [--trap=SIG] run until a signal: exit 128+signo, except SIG, which is
                       "handled": it prints "trapped SIG" and keeps running
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from bootstrap.backend import BootRequest, ProcessInfo
from bootstrap.errors import OCIError, StartError
from bootstrap.spec import Process


class _FakeProcess:
    def __init__(self, pid: int, process: Process, stdio: tuple[int, ...] | list[int]) -> None:
        self.pid = pid
        self.args = process.args
        self.uid = process.user.uid
        self.stdio = stdio
        self.exit_code: int | None = None
        self.started = time.time()
        self.trap = next((a.split("=", 1)[1] for a in self.args if a.startswith("--trap=")), "")

    def write(self, text: str) -> None:
        os.write(self.stdio[1], text.encode())


class FakeBackend:
    def __init__(self, request: BootRequest) -> None:
        self.request = request
        self.cond = threading.Condition()
        self.procs: dict[int, _FakeProcess] = {}
        self.next_pid = 1
        self.paused = False

    def _run(self, process: Process, stdio: tuple[int, ...] | list[int]) -> int:
        argv = process.args
        if argv[0] not in ("echo", "exit", "sleep"):
            raise StartError(f"starting {argv[0]!r}: No such file or directory", 127)
        with self.cond:
            proc = _FakeProcess(self.next_pid, process, stdio)
            self.next_pid += 1
            self.procs[proc.pid] = proc
            if argv[0] == "echo":
                proc.write(" ".join(argv[1:]) + "\n")
                self._exit(proc, 0)
            elif argv[0] == "exit":
                self._exit(proc, int(argv[1]))
        return proc.pid

    def _exit(self, proc: _FakeProcess, code: int) -> None:
        proc.exit_code = code
        if proc.pid != 1:
            for fd in set(proc.stdio):
                os.close(fd)
        self.cond.notify_all()

    def start(self) -> None:
        self._run(self.request.spec.process, self.request.stdio)

    def exec(self, process: Process, stdio: list[int]) -> int:
        if process.args[0] not in ("echo", "exit", "sleep"):
            for fd in set(stdio):
                os.close(fd)
            raise OCIError(f"exec {process.args[0]!r}: No such file or directory")
        return self._run(process, stdio)

    def signal(self, signo: int, pid: int = 0, all_processes: bool = False) -> None:
        with self.cond:
            live = [p for p in self.procs.values() if p.exit_code is None]
            targets = live if all_processes else [p for p in live if p.pid == (pid or 1)]
            for proc in targets:
                if proc.trap and signal.Signals(signo).name.removeprefix("SIG") == proc.trap.removeprefix(
                    "SIG"
                ):
                    proc.write(f"trapped {proc.trap}\n")
                elif signo not in (0, signal.SIGCHLD, signal.SIGWINCH):
                    self._exit(proc, 128 + signo)

    def processes(self) -> list[ProcessInfo]:
        with self.cond:
            return [
                ProcessInfo(
                    pid=p.pid,
                    ppid=0 if p.pid == 1 else 1,
                    uid=p.uid,
                    cmd=" ".join(p.args),
                    argv=tuple(p.args),
                    start_time=p.started,
                )
                for p in self.procs.values()
                if p.exit_code is None
            ]

    def wait(self, pid: int = 0) -> int:
        with self.cond:
            proc = self.procs.get(pid or 1)
            if proc is None:
                raise OCIError(f"no process {pid}")
            self.cond.wait_for(lambda: proc.exit_code is not None)
            return proc.exit_code  # type: ignore[return-value]

    def stats(self) -> dict[str, Any]:
        return {"pids": {"current": len(self.processes())}, "paused": self.paused}

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def shutdown(self) -> None:
        with self.cond:
            for proc in self.procs.values():
                if proc.exit_code is None:
                    self._exit(proc, 128 + signal.SIGKILL)
