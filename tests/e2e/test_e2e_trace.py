"""--pod-init-config on the OCI path: create connects the monitor, the sandbox reports to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, busybox_rootfs

sys.path.insert(0, os.path.join(REPO, "tests", "trace"))

from trace_monitor import Monitor, wait_for  # noqa: E402

from bootstrap.default_spec import default_spec  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("platform", ["kvm", "systrap"])
def test_pod_init_session_reaches_the_monitor(tmp_path, platform: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    busybox_rootfs(str(bundle))
    (bundle / "config.json").write_text(json.dumps(default_spec(["sh", "-c", "echo hi"])))
    monitor = Monitor(str(tmp_path / "monitor.sock"))
    session = {
        "name": "Default",
        "points": [{"name": "container/start"}, {"name": "sentry/clone"}, {"name": "sentry/execve"}],
        "sinks": [{"name": "remote", "config": {"endpoint": monitor.path}}],
    }
    (tmp_path / "pod.json").write_text(json.dumps({"trace_session": session}))
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "cli.main", "--root", str(tmp_path / "root"), "--platform", platform,
           "--pod-init-config", str(tmp_path / "pod.json"), "run", "--bundle", str(bundle), "t1"]  # fmt: skip
    result = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr
    wait_for(lambda: monitor.handshakes and monitor.packets)
    assert monitor.packets[0].message_type == 1  # container/start: the session began before pid 1 ran
