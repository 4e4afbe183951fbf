"""The control socket between CLI commands and the sandbox process.

Each `start`, `exec`, `kill`, `ps`, `wait`, `events`, `pause` and `resume`
invocation connects to `<state dir>/control.sock` (SOCK_SEQPACKET), sends one
JSON request per message and reads one JSON reply per message:

    request  {"op": "exec", "process": {...}}  + SCM_RIGHTS stdio fds
    reply    {"ok": true, "result": ...}  or  {"ok": false, "error": "..."}

JSON keeps the protocol debuggable with socat and needs no generated code;
fds travel beside it because exec'd processes use the caller's pipes or pts.
Each connection is served by its own thread, so a blocking `wait` never holds
up a `kill`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from bootstrap import unixsock
from bootstrap.backend import ProcessInfo, SandboxBackend
from bootstrap.errors import OCIError
from bootstrap.mirrors.pool import MirrorPool

MAX_MESSAGE = 1 << 20

# An extra operation: (decoded request, fds it carried) -> JSON-able result.
Extension = Callable[[dict[str, Any], list[int]], Any]

log = logging.getLogger(__name__)


class ControlServer:
    """Serves requests on a control socket, handing each to a SandboxBackend."""

    def __init__(
        self,
        path: str,
        backend: SandboxBackend,
        extensions: Mapping[str, Extension] | None = None,
        refusals: tuple[type[Exception], ...] = (),
    ) -> None:
        """`extensions` add operations beside the OCI ones (the trace commands' `trace_*`); each
        owns the fds its request carries. An exception in `refusals` raised by one is reported
        as the request's error, like an OCIError."""
        self.path = path
        self.backend = backend
        self.extensions = dict(extensions or {})
        self.refusals = (OCIError, *refusals)
        self.mirrors = MirrorPool()
        self._handlers = {**_HANDLERS, "ps": self._ps}
        self._listener = unixsock.bind(path)
        self._closed = threading.Event()
        self._busy = threading.Condition()
        self._in_flight = 0
        self._thread = threading.Thread(target=self._accept_loop, name="control-accept", daemon=True)

    def serve_in_background(self) -> None:
        self._thread.start()

    def close(self, drain_s: float = 1.0) -> None:
        """Stop accepting and let requests in flight send their replies (up to drain_s).

        A `kill` that ends the root process makes the sandbox process exit at
        once; its caller must still hear that the signal was sent. The socket
        file stays (a confined sandbox process cannot reach it): clients get
        ECONNREFUSED from it, and `delete` removes it with the state directory.
        """
        self._closed.set()
        with self._busy:
            self._busy.wait_for(lambda: self._in_flight == 0, drain_s)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.mirrors.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="control-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data, fds = unixsock.recv(conn, MAX_MESSAGE)
                except OSError:
                    return
                if not data:
                    for fd in fds:
                        os.close(fd)
                    return
                with self._busy:
                    self._in_flight += 1
                try:
                    reply = self._handle(data, fds)
                    unixsock.send(conn, json.dumps(reply).encode())
                except OSError:
                    return
                finally:
                    with self._busy:
                        self._in_flight -= 1
                        self._busy.notify_all()

    def _handle(self, data: bytes, fds: list[int]) -> dict[str, Any]:
        try:
            request = json.loads(data)
            op = request["op"]
            extension = self.extensions.get(op)
            if extension is not None:
                return {"ok": True, "result": extension(request, fds)}
            handler = self._handlers.get(op)
            if handler is None:
                raise OCIError(f"unknown control operation {op!r}")
            if op != "exec" and fds:
                raise OCIError(f"{op} takes no file descriptors")
            return {"ok": True, "result": handler(self.backend, request, fds)}
        except self.refusals as e:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            return {"ok": False, "error": str(e)}
        except Exception as e:  # a backend bug must not kill the sandbox process
            log.exception("control request failed")
            return {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"}

    def _ps(self, backend: SandboxBackend, request: dict[str, Any], fds: list[int]) -> list[dict[str, Any]]:
        """The processes; with "mirrors", each with the host process standing for it (bootstrap/mirrors)."""
        processes = backend.processes()
        if request.get("mirrors"):
            processes = self.mirrors.stand_in(processes)
        return [dataclasses.asdict(p) for p in processes]


def _exec(backend: SandboxBackend, request: dict[str, Any], fds: list[int]) -> dict[str, int]:
    if len(fds) != 3:
        raise OCIError(f"exec needs 3 stdio fds, got {len(fds)}")
    from bootstrap.spec import parse_process  # here: the client side (every CLI call) never needs it

    process = parse_process(request.get("process"), "process")
    return {"pid": backend.exec(process, fds)}


def _signal(backend: SandboxBackend, request: dict[str, Any], fds: list[int]) -> None:
    backend.signal(
        int(request["signo"]), pid=int(request.get("pid", 0)), all_processes=bool(request.get("all"))
    )


_HANDLERS = {
    "start": lambda b, r, f: b.start(),
    "exec": _exec,
    "signal": _signal,
    "wait": lambda b, r, f: {"status": b.wait(int(r.get("pid", 0)))},
    "stats": lambda b, r, f: b.stats(),
    "pause": lambda b, r, f: b.pause(),
    "resume": lambda b, r, f: b.resume(),
}


class ControlClient:
    """One connection to a sandbox process; methods mirror SandboxBackend."""

    def __init__(self, path: str) -> None:
        try:
            self._sock = unixsock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise OCIError("the sandbox is not running (no control socket)") from None

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, op: str, fds: list[int] | tuple[int, ...] = (), **args: Any) -> Any:
        unixsock.send(self._sock, json.dumps({"op": op, **args}).encode(), fds)
        data, extra = unixsock.recv(self._sock, MAX_MESSAGE)
        for fd in extra:
            os.close(fd)
        if not data:
            raise OCIError(f"{op}: the sandbox process went away")
        reply = json.loads(data)
        if not reply.get("ok"):
            raise OCIError(f"{op}: {reply.get('error', 'failed')}")
        return reply.get("result")

    def start(self) -> None:
        self.call("start")

    def exec(self, process: dict[str, Any], stdio: list[int] | tuple[int, ...]) -> int:
        return int(self.call("exec", fds=stdio, process=process)["pid"])

    def signal(self, signo: int, pid: int = 0, all_processes: bool = False) -> None:
        self.call("signal", signo=signo, pid=pid, all=all_processes)

    def processes(self, mirrors: bool = False) -> list[ProcessInfo]:
        """With `mirrors`, each has its mirror_pid (the sandbox makes mirrors only when asked)."""
        rows = self.call("ps", mirrors=mirrors)
        return [ProcessInfo(**(p | {"argv": tuple(p.get("argv", ()))})) for p in rows]

    def wait(self, pid: int = 0) -> int:
        return int(self.call("wait", pid=pid)["status"])

    def stats(self) -> dict[str, Any]:
        return self.call("stats")

    def pause(self) -> None:
        self.call("pause")

    def resume(self) -> None:
        self.call("resume")
