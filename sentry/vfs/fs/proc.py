"""procfs: /proc/self, /proc/thread-self, /proc/<pid>/{cmdline,comm,environ,exe,cwd,root,fd/,fdinfo/,maps,
smaps,mem,limits,oom_score,oom_score_adj,oom_adj,status,stat,statm,mounts,mountinfo,uid_map,gid_map,task/},
/proc/{cpuinfo,meminfo,uptime,version,loadavg,stat,mounts,filesystems,sys/}; and sysfs's few files
(make_sysfs), built from the same generated-file pieces.

Contents are generated when a file is opened, from the process information
the kernel provides (see sentry/CONTRACT.md, "procfs"): nothing here is
cached, so dentries are not either.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Iterator

from sentry.errors import Errno
from sentry.net.inet.procnet import PROC_NET
from sentry.vfs.dirent import DT_DIR, DT_LNK, DT_REG, DirEntry
from sentry.vfs.file import DirectoryFile, FileDescription, SeekableFile
from sentry.vfs.fs import proc_oom, proc_text
from sentry.vfs.fs.proc_mem import MemFile, check_attach
from sentry.vfs.fs.proc_oom import OomFile
from sentry.vfs.fs.proc_sys import SYSCTLS, SYSFS, tree
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Location, Mount, is_under, path_of
from sentry.vfs.stat import Stat

KERNEL_VERSION = b"Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016\n"
CPU_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse "
    "sse2 ht syscall nx pdpe1gb rdtscp lm constant_tsc pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 "
    "movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm fsgsbase bmi1 avx2 bmi2 erms"
)


class ProcFilesystem(Filesystem):
    name = "proc"
    cache_dentries = False

    def __init__(self, vfs) -> None:
        super().__init__()
        self.vfs = vfs
        # Set by the kernel once it exists (it owns the process table).
        self.kernel = None
        self.boot_time = time.monotonic()
        self.boot_ns = time.time_ns()
        self._ino_by_key: dict[tuple, int] = {}

    def ino(self, key: tuple) -> int:
        """Stable inode numbers for generated files, so find/ls see consistent ones."""
        ino = self._ino_by_key.get(key)
        if ino is None:
            ino = self._ino_by_key.setdefault(key, self.next_ino())
        return ino

    def thread_group(self, pid: int):
        tg = self.kernel.thread_group(pid) if self.kernel is not None else None
        if tg is None:
            raise Errno(errno.ENOENT)
        return tg


class ProcInode(Inode):
    # The process whose files these are (they belong to its euid/egid); None: root's.
    owner = None

    def __init__(self, fs: ProcFilesystem, key: tuple, mode: int) -> None:
        self.fs = fs
        self.key = key
        self._mode = mode

    def stat(self) -> Stat:
        nlink = 2 if stat.S_ISDIR(self._mode) else 1
        t = self.fs.boot_ns
        task = self.owner.main_task() if self.owner is not None else None
        uid, gid = (task.creds.euid, task.creds.egid) if task is not None else (0, 0)
        return Stat(
            mode=self._mode,
            ino=self.fs.ino(self.key),
            dev=self.fs.dev,
            nlink=nlink,
            uid=uid,
            gid=gid,
            atime_ns=t,
            mtime_ns=t,
            ctime_ns=t,
        )

    @property
    def mode(self) -> int:
        return self._mode


class GeneratedFile(ProcInode):
    """A read-only file whose bytes are computed at open."""

    def __init__(self, fs: ProcFilesystem, key: tuple, generate: Callable[[], bytes]) -> None:
        super().__init__(fs, key, stat.S_IFREG | 0o444)
        self.generate = generate

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise Errno(errno.EACCES)
        return SnapshotFile(loc, flags, self.generate())


class SnapshotFile(SeekableFile):
    def __init__(self, loc: Location, flags: int, data: bytes) -> None:
        super().__init__(loc, flags)
        self.data = data

    def size(self) -> int:
        return len(self.data)

    def pread(self, task, count: int, offset: int) -> bytes:
        return self.data[offset : offset + count]

    def pwrite(self, task, data: bytes, offset: int) -> int:
        raise Errno(errno.EBADF)


class Link(ProcInode):
    """A symlink; `target` may also name the file itself (a "magic" link like fd/N)."""

    def __init__(
        self,
        fs: ProcFilesystem,
        key: tuple,
        text: Callable[[object], bytes],
        target: Callable[[], Location | None] = lambda: None,
    ) -> None:
        super().__init__(fs, key, stat.S_IFLNK | 0o777)
        self._text = text
        self._target = target

    def readlink(self, task) -> bytes:
        return self._text(task)

    def follow_link(self, task) -> Location | None:
        return self._target()


class Directory(ProcInode):
    """A directory of fixed entries (name -> inode factory) and optional dynamic ones."""

    def __init__(self, fs: ProcFilesystem, key: tuple, entries: dict[bytes, Callable[[], Inode]]) -> None:
        super().__init__(fs, key, stat.S_IFDIR | 0o555)
        self.entries = entries

    def lookup(self, name: bytes) -> Inode:
        factory = self.entries.get(name)
        if factory is None:
            raise Errno(errno.ENOENT)
        return factory()

    def listdir(self) -> list[DirEntry]:
        out = []
        for name, factory in self.entries.items():
            inode = factory()
            dtype = {stat.S_IFDIR: DT_DIR, stat.S_IFLNK: DT_LNK}.get(stat.S_IFMT(inode.mode), DT_REG)
            out.append(DirEntry(name, inode.stat().ino, dtype))
        return out

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return DirectoryFile(loc, flags)


class RootDirectory(Directory):
    """/proc: the fixed files, self, and one directory per process."""

    def lookup(self, name: bytes) -> Inode:
        if name.isdigit() and not name.startswith(b"0"):
            return process_dir(self.fs, self.fs.thread_group(int(name)))
        return super().lookup(name)

    def listdir(self) -> list[DirEntry]:
        entries = super().listdir()
        kernel = self.fs.kernel
        for tg in kernel.thread_groups() if kernel is not None else ():
            entries.append(DirEntry(b"%d" % tg.pid, self.fs.ino(("pid", tg.pid)), DT_DIR))
        return entries


def make_procfs(vfs) -> tuple[ProcFilesystem, Directory]:
    fs = ProcFilesystem(vfs)

    def static(name: str, generate: Callable[[], bytes]) -> Callable[[], Inode]:
        return lambda: GeneratedFile(fs, ("root", name), generate)

    entries: dict[bytes, Callable[[], Inode]] = {
        b"self": lambda: Link(fs, ("self",), lambda task: b"%d" % task.tg.pid),
        b"mounts": lambda: Link(fs, ("mounts",), lambda task: b"self/mounts"),
        b"cpuinfo": static("cpuinfo", cpuinfo),
        b"meminfo": static("meminfo", meminfo),
        b"uptime": static("uptime", lambda: uptime(fs)),
        b"version": static("version", lambda: KERNEL_VERSION),
        b"loadavg": static("loadavg", lambda: loadavg(fs)),
        b"stat": static("stat", lambda: system_stat(fs)),
        b"filesystems": static("filesystems", lambda: FILESYSTEMS),
        b"thread-self": lambda: Link(
            fs, ("thread-self",), lambda task: b"%d/task/%d" % (task.tg.pid, task.tid)
        ),
        b"sys": lambda: static_tree(fs, ("sys",), tree(SYSCTLS), lambda gen: gen(fs.kernel)),
        b"net": lambda: static_tree(fs, ("net",), tree(PROC_NET), lambda gen: gen(fs.kernel)),
    }
    return fs, RootDirectory(fs, ("root",), entries)


FILESYSTEMS = b"".join(
    b"nodev\t%s\n" % name for name in (b"sysfs", b"tmpfs", b"proc", b"devtmpfs", b"devpts", b"overlay", b"9p")
)


def static_tree(fs: ProcFilesystem, key: tuple, node: dict, text: Callable) -> Directory:
    """A directory of generated files from nested dicts (see proc_sys.tree); text(leaf) is a file's line."""
    entries: dict[bytes, Callable[[], Inode]] = {}
    for name, value in node.items():
        sub = (*key, name)
        if isinstance(value, dict):
            entries[name.encode()] = lambda sub=sub, value=value: static_tree(fs, sub, value, text)
        else:
            entries[name.encode()] = lambda sub=sub, value=value: GeneratedFile(
                fs, sub, lambda: (text(value) + "\n").encode()
            )
    return Directory(fs, key, entries)


