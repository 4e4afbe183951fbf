"""Loopback TCP/UDP in one sandbox: a selectors (epoll) echo server with forked clients over 127.0.0.1
and ::1, UDP, localhost by name, lo the only interface, and no route off the sandbox.

With the argument `host` (--network=host) the last two, which ask about the network itself, are left out.
"""

import errno
import fcntl
import os
import selectors
import socket
import struct
import sys


def echo_server(family, host, clients):
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen()
    srv.setblocking(False)
    port = srv.getsockname()[1]
    pids = []
    for i in range(clients):
        pid = os.fork()
        if pid == 0:
            c = socket.create_connection((host, port))
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.sendall(b"hello %d" % i)
            c.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := c.recv(100):
                reply += chunk
            os._exit(0 if reply == b"HELLO %d" % i else 1)
        pids.append(pid)
    sel = selectors.EpollSelector()
    sel.register(srv, selectors.EVENT_READ)
    served = 0
    while served < clients:
        for key, _ in sel.select():
            if key.fileobj is srv:
                conn, _ = srv.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, b"")
                continue
            conn = key.fileobj
            data = conn.recv(100)
            if data:
                sel.modify(conn, selectors.EVENT_READ, key.data + data)
                continue
            sel.unregister(conn)
            conn.setblocking(True)
            conn.sendall(key.data.upper())
            conn.close()
            served += 1
    codes = [os.waitpid(pid, 0)[1] for pid in pids]
    print(f"{family.name} {host} served {served}, exit codes {codes}")


echo_server(socket.AF_INET, "127.0.0.1", 3)
echo_server(socket.AF_INET6, "::1", 3)

u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(("::1", 0))
v = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v.connect(u.getsockname())
v.send(b"ping")
data, sender = u.recvfrom(100)
u.sendto(data.upper(), sender)
print("udp", v.recv(100).decode(), sender == v.getsockname())

pid = os.fork()
if pid == 0:
    os.setuid(65534)
    try:
        socket.socket().bind(("127.0.0.1", 80))
    except OSError as e:
        print("nobody binding port 80", errno.errorcode[e.errno], flush=True)
    os._exit(0)
os.waitpid(pid, 0)
if sys.argv[1:] != ["host"]:  # on the host's loopback, port 80 may be someone's
    with socket.socket() as s:
        s.bind(("127.0.0.1", 80))
        print("root binding port 80 ok")

with open("/etc/hosts", "w") as f:
    f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
names = sorted({ai[4][0] for ai in socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)})
print("localhost is", names)

if sys.argv[1:] != ["host"]:
    conf = fcntl.ioctl(socket.socket(), 0x8912, struct.pack("iiQ", 0, 0, 0))
    needed, lo = struct.unpack_from("i", conf)[0], socket.if_nametoindex("lo")
    print("SIOCGIFCONF needs", needed, "bytes; lo is index", lo)
    try:
        socket.create_connection(("192.0.2.1", 80))
    except OSError as e:
        print("off-sandbox connect", errno.errorcode[e.errno])
