"""A container's host cgroup: made by `create`, joined by the sandbox process, removed by `delete`.

As runsc (and runc) do, the whole sandbox — the sandbox process, its gofer,
the systrap stubs, every descendant — lives in the container's cgroup with
linux.resources' limits, so a memory limit bounds the Sentry and all it
serves, and `events --stats` reads the cgroup. The sandbox process joins it
first thing (bootstrap/sandbox_process.py), before it starts anything, so
everything it spawns inherits it; once confined it could not write cgroupfs.

Both hierarchies are handled, told apart by /proc/self/mountinfo: cgroup v1
(one mount per controller, /sys/fs/cgroup/<name>; a hybrid host's unified
mount is then ignored, as runc does) and v2 (one unified mount). Resources
come as v1 file writes (bootstrap/resources.py), translated here for v2. A
controller the host lacks is skipped with a warning (runc refuses the
container instead), so a spec written for another host still runs.

The path is runc's: linux.cgroupsPath absolute is below each hierarchy's
root, relative is below our own cgroup; with --systemd-cgroup it is
`slice:prefix:name` -> `<slice path>/<prefix>-<name>.scope` (cgroupfs writes
only: no systemd D-Bus). Absent, it is `/kvmsandbox/<id>` (see inner_path): runc's default
(`<id>` below our own cgroup) would make a v2 cgroup that has processes a
parent, which v2 forbids once controllers are enabled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import signal
import time

from bootstrap.errors import OCIError, SpecError
from bootstrap.resources import Write

log = logging.getLogger("kvmsandbox.cgroups")

STATE_NAME = "cgroup.json"
# v1 controllers a container's cgroup is made in: those resources write, and cpuacct for stats.
V1_CONTROLLERS = (
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "devices",
    "hugetlb",
    "net_cls",
    "net_prio",
    "freezer",
)
V2_CONTROLLERS = ("cpu", "cpuset", "memory", "pids", "io", "hugetlb")
REMOVE_WAIT_S = 5.0
DEFAULT_ROOT = "/var/run/kvmsandbox"  # cli.main's default --root


@dataclasses.dataclass(frozen=True)
class Cgroup:
    """A container's cgroup: per v1 controller (or "" for v2) its directory, and the directories we made."""

    version: int
    dirs: dict[str, str]
    made: tuple[str, ...] = ()  # deepest last; delete removes them deepest first

    def join(self) -> None:
        """Move the calling process (and so all it starts later) into the cgroup."""
        for path in sorted(set(self.dirs.values())):
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write("0")

    def dir_of(self, controller: str) -> str | None:
        return self.dirs.get("" if self.version == 2 else controller)

    def save(self, state_dir: str) -> None:
        with open(os.path.join(state_dir, STATE_NAME), "w") as f:
            json.dump(dataclasses.asdict(self), f)

    @staticmethod
    def load(state_dir: str) -> Cgroup | None:
        try:
            with open(os.path.join(state_dir, STATE_NAME)) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        return Cgroup(data["version"], data["dirs"], tuple(data["made"]))


@dataclasses.dataclass(frozen=True)
class Hierarchies:
    """The host's cgroup mounts: version, and per controller (v1) or "" (v2) the mount point and root."""

    version: int
    mounts: dict[str, tuple[str, str]]


def hierarchies(mountinfo: str = "/proc/self/mountinfo") -> Hierarchies:
    """The cgroup hierarchies we see; v1 wherever a v1 controller is mounted (hybrid hosts too)."""
    v1: dict[str, tuple[str, str]] = {}
    v2: tuple[str, str] | None = None
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3].split(",")
            root, point = _unescape(fields[3]), _unescape(fields[4])
            if fstype == "cgroup":
                for option in options:
                    if option in V1_CONTROLLERS:
                        v1.setdefault(option, (point, root))
            elif fstype == "cgroup2" and v2 is None:
                v2 = (point, root)
    if v1:
        return Hierarchies(1, v1)
    if v2 is None:
        raise OCIError("no cgroup hierarchy is mounted (see /proc/self/mountinfo)")
    return Hierarchies(2, {"": v2})


def _unescape(text: str) -> str:
    """mountinfo's octal escapes (\\040 for a space)."""
    return text.encode().decode("unicode_escape") if "\\" in text else text


def inner_path(cgroups_path: str, container_id: str, systemd: bool, state_root: str = DEFAULT_ROOT) -> str:
    """The container's path inside each hierarchy: absolute, or relative to our own cgroup.

    The default names the state root unless it is the default one: ids are unique per --root only,
    and two containers sharing a cgroup would share limits (and delete would kill both).
    """
    if systemd:
        return _systemd_path(cgroups_path, container_id)
    if not cgroups_path:
        if os.path.normpath(state_root) == DEFAULT_ROOT:
            return f"/kvmsandbox/{container_id}"
        import hashlib  # here: only create names a cgroup; OpenSSL's load is wasted on other commands

        root_hash = hashlib.sha256(os.path.normpath(state_root).encode()).hexdigest()[:12]
        return f"/kvmsandbox/{root_hash}/{container_id}"
    cleaned = os.path.normpath(cgroups_path)
    if cleaned.startswith("/"):
        return cleaned
    if cleaned == ".." or cleaned.startswith("../"):
        raise SpecError("linux.cgroupsPath", f"must stay below our own cgroup, not {cgroups_path!r}")
    return cleaned