def make_sysfs(vfs) -> tuple[ProcFilesystem, Directory]:
    """/sys: just the CPU topology files glibc and Python count processors with."""
    fs = ProcFilesystem(vfs)
    fs.name = "sysfs"
    return fs, static_tree(fs, ("sys",), tree(SYSFS), lambda gen: gen())


def main_task(tg):
    """The task whose mm/fds/fs stand for the process; ENOENT once all its threads are gone."""
    task = tg.main_task()
    if task is None:
        raise Errno(errno.ENOENT)
    return task


def process_dir(fs: ProcFilesystem, tg) -> Directory:
    pid = tg.pid

    def gen(name: str, generate: Callable[[], bytes]) -> Callable[[], Inode]:
        return lambda: GeneratedFile(fs, ("pid", pid, name), generate)

    def leader():
        return main_task(tg)

    def loc_link(name: str, where: Callable[[], Location]) -> Callable[[], Inode]:
        return lambda: Link(fs, ("pid", pid, name), lambda task: path_of(where(), task.fs.root), where)

    def guarded(name: str, generate: Callable[[], bytes], descendants_only: bool) -> Callable[[], Inode]:
        """Generated at open, after the ptrace access check (Linux's environ and mem rules)."""
        return lambda: GuardedFile(fs, ("pid", pid, name), tg, generate, descendants_only)

    entries: dict[bytes, Callable[[], Inode]] = {
        b"cmdline": gen("cmdline", tg.cmdline),
        b"environ": guarded("environ", tg.environ, False),
        b"mem": lambda: MemInode(fs, ("pid", pid, "mem"), tg),
        b"smaps": guarded("smaps", lambda: proc_text.smaps(leader().mm.maps_text()), False),
        b"limits": gen("limits", lambda: proc_text.limits(tg.rlimits)),
        b"statm": gen("statm", lambda: proc_text.statm(leader().mm.maps_text())),
        b"fdinfo": lambda: FdDirectory(fs, tg, info=True),
        b"task": lambda: TaskDirectory(fs, tg),
        b"loginuid": gen("loginuid", lambda: b"4294967295"),
        b"oom_score_adj": lambda: OomInode(fs, ("pid", pid, "oom_score_adj"), tg, legacy=False),
        b"oom_adj": lambda: OomInode(fs, ("pid", pid, "oom_adj"), tg, legacy=True),
        b"oom_score": gen("oom_score", lambda: b"%d\n" % proc_oom.score(tg)),
        b"cgroup": gen("cgroup", lambda: b"0::/\n"),
        b"uid_map": gen("uid_map", lambda: proc_text.id_map(fs.kernel.uid_map)),
        b"gid_map": gen("gid_map", lambda: proc_text.id_map(fs.kernel.gid_map)),
        b"comm": gen("comm", lambda: leader().comm.encode()[:15] + b"\n"),
        b"maps": gen("maps", lambda: leader().mm.maps_text().encode()),
        b"status": gen("status", lambda: status(tg)),
        b"stat": gen("stat", lambda: stat_line(tg)),
        b"mounts": gen("mounts", lambda: mounts(fs.vfs, leader().fs.root)),
        b"mountinfo": gen("mountinfo", lambda: mountinfo(fs.vfs, leader().fs.root)),
        b"exe": lambda: Link(fs, ("pid", pid, "exe"), lambda task: os.fsencode(tg.exe_path)),
        b"cwd": loc_link("cwd", lambda: leader().fs.cwd),
        b"root": loc_link("root", lambda: leader().fs.root),
        b"fd": lambda: FdDirectory(fs, tg),
    }
    directory = Directory(fs, ("pid", pid), {name: owned_by(tg, f) for name, f in entries.items()})
    directory.owner = tg
    return directory


