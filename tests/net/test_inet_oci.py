"""`--network` through the OCI path: `kvmsandbox --network=... run` with a busybox bundle.

The flag travels create -> sandbox.json -> BootRequest -> the Sentry's kernel;
with `none` the container's wget reaches its own httpd over the loopback stack
(and not the host's loopback), with `host` it reaches a server on the host's
127.0.0.1. Needs root (namespaces) and a static busybox.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

import pytest
from sandbox_fixtures import REPO

from bootstrap.default_spec import default_spec

APPLETS = ("sh", "httpd", "wget", "echo", "mkdir", "killall")


def _bundle(path, script: str) -> str:
    busybox = shutil.which("busybox")
    if os.geteuid() != 0 or busybox is None:
        pytest.skip("needs root and a static busybox")
    for d in ("bin", "proc", "dev", "tmp"):
        (path / "rootfs" / d).mkdir(parents=True)
    shutil.copy2(busybox, path / "rootfs" / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", path / "rootfs" / "bin" / applet)
    config = default_spec(["sh", "-c", script])
    config["process"]["terminal"] = False
    config["process"]["env"] = ["PATH=/bin"]
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


def _run(tmp_path, platform_name: str, network: str, bundle: str) -> tuple[int, str, str]:
    cmd = [sys.executable, "-m", "cli.main", "--root", str(tmp_path / "state"), f"--platform={platform_name}"]
    cmd += [f"--network={network}", "run", "--bundle", bundle, f"inet-{network}"]
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        r = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, timeout=120)
    return r.returncode, out.read_text(), err.read_text()


@pytest.fixture
def host_http_server():
    """An HTTP server on the host's 127.0.0.1 (ephemeral port) answering "from the host"."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"from the host\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _script(port: int) -> str:
    return f"""
mkdir -p /tmp/www && echo "from the container" > /tmp/www/index.html
httpd -p 127.0.0.1:{port} -h /tmp/www
wget -q -O - http://127.0.0.1:{port}/index.html
killall httpd
"""


def test_network_none_run_has_its_own_loopback(tmp_path, platform_name, host_http_server):
    """The host's server holds the port on the host's lo; the container binds the same port on its own."""
    bundle = _bundle(tmp_path / "bundle", _script(host_http_server))
    code, out, err = _run(tmp_path, platform_name, "none", bundle)
    assert (code, out) == (0, "from the container\n"), err[-3000:]


def test_network_host_run_reaches_the_hosts_loopback(tmp_path, platform_name, host_http_server):
    script = f"wget -q -O - http://127.0.0.1:{host_http_server}/"
    bundle = _bundle(tmp_path / "bundle", script)
    code, out, err = _run(tmp_path, platform_name, "host", bundle)
    assert (code, out) == (0, "from the host\n"), err[-3000:]
