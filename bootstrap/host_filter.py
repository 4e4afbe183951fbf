"""Seccomp allowlists for the host processes a sandbox leaves running: the sandbox process and its gofers.

Each policy is data: syscall name -> None (any arguments) or the argument
forms allowed. Everything else fails with EPERM: a host call the process was
not expected to make is refused, never executed, and the Python code that
made it sees an ordinary PermissionError rather than the whole sandbox dying.
Filters are installed with TSYNC, so every thread of the process (vCPU
threads, timers, the stub spawner) is covered, and they are inherited by
what the process spawns (systrap stubs stack their own trap filter on top).

The sandbox process's list is what a Python interpreter running the Sentry,
a platform and the control server needs once booted; it has no mount,
pivot_root, chroot, setns, unshare, ptrace, process_vm_*, bpf, perf, keyring,
module, reboot, clock-setting or userfaultfd calls. Sockets are limited to
unix and inet stream/datagram/seqpacket (no raw or packet sockets), and ioctl
to KVM's and the few terminal and socket requests the Sentry forwards
(notably not TIOCSTI, which would inject input into a host terminal).
"""

from __future__ import annotations

import errno
import socket
import termios

import pyseccomp as seccomp

from sentry.net.inet import ifaces

Rule = tuple[seccomp.Arg, ...]
Policy = dict[str, tuple[Rule, ...] | None]

KVMIO_MASK, KVMIO = 0xFF00, 0xAE00
SOCK_TYPE_MASK = 0xF

# Requests the Sentry forwards to host fds: termios and window size to a host terminal
# (sentry/vfs/fs/host.py), queue sizes and non-blocking mode, and the read-only interface
# queries of host sockets (--network=host, sentry/net/host.py).
_HOST_IOCTLS = (
    termios.TCGETS, termios.TCSETS, termios.TCSETSW, termios.TCSETSF, termios.TIOCGWINSZ, termios.TIOCSWINSZ,
    termios.TIOCOUTQ, termios.FIONREAD, termios.FIONBIO,
    ifaces.SIOCGIFNAME, ifaces.SIOCGIFCONF, ifaces.SIOCGIFFLAGS, ifaces.SIOCGIFADDR, ifaces.SIOCGIFNETMASK,
    ifaces.SIOCGIFMTU, ifaces.SIOCGIFHWADDR, ifaces.SIOCGIFINDEX,
)  # fmt: skip
_CLOEXEC_IOCTLS = (termios.FIOCLEX, termios.FIONCLEX)


def _any(names: str) -> Policy:
    """Calls allowed with any arguments, from a whitespace-separated list ('#' starts a comment)."""
    words = " ".join(line.split("#", 1)[0] for line in names.splitlines()).split()
    return dict.fromkeys(words)


# What any Python process of ours does: memory, threads, signals, time, the fds it holds, imports.
_PYTHON_RUNTIME = _any("""
    read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 close close_range dup dup2
    dup3 fcntl lseek fstat newfstatat statx fstatfs statfs openat getdents64 readlink readlinkat access
    faccessat faccessat2 getcwd chdir fchdir umask
    mmap munmap mprotect mremap madvise brk msync mincore
    rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigsuspend sigaltstack
    futex futex_waitv set_robust_list get_robust_list set_tid_address rseq sched_yield
    sched_getaffinity sched_setaffinity getpriority membarrier
    nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time
    getpid gettid getppid getuid geteuid getgid getegid getresuid getresgid getgroups getpgid getpgrp
    getsid getrlimit prlimit64 getrusage times sysinfo uname getrandom arch_prctl prctl capget
    poll ppoll select pselect6 epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2 pipe pipe2
    eventfd2 exit exit_group
    restart_syscall  # the kernel restarts an interrupted futex or sleep wait through it
""")


def _sentry_policy() -> Policy:
    policy: Policy = dict(_PYTHON_RUNTIME)
    policy.update(
        _any("""
            # the memory file, app files served through gofer fds, host stdio
            memfd_create ftruncate fallocate fsync fdatasync sendfile splice copy_file_range flock
            # event sources the Sentry waits on
            timerfd_create timerfd_settime timerfd_gettime signalfd4
            # threads, helper processes (systrap stubs, ps mirrors), their reaping and signals
            clone clone3 vfork execve wait4 waitid kill tgkill tkill pidfd_open pidfd_send_signal
            setpgid setsid
            # systrap stubs install their own stacked filter and syscall user dispatch
            seccomp
            # the control socket, gofer channels, trace sinks, host sockets (--network=host)
            accept accept4 bind listen connect getsockname getpeername sendto recvfrom sendmsg recvmsg
            sendmmsg recvmmsg shutdown setsockopt getsockopt socketpair
        """)
    )
    policy["socket"] = tuple(
        (seccomp.Arg(0, seccomp.EQ, family), seccomp.Arg(1, seccomp.MASKED_EQ, SOCK_TYPE_MASK, kind))
        for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET)
    )
    policy["ioctl"] = (
        (seccomp.Arg(1, seccomp.MASKED_EQ, KVMIO_MASK, KVMIO),),
        *((seccomp.Arg(1, seccomp.EQ, request),) for request in (*_HOST_IOCTLS, *_CLOEXEC_IOCTLS)),
    )
    return policy


def _gofer_policy() -> Policy:
    """A gofer serves one tree through fds it holds: file calls relative to them, and its socket."""
    policy: Policy = dict(_PYTHON_RUNTIME)
    policy.update(
        _any("""
            mkdirat unlinkat renameat renameat2 linkat symlinkat mknodat fchmod fchmodat chmod fchown
            fchownat utimensat ftruncate fallocate fsync fdatasync
            getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr setxattr lsetxattr fsetxattr
            removexattr lremovexattr fremovexattr
            sendmsg recvmsg sendto recvfrom getsockname getpeername getsockopt
        """)
    )
    policy["ioctl"] = tuple(
        (seccomp.Arg(1, seccomp.EQ, request),) for request in (*_CLOEXEC_IOCTLS, termios.TCGETS)
    )
    return policy


SENTRY = _sentry_policy()
GOFER = _gofer_policy()


def install(policy: Policy, refusal: int = errno.EPERM) -> None:
    """Load `policy` on every thread of this process; no_new_privs must already be set (or CAP_SYS_ADMIN)."""
    flt = seccomp.SyscallFilter(seccomp.ERRNO(refusal))
    flt.set_attr(seccomp.Attr.CTL_TSYNC, 1)
    for name, rules in policy.items():
        if rules is None:
            flt.add_rule(seccomp.ALLOW, name)
        else:
            for args in rules:
                flt.add_rule(seccomp.ALLOW, name, *args)
    flt.load()
