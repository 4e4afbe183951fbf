"""TCP/UDP over loopback: one line per operation with its outcome, for comparison with the host's Linux.

Only loopback addresses and ephemeral ports (port 0): safe to run on the host too.
"""

import errno
import select
import socket
import struct

A4, A6 = socket.AF_INET, socket.AF_INET6
S, D = socket.SOCK_STREAM, socket.SOCK_DGRAM


def outcome(label, fn):
    try:
        result = fn()
    except OSError as e:
        result = errno.errorcode.get(e.errno, e.errno)
    print(f"{label}: {result}")


def sock(family=A4, kind=S, **opts):
    s = socket.socket(family, kind)
    for name, value in opts.items():
        s.setsockopt(socket.SOL_SOCKET, getattr(socket, name), value)
    return s


def bound(family=A4, kind=S, host=None, **opts):
    s = sock(family, kind, **opts)
    s.bind((host or ("127.0.0.1" if family == A4 else "::1"), 0))
    return s


def listener(family=A4, host=None):
    s = bound(family, S, host)
    s.listen()
    return s


def pair(family=A4):
    srv = listener(family)
    c = sock(family)
    c.connect(srv.getsockname())
    a, _ = srv.accept()
    return srv, c, a


def freed_port(family=A4, kind=S):
    s = bound(family, kind)
    port = s.getsockname()[1]
    s.close()
    return port


def readiness(s, events=select.POLLIN | select.POLLOUT | select.POLLRDHUP):
    p = select.poll()
    p.register(s, events)
    got = p.poll(1000)
    return got[0][1] if got else 0


# --- creating and binding ---------------------------------------------------------------
outcome("seqpacket inet", lambda: socket.socket(A4, socket.SOCK_SEQPACKET))
outcome("tcp with udp protocol", lambda: socket.socket(A4, S, socket.IPPROTO_UDP))
outcome("socketpair inet", lambda: socket.socketpair(A4, S))
outcome("unbound name", lambda: sock().getsockname())
outcome("unbound name v6", lambda: sock(A6).getsockname())
outcome("ephemeral port in range", lambda: 32768 <= bound().getsockname()[1] <= 60999)
outcome("bind 127.0.0.2", lambda: bound(host="127.0.0.2").getsockname()[0])
outcome("bind TEST-NET address", lambda: bound(host="192.0.2.1"))
outcome("bind v6 TEST-NET address", lambda: bound(A6, host="2001:db8::1"))
outcome("bind twice", lambda: bound().bind(("127.0.0.1", 0)))
outcome("bind short address", lambda: sock().bind(("127.0.0.1", 0)) or sock(A6).bind(("::1", 0)))
outcome("listen autobinds", lambda: (lambda s: (s.listen(), s.getsockname()[1] > 0))(sock())[1])


def same_port(first_family, first_host, second_family, second_host, listen=False, v6only=None, **opts):
    a = sock(first_family, **opts)
    if v6only is not None and first_family == A6:
        a.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    a.bind((first_host, 0))
    if listen:
        a.listen()
    b = sock(second_family, **opts)
    b.bind((second_host, a.getsockname()[1]))
    return "bound"


outcome("same address", lambda: same_port(A4, "127.0.0.1", A4, "127.0.0.1"))
outcome("any then specific", lambda: same_port(A4, "0.0.0.0", A4, "127.0.0.1"))
outcome("specific then other specific", lambda: same_port(A4, "127.0.0.1", A4, "127.0.0.2"))
outcome("v6 any dual then v4", lambda: same_port(A6, "::", A4, "127.0.0.1", v6only=0))
outcome("v6 any v6only then v4", lambda: same_port(A6, "::", A4, "127.0.0.1", v6only=1))
outcome("reuseaddr, not listening", lambda: same_port(A4, "127.0.0.1", A4, "127.0.0.1", SO_REUSEADDR=1))
outcome(
    "reuseaddr, listening", lambda: same_port(A4, "127.0.0.1", A4, "127.0.0.1", listen=True, SO_REUSEADDR=1)
)
outcome("reuseport", lambda: same_port(A4, "127.0.0.1", A4, "127.0.0.1", listen=True, SO_REUSEPORT=1))

# --- connecting ---------------------------------------------------------------------------
outcome("connect refused", lambda: sock().connect(("127.0.0.1", freed_port())))
outcome("connect refused v6", lambda: sock(A6).connect(("::1", freed_port(A6))))


