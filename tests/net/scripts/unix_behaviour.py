"""Prints the outcomes of many AF_UNIX/epoll operations; a test compares the sandbox's output with Linux's.

Only modules of python3-minimal are used. Each line is "label: result" where a failure shows its errno
name, so any divergence from Linux shows up as a differing line.
"""

import errno
import os
import select
import socket
import struct

RESULTS = []
TAG = f"{os.getpid()}-{os.getppid()}"


def show(label, fn):
    try:
        result = fn()
    except OSError as e:
        result = "error " + errno.errorcode.get(e.errno, str(e.errno))
    RESULTS.append(f"{label}: {result}")


def pair(kind=socket.SOCK_STREAM):
    return socket.socketpair(socket.AF_UNIX, kind)


a, b = pair()
show("stream send/recv", lambda: (a.send(b"hello"), b.recv(2), b.recv(10)))
show("stream recv nonblocking empty", lambda: b.recv(1, socket.MSG_DONTWAIT))
show("stream sendto with address", lambda: a.sendto(b"x", "\0nowhere-" + TAG))
show("stream getsockname unnamed", lambda: a.getsockname())
show("stream getpeername pair", lambda: a.getpeername())
show("stream SO_TYPE", lambda: a.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE))
show("stream SO_ACCEPTCONN", lambda: a.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
show("stream SO_ERROR", lambda: a.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
show("stream listen on connected", lambda: a.listen(1))
show("stream accept on connected", lambda: a.accept())
show("stream shutdown bad how", lambda: a.shutdown(5))
show("stream shutdown RD", lambda: (a.shutdown(socket.SHUT_RD), b.send(b"after")))
show("stream recv after own SHUT_RD", lambda: a.recv(10))
show(
    "stream poll after shutdowns",
    lambda: (
        select.select([a, b], [a, b], [], 0)[0:2]
        and [len(x) for x in select.select([a, b], [a, b], [], 0)[:2]]
    ),
)
a.close()
show("stream send to closed peer", lambda: b.send(b"x", socket.MSG_NOSIGNAL))
show("stream recv from closed peer", lambda: b.recv(10))
b.close()

d1, d2 = pair(socket.SOCK_DGRAM)
show("dgram empty datagram", lambda: (d1.send(b""), d2.recv(10)))
show("dgram MSG_TRUNC", lambda: (d1.send(b"abcdef"), d2.recv(2, socket.MSG_TRUNC)))
show("dgram recvfrom socketpair", lambda: (d1.send(b"q"), d2.recvfrom(10)))
show("dgram listen", lambda: d1.listen(1))
show("dgram accept", lambda: d1.accept())
show("dgram too big", lambda: d1.send(b"x" * 300000))
show("dgram shutdown WR then send", lambda: (d1.shutdown(socket.SHUT_WR), d1.send(b"x", socket.MSG_NOSIGNAL)))
d1.close()
d2.close()

s1, s2 = pair(socket.SOCK_SEQPACKET)
show("seqpacket records", lambda: (s1.send(b"12345"), s1.send(b"67"), s2.recv(3), s2.recv(10)))
show(
    "seqpacket recvmsg trunc",
    lambda: (s1.send(b"abcdef"), s2.recvmsg(2)[::2]),
)
s1.close()
show("seqpacket after close", lambda: s2.recv(10))
s2.close()

srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
name = "\0behaviour-" + TAG
show("bind abstract", lambda: srv.bind(name))
show("getsockname abstract", lambda: srv.getsockname() == name.encode())
show("rebind", lambda: srv.bind("\0other-" + TAG))
show("listen", lambda: srv.listen(2))
show("listen again", lambda: srv.listen(5))
show("connect to listener from listener", lambda: srv.connect(name))
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
show("connect", lambda: c.connect(name))
show("connect again", lambda: c.connect(name))
conn, peer = srv.accept()
show("accepted peer name", lambda: peer)
show("accepted sockname", lambda: conn.getsockname() == name.encode())
show("client peername", lambda: c.getpeername() == name.encode())
show(
    "peercred is this process",
    lambda: struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0] == os.getpid(),
)
show("send fds", lambda: socket.send_fds(c, [b"m"], [0, 1]))
show("recv fds", lambda: (lambda r: (r[0], len(r[1]), r[2]))(socket.recv_fds(conn, 10, 4)))
show("send fds bad", lambda: socket.send_fds(c, [b"m"], [12345]))
show("recv nothing left", lambda: conn.recvmsg(10, 64, socket.MSG_DONTWAIT))
c.close()
conn.close()
srv.close()
show("connect after listener closed", lambda: socket.socket(socket.AF_UNIX).connect(name))

ep = select.epoll()
x, y = pair()
show("epoll register", lambda: ep.register(x, select.EPOLLIN | select.EPOLLOUT | select.EPOLLET))
show("epoll first wait", lambda: [(1, e) for _, e in ep.poll(0)])
show("epoll ET no change", lambda: ep.poll(0))
y.send(b"z")
show("epoll ET after data", lambda: [e for _, e in ep.poll(0)])
show("epoll register twice", lambda: ep.register(x, select.EPOLLIN))
show("epoll modify", lambda: ep.modify(x, select.EPOLLIN))
show("epoll LT", lambda: ([e for _, e in ep.poll(0)], [e for _, e in ep.poll(0)]))
y.close()
show("epoll after peer close", lambda: [e for _, e in ep.poll(0)])
show("epoll unregister", lambda: ep.unregister(x))
show("epoll unregister again", lambda: ep.unregister(x))


def ready(sock):
    return [len(x) for x in select.select([sock], [sock], [], 0)[:2]]


def unconnected(kind):
    lone = socket.socket(socket.AF_UNIX, kind)
    show(f"unconnected {kind} recv", lambda: lone.recv(1, socket.MSG_DONTWAIT))
    show(f"unconnected {kind} send", lambda: lone.send(b"x", socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL))
    show(f"unconnected {kind} shutdown", lambda: lone.shutdown(socket.SHUT_WR))
    show(f"unconnected {kind} send after shutdown", lambda: lone.send(b"x", socket.MSG_NOSIGNAL))
    show(f"unconnected {kind} select", lambda: ready(lone))
    lone.close()


for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
    unconnected(kind)
listener = socket.socket(socket.AF_UNIX)
listener.bind("\0listener-" + TAG)
listener.listen(1)
show("listener select", lambda: ready(listener))
show("listener shutdown", lambda: listener.shutdown(socket.SHUT_RDWR))
show("listener select after shutdown", lambda: ready(listener))
show("listener recv", lambda: listener.recv(1, socket.MSG_DONTWAIT))
listener.close()
o1, o2 = pair()
show(
    "SO_RCVTIMEO set",
    lambda: o1.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("qq", 0, 50000)),
)
show("recv times out", lambda: o1.recv(1))
show(
    "SO_RCVTIMEO bad usec",
    lambda: o1.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("qq", 0, 2000000)),
)
show("SO_SNDBUF set", lambda: o1.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536))
show("SO_SNDBUF get", lambda: o1.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
show("SO_PASSCRED default", lambda: o1.getsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED))
show("SO_REUSEADDR set", lambda: o1.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1))
show("SO_REUSEADDR get", lambda: o1.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
show("SO_KEEPALIVE get", lambda: o1.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
show("SO_DOMAIN", lambda: o1.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
show("SO_PROTOCOL", lambda: o1.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
show("SO_LINGER", lambda: o1.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
show("unknown option", lambda: o1.getsockopt(socket.SOL_SOCKET, 999))
show("TCP level", lambda: o1.getsockopt(socket.IPPROTO_TCP, 1))
show("FIONREAD-free peek", lambda: (o2.send(b"peek"), o1.recv(10, socket.MSG_PEEK), o1.recv(10)))
o1.close()
o2.close()


def reset(kind, unread):
    a, b = pair(kind)
    b.send(b"y")
    if unread:
        a.send(b"x")
    b.close()
    p = select.poll()
    p.register(a, select.POLLIN | select.POLLOUT)
    show(f"close {kind} unread={unread} revents", lambda: p.poll(0))
    for i in range(3):
        show(f"close {kind} unread={unread} recv {i}", lambda: a.recv(5))
    a.close()


for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
    reset(kind, True)
    reset(kind, False)
embryo_listener = socket.socket(socket.AF_UNIX)
embryo_listener.bind("\0embryo-" + TAG)
embryo_listener.listen(1)
embryo = socket.socket(socket.AF_UNIX)
embryo.connect("\0embryo-" + TAG)
embryo_listener.close()
show("never accepted SO_ERROR", lambda: embryo.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
show("never accepted recv", lambda: embryo.recv(5))
embryo.close()


def peek_fds(kind):
    a, b = pair(kind)
    socket.send_fds(a, [b"x"], [0])
    show(f"peek fds {kind}", lambda: [len(d) for _, _, d in b.recvmsg(10, 64, socket.MSG_PEEK)[1]])
    show(f"recv fds after peek {kind}", lambda: [len(d) for _, _, d in b.recvmsg(10, 64)[1]])
    a.close()
    b.close()


peek_fds(socket.SOCK_STREAM)
peek_fds(socket.SOCK_DGRAM)
passcred = socket.socket(socket.AF_UNIX)
passcred.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
passcred_listener = socket.socket(socket.AF_UNIX)
passcred_listener.bind("\0passcred-" + TAG)
passcred_listener.listen(1)
passcred.connect("\0passcred-" + TAG)
show("SO_PASSCRED connect autobinds", lambda: len(passcred.getsockname()))
passcred.close()
passcred_listener.close()
show("unsupported family", lambda: socket.socket(socket.AF_UNIX, 9))
show("bad protocol", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 7))
show("path too long", lambda: socket.socket(socket.AF_UNIX).bind("/tmp/" + "x" * 200))

print("\n".join(RESULTS))
