"""linux.resources -> the cgroup v1 files to write, checked field by field.

One list of `Write`s serves both hierarchies: bootstrap/cgroups.py writes them
as they are on cgroup v1 and translates them on v2 (memory.max, cpu.max,
...), as runc converts its v1-shaped settings. The spec is checked here, once,
at load (bootstrap/spec.py), so a bad value fails before any state or cgroup
exists, with an error naming the field. As runc, a zero (or absent) limit
means "not set" and -1 means "unlimited".
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from bootstrap.errors import SpecError

_I64 = (1 << 63) - 1
_CPU_LIST = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_PAGE_SIZE = re.compile(r"^\d+(KB|MB|GB|TB|PB)$")
DEVICE_RULE_TYPES = ("a", "b", "c")
# What the sandbox process itself opens once in the cgroup, allowed after the spec's rules (which
# keep their order, first in devices.list): the app never opens host devices (the Sentry serves
# /dev), so the spec's list restricts only the runtime, which must still reach /dev/kvm and co.
RUNTIME_DEVICES = (
    "c 10:232 rwm",  # /dev/kvm
    "c 1:3 rwm",  # /dev/null
    "c 1:5 rwm",  # /dev/zero
    "c 1:7 rwm",  # /dev/full
    "c 1:8 rwm",  # /dev/random
    "c 1:9 rwm",  # /dev/urandom
    "c 5:0 rwm",  # /dev/tty
    "c 5:2 rwm",  # /dev/ptmx
    "c 136:* rwm",  # /dev/pts/*
)


@dataclasses.dataclass(frozen=True)
class Write:
    """One cgroup v1 file write: `value` into `controller`'s `file`, from the spec's `field`."""

    controller: str
    file: str
    value: str
    field: str


def parse(obj: object, where: str) -> tuple[Write, ...]:
    """The writes linux.resources asks for, in the order they must happen; SpecError on a bad field."""
    if obj is None:
        return ()
    res = _object(obj, where)
    writes: list[Write] = []
    writes += _memory(res.get("memory"), f"{where}.memory")
    writes += _cpu(res.get("cpu"), f"{where}.cpu")
    pids = res.get("pids")
    if pids is not None:
        limit = _int(_object(pids, f"{where}.pids").get("limit"), f"{where}.pids.limit", -1, _I64)
        if limit:
            writes.append(
                Write("pids", "pids.max", "max" if limit < 0 else str(limit), f"{where}.pids.limit")
            )
    writes += _block_io(res.get("blockIO"), f"{where}.blockIO")
    writes += _devices(res.get("devices"), f"{where}.devices")
    writes += _hugepages(res.get("hugepageLimits"), f"{where}.hugepageLimits")
    writes += _network(res.get("network"), f"{where}.network")
    unified = res.get("unified")
    if unified is not None:
        for key, value in _object(unified, f"{where}.unified").items():
            field = f"{where}.unified.{key}"
            if not isinstance(value, str) or "/" in key or key.startswith("."):
                raise SpecError(field, "must be a string value for a cgroup v2 file name")
            writes.append(Write("unified", key, value, field))
    return tuple(writes)


def _memory(obj: object, where: str) -> list[Write]:
    if obj is None:
        return []
    mem = _object(obj, where)
    writes = []
    for key, file in (
        ("limit", "memory.limit_in_bytes"),
        ("reservation", "memory.soft_limit_in_bytes"),
        ("swap", "memory.memsw.limit_in_bytes"),
        ("kernel", "memory.kmem.limit_in_bytes"),
        ("kernelTCP", "memory.kmem.tcp.limit_in_bytes"),
    ):
        value = _int_or_none(mem.get(key), f"{where}.{key}", -1, _I64)
        if value:
            writes.append(Write("memory", file, str(value), f"{where}.{key}"))
    limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
    if limit > 0 and 0 < swap < limit:
        raise SpecError(f"{where}.swap", f"must be at least memory.limit ({limit}) or -1, not {swap}")
    swappiness = _int_or_none(mem.get("swappiness"), f"{where}.swappiness", 0, 100)
    if swappiness is not None:
        writes.append(Write("memory", "memory.swappiness", str(swappiness), f"{where}.swappiness"))
    if _bool(mem.get("disableOOMKiller"), f"{where}.disableOOMKiller"):
        writes.append(Write("memory", "memory.oom_control", "1", f"{where}.disableOOMKiller"))
    return writes


def _cpu(obj: object, where: str) -> list[Write]:
    if obj is None:
        return []
    cpu = _object(obj, where)
    writes = []
    shares = _int_or_none(cpu.get("shares"), f"{where}.shares", 0, 262144)
    if shares:
        if shares < 2:
            raise SpecError(f"{where}.shares", f"must be in [2, 262144], not {shares}")
        writes.append(Write("cpu", "cpu.shares", str(shares), f"{where}.shares"))
    # The period first: a quota is checked against the period in force.
    period = _int_or_none(cpu.get("period"), f"{where}.period", 0, 1000000)
    if period:
        if period < 1000:
            raise SpecError(f"{where}.period", f"must be in [1000, 1000000] microseconds, not {period}")
        writes.append(Write("cpu", "cpu.cfs_period_us", str(period), f"{where}.period"))
    quota = _int_or_none(cpu.get("quota"), f"{where}.quota", -1, _I64)
    if quota:
        if 0 < quota < 1000:
            raise SpecError(f"{where}.quota", f"must be -1 or at least 1000 microseconds, not {quota}")
        writes.append(Write("cpu", "cpu.cfs_quota_us", str(quota), f"{where}.quota"))
    # The real-time period first, for the same reason.
    for key, file in (("realtimePeriod", "cpu.rt_period_us"), ("realtimeRuntime", "cpu.rt_runtime_us")):
        value = _int_or_none(cpu.get(key), f"{where}.{key}", -1, _I64)
        if value:
            writes.append(Write("cpu", file, str(value), f"{where}.{key}"))
    for key, file in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        value = cpu.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not _CPU_LIST.match(value):
            raise SpecError(f"{where}.{key}", f"must be a list like 0-3,5, not {json.dumps(value)}")
        writes.append(Write("cpuset", file, value, f"{where}.{key}"))
    idle = _int_or_none(cpu.get("idle"), f"{where}.idle", 0, 1)
    if idle is not None:
        writes.append(Write("cpu", "cpu.idle", str(idle), f"{where}.idle"))
    return writes


def _block_io(obj: object, where: str) -> list[Write]:
    if obj is None:
        return []
    bio = _object(obj, where)
    writes = []
    for key, file in (("weight", "blkio.weight"), ("leafWeight", "blkio.leaf_weight")):
        value = _int_or_none(bio.get(key), f"{where}.{key}", 0, 1000)
        if value:
            if value < 10:
                raise SpecError(f"{where}.{key}", f"must be in [10, 1000], not {value}")
            writes.append(Write("blkio", file, str(value), f"{where}.{key}"))
    for i, item in enumerate(_list(bio.get("weightDevice"), f"{where}.weightDevice")):
        field = f"{where}.weightDevice[{i}]"
        dev = _object(item, field)
        number = _device_number(dev, field)
        for key, file in (("weight", "blkio.weight_device"), ("leafWeight", "blkio.leaf_weight_device")):
            value = _int_or_none(dev.get(key), f"{field}.{key}", 10, 1000)
            if value is not None:
                writes.append(Write("blkio", file, f"{number} {value}", f"{field}.{key}"))
    for key, file in (
        ("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
        ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
        ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
        ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"),
    ):
        for i, item in enumerate(_list(bio.get(key), f"{where}.{key}")):
            field = f"{where}.{key}[{i}]"
            dev = _object(item, field)
            rate = _int(dev.get("rate"), f"{field}.rate", 0, (1 << 64) - 1)
            writes.append(Write("blkio", file, f"{_device_number(dev, field)} {rate}", field))
    return writes


def _devices(obj: object, where: str) -> list[Write]:
    writes = []
    for i, item in enumerate(_list(obj, where)):
        field = f"{where}[{i}]"
        rule = _object(item, field)
        if not isinstance(rule.get("allow"), bool):
            raise SpecError(f"{field}.allow", "is required: true or false")
        kind = rule.get("type") or "a"
        if kind not in DEVICE_RULE_TYPES:
            raise SpecError(f"{field}.type", f"must be one of a, b, c, not {json.dumps(kind)}")
        access = rule.get("access") or "rwm"
        if not isinstance(access, str) or not re.fullmatch(r"[rwm]{1,3}", access):
            raise SpecError(f"{field}.access", f"must be letters of rwm, not {json.dumps(access)}")
        numbers = []
        for key in ("major", "minor"):
            value = _int_or_none(rule.get(key), f"{field}.{key}", -1, (1 << 32) - 1)
            numbers.append("*" if value is None or value < 0 else str(value))
        text = "a" if kind == "a" else f"{kind} {numbers[0]}:{numbers[1]} {access}"
        writes.append(Write("devices", "devices.allow" if rule["allow"] else "devices.deny", text, field))
    if writes:
        writes += [Write("devices", "devices.allow", rule, where) for rule in RUNTIME_DEVICES]
    return writes


def _hugepages(obj: object, where: str) -> list[Write]:
    writes = []
    for i, item in enumerate(_list(obj, where)):
        field = f"{where}[{i}]"
        limit = _object(item, field)
        size = limit.get("pageSize")
        if not isinstance(size, str) or not _PAGE_SIZE.match(size):
            raise SpecError(f"{field}.pageSize", f"must be a size like 2MB or 1GB, not {json.dumps(size)}")
        value = _int(limit.get("limit"), f"{field}.limit", 0, (1 << 64) - 1)
        writes.append(Write("hugetlb", f"hugetlb.{size}.limit_in_bytes", str(value), field))
    return writes


def _network(obj: object, where: str) -> list[Write]:
    if obj is None:
        return []
    net = _object(obj, where)
    writes = []
    class_id = _int_or_none(net.get("classID"), f"{where}.classID", 0, (1 << 32) - 1)
    if class_id is not None:
        writes.append(Write("net_cls", "net_cls.classid", str(class_id), f"{where}.classID"))
    for i, item in enumerate(_list(net.get("priorities"), f"{where}.priorities")):
        field = f"{where}.priorities[{i}]"
        prio = _object(item, field)
        name = prio.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[^\s/]{1,15}", name):
            raise SpecError(f"{field}.name", f"must be an interface name, not {json.dumps(name)}")
        value = _int(prio.get("priority"), f"{field}.priority", 0, (1 << 32) - 1)
        writes.append(Write("net_prio", "net_prio.ifpriomap", f"{name} {value}", field))
    return writes


def _device_number(dev: dict[str, Any], field: str) -> str:
    major = _int(dev.get("major"), f"{field}.major", 0, (1 << 32) - 1)
    minor = _int(dev.get("minor"), f"{field}.minor", 0, (1 << 32) - 1)
    return f"{major}:{minor}"


def _object(obj: object, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SpecError(where, "must be a JSON object")
    return obj


def _list(obj: object, where: str) -> list[Any]:
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise SpecError(where, "must be a JSON array")
    return obj


def _bool(obj: object, where: str) -> bool:
    if obj is not None and not isinstance(obj, bool):
        raise SpecError(where, f"must be true or false, not {json.dumps(obj)}")
    return bool(obj)


def _int(obj: object, where: str, low: int, high: int) -> int:
    if isinstance(obj, bool) or not isinstance(obj, int) or not low <= obj <= high:
        raise SpecError(where, f"must be an integer in [{low}, {high}], not {json.dumps(obj)}")
    return obj


def _int_or_none(obj: object, where: str, low: int, high: int) -> int | None:
    return None if obj is None else _int(obj, where, low, high)