def connected_names(family, host):
    srv, c, a = pair(family)
    return (
        c.getpeername()[:2] == srv.getsockname()[:2],
        a.getpeername()[:2] == c.getsockname()[:2],
        a.getsockname()[:2] == srv.getsockname()[:2],
        c.getsockname()[0],
    )


outcome("names v4", lambda: connected_names(A4, "127.0.0.1"))
outcome("names v6", lambda: connected_names(A6, "::1"))


def mapped():
    srv = sock(A6)
    srv.bind(("::", 0))
    srv.listen()
    c = sock(A4)
    c.connect(("127.0.0.1", srv.getsockname()[1]))
    a, peer = srv.accept()
    return peer[0], a.getsockname()[0]


outcome("v4 client, dual-stack listener", mapped)


def connect_any():
    srv = bound(host="0.0.0.0")
    srv.listen()
    c = sock()
    c.connect(("0.0.0.0", srv.getsockname()[1]))
    return c.getpeername()[0]


outcome("connect to 0.0.0.0", connect_any)


def nonblocking_connect(port_of):
    c = sock()
    c.setblocking(False)
    first = errno.errorcode.get(c.connect_ex(("127.0.0.1", port_of())), 0)
    select.select([], [c], [], 5)
    err = errno.errorcode.get(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 0)
    again = errno.errorcode.get(c.connect_ex(("127.0.0.1", port_of.port)), 0)
    return first, err, again


class Listening:
    def __call__(self):
        self.srv = listener()
        self.port = self.srv.getsockname()[1]
        return self.port


class Freed:
    def __call__(self):
        self.port = freed_port()
        return self.port


outcome("nonblocking connect", lambda: nonblocking_connect(Listening()))
outcome("nonblocking connect refused", lambda: nonblocking_connect(Freed()))
outcome("connect twice", lambda: (lambda p: p[1].connect(("127.0.0.1", 1)))(pair()))
outcome("recv unconnected", lambda: sock().recv(1))
outcome("send unconnected", lambda: sock().send(b"x", socket.MSG_NOSIGNAL))
outcome("getpeername unconnected", lambda: sock().getpeername())
outcome("shutdown unconnected", lambda: [sock(kind=k).shutdown(socket.SHUT_RDWR) for k in (S, D)])


def shutdown_listener():
    srv = listener()
    waiting = sock()
    waiting.connect(srv.getsockname())
    srv.shutdown(socket.SHUT_RDWR)
    late = sock()
    outcomes = []
    for call in (srv.accept, lambda: late.connect(srv.getsockname()), lambda: waiting.recv(1)):
        try:
            call()
            outcomes.append("ok")
        except OSError as e:
            outcomes.append(errno.errorcode[e.errno])
    return outcomes


outcome("shutdown listening", shutdown_listener)
outcome("shutdown bad how", lambda: pair()[1].shutdown(7))
outcome("accept not listening", lambda: bound().accept())
outcome("listen udp", lambda: bound(kind=D).listen())
outcome("connect v4 address on v6 socket", lambda: sock(A6).connect(("127.0.0.1", 1)))

# --- data ----------------------------------------------------------------------------------


def echo(family):
    srv, c, a = pair(family)
    c.sendall(b"x" * 100000)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        chunk = a.recv(65536)
        if not chunk:
            break
        got += chunk
    a.sendall(got[:10])
    a.close()
    return len(got), c.recv(100), c.recv(100)


outcome("echo v4", lambda: echo(A4))
outcome("echo v6", lambda: echo(A6))


def reset():
    srv, c, a = pair()
    c.sendall(b"unread")
    readiness(a, select.POLLIN)
    a.close()
    readiness(c, select.POLLIN)
    return c.recv(10)


outcome("close with unread data", reset)


def peer_closed():
    srv, c, a = pair()
    a.close()
    return readiness(c) & (select.POLLIN | select.POLLRDHUP), c.recv(1), c.getpeername()[0]


outcome("peer closed", peer_closed)


def half_closed():
    srv, c, a = pair()
    c.shutdown(socket.SHUT_WR)
    bits = readiness(a)
    a.sendall(b"still open")
    return bits, a.recv(1), c.recv(100), readiness(c, select.POLLIN | select.POLLOUT | select.POLLRDHUP)


outcome("half closed", half_closed)


def fionread():
    import fcntl
    import termios

    srv, c, a = pair()
    c.sendall(b"12345")
    readiness(a, select.POLLIN)
    return struct.unpack("i", fcntl.ioctl(a, termios.FIONREAD, b"\0" * 4))[0]