def _systemd_path(cgroups_path: str, container_id: str) -> str:
    """runc's systemd form `slice:prefix:name` as the cgroupfs path systemd would give the scope."""
    if not cgroups_path:
        return f"/system.slice/kvmsandbox-{container_id}.scope"
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise SpecError(
            "linux.cgroupsPath", f"with --systemd-cgroup must be slice:prefix:name, not {cgroups_path!r}"
        )
    slice_name, prefix, name = parts
    slice_name = slice_name or "system.slice"
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise SpecError("linux.cgroupsPath", f"{slice_name!r} is not a systemd slice name (x-y.slice)")
    # a-b.slice lives in a.slice: systemd nests slices by their dash-separated prefixes.
    words = slice_name[: -len(".slice")].split("-")
    slices = [f"{'-'.join(words[: i + 1])}.slice" for i in range(len(words)) if words[i]]
    scope = name if name.endswith(".slice") else f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return "/" + "/".join([s for s in slices if s != "-.slice"] + [scope])


def create(inner: str, writes: tuple[Write, ...], hosts: Hierarchies | None = None) -> Cgroup:
    """Make the cgroup and write the resources; on any failure, remove what was made and raise."""
    hosts = hosts or hierarchies()
    dirs: dict[str, str] = {}
    made: list[str] = []
    try:
        for controller, (point, root) in hosts.mounts.items():
            base = point if inner.startswith("/") else _own_dir(controller, point, root)
            path = os.path.normpath(os.path.join(base, inner.lstrip("/")))
            made += _make_dirs(point, path, hosts.version == 2)
            dirs[controller] = path
        cgroup = Cgroup(hosts.version, dirs, tuple(made))
        if hosts.version == 1 and "cpuset" in dirs:
            _inherit_cpuset(point=hosts.mounts["cpuset"][0], path=dirs["cpuset"])
        apply(cgroup, writes)
    except BaseException:
        remove_dirs(made)
        raise
    return cgroup


def _own_dir(controller: str, point: str, root: str) -> str:
    """Our own cgroup's directory in the hierarchy mounted at `point` (whose root is `root`)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if (controller == "" and names == "") or controller in names.split(","):
                rel = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
                return os.path.normpath(os.path.join(point, rel))
    return point


def _make_dirs(point: str, path: str, v2: bool) -> list[str]:
    """mkdir -p below the mount point; the directories made, outermost first."""
    made = []
    parts = os.path.relpath(path, point).split(os.sep)
    current = point
    for part in parts:
        if part in ("", "."):
            continue
        if v2:
            _enable_controllers(current)
        current = os.path.join(current, part)
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            continue
        made.append(current)
    return made


def _enable_controllers(path: str) -> None:
    """v2: let `path`'s children use the controllers we write (those `path` has)."""
    try:
        with open(os.path.join(path, "cgroup.controllers")) as f:
            available = set(f.read().split())
    except OSError:
        return
    for name in V2_CONTROLLERS:
        if name in available:
            try:
                with open(os.path.join(path, "cgroup.subtree_control"), "w") as f:
                    f.write(f"+{name}")
            except OSError as e:
                log.warning("cgroup v2: cannot enable %s below %s: %s", name, path, e.strerror)


def _inherit_cpuset(point: str, path: str) -> None:
    """v1: a new cpuset has no cpus or mems, and no process may join it until they are set."""
    chain = [path]
    while chain[-1] != point:
        chain.append(os.path.dirname(chain[-1]))
    for directory in reversed(chain[:-1]):
        parent = os.path.dirname(directory)
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(os.path.join(directory, name)) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(parent, name)) as f:
                value = f.read().strip()
            _write(os.path.join(directory, name), value)


def apply(cgroup: Cgroup, writes: tuple[Write, ...]) -> None:
    """Write resources into the cgroup (create and update); OCIError naming the field on a refusal."""
    if cgroup.version == 2:
        writes = _to_v2(writes)
    for w in writes:
        directory = cgroup.dir_of(w.controller)
        if directory is None or (cgroup.version == 1 and w.controller == "unified"):
            log.warning("%s: the host has no %s cgroup controller: not applied", w.field, w.controller)
            continue
        path = os.path.join(directory, w.file)
        if not os.path.exists(path):
            log.warning("%s: the host's cgroup has no %s: not applied", w.field, w.file)
            continue
        try:
            _write(path, w.value)
        except OSError as e:
            if w.file == "memory.limit_in_bytes" and e.errno == errno.EINVAL:
                _raise_memsw_first(directory, w)  # the swap limit in force is below the new limit
                continue
            if w.file.startswith("memory.kmem."):
                log.warning("%s: the kernel refuses %s (%s): not applied", w.field, w.file, e.strerror)
                continue
            raise OCIError(f"{w.field}: cannot set {w.file} to {w.value!r}: {e.strerror}") from None