def owned_by(tg, factory: Callable[[], ProcInode]) -> Callable[[], ProcInode]:
    def make() -> ProcInode:
        inode = factory()
        inode.owner = tg
        return inode

    return make


class GuardedFile(GeneratedFile):
    """A generated file only a process allowed to ptrace the owner may open."""

    def __init__(
        self, fs: ProcFilesystem, key: tuple, tg, generate: Callable[[], bytes], descendants_only: bool
    ):
        super().__init__(fs, key, generate)
        self._mode = stat.S_IFREG | 0o400
        self.tg = tg
        self.descendants_only = descendants_only

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        check_attach(task, self.tg, descendants_only=self.descendants_only)
        return super().open(task, loc, flags)


class OomInode(ProcInode):
    """oom_score_adj, or the legacy oom_adj: owner-writable (Linux's 0644); proc_oom has the rules."""

    def __init__(self, fs: ProcFilesystem, key: tuple, tg, legacy: bool) -> None:
        super().__init__(fs, key, stat.S_IFREG | 0o644)
        self.tg = tg
        self.legacy = legacy

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return OomFile(loc, flags, self.tg, self.legacy)

    def truncate(self, size: int) -> None:
        """O_TRUNC (a shell's `>`) leaves proc files alone."""


class MemInode(ProcInode):
    """/proc/<pid>/mem (sentry/vfs/fs/proc_mem.py has the rule)."""

    def __init__(self, fs: ProcFilesystem, key: tuple, tg) -> None:
        super().__init__(fs, key, stat.S_IFREG | 0o600)
        self.tg = tg

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        check_attach(task, self.tg)
        return MemFile(loc, flags, self.tg)


