"""OCI runtime spec (config.json) -> typed, validated dataclasses.

The shim hands us whatever the user or image produced. Everything is checked
here, once, before any state or process exists, so a malformed bundle fails
with an error naming the JSON field (`process.user.uid: must be ...`) and
leaves nothing behind (linux.resources through bootstrap/resources.py).
Fields the sandbox does not act on (seccomp, apparmor, ...) are accepted and
kept as raw JSON so that valid specs from Docker and containerd never fail.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

from bootstrap import capabilities
from bootstrap import resources as resources_mod
from bootstrap.errors import SpecError
from bootstrap.hooks import Hook, parse_hooks

# Namespace types from the runtime spec's config-linux.md.
NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

# Rlimits Linux has (the spec names them RLIMIT_*).
RLIMIT_TYPES = (
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
)

NR_OPEN = 1 << 20  # Linux's default fs.nr_open, the Sentry's: setrlimit refuses a NOFILE above it

# Semantic versions of runtime-spec 1.x, with Docker's and containerd's "-dev" style suffixes.
_VERSION_RE = re.compile(r"^1\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")

_MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to the kernel, so it is no valid id.
_MAX_U64 = 2**64 - 1
_MAX_ID_EXTENTS = 340  # UID_GID_MAP_MAX_EXTENTS: lines a uid_map or gid_map may hold.


@dataclasses.dataclass(frozen=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None


@dataclasses.dataclass(frozen=True)
class Rlimit:
    type: str
    soft: int
    hard: int


@dataclasses.dataclass(frozen=True)
class Capabilities:
    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Process:
    args: tuple[str, ...]
    cwd: str
    user: User
    env: tuple[str, ...] = ()
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    capabilities: Capabilities | None = None  # None: the user's default (all for root, none otherwise)
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    oom_score_adj: int | None = None


@dataclasses.dataclass(frozen=True)
class Root:
    path: str  # absolute, resolved against the bundle
    readonly: bool = False


@dataclasses.dataclass(frozen=True)
class Mount:
    destination: str
    type: str = ""
    source: str = ""
    options: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Namespace:
    type: str
    path: str = ""


@dataclasses.dataclass(frozen=True)
class IdMapping:
    container_id: int
    host_id: int
    size: int


@dataclasses.dataclass(frozen=True)
class Device:
    """A linux.devices entry: a node the container sees (the Sentry's own device behind it, if any)."""

    path: str
    type: str  # c, u (unbuffered char), b or p
    major: int = 0
    minor: int = 0
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0


DEVICE_TYPES = ("c", "u", "b", "p")
PROPAGATIONS = ("shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable")


@dataclasses.dataclass(frozen=True)
class Linux:
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IdMapping, ...] = ()
    gid_mappings: tuple[IdMapping, ...] = ()
    sysctl: dict[str, str] = dataclasses.field(default_factory=dict)
    cgroups_path: str = ""
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    devices: tuple[Device, ...] = ()
    rootfs_propagation: str = ""
    resources: dict[str, Any] | None = None  # as given; cgroup_writes is what is applied
    cgroup_writes: tuple[resources_mod.Write, ...] = ()  # linux.resources as cgroup file writes
    seccomp: dict[str, Any] | None = None  # accepted; the Sentry is the syscall filter

    def namespace(self, kind: str) -> Namespace | None:
        return next((ns for ns in self.namespaces if ns.type == kind), None)


@dataclasses.dataclass(frozen=True)
class Spec:
    oci_version: str
    process: Process
    root: Root
    bundle: str
    hostname: str = ""
    domainname: str = ""
    mounts: tuple[Mount, ...] = ()
    linux: Linux = dataclasses.field(default_factory=Linux)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    hooks: dict[str, tuple[Hook, ...]] = dataclasses.field(default_factory=dict)


def load_bundle(bundle: str) -> Spec:
    """Read and validate `<bundle>/config.json`; the root directory must exist."""
    bundle = os.path.abspath(bundle)
    if not os.path.isdir(bundle):
        raise SpecError("bundle", f"{bundle} is not a directory")
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        raise SpecError("config.json", f"no such file {path}") from None
    except OSError as e:
        raise SpecError("config.json", f"cannot read {path}: {e.strerror}") from None
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpecError("config.json", f"invalid JSON: {e}") from None
    return parse_spec(obj, bundle)


