"""The sandbox process's mirrors: one per live app process, made and ended on `ps` requests.

Nothing here runs until a `ps --format json` asks, so a container nobody
inspects costs nothing. A mirror is tied to its pipe: it exits when the pool
closes the write end, or when the sandbox process dies and the kernel closes
it. The Sentry never waits on a mirror; only the control thread serving `ps`
(and shutdown) spawns and reaps them. posix_spawn returns once a mirror's
exec has begun: its cmdline and name show in /proc a moment later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading

from bootstrap.backend import ProcessInfo

# By its real path: the confined sandbox process sees its code only there (bootstrap/code_root.py).
MIRROR_PATH = os.path.join(os.path.dirname(os.path.realpath(__file__)), "mirror")

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Mirror:
    pid: int  # as the sandbox process numbers it
    pipe: int  # the write end of its stdin; closing it ends the mirror
    argv: tuple[str, ...]


class MirrorPool:
    """Mirrors by app pid; `stand_in` brings them in line with the app's processes."""

    def __init__(self, path: str = MIRROR_PATH) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mirrors: dict[int, _Mirror] = {}
        self._closed = False

    def stand_in(self, processes: list[ProcessInfo]) -> list[ProcessInfo]:
        """`processes` with mirror_pid set, after ending the mirrors of processes gone or exec'd since."""
        with self._lock:
            wanted = {p.pid: _argv(p) for p in processes}
            for pid, mirror in list(self._mirrors.items()):
                exited = _reap_if_exited(mirror)
                if exited or wanted.get(pid) != mirror.argv:
                    _end(self._mirrors.pop(pid), exited)
            out = []
            for p in processes:
                mirror = self._mirrors.get(p.pid)
                if mirror is None and not self._closed:
                    mirror = self._spawn(wanted[p.pid])
                    if mirror is not None:
                        self._mirrors[p.pid] = mirror
                out.append(dataclasses.replace(p, mirror_pid=mirror.pid if mirror else 0))
            return out

    def close(self) -> None:
        """End every mirror; later `stand_in` calls make none."""
        with self._lock:
            self._closed = True
            for mirror in self._mirrors.values():
                _end(mirror, exited=False)
            self._mirrors.clear()

    def _spawn(self, argv: tuple[str, ...]) -> _Mirror | None:
        read_end, write_end = os.pipe()
        try:
            # No environment; its own session, so no terminal signal of the container's reaches it.
            pid = os.posix_spawn(
                self.path, argv, {}, file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)], setsid=True
            )
        except (OSError, ValueError) as e:  # ValueError: an argv posix_spawn refuses
            log.warning("no mirror for %r: %s", argv[0], e)
            os.close(write_end)
            return None
        finally:
            os.close(read_end)
        return _Mirror(pid, write_end, argv)


def _end(mirror: _Mirror, exited: bool) -> None:
    """Close its pipe; unless it has exited and been reaped, kill it (a stopped one too) and reap it.

    Until reaped it is our child, so its pid cannot name another process.
    """
    os.close(mirror.pipe)
    if not exited:
        os.kill(mirror.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(mirror.pid, 0)


def _reap_if_exited(mirror: _Mirror) -> bool:
    """Whether the mirror has died (something on the host killed it), reaping it if so."""
    try:
        return os.waitpid(mirror.pid, os.WNOHANG) != (0, 0)
    except ChildProcessError:
        return True


def _argv(process: ProcessInfo) -> tuple[str, ...]:
    """The app process's argv; its command (the executable's path) when the argv is empty."""
    return tuple(process.argv) if process.argv and process.argv[0] else (process.cmd or "?",)
