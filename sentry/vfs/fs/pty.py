"""Pseudo-terminals: a master/slave pair joined by a small line discipline (Linux's n_tty, simplified).

What goes in at the master is input: ICRNL, the signal characters under
ISIG (^C, ^\\, ^Z to the terminal's foreground process group), canonical
line editing under ICANON (erase, kill, EOF, lines released at newline)
and ECHO back to the master. What the slave writes is output: ONLCR under
OPOST. termios and the window size are kept as the kernel's raw structs,
so TCGETS/TCSETS round-trip whatever the app set. Closing the master
hangs the slave up (reads return 0 / EIO); once every slave fd is closed
the master reads EIO, as Linux reports.
"""

from __future__ import annotations

import errno
import struct
import threading

from sentry.errors import Errno
from sentry.kernel.signals import SI_KERNEL, SigInfo
from sentry.vfs.waiter import POLLHUP, POLLIN, POLLOUT, WaitQueue, wait_for

# struct termios (kernel): c_iflag, c_oflag, c_cflag, c_lflag, c_line, c_cc[19].
TERMIOS = struct.Struct("<IIIIB19s")
ICRNL, IXON = 0o400, 0o2000
OPOST, ONLCR = 0o1, 0o4
ISIG, ICANON, ECHO, ECHOE, ECHOK, ECHOCTL, ECHOKE, IEXTEN = (
    0o1,
    0o2,
    0o10,
    0o20,
    0o40,
    0o1000,
    0o4000,
    0o100000,
)
VINTR, VQUIT, VERASE, VKILL, VEOF, VTIME, VMIN, VSUSP = 0, 1, 2, 3, 4, 5, 6, 10
# Linux's defaults (drivers/tty/tty_io.c tty_std_termios): 38400 8N1, cooked, echoing.
DEFAULT_CC = bytes([3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0])
DEFAULT_TERMIOS = TERMIOS.pack(
    ICRNL | IXON,
    OPOST | ONLCR,
    0o277,
    ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
    0,
    DEFAULT_CC,
)
SIGINT, SIGQUIT, SIGTSTP, SIGWINCH = 2, 3, 20, 28
# Input queue limit (Linux's N_TTY_BUF_SIZE): beyond it, master writes wait.
MAX_INPUT = 4096


