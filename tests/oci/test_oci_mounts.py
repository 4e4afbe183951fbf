"""The spec's mounts, devices, masked and read-only paths as the app sees them, in real sandboxes.

Each test boots a Sentry over a root holding the host's static busybox, applies
a spec with bootstrap/mounts.py and runs a shell script in it on every usable
platform; what the script prints is compared with what runc gives for the same
spec (/proc/self/mountinfo in the spec's order, runc's device nodes, masks).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile

import pytest

from bootstrap import logs, mounts
from bootstrap.default_spec import default_spec
from bootstrap.errors import SpecError
from bootstrap.spec import parse_spec

BUSYBOX = shutil.which("busybox")
PLATFORMS = ("kvm", "systrap")

pytestmark = pytest.mark.skipif(
    BUSYBOX is None
    or "statically linked"
    not in subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True).stdout,
    reason="needs a static busybox on the host",
)

# runc's default mounts (runc spec), which the validation suite's specs carry too.
RUNC_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev"]},
    {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
]


@pytest.fixture(params=PLATFORMS)
def platform_name(request: pytest.FixtureRequest) -> str:
    from kvmsandbox import platform

    if not any(info.name == request.param and info.usable for info in platform.probe_all()):
        pytest.skip(f"platform {request.param} is not usable here")
    return request.param


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    (root / "etc").mkdir()
    (root / "etc" / "secret").write_text("top secret\n")
    (root / "etc" / "motd").write_text("hello\n")
    (root / "keep").mkdir()
    (root / "keep" / "inside").write_text("kept\n")
    (root / "keep" / "sub").mkdir()
    (root / "vault").mkdir()
    (root / "vault" / "gold").write_text("gold\n")
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "on-host").write_text("from the host\n")
    return tmp_path


def make_spec(bundle, extra_mounts=(), **linux):
    config = default_spec()
    config["root"] = {"path": "rootfs"}
    config["mounts"] = RUNC_MOUNTS + list(extra_mounts)
    config["linux"].update(linux)
    return parse_spec(json.loads(json.dumps(config)), str(bundle))


def run_in(platform_name: str, bundle, spec, script: str, creds=None) -> tuple[int, str]:
    """Boot a sandbox over the bundle's root, apply the spec's mounts, run script; (exit code, output)."""
    from sentry.sandbox import Sandbox

    with tempfile.TemporaryFile() as out, open(os.devnull, "rb") as null:
        sandbox = Sandbox(
            platform_name, str(bundle / "rootfs"), stdio=(null.fileno(), out.fileno(), out.fileno())
        )
        gofers = []
        try:
            gofers = mounts.apply(sandbox.vfs, spec)
            sandbox.start(["/bin/busybox", "sh", "-c", script], ["PATH=/bin"], creds=creds)
            status = sandbox.wait(60)
        finally:
            sandbox.close()
            for proc, client in gofers:
                client.shutdown()
                proc.wait()
        assert status is not None
        out.seek(0)
        return os.waitstatus_to_exitcode(status), out.read().decode(errors="replace")


def mountinfo(text: str) -> list[tuple[str, str, str, str, str]]:
    """(mount point, root, per-mount options, type, source) per mountinfo line."""
    rows = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        kind, source = right.split()[:2]
        rows.append((fields[4], fields[3], fields[5], kind, source))
    return rows


def test_mountinfo_lists_the_specs_mounts_in_order(platform_name, bundle) -> None:
    bind = {"destination": "/mnt/vol", "source": str(bundle / "vol"), "options": ["bind", "nosuid"]}
    spec = make_spec(bundle, [bind, {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}])
    code, out = run_in(platform_name, bundle, spec, "busybox cat /mnt/vol/on-host /proc/self/mountinfo")
    assert code == 0 and out.startswith("from the host\n"), out
    rows = {row[0]: row for row in mountinfo(out.removeprefix("from the host\n"))}
    places = list(rows)
    order = [places.index(m.destination) for m in spec.mounts]
    assert order == sorted(order), places
    for m in spec.mounts:
        if m.type:
            assert rows[m.destination][3:] == (m.type, m.source)
    assert rows["/dev"][2] == "rw,nosuid"  # strictatime shows no atime flag, as in Linux
    assert rows["/dev/shm"][2] == "rw,nosuid,nodev,noexec,relatime"
    assert rows["/sys"][2].startswith("ro,")
    assert rows["/mnt/vol"][1:3] == (str(bundle / "vol"), "rw,nosuid,relatime")  # a bind's root: its source


def test_single_files_are_bound_and_host_nodes_are_not(platform_name, bundle, caplog) -> None:
    (bundle / "hosts").write_text("127.0.0.1 localhost\n")
    (bundle / "hostname").write_text("box\n")
    os.mkfifo(bundle / "fifo")
    binds = [
        {"destination": "/etc/hosts", "type": "bind", "source": "hosts", "options": ["rbind", "rprivate"]},
        {
            "destination": "/etc/motd",
            "type": "bind",
            "source": str(bundle / "hostname"),
            "options": ["bind", "ro"],
        },
        {"destination": "/etc/null", "type": "bind", "source": "/dev/null", "options": ["bind"]},
        {"destination": "/etc/fifo", "type": "bind", "source": str(bundle / "fifo"), "options": ["bind"]},
        {"destination": "/keep", "type": "bind", "source": str(bundle / "hosts"), "options": ["bind"]},
    ]
    spec = make_spec(bundle, binds)
    script = """
        busybox cat /etc/hosts /etc/motd; echo '10.0.0.1 db' >> /etc/hosts; echo x > /etc/motd
        busybox ls /etc; busybox cat /keep/inside
        busybox grep -E ' /etc/(hosts|motd) ' /proc/self/mountinfo | busybox cut -d' ' -f4-6
    """
    with caplog.at_level(logging.WARNING):
        code, out = run_in(platform_name, bundle, spec, script)
    assert out.splitlines() == [
        "127.0.0.1 localhost",
        "box",
        "sh: can't create /etc/motd: Read-only file system",
        "hosts",
        "motd",
        "secret",
        "kept",
        f"{bundle}/hosts /etc/hosts rw,relatime",
        f"{bundle}/hostname /etc/motd ro,relatime",
    ], out
    assert (bundle / "hosts").read_text() == "127.0.0.1 localhost\n10.0.0.1 db\n"
    assert "/dev/null is not a directory or a regular file" in caplog.text
    assert "fifo is not a directory or a regular file" in caplog.text
    assert "over a directory" in caplog.text


def test_a_spec_mount_of_another_kind_replaces_the_sentrys(platform_name, bundle) -> None:
    shm = {"destination": "/dev/shm", "type": "bind", "source": str(bundle / "vol"), "options": ["rbind"]}
    tmp = {"destination": "/tmp", "type": "tmpfs", "source": "small", "options": ["size=64k"]}
    scratch = {"destination": "/scratch", "type": "tmpfs", "options": ["uid=1000", "gid=100", "mode=750"]}
    spec = make_spec(bundle, [shm, tmp, scratch])
    script = """
        busybox grep -E ' /dev/shm | /tmp ' /proc/self/mountinfo | busybox cut -d' ' -f5,8
        busybox cat /dev/shm/on-host
        busybox dd if=/dev/zero of=/tmp/big bs=1k count=100 2>/dev/null || echo full
        busybox stat -c '%a %u:%g' /scratch
    """
    code, out = run_in(platform_name, bundle, spec, script)
    assert out.splitlines() == ["/dev/shm 9p", "/tmp tmpfs", "from the host", "full", "750 1000:100"], out


def test_mqueue_is_an_empty_directory_and_shm_is_noexec(platform_name, bundle) -> None:
    spec = make_spec(bundle)
    script = "busybox ls -A /dev/mqueue; busybox cp /bin/busybox /dev/shm/bb; /dev/shm/bb true; echo exec=$?"
    code, out = run_in(platform_name, bundle, spec, script)
    assert out.splitlines() == ["sh: /dev/shm/bb: Permission denied", "exec=126"], out


def test_devices_are_made_with_their_numbers_modes_and_owners(platform_name, bundle) -> None:
    devices = [
        {"path": "/dev/test1", "type": "c", "major": 10, "minor": 666, "fileMode": 0o660, "uid": 1, "gid": 2},
        {"path": "/dev/test2", "type": "b", "major": 8, "minor": 666, "fileMode": 0o640},
        {"path": "/dev/test3", "type": "p", "fileMode": 0o600},
        # Docker sends the host node's Go file mode, type bits included.
        {"path": "/dev/sub/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o20000666 | (1 << 26)},
    ]
    spec = make_spec(bundle, devices=devices)
    script = """
        for f in /dev/test1 /dev/test2 /dev/test3 /dev/sub/zero; do
            busybox stat -c '%n %F %t:%T %a %u:%g' $f
        done
        busybox head -c 4 /dev/sub/zero | busybox od -An -tx1
        busybox cat /dev/test1; busybox cat /dev/test2
    """
    code, out = run_in(platform_name, bundle, spec, script)
    lines = out.splitlines()
    assert lines[:4] == [
        "/dev/test1 character special file a:29a 660 1:2",
        "/dev/test2 block special file 8:29a 640 0:0",
        "/dev/test3 fifo 0:0 600 0:0",
        "/dev/sub/zero character special file 1:5 666 0:0",
    ], out
    assert lines[4].split() == ["00", "00", "00", "00"]
    assert "cat: can't open '/dev/test1': No such device or address" in out
    assert "cat: can't open '/dev/test2': No such device or address" in out


def test_mknod_makes_sentry_devices(platform_name, bundle) -> None:
    """As in a runc container with CAP_MKNOD: the node is made; what the Sentry emulates works, other
    devices open with EPERM (runc's device cgroup); host nodes are never made, on any root."""
    from sentry.kernel.creds import Credentials

    spec = make_spec(bundle)
    script = """
        busybox mknod /tmp/null c 1 3; busybox mknod /tmp/zero c 1 5; busybox mknod /tmp/fuse c 10 229
        busybox mknod /tmp/sda b 8 0; busybox mknod /etc/null2 c 1 3
        echo gone > /tmp/null; busybox cat /tmp/null; busybox head -c 2 /tmp/zero | busybox od -An -tx1
        busybox cat /tmp/fuse; busybox cat /tmp/sda
        busybox stat -c '%n %F %t:%T' /tmp/fuse /tmp/sda /etc/null2
    """
    code, out = run_in(platform_name, bundle, spec, script)
    assert out.splitlines() == [
        " 00 00",
        "cat: can't open '/tmp/fuse': Operation not permitted",
        "cat: can't open '/tmp/sda': Operation not permitted",
        "/tmp/fuse character special file a:e5",
        "/tmp/sda block special file 8:0",
        "/etc/null2 character special file 1:3",
    ], out
    assert not (bundle / "rootfs" / "etc" / "null2").exists()
    code, out = run_in(
        platform_name, bundle, spec, "busybox mknod /tmp/n c 1 3", Credentials.for_user(1000, 1000)
    )
    assert out == "mknod: /tmp/n: Operation not permitted\n"


def test_masked_and_readonly_paths(platform_name, bundle) -> None:
    spec = make_spec(
        bundle,
        maskedPaths=["/etc/secret", "/vault", "/not-there"],
        readonlyPaths=["/keep", "/etc/motd", "/proc/sys"],
    )
    script = """
        echo "secret=[$(busybox cat /etc/secret)]"; busybox ls -A /vault; echo x > /etc/secret; echo w=$?
        busybox touch /vault/new
        busybox cat /keep/inside /etc/motd
        busybox touch /keep/new; busybox mkdir /keep/sub/d
        echo x > /etc/motd; echo x > /proc/sys/kernel/hostname
        busybox grep -E ' /(etc/secret|vault|keep|etc/motd|proc/sys) ' /proc/self/mountinfo |
            busybox cut -d' ' -f4-6
    """
    code, out = run_in(platform_name, bundle, spec, script)
    lines = out.splitlines()
    assert "secret=[]" in lines and "w=0" in lines, out
    assert "touch: /vault/new: Read-only file system" in lines
    assert "kept" in lines and "hello" in lines
    assert "touch: /keep/new: Read-only file system" in lines
    assert "mkdir: can't create directory '/keep/sub/d': Read-only file system" in lines
    assert "sh: can't create /etc/motd: Read-only file system" in lines
    assert "sh: can't create /proc/sys/kernel/hostname: Read-only file system" in lines
    assert lines[-5:] == [
        "/keep /keep ro,relatime",
        "/etc/motd /etc/motd ro,relatime",
        "/sys /proc/sys ro,relatime",
        "/null /etc/secret rw,nosuid",
        "/ /vault ro,relatime",
    ], out


# The validation suite's rootfs-propagation check: bind / somewhere, then bind a directory under /:
# the copy of / shows the new mount only when / is shared; an unbindable / cannot be bound.
PROPAGATION_SCRIPT = """
    busybox mkdir /target /mnt1 /test1; echo seen > /test1/example
    busybox mount --rbind / /target; echo rbind=$?
    busybox mount --bind /test1 /mnt1
    busybox cat /target/mnt1/example 2>/dev/null || echo hidden
    busybox umount /mnt1; busybox cat /target/mnt1/example 2>/dev/null || echo gone
    busybox umount /target 2>/dev/null || echo busy
    busybox umount -l /target; busybox ls /target
"""


@pytest.mark.parametrize(
    ("propagation", "expected"),
    [
        ("shared", ["rbind=0", "seen", "gone", "busy"]),
        ("rshared", ["rbind=0", "seen", "gone", "busy"]),
        ("slave", ["rbind=0", "hidden", "gone", "busy"]),
        ("private", ["rbind=0", "hidden", "gone", "busy"]),
        ("unbindable", ["rbind=255", "hidden", "gone", "busy"]),
    ],
)
def test_rootfs_propagation(platform_name, bundle, propagation, expected) -> None:
    spec = make_spec(bundle, rootfsPropagation=propagation)
    code, out = run_in(platform_name, bundle, spec, PROPAGATION_SCRIPT)
    lines = [line for line in out.splitlines() if not line.startswith(("mount:", "umount:"))]
    assert lines == expected, out


def test_mount_syscalls(platform_name, bundle) -> None:
    spec = make_spec(bundle)
    script = """
        busybox mount -t tmpfs -o size=1m,mode=700 scratch /vault; echo tmpfs=$?
        busybox grep ' /vault ' /proc/self/mountinfo | busybox cut -d' ' -f4-
        before=$(busybox grep ' /sys ' /proc/self/mountinfo)
        busybox stat -c %a /vault; busybox ls /vault; busybox umount /vault; busybox cat /vault/gold
        [ "$before" = "$(busybox grep ' /sys ' /proc/self/mountinfo)" ] && echo ids-stable
        busybox mount --bind /keep /keep; busybox mount -o remount,bind,ro /keep
        busybox touch /keep/x 2>&1; busybox umount /keep; busybox touch /keep/x; echo rw=$?
        busybox mount -t proc proc /vault; busybox grep -c ^Name: /vault/self/status; busybox umount /vault
        busybox mount -t ext4 /dev/sda /vault; echo ext4=$?
        busybox umount /etc; echo notmount=$?
        busybox mount --bind /etc/motd /vault; echo filedir=$?
    """
    code, out = run_in(platform_name, bundle, spec, script)
    lines = [line for line in out.splitlines() if not line.startswith(("mount:", "umount:"))]
    assert lines == [
        "tmpfs=0",
        "/ /vault rw,relatime - tmpfs scratch rw,size=1m,mode=700",
        "700",
        "gold",
        "ids-stable",
        "touch: /keep/x: Read-only file system",
        "rw=0",
        "1",
        "ext4=255",
        "notmount=1",
        "filedir=255",
    ], out
    assert "mount: mounting /dev/sda on /vault failed: No such device" in out
    assert "umount: can't unmount /etc: Invalid argument" in out
    assert "mount: mounting /etc/motd on /vault failed: Not a directory" in out


def test_shared_binds_into_themselves_stop_at_the_mount_limit(platform_name, bundle) -> None:
    """Each rbind of a shared / into itself doubles the tree (as in Linux): past the limit, ENOSPC."""
    from sentry.vfs.mounting import MAX_MOUNTS

    spec = make_spec(bundle, rootfsPropagation="rshared")
    script = """
        for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
            busybox mkdir /m$i; busybox mount --rbind / /m$i 2>/dev/null || { echo "refused at $i"; break; }
        done
        busybox wc -l < /proc/self/mountinfo
        busybox umount -l /m1 && echo unmounted
    """
    code, out = run_in(platform_name, bundle, spec, script)
    refused, count, unmounted = out.splitlines()
    assert refused.startswith("refused at ") and int(count) <= MAX_MOUNTS and unmounted == "unmounted", out


def test_mount_needs_cap_sys_admin(platform_name, bundle) -> None:
    from sentry.kernel.creds import Credentials

    spec = make_spec(bundle)
    script = "busybox mount -t tmpfs t /vault; busybox umount /proc"
    code, out = run_in(platform_name, bundle, spec, script, Credentials.for_user(1000, 1000))
    assert out.splitlines() == [
        "mount: permission denied (are you root?)",
        "umount: can't unmount /proc: Operation not permitted",
    ], (code, out)


@pytest.mark.parametrize(
    ("linux", "field"),
    [
        ({"maskedPaths": ["relative"]}, "linux.maskedPaths[0]"),
        ({"readonlyPaths": ["/ok", 3]}, "linux.readonlyPaths[1]"),
        ({"devices": [{"path": "/dev/x", "type": "x", "major": 1, "minor": 1}]}, "linux.devices[0].type"),
        ({"devices": [{"path": "/dev/x", "type": "c"}]}, "linux.devices[0].major"),
        ({"devices": [{"path": "dev/x", "type": "p"}]}, "linux.devices[0].path"),
        ({"rootfsPropagation": "sideways"}, "linux.rootfsPropagation"),
    ],
)
def test_bad_linux_fields_name_the_field(tmp_path, linux, field) -> None:
    (tmp_path / "rootfs").mkdir()
    config = default_spec()
    config["linux"].update(linux)
    with pytest.raises(SpecError) as err:
        parse_spec(config, str(tmp_path))
    assert str(err.value).startswith(field + ":")


def test_proc_and_sysfs_elsewhere_are_the_sentrys_own(platform_name, bundle) -> None:
    extra = [
        {"destination": "/host/proc", "type": "proc", "source": "proc"},
        {"destination": "/host/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
    ]
    spec = make_spec(bundle, extra)
    script = """
        busybox grep -c ^Name: /host/proc/self/status; busybox ls /host/sys | busybox head -n 1
        echo x > /host/sys/x
    """
    code, out = run_in(platform_name, bundle, spec, script)
    assert out.splitlines() == ["1", "devices", "sh: can't create /host/sys/x: Read-only file system"], out


def test_a_chrooted_task_sees_only_the_mounts_under_its_root(platform_name, bundle) -> None:
    jail = bundle / "rootfs" / "jail"
    (jail / "bin").mkdir(parents=True)
    (jail / "proc").mkdir()
    shutil.copy(BUSYBOX, jail / "bin" / "busybox")
    spec = make_spec(bundle, [{"destination": "/jail/proc", "type": "proc", "source": "proc"}])
    script = "busybox chroot /jail /bin/busybox cut -d' ' -f5 /proc/self/mountinfo"
    code, out = run_in(platform_name, bundle, spec, script)
    assert out == "/proc\n", out


def test_unsupported_mounts_are_logged_and_skipped(platform_name, bundle, caplog) -> None:
    spec = make_spec(bundle, [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}])
    with caplog.at_level(logging.WARNING):
        code, out = run_in(platform_name, bundle, spec, "busybox grep -c cgroup /proc/self/mountinfo")
    assert out == "0\n"
    assert "/sys/fs/cgroup (type cgroup) is not supported yet" in caplog.text


def test_sizes() -> None:
    from sentry.vfs.mounting import size_option

    assert size_option("65536k") == 64 << 20
    assert size_option("1g") == 1 << 30
    assert size_option("4096") == 4096


def test_sandbox_logs_are_json_lines() -> None:
    record = logging.LogRecord("x", logging.WARNING, "f", 1, "mount %s skipped", ("/x",), None)
    doc = json.loads(logs.JsonFormatter().format(record))
    assert doc["level"] == "warning" and doc["msg"] == "mount /x skipped" and doc["time"].endswith("Z")
