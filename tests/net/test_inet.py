"""AF_INET/AF_INET6 in the sandbox: the loopback stack (`--network=none`) and host sockets (`--network=host`).

Debian's python3 in the root of tests/debian_root.py runs the scripts in
./scripts, busybox and programs/inet_stream.c the rest. Only loopback
addresses are ever used; ports are ephemeral (port 80 and 8080, 9000 only
inside the loopback stack). A handler that raised would show in the Sentry's
log (stderr): every test checks for it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sandbox_fixtures import REPO

SCRIPTS = Path(__file__).resolve().parent / "scripts"
BEHAVIOUR = SCRIPTS / "inet_behaviour.py"


def test_loopback_echo_udp_names(debian_do):
    r = debian_do(["/usr/bin/python3", "-u", "-c", (SCRIPTS / "inet_echo.py").read_text()])
    assert r.returncode == 0 and b"raised" not in r.stderr, r.stderr.decode()[-3000:]
    assert r.stdout.decode().splitlines() == [
        "AF_INET 127.0.0.1 served 3, exit codes [0, 0, 0]",
        "AF_INET6 ::1 served 3, exit codes [0, 0, 0]",
        "udp PING True",
        "nobody binding port 80 EACCES",
        "root binding port 80 ok",
        "localhost is ['127.0.0.1', '::1']",
        "SIOCGIFCONF needs 40 bytes; lo is index 1",
        "off-sandbox connect ENETUNREACH",
    ]


def test_host_network_echo_udp_names(platform_name, debian_root):
    """The echo script's servers, forked clients and epoll over host sockets: blocking calls in one task
    never hold up the others."""
    proc = _host_network_do(platform_name, debian_root, (SCRIPTS / "inet_echo.py").read_text(), "host")
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0 and b"raised" not in err, err.decode()[-3000:]
    assert out.decode().splitlines() == [
        "AF_INET 127.0.0.1 served 3, exit codes [0, 0, 0]",
        "AF_INET6 ::1 served 3, exit codes [0, 0, 0]",
        "udp PING True",
        "nobody binding port 80 EACCES",
        "localhost is ['127.0.0.1', '::1']",
    ]


def test_c_program_over_loopback(sandbox_run, cprogram):
    """4 MiB echo (one blocking write, an edge-triggered epoll reader), refused non-blocking connect,
    dual-stack accept, sendmmsg/recvmmsg: from static C, with the Sentry's log checked for bugs."""
    r = sandbox_run([cprogram("inet_stream")], timeout=300)
    assert (r.code, r.out) == (0, "inet_stream ok\n"), r.out + r.err
    assert "Sentry bug" not in r.log and "raised" not in r.log, r.log[-4000:]