class Terminal:
    """One pty pair's shared state; `index` is N in /dev/pts/N."""

    def __init__(self, index: int, uid: int, gid: int) -> None:
        self.index = index
        self.uid, self.gid = uid, gid
        self.lock = threading.Lock()
        self.termios = DEFAULT_TERMIOS
        self.winsize = bytes(8)
        self.locked = True  # until unlockpt (TIOCSPTLCK 0)
        self.master_open = True
        self.slaves = 0
        self.slave_ever_opened = False
        self.line = bytearray()  # canonical line being edited
        self.input = bytearray()  # ready for the slave to read
        self.output = bytearray()  # ready for the master to read
        self.eof_pending = 0  # ^D with an empty line: one read returns 0
        self.fg_pgid = 0
        self.sid = 0
        self.kernel = None  # set at open: signals go to its process groups
        self.master_q = WaitQueue()  # readiness of the master side
        self.slave_q = WaitQueue()

    # --- termios helpers -------------------------------------------------------------
    def flags(self) -> tuple[int, int, int, bytes]:
        """(c_iflag, c_oflag, c_lflag, c_cc)."""
        iflag, oflag, _, lflag, _, cc = TERMIOS.unpack(self.termios)
        return iflag, oflag, lflag, cc

    def signal_foreground(self, signo: int) -> None:
        kernel = self.kernel
        group = kernel.process_group(self.fg_pgid) if kernel is not None and self.fg_pgid else None
        if group is None:
            return
        for tg in list(group.members):
            kernel.signals.send_to_group(tg, SigInfo.kill(signo, SI_KERNEL, 0, 0))

    # --- master -> slave (input) -----------------------------------------------------
    def _echo(self, data: bytes) -> None:
        self.output += data.replace(b"\n", b"\r\n")

    def feed(self, data: bytes) -> tuple[int, list[int]]:
        """Input from the master; (bytes taken, signals to send once the lock is dropped)."""
        iflag, _, lflag, cc = self.flags()
        signals = []
        taken = 0
        for byte in data:
            if len(self.input) + len(self.line) >= MAX_INPUT:
                break
            taken += 1
            if byte == 13 and iflag & ICRNL:
                byte = 10
            if lflag & ISIG and byte in (cc[VINTR], cc[VQUIT], cc[VSUSP]) and byte:
                signals.append({cc[VINTR]: SIGINT, cc[VQUIT]: SIGQUIT, cc[VSUSP]: SIGTSTP}[byte])
                self.line.clear()
                if lflag & ECHO:
                    self._echo(b"^" + bytes([byte + 64]) if lflag & ECHOCTL else bytes([byte]))
                continue
            if lflag & ICANON:
                if byte == cc[VERASE]:
                    if self.line:
                        self.line.pop()
                        if lflag & ECHO:
                            self._echo(b"\b \b")
                    continue
                if byte == cc[VKILL]:
                    self.line.clear()
                    continue
                if byte == cc[VEOF]:
                    if not self.line:
                        self.eof_pending += 1
                    self.input += self.line
                    self.line.clear()
                    continue
                self.line.append(byte)
                if lflag & ECHO:
                    self._echo(bytes([byte]))
                if byte == 10:
                    self.input += self.line
                    self.line.clear()
            else:
                self.input.append(byte)
                if lflag & ECHO:
                    self._echo(bytes([byte]))
        return taken, signals

    def take_input(self, count: int) -> bytes | None:
        """For a slave read: at most one line in canonical mode; None while nothing is ready."""
        _, _, lflag, _ = self.flags()
        if self.input:
            n = count
            if lflag & ICANON:
                nl = self.input.find(b"\n")
                n = min(count, nl + 1 if nl >= 0 else len(self.input))
            data = bytes(self.input[:n])
            del self.input[:n]
            return data
        if self.eof_pending:
            self.eof_pending -= 1
            return b""
        if not self.master_open:
            return b""
        return None

    # --- slave -> master (output) ----------------------------------------------------
    def emit(self, data: bytes) -> None:
        _, oflag, _, _ = self.flags()
        if oflag & OPOST and oflag & ONLCR:
            data = data.replace(b"\n", b"\r\n")
        self.output += data

    # --- readiness -------------------------------------------------------------------
    def master_ready(self) -> int:
        ready = POLLOUT if len(self.input) + len(self.line) < MAX_INPUT else 0
        if self.output:
            ready |= POLLIN
        if self.slave_ever_opened and not self.slaves:
            ready |= POLLHUP | POLLIN
        return ready

    def slave_ready(self) -> int:
        # In canonical mode only finished lines (or an EOF) ever reach `input`.
        ready = POLLOUT
        if self.input or self.eof_pending:
            ready |= POLLIN
        if not self.master_open:
            ready |= POLLHUP | POLLIN
        return ready

    def changed(self) -> None:
        self.master_q.notify(POLLIN | POLLOUT | POLLHUP)
        self.slave_q.notify(POLLIN | POLLOUT | POLLHUP)


def read_master(task, term: Terminal, count: int, nonblocking: bool) -> bytes:
    def attempt() -> bytes | None:
        with term.lock:
            if term.output:
                data = bytes(term.output[:count])
                del term.output[:count]
                return data
            if term.slave_ever_opened and not term.slaves:
                raise Errno(errno.EIO)
        if nonblocking:
            raise Errno(errno.EAGAIN)
        return None

    data = wait_for(task, term.master_q, POLLIN | POLLHUP, attempt)
    term.changed()
    return data


def write_master(task, term: Terminal, data: bytes, nonblocking: bool) -> int:
    def attempt() -> tuple[int, list[int]] | None:
        with term.lock:
            taken, signals = term.feed(data)
        if taken or not data:
            return taken, signals
        if nonblocking:
            raise Errno(errno.EAGAIN)
        return None

    taken, signals = wait_for(task, term.master_q, POLLOUT, attempt)
    term.changed()
    for signo in signals:
        term.signal_foreground(signo)
    return taken


def read_slave(task, term: Terminal, count: int, nonblocking: bool) -> bytes:
    def attempt() -> bytes | None:
        with term.lock:
            data = term.take_input(count)
        if data is None and nonblocking:
            raise Errno(errno.EAGAIN)
        return data

    data = wait_for(task, term.slave_q, POLLIN | POLLHUP, attempt)
    term.changed()
    return data


def write_slave(task, term: Terminal, data: bytes) -> int:
    with term.lock:
        if not term.master_open:
            raise Errno(errno.EIO)
        term.emit(data)
    term.changed()
    return len(data)
