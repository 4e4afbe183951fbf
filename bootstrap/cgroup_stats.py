"""A container's cgroup numbers in runc's `events --stats` shape (what `docker stats` reads).

runc's libcontainer types: cpu.usage {total, percpu, percpu_user,
percpu_kernel, user, kernel} in ns, memory.usage/swap {usage, max, limit,
failcnt} in bytes with memory.raw from memory.stat, pids {current, limit}
(limit 0: none) and blkio's *_recursive lists of {major, minor, op, value}.
A file the host lacks leaves its numbers out.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from bootstrap.cgroups import Cgroup

_NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def stats(cgroup: Cgroup) -> dict[str, Any]:
    """The cgroup's cpu, memory, pids and blkio data."""
    if cgroup.version == 2:
        return _v2(cgroup.dirs[""])
    data: dict[str, Any] = {}
    cpuacct = cgroup.dir_of("cpuacct")
    if cpuacct:
        data["cpu"] = {"usage": _v1_cpu(cpuacct), "throttling": _throttling(cgroup.dir_of("cpu"))}
    memory = cgroup.dir_of("memory")
    if memory:
        data["memory"] = {
            "usage": _v1_memory(memory, "memory."),
            "swap": _v1_memory(memory, "memory.memsw."),
            "kernel": _v1_memory(memory, "memory.kmem."),
            "raw": _key_values(os.path.join(memory, "memory.stat")),
        }
    pids = cgroup.dir_of("pids")
    if pids:
        data["pids"] = {"current": _int(pids, "pids.current"), "limit": _int(pids, "pids.max")}
    blkio = cgroup.dir_of("blkio")
    data["blkio"] = _v1_blkio(blkio) if blkio else {}
    return data


def _v1_cpu(path: str) -> dict[str, Any]:
    times = _key_values(os.path.join(path, "cpuacct.stat"))
    usage: dict[str, Any] = {"total": _int(path, "cpuacct.usage")}
    for key, name in (
        ("percpu", "usage_percpu"),
        ("percpu_kernel", "usage_percpu_sys"),
        ("percpu_user", "usage_percpu_user"),
    ):
        text = _read(os.path.join(path, f"cpuacct.{name}"))
        if text is not None:
            usage[key] = [int(v) for v in text.split()]
    usage["kernel"] = times.get("system", 0) * _NS_PER_TICK
    usage["user"] = times.get("user", 0) * _NS_PER_TICK
    return usage


def _throttling(path: str | None) -> dict[str, int]:
    stat = _key_values(os.path.join(path, "cpu.stat")) if path else {}
    names = {"nr_periods": "periods", "nr_throttled": "throttled_periods", "throttled_time": "throttled_time"}
    return {out: stat[key] for key, out in names.items() if stat.get(key)}


def _v1_memory(path: str, prefix: str) -> dict[str, int]:
    names = {
        "usage": "usage_in_bytes",
        "max": "max_usage_in_bytes",
        "limit": "limit_in_bytes",
        "failcnt": "failcnt",
    }
    return {key: _int(path, prefix + name) for key, name in names.items() if _exists(path, prefix + name)}


def _v1_blkio(path: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, name in (
        ("io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"),
        ("io_serviced_recursive", "blkio.throttle.io_serviced_recursive"),
    ):
        entries = []
        for line in (_read(os.path.join(path, name)) or "").splitlines():
            fields = line.split()
            if len(fields) == 3 and ":" in fields[0]:
                major, minor = fields[0].split(":")
                entries.append(
                    {"major": int(major), "minor": int(minor), "op": fields[1], "value": int(fields[2])}
                )
        if entries:
            data[key] = entries
    return data


def _v2(path: str) -> dict[str, Any]:
    cpu = _key_values(os.path.join(path, "cpu.stat"))
    data: dict[str, Any] = {
        "cpu": {
            "usage": {
                "total": cpu.get("usage_usec", 0) * 1000,
                "user": cpu.get("user_usec", 0) * 1000,
                "kernel": cpu.get("system_usec", 0) * 1000,
            },
            "throttling": {
                "periods": cpu.get("nr_periods", 0),
                "throttled_periods": cpu.get("nr_throttled", 0),
                "throttled_time": cpu.get("throttled_usec", 0) * 1000,
            },
        },
        "memory": {
            "usage": {
                "usage": _int(path, "memory.current"),
                "max": _int(path, "memory.peak"),
                "limit": _int(path, "memory.max"),
            },
            "swap": {"usage": _int(path, "memory.swap.current"), "limit": _int(path, "memory.swap.max")},
            "raw": _key_values(os.path.join(path, "memory.stat")),
        },
        "pids": {"current": _int(path, "pids.current"), "limit": _int(path, "pids.max")},
    }
    entries = []
    for line in (_read(os.path.join(path, "io.stat")) or "").splitlines():
        number, *pairs = line.split()
        major, minor = number.split(":")
        values = dict(pair.split("=", 1) for pair in pairs)
        for op, key in (("Read", "rbytes"), ("Write", "wbytes")):
            if key in values:
                entries.append(
                    {"major": int(major), "minor": int(minor), "op": op, "value": int(values[key])}
                )
    data["blkio"] = {"io_service_bytes_recursive": entries} if entries else {}
    return data


def _read(path: str) -> str | None:
    with contextlib.suppress(OSError), open(path) as f:
        return f.read()
    return None


def _exists(directory: str, name: str) -> bool:
    return os.path.exists(os.path.join(directory, name))


def _int(directory: str, name: str) -> int:
    """A one-number file; "max" (no limit) and a missing file read as 0, as runc reports them."""
    text = (_read(os.path.join(directory, name)) or "").strip()
    return int(text) if text.lstrip("-").isdigit() else 0


def _key_values(path: str) -> dict[str, int]:
    out = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out