def _raise_memsw_first(directory: str, w: Write) -> None:
    """v1 keeps memsw >= limit at every step: raise memsw to the new limit before the limit."""
    try:
        _write(os.path.join(directory, "memory.memsw.limit_in_bytes"), w.value)
        _write(os.path.join(directory, w.file), w.value)
    except OSError as e:
        raise OCIError(f"{w.field}: cannot set {w.file} to {w.value!r}: {e.strerror}") from None


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _to_v2(writes: tuple[Write, ...]) -> tuple[Write, ...]:
    """runc's v1 -> v2 conversions; what v2 cannot express is dropped with a warning."""
    by_file = {w.file: w for w in writes}
    out: list[Write] = []
    for w in writes:
        v = w.value
        unlimited = v == "-1"
        if w.file == "memory.limit_in_bytes":
            out.append(
                dataclasses.replace(w, controller="", file="memory.max", value="max" if unlimited else v)
            )
        elif w.file == "memory.soft_limit_in_bytes":
            out.append(
                dataclasses.replace(w, controller="", file="memory.low", value="max" if unlimited else v)
            )
        elif w.file == "memory.memsw.limit_in_bytes":
            limit = by_file.get("memory.limit_in_bytes")
            if unlimited or limit is None or limit.value == "-1":
                swap = "max"
            else:
                swap = str(int(v) - int(limit.value))
            out.append(dataclasses.replace(w, controller="", file="memory.swap.max", value=swap))
        elif w.file == "cpu.shares":
            weight = 1 + ((int(v) - 2) * 9999) // 262142
            out.append(dataclasses.replace(w, controller="", file="cpu.weight", value=str(weight)))
        elif w.file == "cpu.cfs_quota_us" or (
            w.file == "cpu.cfs_period_us" and "cpu.cfs_quota_us" not in by_file
        ):
            quota = by_file.get("cpu.cfs_quota_us")
            period = by_file.get("cpu.cfs_period_us")
            text = "max" if quota is None or quota.value == "-1" else quota.value
            out.append(
                dataclasses.replace(
                    w, controller="", file="cpu.max", value=f"{text} {period.value if period else 100000}"
                )
            )
        elif w.file in ("cpuset.cpus", "cpuset.mems", "pids.max", "cpu.idle"):
            out.append(dataclasses.replace(w, controller=""))
        elif w.file == "blkio.weight":
            out.append(dataclasses.replace(w, controller="", file="io.bfq.weight"))
        elif w.file.startswith("blkio.throttle."):
            number, rate = v.split()
            key = {"read_bps": "rbps", "write_bps": "wbps", "read_iops": "riops", "write_iops": "wiops"}[
                w.file[len("blkio.throttle.") : -len("_device")]
            ]
            out.append(dataclasses.replace(w, controller="", file="io.max", value=f"{number} {key}={rate}"))
        elif w.file.startswith("hugetlb."):
            size = w.file.split(".")[1]
            out.append(dataclasses.replace(w, controller="", file=f"hugetlb.{size}.max"))
        elif w.controller == "unified":
            out.append(dataclasses.replace(w, controller=""))
        elif w.file != "cpu.cfs_period_us":
            log.warning("%s: cgroup v2 has no %s: not applied", w.field, w.file)
    return tuple(out)


def remove(cgroup: Cgroup) -> None:
    """Kill what is left in the directories we made (only the sandbox's processes are there) and
    remove them; a cgroup that existed before the container is left as it is, with its processes."""
    ours = sorted({d for d in cgroup.dirs.values() if d in cgroup.made})
    deadline = time.monotonic() + REMOVE_WAIT_S
    while left := _procs(ours):
        if time.monotonic() > deadline:
            raise OCIError(f"cgroup {ours[0]} still holds processes {sorted(left)} after SIGKILL")
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    remove_dirs(list(cgroup.made))


def _procs(dirs: list[str]) -> set[int]:
    """Host pids in these cgroup directories."""
    found: set[int] = set()
    for path in dirs:
        with contextlib.suppress(OSError), open(os.path.join(path, "cgroup.procs")) as f:
            found.update(int(line) for line in f.read().split())
    return found


def remove_dirs(made: list[str]) -> None:
    """rmdir what we made, deepest first; a cgroup whose last process is still exiting is retried."""
    for path in sorted(made, key=len, reverse=True):
        deadline = time.monotonic() + REMOVE_WAIT_S
        while True:
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno == errno.EBUSY and _has_subdirs(path):
                    break  # a parent we made now holds another container's cgroup too
                # Otherwise EBUSY is a task still counted while it exits.
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    log.warning("cannot remove cgroup %s: %s", path, e.strerror)
                    break
                time.sleep(0.05)


def _has_subdirs(path: str) -> bool:
    with os.scandir(path) as entries:
        return any(e.is_dir(follow_symlinks=False) for e in entries)