class TaskDirectory(ProcInode):
    """/proc/<pid>/task: one directory per thread (the process's files, as seen from that thread)."""

    def __init__(self, fs: ProcFilesystem, tg) -> None:
        super().__init__(fs, ("pid", tg.pid, "task"), stat.S_IFDIR | 0o555)
        self.tg = tg
        self.owner = tg

    def _tids(self) -> list[int]:
        return [t.tid for t in self.tg.tasks()]

    def lookup(self, name: bytes) -> Inode:
        if not name.isdigit() or int(name) not in self._tids():
            raise Errno(errno.ENOENT)
        return process_dir(self.fs, self.tg)

    def listdir(self) -> list[DirEntry]:
        return [DirEntry(b"%d" % tid, self.fs.ino(("tid", self.tg.pid, tid)), DT_DIR) for tid in self._tids()]

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return DirectoryFile(loc, flags)


class FdDirectory(ProcInode):
    """/proc/<pid>/fd: one magic link per open fd; with info=True, /proc/<pid>/fdinfo: one file per fd."""

    def __init__(self, fs: ProcFilesystem, tg, info: bool = False) -> None:
        super().__init__(fs, ("pid", tg.pid, "fdinfo" if info else "fd"), stat.S_IFDIR | 0o500)
        self.tg = tg
        self.info = info

    def lookup(self, name: bytes) -> Inode:
        if not name.isdigit():
            raise Errno(errno.ENOENT)
        fds = main_task(self.tg).fds
        try:
            file = fds.get(int(name))
            cloexec = fds.get_cloexec(int(name))
        except Errno:
            raise Errno(errno.ENOENT) from None
        if self.info:
            generated = GeneratedFile(
                self.fs,
                ("pid", self.tg.pid, "fdinfo", int(name)),
                lambda: proc_text.fdinfo(file, cloexec, file.loc.mount.mount_id),
            )
            generated.owner = self.tg
            return generated
        link = Link(
            self.fs,
            ("pid", self.tg.pid, "fd", int(name)),
            lambda task: path_of(file.loc, task.fs.root),
            lambda: file.loc,
        )
        link.owner = self.tg
        return link

    def listdir(self) -> list[DirEntry]:
        pid = self.tg.pid
        kind, dtype = ("fdinfo", DT_REG) if self.info else ("fd", DT_LNK)
        return [
            DirEntry(b"%d" % fd, self.fs.ino(("pid", pid, kind, fd)), dtype)
            for fd in main_task(self.tg).fds.fds()
        ]

    def open(self, task, loc: Location, flags: int) -> FileDescription:
        return DirectoryFile(loc, flags)


