"""Debian bookworm's own programs (bash, coreutils, tar, findutils, util-linux, python3) in the sandbox, on
both platforms: issue 5's acceptance. Each check compares with what the host computes over the same root
directory (or with the host's own bash and python3 for pure computations), so a Sentry that answers wrongly
cannot pass by accident; checks share a few sandbox runs to keep the module fast."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from sentry.kernel.kernel import UTS_RELEASE, KernelLog

SCRIPTS = Path(__file__).resolve().parent / "scripts"
HOST_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


def _host(argv: list[str]) -> str:
    """stdout of argv run on the host, with the environment debian_do gives the sandbox."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=HOST_ENV)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")[-3000:]
    return r.stdout.decode()


def _sections(out: str) -> dict[str, list[str]]:
    """filesystem.sh's output split at its "## name" lines."""
    sections: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:], [])
        else:
            current.append(line)
    return sections


def _stat_line(root: str, path: str, shown_as: str) -> str:
    """What `stat -c '%n %s %a %u %g %F %Y'` prints for root/path, computed by the host."""
    st = os.stat(root + path)
    assert stat.S_ISREG(st.st_mode)
    mode = f"{stat.S_IMODE(st.st_mode):o}"
    return f"{shown_as} {st.st_size} {mode} {st.st_uid} {st.st_gid} regular file {int(st.st_mtime)}"


def _tar_listing(root: str, top: str) -> set[str]:
    """The member names `tar cf - /top | tar tf -` lists, computed by walking root/top on the host."""
    names = {top + "/"}
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
        rel = os.path.relpath(dirpath, root)
        names |= {f"{rel}/{d}/" for d in dirnames if not os.path.islink(os.path.join(dirpath, d))}
        names |= {f"{rel}/{d}" for d in dirnames if os.path.islink(os.path.join(dirpath, d))}
        names |= {f"{rel}/{f}" for f in filenames}
    return names


def _count_named(root: str, top: str, pattern: str) -> int:
    """How many entries `find /top -name pattern` prints, computed by walking root/top on the host."""
    total = 0
    for _dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
        total += sum(fnmatch.fnmatchcase(name, pattern) for name in dirnames + filenames)
    return total


def test_bash_pipes_heredocs_arrays(debian_do):
    script = (SCRIPTS / "shell_language.sh").read_text()
    out = _ok(debian_do(["/bin/bash", "-c", script]))
    assert out.splitlines() == _host(["/bin/bash", "-c", script]).splitlines()
    assert "[42|one]" in out.splitlines() and "pipestatus 1 0" in out.splitlines()


def test_coreutils_tar_find_dmesg_on_the_overlay_root(debian_do, debian_root):
    out = _sections(_ok(debian_do(["/bin/bash", "-c", (SCRIPTS / "filesystem.sh").read_text()])))

    assert out["uname"] == [UTS_RELEASE] == ["4.4.0"]
    boot = [re.fullmatch(r"\[\s*\d+\.\d{6}\] (.*)", line) for line in out["dmesg"]]
    assert all(boot) and [m.group(1) for m in boot] == list(KernelLog.BOOT_LINES), out["dmesg"]

    assert out["ls"][0].startswith("total ")
    listed = {}
    for line in out["ls"][1:]:
        mode, _links, _user, _group, _size, _mon, _day, _time, name = line.split(maxsplit=8)
        listed[name.split(" -> ")[0]] = (mode, name)
    assert {".", ".."} | set(os.listdir(debian_root)) <= set(listed)
    for name in ("bin", "lib", "sbin", "etc", "usr", "var"):
        st = os.lstat(os.path.join(debian_root, name))
        assert listed[name][0] == stat.filemode(st.st_mode), (name, listed[name])
        if stat.S_ISLNK(st.st_mode):
            assert listed[name][1] == f"{name} -> {os.readlink(os.path.join(debian_root, name))}"

    originals = ["/etc/passwd", "/etc/debian_version"]
    assert out["stat"] == [_stat_line(debian_root, p, p) for p in originals]
    copies = [_stat_line(debian_root, p, p.replace("/etc/", "/etc.copy/")) for p in originals]
    assert out["cp"] == [*copies, "identical"]
    entries = len(os.listdir(os.path.join(debian_root, "etc")))
    assert out["mv"] == [str(entries), str(entries)]

    passwd = Path(debian_root, "etc/passwd").read_text().splitlines()
    assert out["sort"] == [line.split(":")[0] for line in sorted(passwd, key=lambda p: int(p.split(":")[2]))]

    assert "etc/passwd" in out["tar"]
    assert set(out["tar"]) == _tar_listing(debian_root, "etc") and len(out["tar"]) == len(set(out["tar"]))

    assert out["df"][0].split()[:2] == ["Filesystem", "1024-blocks"]
    fs, blocks, used, avail, _pct, mount = out["df"][1].split()
    assert mount == "/" and int(blocks) == int(used) + int(avail) > 0, out["df"]

    assert out["find"] == [str(_count_named(debian_root, "usr", "*.so*"))]
    assert int(out["find"][0]) > 100

    digests = [
        hashlib.sha256(Path(debian_root + p).read_bytes()).hexdigest()
        for p in ("/etc/passwd", "/usr/bin/python3")
    ]
    assert out["sha256sum"] == [f"{digests[0]}  /etc/passwd", f"{digests[1]}  /usr/bin/python3"]

    written, reader = out["written"]
    writer_pid = re.fullmatch(r"written by (\d+)", written).group(1)
    reader_pid, parent = re.fullmatch(r"reader (\d+) child of (\d+)", reader).groups()
    assert parent == writer_pid != reader_pid
    for left_in_sandbox in ("kvmsb-written", "etc.moved", "etc.copy"):
        assert not os.path.lexists(os.path.join(debian_root, left_in_sandbox))


def test_python_threads_subprocess_hashlib(debian_do):
    script = SCRIPTS / "python_stdlib.py"
    out = _ok(debian_do(["/usr/bin/python3", "-c", script.read_text()]))
    assert out.splitlines() == _host(["python3", str(script)]).splitlines()
    assert out.startswith("threads 8 distinct tids") and "pipeline pids distinct 4" in out


def test_python_json_sqlite3(debian_do, debian_root):
    missing = [m for m in ("json", "sqlite3") if not Path(debian_root, "usr/lib/python3.11", m).is_dir()]
    if missing:
        pytest.skip(
            f"the cached root's python3-minimal has no {' or '.join(missing)} (libpython3.11-stdlib has "
            "them); tests/debian_root.py builds with python3-minimal only and reuses an existing cache as is"
        )
    script = SCRIPTS / "python_json_sqlite.py"
    out = _ok(debian_do(["/usr/bin/python3", "-c", script.read_text()]))
    assert out.splitlines() == _host(["python3", str(script)]).splitlines()