def parse_spec(obj: object, bundle: str) -> Spec:
    """Validate a decoded config.json for the bundle directory it came from."""
    top = _object(obj, "config.json")
    version = _string(top.get("ociVersion"), "ociVersion", required=True)
    if not _VERSION_RE.match(version):
        raise SpecError("ociVersion", f"{version!r} is not a 1.x runtime-spec version (like 1.0.2)")
    if "process" not in top:
        raise SpecError("process", "is required")
    root = _root(top.get("root"), bundle)
    return Spec(
        oci_version=version,
        process=parse_process(top["process"], "process"),
        root=root,
        bundle=bundle,
        hostname=_string(top.get("hostname"), "hostname"),
        domainname=_string(top.get("domainname"), "domainname"),
        mounts=tuple(_mount(m, f"mounts[{i}]") for i, m in enumerate(_list(top.get("mounts"), "mounts"))),
        linux=_linux(top.get("linux"), "linux"),
        annotations=_string_map(top.get("annotations"), "annotations"),
        hooks=parse_hooks(top.get("hooks")),
    )


def parse_process(obj: object, where: str = "process") -> Process:
    """Validate a process object (config.json's `process`, or `exec --process` JSON)."""
    p = _object(obj, where)
    args = tuple(
        _string(a, f"{where}.args[{i}]") for i, a in enumerate(_list(p.get("args"), f"{where}.args"))
    )
    if not args:
        raise SpecError(f"{where}.args", "must be a non-empty array of strings")
    cwd = _string(p.get("cwd"), f"{where}.cwd", required=True)
    if not cwd.startswith("/"):
        raise SpecError(f"{where}.cwd", f"must be an absolute path, not {cwd!r}")
    env = tuple(_string(e, f"{where}.env[{i}]") for i, e in enumerate(_list(p.get("env"), f"{where}.env")))
    for i, entry in enumerate(env):
        if "=" not in entry:
            raise SpecError(f"{where}.env[{i}]", f"must be KEY=VALUE, not {entry!r}")
    if "user" not in p:
        raise SpecError(f"{where}.user", "is required")
    return Process(
        args=args,
        cwd=cwd,
        user=_user(p["user"], f"{where}.user"),
        env=env,
        terminal=_bool(p.get("terminal"), f"{where}.terminal"),
        console_size=_console_size(p.get("consoleSize"), f"{where}.consoleSize"),
        capabilities=_capabilities(p.get("capabilities"), f"{where}.capabilities"),
        rlimits=_rlimits(p.get("rlimits"), f"{where}.rlimits"),
        no_new_privileges=_bool(p.get("noNewPrivileges"), f"{where}.noNewPrivileges"),
        oom_score_adj=_optional_int(p.get("oomScoreAdj"), f"{where}.oomScoreAdj", -1000, 1000),
    )


def _root(obj: object, bundle: str) -> Root:
    if obj is None:
        raise SpecError("root", "is required")
    r = _object(obj, "root")
    rel = _string(r.get("path"), "root.path", required=True)
    path = os.path.normpath(os.path.join(bundle, rel))
    if not os.path.isdir(path):
        raise SpecError("root.path", f"{path} is not a directory")
    return Root(path=path, readonly=_bool(r.get("readonly"), "root.readonly"))


def _user(obj: object, where: str) -> User:
    u = _object(obj, where)
    if "uid" not in u:
        raise SpecError(f"{where}.uid", "is required")
    if "gid" not in u:
        raise SpecError(f"{where}.gid", "is required")
    gids = _list(u.get("additionalGids"), f"{where}.additionalGids")
    return User(
        uid=_id(u["uid"], f"{where}.uid"),
        gid=_id(u["gid"], f"{where}.gid"),
        additional_gids=tuple(_id(g, f"{where}.additionalGids[{i}]") for i, g in enumerate(gids)),
        umask=_optional_int(u.get("umask"), f"{where}.umask", 0, 0o777),
    )


def _console_size(obj: object, where: str) -> tuple[int, int] | None:
    if obj is None:
        return None
    c = _object(obj, where)
    height = _optional_int(c.get("height"), f"{where}.height", 0, 0xFFFF)
    width = _optional_int(c.get("width"), f"{where}.width", 0, 0xFFFF)
    return (height or 0, width or 0)


def _capabilities(obj: object, where: str) -> Capabilities | None:
    if obj is None:
        return None
    c = _object(obj, where)
    sets = {}
    for name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        caps = _list(c.get(name), f"{where}.{name}")
        for i, cap in enumerate(caps):
            if not isinstance(cap, str) or capabilities.number(cap) is None:
                raise SpecError(
                    f"{where}.{name}[{i}]", f"must be a capability name like CAP_KILL, not {cap!r}"
                )
        sets[name] = tuple(caps)
    return Capabilities(**sets)


