"""Run by Debian's python3 in the sandbox: unix-socket echo servers and clients, fd passing, peer creds."""

import os
import selectors
import socket
import struct


def threaded_echo(address):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(address)
    srv.listen(4)
    pid = os.fork()
    if pid == 0:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(address)
            c.sendall(b"hello")
            c.shutdown(socket.SHUT_WR)
            print("client got", c.recv(100).decode(), flush=True)
        os._exit(0)
    conn, _ = srv.accept()
    pid_, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    assert pid_ == pid, (pid_, pid)
    data = b""
    while chunk := conn.recv(100):
        data += chunk
    conn.sendall(data.upper())
    conn.close()
    os.waitpid(pid, 0)
    srv.close()


def selector_echo(path, clients=3):
    """One process serving several forked clients at once through selectors (epoll)."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(clients)
    srv.setblocking(False)
    children = []
    for i in range(clients):
        pid = os.fork()
        if pid == 0:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.connect(path)
                c.sendall(b"client %d\n" % i)
                assert c.recv(100) == b"CLIENT %d\n" % i
            os._exit(0)
        children.append(pid)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    served = 0
    while served < clients:
        for key, _ in sel.select(timeout=10):
            if key.fileobj is srv:
                conn, _ = srv.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
            else:
                data = key.fileobj.recv(100)
                if data:
                    key.fileobj.sendall(data.upper())
                else:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                    served += 1
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    print(type(sel).__name__, "served", served, "exit codes", codes, flush=True)


def pass_fd():
    a, b = socket.socketpair()
    r, w = os.pipe()
    socket.send_fds(a, [b"fd"], [r])
    msg, fds, _flags, _addr = socket.recv_fds(b, 10, 1)
    os.write(w, b"through the passed fd")
    print("passed fd read", os.read(fds[0], 100).decode(), flush=True)


def datagrams():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for word in (b"one", b"two", b"three"):
        a.send(word)
    print("datagrams", [b.recv(100).decode() for _ in range(3)], flush=True)


threaded_echo("/run/py-echo.sock")  # a directory of the overlay root
threaded_echo("\0py-echo-abstract")
selector_echo("/tmp/py-selector.sock")
pass_fd()
datagrams()