def test_c_program_over_host_sockets(platform_name, cprogram):
    """The same program with `--network=host`: the 4 MiB write goes out whole through host sockets."""
    cmd = [sys.executable, "-m", "cli.main", "--network=host", "do", f"--platform={platform_name}"]
    cmd += ["--", cprogram("inet_stream")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert (r.returncode, r.stdout) == (0, "inet_stream ok\n"), r.stdout + r.stderr[-3000:]
    assert "raised" not in r.stderr, r.stderr[-3000:]


HTTP_SERVER_AND_CLIENT = """
import http.server, threading, urllib.request
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
with open("/tmp/hello.txt", "w") as f:
    f.write("served by http.server")
url = "http://127.0.0.1:%d/tmp/hello.txt" % server.server_address[1]
with urllib.request.urlopen(url) as reply:
    print(reply.status, reply.read().decode())
server.shutdown()
"""


def test_python_http_server_and_client(debian_do):
    """Issue 6's example: Python's http.server on 127.0.0.1 and urllib in the same sandbox."""
    r = debian_do(["/usr/bin/python3", "-u", "-c", HTTP_SERVER_AND_CLIENT])
    assert r.returncode == 0 and b"raised" not in r.stderr, r.stderr.decode()[-3000:]
    assert r.stdout.decode() == "200 served by http.server\n"


def test_loopback_outcomes_match_linux(debian_do):
    """Binds, connects, refusals, readiness and options, line by line as the host's Linux answers them."""
    native = subprocess.run([sys.executable, str(BEHAVIOUR)], capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    r = debian_do(["/usr/bin/python3", "-u", "-c", BEHAVIOUR.read_text()])
    assert r.returncode == 0 and b"raised" not in r.stderr, r.stderr.decode()[-3000:]
    assert r.stdout.decode().splitlines() == native.stdout.splitlines()


BUSYBOX_SCRIPT = """
mkdir -p /tmp/www && echo "hello from httpd" > /tmp/www/index.html
httpd -p 127.0.0.1:8080 -h /tmp/www
wget -q -O - http://127.0.0.1:8080/index.html
netstat -lnt | grep -o '127.0.0.1:8080 .*LISTEN' | tr -s ' '
wget -q -O - http://[::1]:8080/index.html 2>/dev/null || echo "nothing on ::1"
killall httpd
nc -l -p 9000 < /dev/null > /tmp/got &
until echo "through nc" | nc 127.0.0.1 9000 2>/dev/null; do sleep 0.1; done
wait
cat /tmp/got
"""


@pytest.fixture(scope="module")
def busybox_root(tmp_path_factory) -> str:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("needs a static busybox on the host")
    root = tmp_path_factory.mktemp("busybox-net")
    (root / "bin").mkdir()
    shutil.copy(busybox, root / "bin" / "busybox")
    applets = ("sh", "httpd", "wget", "nc", "echo", "cat", "mkdir", "netstat", "grep", "tr", "killall")
    applets += ("sleep",)
    for applet in applets:
        (root / "bin" / applet).symlink_to("busybox")
    return str(root)


def test_busybox_httpd_wget_nc(platform_name, busybox_root):
    """Busybox's httpd (daemonized, seen by netstat in /proc/net/tcp) served to its wget, and nc to nc,
    inside one sandbox over lo."""
    cmd = [sys.executable, "-m", "cli.main", "do", f"--platform={platform_name}"]
    cmd += [f"--root-dir={busybox_root}", "--", "/bin/sh", "-c", BUSYBOX_SCRIPT]
    r = subprocess.run(cmd, capture_output=True, timeout=120, cwd=REPO, env={"PYTHONPATH": str(REPO)})
    assert r.returncode == 0 and b"raised" not in r.stderr, r.stderr.decode()[-3000:]
    assert r.stdout.decode().splitlines() == [
        "hello from httpd",
        "127.0.0.1:8080 0.0.0.0:* LISTEN",
        "nothing on ::1",
        "through nc",
    ]


def _host_network_do(platform_name: str, root: str, script: str, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cli.main", "--network=host", "do", f"--platform={platform_name}"]
    cmd += [f"--root-dir={root}", "--", "/usr/bin/python3", "-u", "-c", script, *args]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    env["HOME"] = os.environ.get("HOME", "/root")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env)


SANDBOXED_SERVER = """
import socket, sys
family = socket.AF_INET6 if sys.argv[1] == "::1" else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.bind((sys.argv[1], 0))
srv.listen()
print(srv.getsockname()[1], flush=True)
conn, peer = srv.accept()
data = b""
while chunk := conn.recv(7):
    data += chunk
conn.sendall(data.upper())
conn.close()
print("served", len(data), peer[0])
"""


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_host_network_server_reached_from_host(platform_name, debian_root, host):
    proc = _host_network_do(platform_name, debian_root, SANDBOXED_SERVER, host)
    try:
        port = int(proc.stdout.readline())
        family = socket.AF_INET6 if host == "::1" else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as c:
            c.settimeout(60)
            c.connect((host, port))
            c.sendall(b"through the host's loopback " * 1000)
            c.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := c.recv(65536):
                reply += chunk
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0 and b"raised" not in err, err.decode()[-3000:]
    assert reply == b"THROUGH THE HOST'S LOOPBACK " * 1000
    assert out.decode().split() == ["served", str(28 * 1000), host]


SANDBOXED_CLIENT = """
import select, socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.setblocking(False)
c.send(b"ping")
select.select([c], [], [])
print(c.recv(100).decode(), c.getpeername()[1] == int(sys.argv[1]))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"datagram", ("127.0.0.1", int(sys.argv[2])))
print(u.recvfrom(100)[0].decode())
"""


def test_host_network_client_reaches_host_server(platform_name, debian_root):
    srv = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(120)
    srv.settimeout(120)

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())
        data, sender = udp.recvfrom(100)
        udp.sendto(data.upper(), sender)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    ports = (str(srv.getsockname()[1]), str(udp.getsockname()[1]))
    proc = _host_network_do(platform_name, debian_root, SANDBOXED_CLIENT, *ports)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        srv.close()
        udp.close()
    assert proc.returncode == 0 and b"raised" not in err, err.decode()[-3000:]
    assert out.decode().splitlines() == ["PING True", "DATAGRAM"]


def test_host_network_outcomes_match_linux(platform_name, debian_root):
    """The same behaviour script over host sockets: the passthrough keeps every outcome the host gives."""
    native = subprocess.run([sys.executable, str(BEHAVIOUR)], capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    proc = _host_network_do(platform_name, debian_root, BEHAVIOUR.read_text())
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0 and b"raised" not in err, err.decode()[-3000:]
    assert out.decode().splitlines() == native.stdout.splitlines()