def status(tg) -> bytes:
    task = main_task(tg)
    c = task.creds
    vm_kb = proc_text.mapped_bytes(task.mm.maps_text()) // 1024
    return (
        f"Name:\t{task.comm[:15]}\nState:\tR (running)\nTgid:\t{tg.pid}\nNgid:\t0\nPid:\t{tg.pid}\n"
        f"PPid:\t{tg.parent_pid()}\nTracerPid:\t0\n"
        f"Uid:\t{c.ruid}\t{c.euid}\t{c.suid}\t{c.fsuid}\nGid:\t{c.rgid}\t{c.egid}\t{c.sgid}\t{c.fsgid}\n"
        f"FDSize:\t{task.fds.max_fds}\nVmSize:\t{vm_kb} kB\nVmRSS:\t{vm_kb} kB\n"
        f"Groups:\t{' '.join(map(str, c.groups))}\n"
        f"Threads:\t{len(tg.tasks())}\nCapInh:\t{c.cap_inheritable:016x}\nCapPrm:\t{c.cap_permitted:016x}\n"
        f"CapEff:\t{c.cap_effective:016x}\nCapBnd:\t{c.cap_bounding:016x}\nCapAmb:\t{c.cap_ambient:016x}\n"
        f"NoNewPrivs:\t{tg.no_new_privs}\nSeccomp:\t0\nCpus_allowed_list:\t{proc_text.cpu_list()}\nMems_allowed_list:\t0\n"
    ).encode()