def _rlimits(obj: object, where: str) -> tuple[Rlimit, ...]:
    out = []
    seen = set()
    for i, item in enumerate(_list(obj, where)):
        r = _object(item, f"{where}[{i}]")
        kind = _string(r.get("type"), f"{where}[{i}].type", required=True)
        if kind not in RLIMIT_TYPES:
            raise SpecError(f"{where}[{i}].type", f"unknown rlimit {kind!r}")
        if kind in seen:
            raise SpecError(f"{where}[{i}].type", f"{kind} given twice")
        seen.add(kind)
        soft = _int(r.get("soft"), f"{where}[{i}].soft", 0, _MAX_U64)
        hard = _int(r.get("hard"), f"{where}[{i}].hard", 0, _MAX_U64)
        if soft > hard:
            raise SpecError(f"{where}[{i}].soft", f"{soft} exceeds hard limit {hard}")
        if kind == "RLIMIT_NOFILE" and hard > NR_OPEN:
            raise SpecError(f"{where}[{i}].hard", f"{hard} exceeds the most open files, {NR_OPEN} (nr_open)")
        out.append(Rlimit(kind, soft, hard))
    return tuple(out)


def _mount(obj: object, where: str) -> Mount:
    m = _object(obj, where)
    dest = _string(m.get("destination"), f"{where}.destination", required=True)
    if not dest:
        raise SpecError(f"{where}.destination", "must not be empty")
    options = _list(m.get("options"), f"{where}.options")
    return Mount(
        destination=os.path.normpath(os.path.join("/", dest)),
        type=_string(m.get("type"), f"{where}.type"),
        source=_string(m.get("source"), f"{where}.source"),
        options=tuple(_string(o, f"{where}.options[{i}]") for i, o in enumerate(options)),
    )


def _linux(obj: object, where: str) -> Linux:
    if obj is None:
        return Linux()
    lx = _object(obj, where)
    namespaces = []
    for i, item in enumerate(_list(lx.get("namespaces"), f"{where}.namespaces")):
        ns = _object(item, f"{where}.namespaces[{i}]")
        kind = _string(ns.get("type"), f"{where}.namespaces[{i}].type", required=True)
        if kind not in NAMESPACE_TYPES:
            raise SpecError(
                f"{where}.namespaces[{i}].type",
                f"unknown namespace {kind!r} (known: {', '.join(NAMESPACE_TYPES)})",
            )
        if any(n.type == kind for n in namespaces):
            raise SpecError(f"{where}.namespaces[{i}].type", f"namespace {kind!r} given twice")
        namespaces.append(Namespace(kind, _string(ns.get("path"), f"{where}.namespaces[{i}].path")))
    uid_maps = _id_mappings(lx.get("uidMappings"), f"{where}.uidMappings")
    gid_maps = _id_mappings(lx.get("gidMappings"), f"{where}.gidMappings")
    if (uid_maps or gid_maps) and not any(n.type == "user" for n in namespaces):
        raise SpecError(f"{where}.uidMappings", "id mappings need a user namespace in linux.namespaces")
    if any(n.type == "user" and not n.path for n in namespaces):
        for name, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
            if not maps:
                raise SpecError(f"{where}.{name}", "a new user namespace (no path) needs id mappings")
    resources = lx.get("resources")
    seccomp = lx.get("seccomp")
    propagation = _string(lx.get("rootfsPropagation"), f"{where}.rootfsPropagation")
    if propagation and propagation not in PROPAGATIONS:
        raise SpecError(
            f"{where}.rootfsPropagation", f"must be one of {', '.join(PROPAGATIONS)}, not {propagation!r}"
        )
    return Linux(
        namespaces=tuple(namespaces),
        uid_mappings=uid_maps,
        gid_mappings=gid_maps,
        sysctl=_string_map(lx.get("sysctl"), f"{where}.sysctl"),
        cgroups_path=_string(lx.get("cgroupsPath"), f"{where}.cgroupsPath"),
        masked_paths=_absolute_paths(lx.get("maskedPaths"), f"{where}.maskedPaths"),
        readonly_paths=_absolute_paths(lx.get("readonlyPaths"), f"{where}.readonlyPaths"),
        devices=tuple(
            _device(d, f"{where}.devices[{i}]")
            for i, d in enumerate(_list(lx.get("devices"), f"{where}.devices"))
        ),
        rootfs_propagation=propagation,
        resources=None if resources is None else _object(resources, f"{where}.resources"),
        cgroup_writes=resources_mod.parse(resources, f"{where}.resources"),
        seccomp=None if seccomp is None else _object(seccomp, f"{where}.seccomp"),
    )