outcome("FIONREAD", fionread)


def poll_states():
    fresh = readiness(sock(), select.POLLOUT | select.POLLIN) & (select.POLLOUT | select.POLLHUP)
    srv = listener()
    c = sock()
    c.connect(srv.getsockname())
    pending = readiness(srv, select.POLLIN)
    return fresh, pending, readiness(c, select.POLLOUT)


outcome("poll states", poll_states)


def udp_round_trip(family):
    a = bound(family, D)
    b = sock(family, D)
    b.sendto(b"ping", a.getsockname())
    data, sender = a.recvfrom(100)
    a.sendto(data.upper(), sender)
    got, source = b.recvfrom(100)
    return data, got, source[:2] == a.getsockname()[:2], sender[0]


outcome("udp v4", lambda: udp_round_trip(A4))
outcome("udp v6", lambda: udp_round_trip(A6))


def udp_truncated():
    a = bound(kind=D)
    b = sock(kind=D)
    b.sendto(b"0123456789", a.getsockname())
    data, _anc, flags, _ = a.recvmsg(4)
    return data, bool(flags & socket.MSG_TRUNC)


outcome("udp truncated", udp_truncated)


def udp_trunc_flag():
    import ctypes

    a = bound(kind=D)
    b = sock(kind=D)
    b.sendto(b"0123456789", a.getsockname())
    buf = ctypes.create_string_buffer(b"ABCDEFGHIJKLMNOP")
    libc = ctypes.CDLL(None, use_errno=True)
    n = libc.recv(a.fileno(), buf, 4, socket.MSG_TRUNC)
    return n, buf.raw[:16]


outcome("udp MSG_TRUNC: real length, buffer untouched past 4", udp_trunc_flag)


def udp_connected_refused():
    b = sock(kind=D)
    b.connect(("127.0.0.1", freed_port(kind=D)))
    b.send(b"x")
    readiness(b, select.POLLIN)
    return b.recv(10)


outcome("udp connected, nobody there", udp_connected_refused)


def udp_connected_filter():
    a = bound(kind=D)
    friend, stranger = bound(kind=D), bound(kind=D)
    a.connect(friend.getsockname())
    stranger.sendto(b"stranger", a.getsockname())
    friend.sendto(b"friend", a.getsockname())
    return a.recv(100), a.getpeername() == friend.getsockname()


outcome("udp connected filter", udp_connected_filter)


def udp_connected_sendto_other():
    a, b, c = bound(kind=D), bound(kind=D), bound(kind=D)
    a.connect(b.getsockname())
    a.sendto(b"to c", c.getsockname())
    a.send(b"to b")
    return c.recv(10), b.recv(10)


outcome("udp connected, sendto another", udp_connected_sendto_other)
outcome("udp too big", lambda: sock(kind=D).sendto(b"x" * 65508, ("127.0.0.1", 9)))
outcome("udp send unconnected", lambda: sock(kind=D).send(b"x"))
outcome("udp sendto port 0", lambda: sock(kind=D).sendto(b"x", ("127.0.0.1", 0)))
outcome("tcp connect port 0", lambda: sock().connect(("127.0.0.1", 0)))
outcome("udp getpeername unconnected", lambda: sock(kind=D).getpeername())


def udp_unconnect():
    b = sock(kind=D)
    b.connect(("127.0.0.1", 9))
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    unspec = ctypes.create_string_buffer(16)
    rc = libc.connect(b.fileno(), unspec, 16)
    try:
        b.getpeername()
    except OSError as e:
        return rc, errno.errorcode[e.errno]
    return rc, "connected"


outcome("udp connect AF_UNSPEC", udp_unconnect)


def timed_out():
    srv, c, a = pair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("qq", 0, 100000))
    return a.recv(1)


outcome("SO_RCVTIMEO recv", timed_out)


def interrupted_accept():
    import signal

    class Alarm(Exception):
        pass

    def ring(signo, frame):
        raise Alarm

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        listener().accept()
    except Alarm:
        return "interrupted"
    finally:
        signal.signal(signal.SIGALRM, old)


outcome("blocking accept, signal", interrupted_accept)


def nonblocking_empty():
    srv, c, a = pair()
    srv.setblocking(False)
    a.setblocking(False)
    results = []
    for call in (srv.accept, lambda: a.recv(1)):
        try:
            call()
        except OSError as e:
            results.append(errno.errorcode[e.errno])
    return results