def stat_line(tg) -> bytes:
    """/proc/<pid>/stat: 52 fields, those we do not track are 0."""
    task = main_task(tg)
    fields = [0] * 49
    fields[0:4] = [tg.parent_pid(), tg.pgid(), tg.sid(), 0]
    fields[14:17] = [20, 0, len(tg.tasks())]
    size = proc_text.mapped_bytes(task.mm.maps_text())
    fields[19:22] = [size, size // 4096, proc_text.RLIM_INFINITY]
    return f"{tg.pid} ({task.comm[:15]}) R {' '.join(map(str, fields))}\n".encode()


def mountinfo(vfs, root: Location) -> bytes:
    """/proc/<pid>/mountinfo: mount id, parent id, dev, root, mount point, options, fs type, source."""
    lines = []
    for mnt, where in _visible_mounts(vfs, root):
        parent = (mnt.parent or mnt).mount_id
        head = f"{mnt.mount_id} {parent} 0:{mnt.fs.dev} {mnt.root_path} {where} {_mount_options(mnt)}"
        if mnt.shared is not None:
            head += f" shared:{mnt.shared.id}"
        if mnt.master is not None:
            head += f" master:{mnt.master.id}"
        lines.append(f"{head} - {mnt.fs.name} {mnt.source} {_super_options(mnt)}\n")
    return "".join(lines).encode()


def _visible_mounts(vfs, root: Location) -> Iterator[tuple[Mount, str]]:
    """Each mount at or under root (what a chrooted task's mounts and mountinfo list, as Linux's), with its
    path from root."""
    for mnt in vfs.mounts():
        top = Location(mnt, mnt.root)
        if is_under(top, root):
            yield mnt, path_of(top, root).decode(errors="replace")


def _mount_options(mnt) -> str:
    """The per-mount options: ro/rw, nosuid..., and the atime mode (relatime unless the mount chose one)."""
    flags = list(mnt.flags)
    if not {"strictatime", "noatime", "relatime"} & set(flags):
        flags.append("relatime")
    flags = [f for f in flags if f != "strictatime"]
    return ",".join(["ro" if mnt.readonly else "rw", *flags])


def _super_options(mnt) -> str:
    """The filesystem's options: a read-only bind of part of a tree leaves the filesystem itself rw."""
    readonly = mnt.readonly and mnt.root_path == "/"
    return ",".join(["ro" if readonly else "rw", *filter(None, mnt.data.split(","))])


def system_stat(fs: ProcFilesystem) -> bytes:
    """/proc/stat: per-CPU lines (glibc counts CPUs here when /sys is absent), times not tracked."""
    ncpu = os.cpu_count() or 1
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"] + [f"cpu{n} 0 0 0 0 0 0 0 0 0 0" for n in range(ncpu)]
    nprocs = len(fs.kernel.thread_groups()) if fs.kernel is not None else 0
    lines += ["intr 0", "ctxt 0", f"btime {fs.boot_ns // 1_000_000_000}", f"processes {nprocs}"]
    lines += ["procs_running 1", "procs_blocked 0"]
    return ("\n".join(lines) + "\n").encode()


def loadavg(fs: ProcFilesystem) -> bytes:
    """Load is not measured (zeros); the runnable/total thread counts and the last pid are real."""
    groups = fs.kernel.thread_groups() if fs.kernel is not None else []
    threads = sum(len(tg.tasks()) for tg in groups)
    last = max((tg.pid for tg in groups), default=0)
    return f"0.00 0.00 0.00 1/{max(threads, 1)} {last}\n".encode()


def mounts(vfs, root: Location) -> bytes:
    lines = []
    for mnt, where in _visible_mounts(vfs, root):
        opts = ",".join([_mount_options(mnt), *filter(None, mnt.data.split(","))])
        lines.append(f"{mnt.source} {where} {mnt.fs.name} {opts} 0 0\n")
    return "".join(lines).encode()


def cpuinfo() -> bytes:
    blocks = []
    for n in range(os.cpu_count() or 1):
        blocks.append(
            f"processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
            f"model name\t: unknown\ncpu MHz\t\t: 2000.000\ncache size\t: 8192 KB\nphysical id\t: 0\n"
            f"siblings\t: 1\ncore id\t\t: {n}\ncpu cores\t: 1\nfpu\t\t: yes\nfpu_exception\t: yes\n"
            f"cpuid level\t: 13\nwp\t\t: yes\nflags\t\t: {CPU_FLAGS}\nbogomips\t: 4000.00\n"
            f"clflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: 46 bits physical, 48 bits virtual\n"
            "power management:\n\n"
        )
    return "".join(blocks).encode()


def meminfo() -> bytes:
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1024
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1024
    return (
        f"MemTotal:       {total:8d} kB\nMemFree:        {free:8d} kB\nMemAvailable:   {free:8d} kB\n"
        f"Buffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\n"
        f"SwapFree:              0 kB\n"
    ).encode()


def uptime(fs: ProcFilesystem) -> bytes:
    up = time.monotonic() - fs.boot_time
    return f"{up:.2f} {up:.2f}\n".encode()