def _device(obj: object, where: str) -> Device:
    d = _object(obj, where)
    path = _string(d.get("path"), f"{where}.path", required=True)
    if not path.startswith("/"):
        raise SpecError(f"{where}.path", f"must be an absolute path, not {path!r}")
    kind = _string(d.get("type"), f"{where}.type", required=True)
    if kind not in DEVICE_TYPES:
        raise SpecError(f"{where}.type", f"must be one of {', '.join(DEVICE_TYPES)}, not {kind!r}")
    numbered = kind != "p"
    # Docker and containerd copy the host node's Go os.FileMode, type bits and all: only permissions count.
    mode = _optional_int(d.get("fileMode"), f"{where}.fileMode", 0, 2**32 - 1)
    return Device(
        path=os.path.normpath(path),
        type=kind,
        major=_int(d.get("major", None if numbered else 0), f"{where}.major", 0, 2**12 - 1),
        minor=_int(d.get("minor", None if numbered else 0), f"{where}.minor", 0, 2**20 - 1),
        file_mode=0o666 if mode is None else mode & 0o7777,
        uid=0 if d.get("uid") is None else _id(d.get("uid"), f"{where}.uid"),
        gid=0 if d.get("gid") is None else _id(d.get("gid"), f"{where}.gid"),
    )


def _absolute_paths(obj: object, where: str) -> tuple[str, ...]:
    """Paths in the container, which the runtime spec says MUST be absolute."""
    paths = tuple(_string(s, f"{where}[{i}]") for i, s in enumerate(_list(obj, where)))
    for i, path in enumerate(paths):
        if not path.startswith("/"):
            raise SpecError(f"{where}[{i}]", f"must be an absolute path, not {path!r}")
    return paths


def _id_mappings(obj: object, where: str) -> tuple[IdMapping, ...]:
    out = []
    for i, item in enumerate(_list(obj, where)):
        m = _object(item, f"{where}[{i}]")
        out.append(
            IdMapping(
                container_id=_int(m.get("containerID"), f"{where}[{i}].containerID", 0, _MAX_ID),
                host_id=_int(m.get("hostID"), f"{where}[{i}].hostID", 0, _MAX_ID),
                size=_int(m.get("size"), f"{where}[{i}].size", 1, _MAX_ID + 1),
            )
        )
    _check_mappings(out, where)
    return tuple(out)


def _check_mappings(maps: list[IdMapping], where: str) -> None:
    """What the kernel would refuse with a bare EINVAL when the map is written, named by field."""
    if len(maps) > _MAX_ID_EXTENTS:
        raise SpecError(where, f"at most {_MAX_ID_EXTENTS} mappings (the kernel's limit), not {len(maps)}")
    for i, m in enumerate(maps):
        for field, first in (("containerID", m.container_id), ("hostID", m.host_id)):
            if first + m.size > _MAX_ID + 1:
                raise SpecError(
                    f"{where}[{i}]", f"{field} {first} + size {m.size} runs past the largest id {_MAX_ID}"
                )
        for j, other in enumerate(maps[:i]):
            for field, a, b in (
                ("containerID", m.container_id, other.container_id),
                ("hostID", m.host_id, other.host_id),
            ):
                if a < b + other.size and b < a + m.size:
                    raise SpecError(f"{where}[{i}].{field}", f"range overlaps {where}[{j}]'s")


# Typed field readers: each names the field in its error.


def _object(obj: object, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SpecError(where, f"must be a JSON object, not {_kind(obj)}")
    return obj


def _list(obj: object, where: str) -> list[Any]:
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise SpecError(where, f"must be a JSON array, not {_kind(obj)}")
    return obj


def _string(obj: object, where: str, *, required: bool = False) -> str:
    if obj is None:
        if required:
            raise SpecError(where, "is required")
        return ""
    if not isinstance(obj, str):
        raise SpecError(where, f"must be a string, not {_kind(obj)}")
    return obj


def _string_map(obj: object, where: str) -> dict[str, str]:
    if obj is None:
        return {}
    d = _object(obj, where)
    for key, value in d.items():
        _string(value, f"{where}.{key}")
    return dict(d)


def _bool(obj: object, where: str) -> bool:
    if obj is None:
        return False
    if not isinstance(obj, bool):
        raise SpecError(where, f"must be true or false, not {_kind(obj)}")
    return obj


def _int(obj: object, where: str, low: int, high: int) -> int:
    if obj is None:
        raise SpecError(where, "is required")
    if isinstance(obj, bool) or not isinstance(obj, int) or not low <= obj <= high:
        raise SpecError(where, f"must be an integer in [{low}, {high}], not {json.dumps(obj)}")
    return obj


def _optional_int(obj: object, where: str, low: int, high: int) -> int | None:
    return None if obj is None else _int(obj, where, low, high)


def _id(obj: object, where: str) -> int:
    if isinstance(obj, bool) or not isinstance(obj, int) or not 0 <= obj <= _MAX_ID:
        raise SpecError(where, f"must be a non-negative integer below 2^32-1, not {json.dumps(obj)}")
    return obj


def _kind(obj: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(obj), f"a number ({json.dumps(obj)})"
    )