outcome("non-blocking accept and recv, nothing there", nonblocking_empty)


def peek_waitall_iovecs():
    srv, c, a = pair()
    c.sendmsg([b"abc", b"def", b"ghi"])
    peeked = a.recv(4, socket.MSG_PEEK)
    first = bytearray(2)
    second = bytearray(10)
    n = a.recvmsg_into([first, second])[0]
    c.sendall(b"12")
    c.sendall(b"34")
    return peeked, n, bytes(first), bytes(second[: n - 2]), a.recv(4, socket.MSG_WAITALL)


outcome("MSG_PEEK, iovecs, MSG_WAITALL", peek_waitall_iovecs)


def udp_peek_and_sizes():
    a = bound(kind=D)
    b = sock(kind=D)
    b.sendto(b"first", a.getsockname())
    b.sendto(b"", a.getsockname())
    return a.recv(100, socket.MSG_PEEK), a.recv(100), a.recv(100)


outcome("udp peek and empty datagram", udp_peek_and_sizes)

# --- options --------------------------------------------------------------------------------


def opt(s, level, name, set_to=None):
    if set_to is not None:
        s.setsockopt(level, name, set_to)
    return s.getsockopt(level, name)


SOL, TCP, IP, IP6 = socket.SOL_SOCKET, socket.IPPROTO_TCP, socket.IPPROTO_IP, socket.IPPROTO_IPV6
outcome(
    "TCP_NODELAY", lambda: (opt(sock(), TCP, socket.TCP_NODELAY), opt(sock(), TCP, socket.TCP_NODELAY, 1))
)
outcome("SO_KEEPALIVE", lambda: opt(sock(), SOL, socket.SO_KEEPALIVE, 1))
outcome("SO_REUSEADDR", lambda: opt(sock(), SOL, socket.SO_REUSEADDR, 1))
outcome("SO_RCVBUF", lambda: opt(sock(), SOL, socket.SO_RCVBUF, 65536))
outcome("SO_SNDBUF", lambda: opt(sock(), SOL, socket.SO_SNDBUF, 65536))
outcome("SO_TYPE/PROTOCOL/DOMAIN tcp", lambda: [opt(sock(A6), SOL, n) for n in (3, 38, 39)])
outcome("SO_TYPE/PROTOCOL/DOMAIN udp", lambda: [opt(sock(A4, D), SOL, n) for n in (3, 38, 39)])
outcome("SO_ERROR", lambda: opt(sock(), SOL, socket.SO_ERROR))
outcome("SO_PEERCRED", lambda: struct.unpack("iII", pair()[1].getsockopt(SOL, socket.SO_PEERCRED, 12)))
outcome("SO_ACCEPTCONN", lambda: (opt(sock(), SOL, socket.SO_ACCEPTCONN), opt(listener(), SOL, 30)))
outcome("IPV6_V6ONLY", lambda: (opt(sock(A6), IP6, socket.IPV6_V6ONLY), opt(sock(A6), IP6, 26, 1)))
outcome("IPV6_V6ONLY on v4", lambda: opt(sock(), IP6, socket.IPV6_V6ONLY))
outcome("IPV6_V6ONLY after bind", lambda: opt(bound(A6), IP6, socket.IPV6_V6ONLY, 1))
outcome("IP_TTL", lambda: (opt(sock(), IP, socket.IP_TTL), opt(sock(), IP, socket.IP_TTL, 5)))
outcome("IP_TOS", lambda: opt(sock(), IP, socket.IP_TOS, 16))
outcome("TCP option on udp", lambda: opt(sock(kind=D), TCP, socket.TCP_NODELAY))
outcome("unknown level", lambda: opt(sock(), 1234, 1))
outcome("TCP_KEEPIDLE", lambda: (opt(sock(), TCP, socket.TCP_KEEPIDLE), opt(sock(), TCP, 4, 30)))


def tcp_states():
    srv, c, a = pair()
    return sock().getsockopt(TCP, 11, 232)[0], c.getsockopt(TCP, 11, 232)[0]


outcome("TCP_INFO state", tcp_states)
outcome("set TCP option on udp", lambda: sock(kind=D).setsockopt(TCP, socket.TCP_NODELAY, 1))
outcome("set IPV6_V6ONLY on v4", lambda: sock().setsockopt(IP6, socket.IPV6_V6ONLY, 1))
outcome("set unknown level", lambda: sock().setsockopt(1234, 1, 1))
