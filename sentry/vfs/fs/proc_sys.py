"""/proc/sys: the sysctl values programs read (glibc, Python, procps, systemd-less init scripts).

Read-only here: the sandbox's kernel parameters are not the app's to tune.
Values are Linux's defaults, or what this Sentry actually enforces.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sentry.vfs.fs.proc_text import cpu_list

_BOOT_ID = str(uuid.uuid4())

# path under /proc/sys -> text (given the kernel, which may be None before boot finishes).
SYSCTLS: dict[str, Callable[[object], str]] = {
    "kernel/hostname": lambda k: getattr(k, "hostname", "kvmsandbox"),
    "kernel/domainname": lambda k: "(none)",
    "kernel/ostype": lambda k: "Linux",
    "kernel/osrelease": lambda k: "4.4.0",
    "kernel/version": lambda k: "#1 SMP Sun Jan 10 15:06:54 PST 2016",
    "kernel/pid_max": lambda k: "4194304",
    "kernel/threads-max": lambda k: "257120",
    "kernel/ngroups_max": lambda k: "65536",
    "kernel/cap_last_cap": lambda k: "40",
    "kernel/overflowuid": lambda k: "65534",
    "kernel/overflowgid": lambda k: "65534",
    "kernel/random/boot_id": lambda k: _BOOT_ID,
    "kernel/random/uuid": lambda k: str(uuid.uuid4()),
    "kernel/random/entropy_avail": lambda k: "256",
    "kernel/random/poolsize": lambda k: "256",
    "kernel/yama/ptrace_scope": lambda k: "1",
    "kernel/shmmax": lambda k: "18446744073692774399",
    "kernel/shmall": lambda k: "18446744073692774399",
    "kernel/shmmni": lambda k: "4096",
    "kernel/printk": lambda k: "7\t4\t1\t7",
    "kernel/dmesg_restrict": lambda k: "0",
    "kernel/core_pattern": lambda k: "core",
    "kernel/sched_child_runs_first": lambda k: "0",
    "vm/overcommit_memory": lambda k: "0",
    "vm/max_map_count": lambda k: "65530",
    "vm/mmap_min_addr": lambda k: "65536",
    "fs/file-max": lambda k: "9223372036854775807",
    "fs/nr_open": lambda k: "1048576",
    "fs/pipe-max-size": lambda k: "1048576",
    "fs/inotify/max_user_watches": lambda k: "8192",
    "fs/inotify/max_user_instances": lambda k: "128",
    "net/core/somaxconn": lambda k: "4096",
    "net/ipv4/ip_local_port_range": lambda k: "32768\t60999",  # the loopback stack's ephemeral ports
    "net/ipv6/bindv6only": lambda k: "0",
    "net/unix/max_dgram_qlen": lambda k: "512",
}

# /sys files glibc's sysconf(_SC_NPROCESSORS_*) and Python's os.cpu_count() read.
SYSFS: dict[str, Callable[[], str]] = {
    "devices/system/cpu/online": cpu_list,
    "devices/system/cpu/possible": cpu_list,
    "devices/system/cpu/present": cpu_list,
    "devices/system/cpu/kernel_max": lambda: "8191",
    "fs/cgroup": None,  # an empty directory: no cgroup filesystem is mounted in the sandbox
    "kernel/mm/transparent_hugepage/enabled": lambda: "always madvise [never]",
}


def tree(paths: dict[str, Callable | None]) -> dict:
    """Nested dicts from "a/b/c" keys: a leaf is its value, a directory a dict."""
    root: dict = {}
    for path, value in paths.items():
        *dirs, leaf = path.split("/")
        node = root
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = {} if value is None else value
    return root
